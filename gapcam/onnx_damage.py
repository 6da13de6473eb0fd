"""Telling a damaged ONNX file from another model when its hash does not match its card.

A model whose sha256 differs from its card is either a different model (a card copied next to a
retrained network: re-export both) or the same model damaged on the way (a copy cut short, a
full disk, a bad flash: copy it again). The fix differs, so the message must too. A damaged file
does not parse as an ONNX protobuf, or fails ONNX's own checker; another model is a valid one.
"""

from __future__ import annotations

from pathlib import Path


def onnx_damage(path: str | Path) -> str | None:
    """Why ``path`` is not a usable ONNX model (one short phrase), or ``None`` if it is one."""
    import onnx

    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: the bytes are not a model
        return f"it does not parse ({type(exc).__name__})"
    if not model.graph.node or not model.graph.output:
        return "it parses but holds no complete graph"
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # ValidationError: an incomplete or inconsistent graph
        return f"ONNX's checker rejects it ({' '.join(str(exc).split())[:120]})"
    return None
