"""generate_dataset: ImageFolder layout, labels.jsonl, balance and worker-count independence."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import pytest

from gapcam.errors import GapcamError
from gapcam.synth import generate_dataset

N = 9


def _read(root):
    recs = [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    return recs, files


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory):
    base = tmp_path_factory.mktemp("ds")
    a = generate_dataset(base / "w1", N, seed=5, size=(96, 96), workers=1, progress=False)
    b = generate_dataset(base / "w2", N, seed=5, size=(96, 96), workers=2, progress=False)
    return a, b


def test_layout_and_labels_file_agree(one_and_two):
    root, _ = one_and_two
    recs, files = _read(root)
    assert len(recs) == N and sorted(r["file"] for r in recs) == files
    for i, r in enumerate(recs):
        assert r["index"] == i
        assert r["file"] == f"{r['label']}/{i:06d}.jpg"
        assert {"label", "side", "vehicles", "blocking_box", "conditions", "seed"} <= set(r)
        img = cv2.imread(str(root / r["file"]))
        assert img is not None and img.shape == (96, 96, 3)
        assert (r["blocking_box"] is not None) == (r["label"] == "blocked")
    assert Counter(r["label"] for r in recs) == {"blocked": 3, "free": 3, "undefined": 3}
    assert len({r["seed"] for r in recs}) == N


def test_worker_count_does_not_change_the_output(one_and_two):
    a, b = one_and_two
    ra, fa = _read(a)
    rb, fb = _read(b)
    assert ra == rb and fa == fb
    for f in fa:
        assert (a / f).read_bytes() == (b / f).read_bytes()


def test_seed_changes_the_output(one_and_two, tmp_path):
    a, _ = one_and_two
    c = generate_dataset(tmp_path / "s6", 3, seed=6, size=(96, 96), workers=1, progress=False)
    ra, _ = _read(a)
    rc, _ = _read(c)
    assert [r["seed"] for r in ra[:3]] != [r["seed"] for r in rc]


def test_refuses_a_folder_with_a_data_set(one_and_two):
    a, _ = one_and_two
    with pytest.raises(GapcamError):
        generate_dataset(a, 2, seed=1, size=(96, 96), workers=1, progress=False)


def test_progress_goes_to_stderr(tmp_path, capsys):
    generate_dataset(tmp_path / "p", 2, seed=1, size=(64, 64), workers=1, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "2/2" in err


def test_validation_only_renders_exactly_the_images_training_holds_out(tmp_path):
    """`gapcam data --validation-only` gives the same files, byte for byte, as the validation
    split that training takes from the full set (what the CAM threshold is chosen on)."""
    from gapcam.cli import main
    from gapcam.training.validation_split import DEFAULT_VAL_FRACTION, validation_samples

    full = generate_dataset(tmp_path / "full", 30, seed=4, size=(64, 64), workers=1)
    args = ["data", "--out", str(tmp_path / "val"), "--n", "30", "--seed", "4", "--size", "64"]
    assert main([*args, "--validation-only", "--workers", "1"]) == 0
    held_out = validation_samples(full, 4, DEFAULT_VAL_FRACTION)
    got = sorted(p.relative_to(tmp_path / "val") for p in (tmp_path / "val").rglob("*.jpg"))
    assert got == sorted(s.path.relative_to(full) for s in held_out) and len(got) == 3
    for rel in got:
        assert (tmp_path / "val" / rel).read_bytes() == (full / rel).read_bytes()
    with pytest.raises(GapcamError, match="indices must lie in 0..29"):
        generate_dataset(tmp_path / "bad", 30, seed=4, indices=[30])
