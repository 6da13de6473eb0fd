"""Self-checks an imported model passes before anything is written.

1. ``onnx.checker`` (full check, with shape inference);
2. ONNX Runtime: the new ``logits`` equal the source model's output (its softmax, when the
   source ended in one) on the same seeded batch;
3. the GAP identity ``mean_xy(cam_c) + b_c == logits_c``;
4. a batch of 2 gives the same results as two batches of 1 (the batch axis is really dynamic).
"""

from __future__ import annotations

import numpy as np
import onnx

from gapcam.cam import gap_identity_error, softmax
from gapcam.errors import GapcamError

#: Relative tolerances (of the largest |logit|, at least 1) on float32 CPU results.
LOGITS_TOLERANCE = 1e-4
GAP_TOLERANCE = 1e-3
BATCH_TOLERANCE = 1e-4


class ImportCheckError(GapcamError):
    """An imported model failed a self-check; nothing was written."""


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - ORT has its own exception types
        raise ImportCheckError(
            f"import self-check failed: ONNX Runtime cannot load the model "
            f"({str(exc).splitlines()[0]})"
        ) from exc


def run_self_checks(
    source: onnx.ModelProto,
    fused: onnx.ModelProto,
    input_shape: tuple[int, ...],
    bias: np.ndarray,
    *,
    source_output: str,
    source_softmax: str | None,
    source_batch: int | None,
    seed: int = 0,
) -> dict[str, float]:
    """Run all checks; return the measured errors or raise :class:`ImportCheckError`."""
    try:
        onnx.checker.check_model(fused, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker raises several types
        raise ImportCheckError(
            f"import self-check failed: onnx.checker ({str(exc).splitlines()[0]})"
        ) from exc
    src = _session(source)
    new = _session(fused)
    in_name = new.get_inputs()[0].name
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *input_shape[1:])).astype(np.float32)
    out_names = [o.name for o in new.get_outputs()]
    res2 = dict(zip(out_names, new.run(None, {in_name: x}), strict=True))
    logits = res2["logits"]
    src_in = src.get_inputs()[0].name
    if source_batch in (None, 1):
        src_out = np.concatenate(
            [src.run([source_output], {src_in: x[i : i + 1]})[0] for i in range(2)]
        )
    else:  # a static batch > 2: pad with copies of the first image, keep the first two rows
        pad = np.concatenate([x, np.repeat(x[:1], source_batch - 2, axis=0)])
        src_out = src.run([source_output], {src_in: pad})[0][:2]
    if source_softmax == "Softmax":
        compare = softmax(logits)
    elif source_softmax == "LogSoftmax":
        compare = np.log(softmax(logits))
    else:
        compare = logits
    scale = max(1.0, float(np.abs(src_out).max()))
    err_logits = float(np.abs(compare - src_out.reshape(compare.shape)).max())
    if err_logits > LOGITS_TOLERANCE * scale:
        raise ImportCheckError(
            f"import self-check failed: logits differ from the source model by {err_logits:.2e}"
        )
    scale = max(1.0, float(np.abs(logits).max()))
    err_gap = gap_identity_error(res2["cam"], logits, np.asarray(bias, np.float32))
    if err_gap > GAP_TOLERANCE * scale:
        raise ImportCheckError(
            f"import self-check failed: GAP identity error {err_gap:.2e} "
            "(mean of the CAM + bias != logits)"
        )
    singles = [
        dict(zip(out_names, new.run(None, {in_name: x[i : i + 1]}), strict=True)) for i in range(2)
    ]
    err_batch = max(
        float(np.abs(np.concatenate([s[n] for s in singles]) - res2[n]).max()) for n in out_names
    )
    if err_batch > BATCH_TOLERANCE * scale:
        raise ImportCheckError(
            f"import self-check failed: a batch of 2 differs from two batches of 1 by "
            f"{err_batch:.2e} (a Reshape with a fixed batch size inside the network?); "
            "re-export the model with a dynamic batch axis"
        )
    return {"logits_vs_source": err_logits, "gap_identity": err_gap, "batch_of_2": err_batch}
