"""Which bags a fleet covers and what their output folders are called."""

from __future__ import annotations

from pathlib import Path

import pytest

from gapcam.errors import GapcamError
from gapcam.fleet.inputs import check_outside, discover, name_bags


def _bag(path: Path, storage: str = "x.mcap", metadata: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / storage).write_bytes(b"")
    if metadata:
        (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    return path


def test_bags_folders_files_and_lists(tmp_path):
    a = _bag(tmp_path / "drives" / "a")
    b = _bag(tmp_path / "drives" / "b", "b.db3", metadata=False)  # recorder died: no metadata
    (tmp_path / "drives" / "a_report").mkdir()  # replay reports are never inputs
    (tmp_path / "drives" / "notes.txt").write_text("not a bag")
    loose = tmp_path / "loose.mcap"
    loose.write_bytes(b"")
    c = _bag(tmp_path / "elsewhere" / "c")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# bags of Monday\n\n{c}\nelsewhere/c\n../{tmp_path.name}/drives/a\n")
    got = discover([tmp_path / "drives", loose, listing])
    assert got == [a, b, loose, c]  # duplicates (c twice, a again via the list) dropped
    assert discover([a]) == [a]  # a bag directory is one bag, not a folder of bags


def test_missing_and_empty_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(GapcamError, match="no such bag"):
        discover([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(GapcamError, match="no rosbag2 bags inside"):
        discover([tmp_path / "empty"])
    listing = tmp_path / "list.txt"
    listing.write_text("missing_bag\n")
    with pytest.raises(GapcamError, match="lists .*missing_bag, which does not exist"):
        discover([listing])
    listing.write_text("# nothing\n")
    with pytest.raises(GapcamError, match="names no bags"):
        discover([listing])


def test_names_are_unique_and_outputs_never_overwrite_inputs(tmp_path):
    x = _bag(tmp_path / "mon" / "drive")
    y = _bag(tmp_path / "tue" / "drive")
    z = tmp_path / "odd name!.mcap"
    z.write_bytes(b"")
    names = [b.name for b in name_bags([x, y, z])]
    assert names == ["mon__drive", "tue__drive", "odd_name"]
    bags = name_bags([x])
    check_outside(bags, tmp_path / "out")  # fine
    with pytest.raises(GapcamError, match="would write over the input bag"):
        check_outside(bags, tmp_path / "mon")  # OUT/drive would be the input itself
    with pytest.raises(GapcamError, match="would write over the input bag"):
        check_outside(bags, x)


def test_a_model_without_its_card_is_refused_before_any_bag_runs(tmp_path, shipped_model, capsys):
    from gapcam.cli import main

    model = tmp_path / "m.onnx"
    model.write_bytes(shipped_model.read_bytes())  # no card beside it
    bag = _bag(tmp_path / "bag")
    assert main(["fleet", str(bag), "--out", str(tmp_path / "o"), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "model card not found" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
