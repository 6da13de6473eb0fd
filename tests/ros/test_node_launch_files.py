"""Launch files, their YAML/rviz configs and the package manifests, checked without `launch`.

`launch`/`ros2 launch` are not installable from PyPI, so the launch files are parsed (ast) and
everything they reference is loaded for real: each file exists, each YAML parameter is one the
node declares with the same type and a valid value, each recorded or displayed topic is one the
node publishes under the launch file's namespaces, every argument the README passes is declared,
and setup.py installs all of it. What the launch files start is decided by cam_node.launch_plan
(tests/ros/test_launch_plan.py); tests/ros/test_colcon_workspace.py builds and runs the install.
"""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cam_node import launch_plan
from cam_node.node import DIAGNOSTICS_TOPIC, OUTPUTS
from cam_node.params import BY_NAME, PARAMS
from cam_node.paths import DEFAULT_MODEL
from catkin_pkg.package import parse_package

from gapcam.labels import LANE_CHANGE_CLASSES
from gapcam.stream import decision_fields

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
PKG = REPO / "ros2_ws" / "src" / "cam_node"
CONFIG = PKG / "config"
LAUNCH_FILES = ("cam_node.launch.py", "rear_cameras.launch.py")


def _tree(name: str) -> ast.Module:
    return ast.parse((LAUNCH / name).read_text(), filename=name)


def _calls(tree: ast.AST, func: str) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == func
    ]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _cameras() -> tuple[str, ...]:
    for node in ast.walk(_tree("rear_cameras.launch.py")):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CAMERAS":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("rear_cameras.launch.py defines no CAMERAS")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _declared(name: str) -> set[str]:
    """Names of the DeclareLaunchArgument calls (an f-string per camera counted for each)."""
    names = set()
    for call in _calls(_tree(name), "DeclareLaunchArgument"):
        arg = call.args[0]
        if isinstance(arg, ast.JoinedStr):  # f"{ns}_image" in a loop over CAMERAS
            names |= {launch_plan.image_argument(ns) for ns in _cameras()}
        else:
            names.add(ast.literal_eval(arg))
    return names


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_turns_the_plan_into_launch_actions(name: str) -> None:
    tree = _tree(name)
    assert any(
        isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        for n in tree.body
    )
    # The decisions are launch_plan's: the file calls it (in an OpaqueFunction, at launch time)
    # and starts cam_node through its constants, with the node's exit checked by node_exit_error.
    text = (LAUNCH / name).read_text()
    plan_fn = {"cam_node.launch.py": "cam_node", "rear_cameras.launch.py": "rear_cameras"}[name]
    assert f"launch_plan.{plan_fn}(context.launch_configurations" in text
    assert "OpaqueFunction(function=_actions)" in text
    assert "launch_plan.node_exit_error(" in text and "on_exit=on_exit" in text
    nodes = [c for c in _calls(tree, "Node") if "launch_plan.PACKAGE" in ast.unparse(c)]
    assert len(nodes) == 1
    for kw in ("executable", "name", "namespace", "remappings", "parameters"):
        assert _kw(nodes[0], kw) is not None, kw
    assert ast.unparse(_kw(nodes[0], "executable")) == "launch_plan.EXECUTABLE"
    setup = (PKG / "setup.py").read_text()
    assert '"console_scripts": [f"cam_node = {package_name}.__main__:main"]' in setup
    assert launch_plan.EXECUTABLE == "cam_node" and launch_plan.NODE_NAME == "cam_node"


@pytest.mark.parametrize(
    "name,plan_args",
    [
        ("cam_node.launch.py", launch_plan.CAM_NODE_ARGUMENTS),
        ("rear_cameras.launch.py", launch_plan.REAR_CAMERAS_ARGUMENTS),
    ],
)
def test_launch_file_declares_exactly_what_its_plan_reads(name: str, plan_args) -> None:
    declared = _declared(name)
    extra = {launch_plan.image_argument(c) for c in _cameras()} if "rear" in name else set()
    assert declared == set(plan_args) | extra
    assert {"model_path", "backend", "input_transport"} <= declared


def test_every_launch_argument_the_readme_shows_is_declared() -> None:
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"ros2 launch cam_node (\S+\.launch\.py)([^\n`]*)", readme)
    assert {f for f, _ in shown} == set(LAUNCH_FILES)
    for name, rest in shown:
        for arg in re.findall(r"(\w+):=", rest):
            assert arg in _declared(name), f"README passes {arg}:= to {name}, not declared"


def test_setup_installs_launch_files_configs_and_model_from_inside_the_package() -> None:
    tree = ast.parse((PKG / "setup.py").read_text())
    patterns = [
        ast.literal_eval(a) for c in _calls(tree, "required") for a in c.args if not _is_fstr(a)
    ]
    # colcon --symlink-install links each data file into build/<pkg>/<path>: a path leaving the
    # package would write beside the workspace.
    assert all(not p.startswith(("/", "..")) and ".." not in Path(p).parts for p in patterns)
    for link, target in (("launch", LAUNCH), ("models", REPO / "models")):
        assert (PKG / link).is_symlink() and not os.path.isabs(os.readlink(PKG / link))
        assert (PKG / link).resolve() == target.resolve()
    cwd = os.getcwd()
    try:
        os.chdir(PKG)  # colcon and pip run setup.py from the package directory
        installed = {Path(f).resolve() for p in patterns for f in glob.glob(p)}
    finally:
        os.chdir(cwd)
    wanted = [LAUNCH / n for n in LAUNCH_FILES] + list(CONFIG.iterdir())
    model = REPO / DEFAULT_MODEL
    wanted += [model, model.with_suffix(".json")]
    for f in wanted:
        assert f.resolve() in installed, f


def _is_fstr(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr)


def test_setup_refuses_ros2_ws_copied_alone(tmp_path: Path) -> None:
    """Without the repository around it the package would install no launch files or model."""
    copy = tmp_path / "ros2_ws"
    shutil.copytree(REPO / "ros2_ws", copy, symlinks=True)  # what `cp -r ros2_ws` makes
    pkg = copy / "src" / "cam_node"
    res = subprocess.run(
        [sys.executable, "setup.py", "build", "--build-base", str(tmp_path / "build")],
        cwd=pkg,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("cam_node setup.py: no launch/*.launch.py, models/lane_change.onnx")
    assert "whole gapcam repository" in lines[0]
    assert not (tmp_path / "build").exists()
    # Metadata queries still answer: colcon asks for them before it builds.
    name = subprocess.run(
        [sys.executable, "setup.py", "--name"], cwd=pkg, capture_output=True, text=True, timeout=120
    )
    assert name.returncode == 0 and name.stdout.strip() == "cam_node"


def _check_params(params: dict, where: str) -> None:
    for name, value in _flatten(params).items():
        spec = BY_NAME.get(name)
        assert spec is not None, f"{where}: {name} is not a cam_node parameter"
        assert type(value) is type(spec.default), (
            f"{where}: {name}={value!r} is not {type(spec.default).__name__}"
        )
        if spec.range is not None:
            assert spec.range[0] <= value <= spec.range[1], f"{where}: {name}={value} out of range"
        assert spec.check(value) is None, f"{where}: {spec.check(value)}"


def test_default_yaml_declares_every_parameter_with_valid_values() -> None:
    data = yaml.safe_load((CONFIG / "cam_node.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    _check_params(params, "cam_node.yaml")
    assert set(_flatten(params)) == {p.name for p in PARAMS}
    assert {k: v for k, v in _flatten(params).items()} == {p.name: p.default for p in PARAMS}


def test_rear_cameras_yaml_matches_the_launch_namespaces() -> None:
    data = yaml.safe_load((CONFIG / "rear_cameras.yaml").read_text())
    assert set(data) == {f"/{ns}/cam_node" for ns in _cameras()}
    for key, section in data.items():
        _check_params(section["ros__parameters"], f"rear_cameras.yaml {key}")


def _published(ns: str) -> set[str]:
    return {f"/{ns}/cam_node/{o}" for o in OUTPUTS} | {f"/{ns}/image_raw/compressed"}


def test_record_topics_are_the_cameras_decisions_overlays_and_diagnostics() -> None:
    rec = yaml.safe_load((CONFIG / "record.yaml").read_text())
    assert rec["global"] == [DIAGNOSTICS_TOPIC]
    for ns in _cameras():
        topics = {t.format(ns=ns) for t in rec["per_camera"]}
        assert topics <= _published(ns), topics - _published(ns)
        assert {f"/{ns}/cam_node/decision", f"/{ns}/image_raw/compressed"} <= topics
        assert any("cam_overlay" in t for t in topics)
    # The launch file's default camera topic is the one whose /compressed is recorded.
    assert (
        "default_value=launch_plan.default_image_topic(ns)"
        in (LAUNCH / "rear_cameras.launch.py").read_text()
    )
    for ns in _cameras():
        assert f"{launch_plan.default_image_topic(ns)}/compressed" in _published(ns)


def test_rviz_shows_both_overlays() -> None:
    rviz = yaml.safe_load((CONFIG / "rear_cameras.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = {d["Topic"]["Value"] for d in displays if d["Class"] == "rviz_default_plugins/Image"}
    for ns in _cameras():
        assert f"/{ns}/cam_node/cam_overlay" in topics
        assert topics & _published(ns) == {t for t in topics if t.startswith(f"/{ns}/")}
    for d in displays:
        assert d["Topic"]["Reliability Policy"] == "Reliable"  # matches the node's publishers


@pytest.mark.parametrize(
    "pkg,build_type", [("gapcam_msgs", "ament_cmake"), ("cam_node", "ament_python")]
)
def test_package_manifests_validate(pkg: str, build_type: str) -> None:
    p = parse_package(str(REPO / "ros2_ws" / "src" / pkg))
    p.validate()  # what colcon and the cmake configure step run (e-mail format included)
    assert p.name == pkg and p.get_build_type() == build_type


def test_decision_message_matches_the_core_fields(pipeline) -> None:
    """The message takes exactly what gapcam.stream produces (replay builds it the same way)."""
    import numpy as np
    from gapcam_msgs.msg import LaneChangeDecision
    from sensor_msgs.msg import RegionOfInterest

    from gapcam.stream import StreamProcessor, roi_fields

    out = StreamProcessor(pipeline).process("c", np.full((48, 64, 3), 90, np.uint8), 1, "f")
    msg = LaneChangeDecision(**decision_fields(out))  # an unknown field name would raise
    msg.cam_box = RegionOfInterest(**roi_fields(out.result.box))
    fields = LaneChangeDecision.get_fields_and_field_types()
    assert set(fields) == set(decision_fields(out)) | {"header", "cam_box"}
    assert fields["header"] == "std_msgs/Header"
    assert fields["cam_box"] == "sensor_msgs/RegionOfInterest"
    constants = {c: getattr(LaneChangeDecision, c) for c in ("BLOCKED", "FREE", "UNDEFINED")}
    assert constants == {c.upper(): i for i, c in enumerate(LANE_CHANGE_CLASSES)}
