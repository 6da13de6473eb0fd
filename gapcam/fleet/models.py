"""A model as fleet workers receive it: a path on a shared disk, or its bytes shipped once.

Local workers read the model file directly. Ray workers may be other machines, so the driver
reads the model and its card once, puts them in Ray's object store and every task receives the
same object; each worker process writes it to a private temporary folder the first time and
loads it from there (the card's sha256 check proves the bytes arrived intact). Pipelines are
cached per worker process, so a worker that runs many bags loads the model once.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gapcam.errors import GapcamError
from gapcam.model_card import card_path_for, load_card_for_onnx, sha256_file
from gapcam.pipeline import Pipeline


@dataclass(frozen=True)
class ModelSource:
    """A model file named by the user, identified by its sha256."""

    path: Path
    sha256: str

    @classmethod
    def from_path(cls, path: str | Path) -> ModelSource:
        """Checked here, once: a model whose card is missing or belongs to another file would
        otherwise fail every bag on every worker with the same message."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise GapcamError(f"{p}: model file not found")
        if p.suffix == ".onnx":
            load_card_for_onnx(p)
        return cls(p.resolve(), sha256_file(p))


@dataclass(frozen=True)
class ModelPayload:
    """The bytes of a model and its card, for workers that cannot read the driver's disk."""

    file_name: str
    sha256: str
    model: bytes
    card: bytes | None

    @classmethod
    def from_source(cls, src: ModelSource) -> ModelPayload:
        card = card_path_for(src.path)
        return cls(
            src.path.name,
            src.sha256,
            src.path.read_bytes(),
            card.read_bytes() if card.is_file() else None,
        )


_materialized: dict[str, Path] = {}
_pipelines: dict[tuple, Pipeline] = {}


def materialize(model: ModelSource | ModelPayload) -> Path:
    """A local path of ``model`` in this process (written once per process for a payload)."""
    if isinstance(model, ModelSource):
        return model.path
    path = _materialized.get(model.sha256)
    if path is None or not path.is_file():
        folder = Path(tempfile.mkdtemp(prefix=f"gapcam-model-{model.sha256[:12]}-"))
        path = folder / model.file_name
        path.write_bytes(model.model)
        if model.card is not None:
            card_path_for(path).write_bytes(model.card)
        _materialized[model.sha256] = path
    return path


def pipeline_for(
    model: ModelSource | ModelPayload, backend: str, cam_class: str, cam_threshold: float | None
) -> Pipeline:
    """The process's pipeline for ``model`` (built on first use); ``cam_threshold`` ``None`` is
    the model card's."""
    key = (model.sha256, backend, cam_class, cam_threshold)
    pipe = _pipelines.get(key)
    if pipe is None:
        pipe = Pipeline.from_model(
            materialize(model), backend, cam_class=cam_class, cam_threshold=cam_threshold
        )
        _pipelines[key] = pipe
    return pipe


def default_threads(workers: int) -> str:
    """ONNX Runtime threads per worker so that ``workers`` workers share the CPUs, not fight."""
    return str(max(1, (os.cpu_count() or 1) // max(1, workers)))
