"""Calibration sets: manifests, set hashes, verification of files, diverse frame selection."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from engine_builder import calibration_set as cs
from engine_builder.errors import EngineBuilderError
from gapcam.errors import GapcamError


def test_manifest_lists_files_with_sha256_preprocessing_and_selection(calib_set, card):
    doc = json.loads(calib_set.manifest_path.read_text())
    assert doc["schema"] == cs.MANIFEST_SCHEMA and doc["count"] == 64 == len(doc["images"])
    assert doc["preprocessing"]["mean"] == list(card.input.mean)
    assert doc["preprocessing"]["width"] == card.input.width
    assert doc["selection"]["method"] == "farthest-point"
    assert doc["selection"]["candidates"] == 96
    assert doc["set_hash"] == calib_set.hash
    first = doc["images"][0]
    assert len(first["sha256"]) == 64 and first["label"] in ("blocked", "free", "undefined")
    assert {lb for lb in calib_set.labels} == {"blocked", "free", "undefined"}


def test_set_hash_is_stable_and_names_the_bytes_and_preprocessing(calib_set, card, tmp_path):
    again = cs.load_image_set(calib_set.manifest_path, card.input)
    assert again.hash == calib_set.hash
    entries = list(calib_set.entries)
    other_pp = dict(calib_set.preprocessing, width=64)
    assert cs.set_hash(entries, other_pp) != calib_set.hash
    changed = [cs.ImageEntry(entries[0].file, "0" * 64, entries[0].label), *entries[1:]]
    assert cs.set_hash(changed, calib_set.preprocessing) != calib_set.hash
    assert cs.set_hash(list(reversed(entries)), calib_set.preprocessing) == calib_set.hash


def test_a_modified_or_missing_image_is_refused(calib_set, card, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(calib_set.manifest_path.parent, copy)
    victim = copy / cs.IMAGES_DIR / calib_set.entries[3].file
    img = cv2.imread(str(victim))
    img[0, 0] = 255 - img[0, 0]
    cv2.imwrite(str(victim), img)
    with pytest.raises(EngineBuilderError, match="differ from their sha256") as err:
        cs.load_image_set(copy, card.input)
    assert "\n" not in str(err.value)
    assert cs.load_image_set(copy, card.input, verify=False).hash == calib_set.hash
    victim.unlink()
    with pytest.raises(EngineBuilderError, match="missing"):
        cs.load_image_set(copy, card.input)


def test_plain_folders_and_errors(image_folder, card, tmp_path):
    plain = cs.load_image_set(image_folder, card.input)
    assert len(plain.entries) == 96 and plain.manifest is None
    assert plain.describe()["selection"] == {"method": "all files"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineBuilderError, match="no images"):
        cs.load_image_set(tmp_path / "empty", card.input)
    with pytest.raises(EngineBuilderError, match="not found"):
        cs.load_image_set(tmp_path / "nope", card.input)


def test_batches_use_the_runtime_preprocessing(calib_set, card):
    from gapcam.imageio import read_image
    from gapcam.preprocess import preprocess

    batch = next(calib_set.batches(card.input, 4))
    assert batch.shape == (4, 3, card.input.height, card.input.width) and batch.dtype == np.float32
    expected = preprocess([read_image(p) for p in calib_set.paths[:4]], card.input)
    np.testing.assert_array_equal(batch, expected)


def test_selection_spreads_and_drops_near_duplicates():
    rng = np.random.default_rng(0)
    base = [np.full((48, 64, 3), v, np.uint8) for v in (20, 120, 220)]  # dark, mid, bright
    frames = []
    for b in base:  # ten near-identical frames per condition, as consecutive video gives
        for _ in range(10):
            frames.append(np.clip(b + rng.normal(0, 1, b.shape), 0, 255).astype(np.uint8))
    sel = cs.select_diverse(frames, 3)
    assert len(sel.duplicates) == 27 and sel.candidates == 30
    assert sorted(i // 10 for i in sel.indices) == [0, 1, 2]  # one frame per condition
    assert cs.select_diverse(frames, 3).indices == sel.indices  # deterministic


def test_selection_accepts_paths_and_covers_extremes(image_folder):
    paths = sorted(image_folder.rglob("*.png"))[:30]
    sel = cs.select_diverse(paths, 10, dedup_threshold=0.0)
    assert len(set(sel.indices)) == 10 and not sel.duplicates
    with pytest.raises(GapcamError, match="count must be positive"):
        cs.select_diverse(paths, 0)


def test_subset_is_spread_and_stable(calib_set):
    sub = calib_set.subset(8)
    assert len(sub.entries) == 8 and sub.entries[0] == calib_set.entries[0]
    assert sub.entries[-1] == calib_set.entries[-1]
    assert calib_set.subset(None) is calib_set


def test_synthetic_sets_are_reproducible(tmp_path, card):
    a = cs.generate_synthetic_set(
        tmp_path / "a", card.input, candidates=12, count=6, seed=5, progress=False
    )
    b = cs.generate_synthetic_set(
        tmp_path / "b", card.input, candidates=12, count=6, seed=5, progress=False
    )
    assert len(a.entries) == 6 and a.hash == b.hash
    assert a.manifest["source"]["seed"] == 5 and a.manifest["selection"]["candidates"] == 12
    full = cs.generate_synthetic_set(
        tmp_path / "c", card.input, candidates=6, count=6, seed=6, progress=False
    )
    assert full.manifest["selection"]["method"] == "all" and len(full.entries) == 6
    assert (full.root / "labels.jsonl").is_file()


def test_default_sets_are_committed_as_manifests_only():
    for path in (cs.DEFAULT_CALIBRATION_SET, cs.DEFAULT_VALIDATION_SET):
        doc = cs.read_manifest(path / cs.MANIFEST)
        assert doc["source"]["command"].startswith("engine-builder calib default")
        assert doc["source"]["generator"] == "gapcam.synth.generate_dataset"
    gitignore = (cs.REPO_ROOT / "calibration" / ".gitignore").read_text()
    assert "*/images/" in gitignore and "*.cache" in gitignore
