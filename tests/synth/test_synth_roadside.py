"""Roadside views: the ``undefined`` scenes where the camera faces a kerb, wall, fence or shop."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gapcam.synth import render_scene
from gapcam.synth.dataset import class_plan
from gapcam.synth.roadside import CAUSE, ROADSIDE_SHARE, STRUCTURES, is_roadside, render_roadside


def test_a_share_of_undefined_scenes_are_roadside_views():
    metas = [render_scene(s, size=(64, 48), label="undefined")[1] for s in range(80)]
    roadside = [m for m in metas if m["conditions"]["undefined_causes"] == [CAUSE]]
    assert 0.5 * ROADSIDE_SHARE * 80 <= len(roadside) <= 1.5 * ROADSIDE_SHARE * 80
    assert len(roadside) < len(metas)  # the visibility failures are still there
    for m in roadside:
        assert m["label"] == "undefined"
        assert m["vehicles"] == [] and m["blocking_box"] is None
        assert m["conditions"]["scenery"] in STRUCTURES


def test_only_undefined_scenes_become_roadside_views():
    seed = next(s for s in range(100) if is_roadside(s))
    for label in ("blocked", "free"):
        meta = render_scene(seed, size=(64, 48), label=label)[1]
        assert meta["label"] == label
        assert CAUSE not in meta["conditions"]["undefined_causes"]
    assert render_scene(seed, size=(64, 48), label="undefined")[1]["conditions"][
        "undefined_causes"
    ] == [CAUSE]


def test_roadside_views_are_deterministic_sized_and_mirrored_for_the_right_camera():
    a, ma = render_roadside(3, (160, 96), "left")
    b, _ = render_roadside(3, (160, 96), "left")
    right, mr = render_roadside(3, (160, 96), "right")
    assert a.shape == (96, 160, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.array_equal(right, a[:, ::-1])
    assert (ma["side"], mr["side"], ma["size"]) == ("left", "right", [160, 96])


@pytest.mark.parametrize("seed", range(6))
def test_roadside_views_are_pictures_not_flat_fields(seed):
    img, _ = render_roadside(seed, (224, 224), "left")
    assert img.std() > 8  # structure, ground and sky differ
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 500


def test_every_structure_kind_is_drawn():
    kinds = Counter(
        render_roadside(s, (48, 32), "left")[1]["conditions"]["scenery"] for s in range(150)
    )
    assert set(kinds) == set(STRUCTURES)


def test_class_plan_of_a_data_set_is_unchanged_by_roadside_views(tmp_path):
    from gapcam.synth import generate_dataset

    out = generate_dataset(tmp_path / "d", 12, seed=4, size=(48, 48), workers=1, progress=False)
    import json

    labels = [json.loads(x)["label"] for x in (out / "labels.jsonl").read_text().splitlines()]
    assert labels == class_plan(12, 4)
