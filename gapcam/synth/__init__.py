"""Seeded procedural rear-side camera scenes with ground truth for the lane-change classifier.

No public data set may be shipped, so the reference model is trained on these: a mirror camera's
view of a road (own car flank at one edge, the adjacent lane towards the middle), other vehicles
with tight boxes, day/dusk/night, rain, fog, glare, lens dirt and sensor faults. The labelling
rules live in :mod:`gapcam.synth.labels`.

* :func:`render_scene` - one image and its ground truth;
* :func:`generate_dataset` - an ImageFolder data set plus ``labels.jsonl``, in parallel;
* :func:`generate_sequence` - a clip telling one story (see :data:`SEQUENCE_KINDS`).
"""

from __future__ import annotations

from gapcam.synth.dataset import generate_dataset
from gapcam.synth.scene import render_scene
from gapcam.synth.sequences import SEQUENCE_KINDS, generate_sequence

__all__ = ["SEQUENCE_KINDS", "generate_dataset", "generate_sequence", "render_scene"]
