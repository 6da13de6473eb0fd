"""README's operator section: the commands it gives an operator are the ones the tests check or run.

Commands marked ``# [device]`` need the vehicle computer: their files, compose services, profiles,
entrypoint modes and settings are checked to exist. Every other command must be listed in
``COVERED`` below, and the desk ones are run here exactly as written (from a scratch directory,
with ``.venv/bin/`` being this test's virtual environment).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SECTION = "## Running gapcam on the vehicle"
COMPOSE = REPO / "docker" / "compose.yaml"
DEVICE = "# [device]"

#: unmarked command -> what runs it
COVERED = {
    "make setup": "CI: .ci/run -> make test, which depends on the setup target",
    ".venv/bin/gapcam make-bag --out out/sample_bag --frames 20": "test_desk_commands_run_as_written",
    ".venv/bin/gapcam replay out/sample_bag --out out/sample_replay": (
        "test_desk_commands_run_as_written"
    ),
    "cat out/sample_replay_report/report.md": "test_desk_commands_run_as_written",
}
DESK = [c for c in COVERED if c != "make setup"]


def operator_section() -> str:
    """From the operator heading to the next level-2 heading (or the end of the README)."""
    text = README.read_text()
    assert SECTION in text, f"README.md has no '{SECTION}' section"
    rest = text.split(SECTION, 1)[1]
    return rest.split("\n## ", 1)[0]


def doc_commands() -> list[str]:
    """Command lines of the ```bash blocks."""
    commands, in_block = [], False
    for line in operator_section().splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```bash" if not in_block else False
            continue
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


def test_every_command_is_device_only_or_covered_by_a_test():
    commands = doc_commands()
    assert len(commands) > 10
    unmarked = [c for c in commands if DEVICE not in c]
    assert sorted(unmarked) == sorted(COVERED), (
        "unmarked commands in the README operator section must be run by tests/CI (list them in COVERED)"
    )


def test_device_commands_refer_to_what_exists():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    compose_text = COMPOSE.read_text()
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    for cmd in (c.split(DEVICE)[0].strip() for c in doc_commands() if DEVICE in c):
        for path in re.findall(r"compose -f (\S+)", cmd):
            assert (REPO / path).is_file(), f"{cmd}: {path} missing"
        m = re.search(r"docker compose -f \S+ (.*)$", cmd)
        if not m:
            continue
        words = m.group(1).split()
        profiles = [words[i + 1] for i, w in enumerate(words) if w == "--profile"]
        known_profiles = {p for svc in services.values() for p in svc.get("profiles", [])}
        assert set(profiles) <= known_profiles, f"{cmd}: unknown profile"
        named = [w for w in words if w in services]  # a named service starts with its profile
        assert named or words[0] in ("up", "down", "build", "logs"), f"{cmd}: which service?"
        if "run" in words or "exec" in words:
            mode = words[words.index(named[0]) + 1]
            assert mode in ("ensure", "launch", "record", "gapcam-entrypoint"), cmd
        for var in re.findall(r"\b([A-Z_]+)=", cmd.split("docker")[0]):
            assert f"${{{var}" in compose_text or var in entrypoint, f"{cmd}: {var} unused"


def test_launch_arguments_and_topics_in_the_doc_exist():
    text = operator_section()
    launch = (REPO / "launch" / "rear_cameras.launch.py").read_text()
    assert "{ns}_image" in launch and '"rear_left"' in launch and '"rear_right"' in launch
    for arg in re.findall(r"(\w+):=", text):
        name = arg
        if name in ("rear_left_image", "rear_right_image"):
            continue
        assert re.search(rf"""["']{name}["']""", launch), f"launch argument {name} unknown"
    record = (REPO / "ros2_ws/src/cam_node/config/record.yaml").read_text()
    for topic in ("/{ns}/cam_node/decision", "/{ns}/cam_node/cam_overlay/compressed"):
        assert topic in record
    assert "/rear_left/cam_node/decision" in text and "/rear_right/cam_node/decision" in text
    assert "/rear_left/cam_node/cam_overlay" in text
    assert (REPO / "ros2_ws/src/cam_node/config/rear_cameras.rviz").is_file()
    assert "rear_cameras.rviz" in text


def test_desk_commands_run_as_written(tmp_path):
    try:
        from gapcam.synth import generate_sequence  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"gapcam.synth not complete yet ({exc})")
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "gapcam").exists(), "the gapcam console script is not installed"
    (tmp_path / ".venv").symlink_to(venv_bin.parent)
    for cmd in DESK:
        res = subprocess.run(
            ["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert res.returncode == 0, f"{cmd}\n{res.stdout}\n{res.stderr}"
    report = tmp_path / "out" / "sample_replay_report" / "report.md"
    assert report.read_text() == res.stdout
    for heading in ("status", "## Cameras", "## Counts per class", "## Decision timelines"):
        assert heading in report.read_text(), heading
    assert (tmp_path / "out" / "sample_replay" / "metadata.yaml").is_file()
