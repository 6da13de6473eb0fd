"""The backend interface: ``infer(batch) -> InferenceOutput``.

ONNX Runtime (the embedded default on any machine) and TensorRT (Jetson) implement it. A backend
owns its runtime session and the model card it was loaded with; callers pass already
preprocessed ``float32`` batches (see :mod:`gapcam.preprocess`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from gapcam.model_card import ModelCard


@dataclass
class InferenceOutput:
    """Raw network outputs for a batch."""

    logits: np.ndarray  #: (N, C) float32
    cam: np.ndarray  #: (N, C, h, w) float32, class activation maps at feature resolution
    features: np.ndarray | None = None  #: (N, K, h, w) float32 when the graph exports them


class Backend(ABC):
    """A loaded model that turns a preprocessed batch into logits and CAMs."""

    #: "onnxruntime" or "tensorrt"
    name: str = "abstract"

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    @property
    def precision(self) -> str:
        return self.card.precision

    @property
    def model_id(self) -> str:
        """ONNX sha prefix + precision + backend, as published in every decision."""
        return f"{self.card.model_id}/{self.name}"

    @property
    def has_features(self) -> bool:
        """Whether ``infer`` returns the ``features`` output (Eigen-CAM needs it)."""
        return self.card.output.features is not None

    @abstractmethod
    def infer(self, batch: np.ndarray) -> InferenceOutput:
        """Run the network on ``batch`` (``float32``, ``N x 3 x H x W``)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release runtime resources (GPU memory, sessions)."""

    def describe(self) -> str:
        """One line for logs: which runtime, model and precision are in use."""
        return f"{self.name} backend, model {self.card.model_id}"
