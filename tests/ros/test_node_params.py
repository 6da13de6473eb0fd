"""Parameters over the node's real parameter services: YAML defaults, descriptors, run-time changes."""

from __future__ import annotations

import pytest
import yaml
from cam_node.params import PARAMS
from rcl_interfaces.msg import ParameterType
from ros_harness import DEFAULT_YAML, Camera, scene

from gapcam.decision import SmoothingConfig
from gapcam.node_settings import CARD_CAM_THRESHOLD, DEFAULT_OVERLAY
from gapcam.pipeline import Pipeline

NS = "/param_cam"
TOPIC = f"{NS}/image_raw"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.fixture(scope="module")
def own_pipeline(shipped_model) -> Pipeline:
    """A reference pipeline of its own: this module changes cam_threshold."""
    return Pipeline.from_model(shipped_model)


@pytest.fixture(scope="module")
def cam(start_node, ros, own_pipeline) -> Camera:
    node = start_node(NS, TOPIC, max_age_s=None)  # only the YAML: nothing overridden
    camera = Camera(ros=ros, node=node, topic=TOPIC, pipeline=own_pipeline)
    camera.wait_ready()
    return camera


def test_diagnostics_warn_until_the_first_frame(cam: Camera, diagnostics) -> None:
    v = diagnostics.latest(cam.node.name)
    assert v["_level"] == 1 and "no camera frames received yet" in v["_message"]
    assert v["frames_in"] == "0" and v["input_topic"] == TOPIC


def test_running_node_has_exactly_the_yaml_defaults(cam: Camera, ros) -> None:
    yaml_params = _flatten(yaml.safe_load(DEFAULT_YAML.read_text())["/**"]["ros__parameters"])
    declared = set(ros.list_parameters(cam.node.name)) - {
        "use_sim_time",
        "start_type_description_service",
    }
    assert declared == set(yaml_params) == {p.name for p in PARAMS}
    got = ros.get_parameters(cam.node.name, sorted(yaml_params))
    for name, value in yaml_params.items():
        assert got[name] == value and type(got[name]) is type(value), (name, got[name], value)


def test_every_parameter_is_described_with_its_range(cam: Camera, ros) -> None:
    desc = ros.describe_parameters(cam.node.name, [p.name for p in PARAMS])
    for spec in PARAMS:
        d = desc[spec.name]
        assert len(d.description) > 20, spec.name
        assert d.read_only == spec.read_only, spec.name
        if d.type == ParameterType.PARAMETER_DOUBLE:
            (r,) = d.floating_point_range
            assert (r.from_value, r.to_value) == spec.range, spec.name
        elif d.type == ParameterType.PARAMETER_INTEGER:
            (r,) = d.integer_range
            assert (r.from_value, r.to_value) == spec.range, spec.name
        else:
            assert d.type == ParameterType.PARAMETER_STRING, spec.name


def test_the_readme_table_lists_exactly_the_parameters() -> None:
    """The README's parameter table is what operators read: no parameter missing, none stale."""
    readme = (DEFAULT_YAML.parents[4] / "README.md").read_text()
    table = readme[readme.index("| parameter | default |") :]
    table = table[: table.index("\n\n")]
    rows = {line.split("`")[1] for line in table.splitlines()[2:]}
    assert rows == {p.name for p in PARAMS}


def test_a_parameter_file_of_an_older_release_still_starts(start_node, make_camera) -> None:
    """``executor`` (removed) in the overrides is ignored, not fatal: rclpy drops undeclared ones."""
    node = start_node("/old_params", "/old_params/image_raw", executor="events")
    camera = make_camera(node, "/old_params/image_raw")
    camera.wait_ready()
    camera.send_and_wait(scene(5))
    assert camera.verify() == 1


def test_invalid_run_time_changes_are_refused(cam: Camera, ros) -> None:
    for name, value in [
        ("overlay.alpha", 1.5),  # out of range
        ("smoothing.hold_frames", 0),  # out of range
        ("overlay.alpha", "opaque"),  # wrong type
        ("model_path", "/tmp/other.onnx"),  # read-only: needs a restart
        ("input_transport", "compressed"),  # read-only
    ]:
        (res,) = ros.set_parameters(cam.node.name, {name: value})
        assert not res.successful, (name, value)
    got = ros.get_parameters(
        cam.node.name, ["overlay.alpha", "smoothing.hold_frames", "model_path"]
    )
    assert got == {
        "overlay.alpha": DEFAULT_OVERLAY.alpha,
        "smoothing.hold_frames": SmoothingConfig().hold_frames,
        "model_path": "",
    }


def test_run_time_changes_take_effect(cam: Camera, ros, own_pipeline: Pipeline) -> None:
    for seed in range(3):
        cam.send_and_wait(scene(seed))
    assert cam.verify() == 3

    results = ros.set_parameters(
        cam.node.name,
        {
            "overlay.alpha": 0.7,
            "cam_threshold": 0.6,
            "smoothing.ema_alpha": 1.0,
            "smoothing.hold_frames": 1,
        },
    )
    assert all(r.successful for r in results), [r.reason for r in results]
    own_pipeline.set_cam_threshold(0.6)
    cam.set_reference_smoothing(SmoothingConfig(ema_alpha=1.0, hold_frames=1))
    assert ros.get_parameters(cam.node.name, ["overlay.alpha"]) == {"overlay.alpha": 0.7}

    for seed in range(10, 14):
        d = cam.send_and_wait(scene(seed))
        # No smoothing any more: the smoothed probabilities are this frame's.
        assert list(d.smoothed_probabilities) == pytest.approx(list(d.probabilities), abs=1e-6)
    assert cam.verify() == 4  # boxes at the new CAM threshold, decisions with the new smoothing

    # back to the model card's threshold (a negative value), as at start
    (res,) = ros.set_parameters(cam.node.name, {"cam_threshold": CARD_CAM_THRESHOLD})
    assert res.successful, res.reason
    own_pipeline.set_cam_threshold(None)
    assert own_pipeline.cam_threshold == own_pipeline.card.cam_threshold != 0.6
    cam.send_and_wait(scene(20))
    assert cam.verify() == 1


def test_start_log_names_the_cam_variant_and_the_cards_threshold(cam: Camera) -> None:
    card = cam.pipeline.card
    assert f"CAM predicted at {card.cam_threshold:g} of its maximum" in cam.node.log()


def test_eigen_cam_on_a_model_without_features_refuses_to_start(
    start_node, model_without_features
) -> None:
    """Checked once at start (one line, exit 2), not on every frame after a silent start."""
    node = start_node(
        "/eigen_cam",
        "/eigen_cam/image_raw",
        model_path=str(model_without_features),
        cam_class="eigen",
    )
    assert node.proc is not None
    rc = node.proc.wait(timeout=60)
    log = node.log()
    assert rc == 2, log
    assert "cam class 'eigen' needs a model exported with the 'features' output" in log
    assert "Traceback" not in log


def test_node_exits_cleanly_on_sigint(cam: Camera) -> None:
    assert cam.node.stop() == 0
