"""Inference backends behind one small interface (see :mod:`gapcam.backends.base`).

Nothing above this package knows which runtime executes the network.
"""

from gapcam.backends.base import Backend, InferenceOutput
from gapcam.backends.factory import BACKEND_CHOICES, load_backend

__all__ = ["BACKEND_CHOICES", "Backend", "InferenceOutput", "load_backend"]
