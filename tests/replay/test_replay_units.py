"""Camera selection, node parameter files, reordering, change collection and charts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gapcam.decision import SmoothingConfig
from gapcam.errors import GapcamError
from gapcam.replay.bag_io import COMPRESSED_IMAGE, IMAGE, TopicInfo
from gapcam.replay.collect import ChangeCollector, Reorder
from gapcam.replay.params import load_node_params, read_ros_parameters
from gapcam.replay.plots import histogram_image, timeline_image
from gapcam.replay.replay import ReplayOptions
from gapcam.replay.topics import Camera, select_cameras

REPO = Path(__file__).resolve().parents[2]
NODE_CONFIG = REPO / "ros2_ws" / "src" / "cam_node" / "config"

TOPICS = [
    TopicInfo("/rear_left/image_raw", IMAGE, 10),
    TopicInfo("/rear_left/image_raw/compressed", COMPRESSED_IMAGE, 10),
    TopicInfo("/rear_right/image_raw/compressed", COMPRESSED_IMAGE, 10),
    TopicInfo("/rear_left/cam_node/cam_overlay/compressed", COMPRESSED_IMAGE, 10),
    TopicInfo("/gapcam/ground_truth", "std_msgs/msg/String", 20),
]


def test_one_transport_per_camera_and_no_replay_outputs():
    cams = select_cameras(TOPICS)
    assert [c.topic for c in cams] == [
        "/rear_left/image_raw",
        "/rear_right/image_raw/compressed",
    ]
    cams = select_cameras(TOPICS, prefer="compressed")
    assert [c.topic for c in cams] == [
        "/rear_left/image_raw/compressed",
        "/rear_right/image_raw/compressed",
    ]


def test_output_topics_follow_the_node():
    cam = Camera("/rear_left/image_raw/compressed", COMPRESSED_IMAGE, 1)
    assert cam.base == "/rear_left/image_raw"
    assert cam.decision_topic == "/rear_left/cam_node/decision"
    assert cam.overlay_topic == "/rear_left/cam_node/cam_overlay/compressed"
    assert Camera("/front_cam", IMAGE, 1).decision_topic == "/front_cam/cam_node/decision"


def test_requested_topics_are_checked():
    with pytest.raises(GapcamError, match="two transports of the same camera"):
        select_cameras(TOPICS, ["/rear_left/image_raw", "/rear_left/image_raw/compressed"])
    with pytest.raises(GapcamError, match="not in the bag: /x; image topics: /rear_left/image_raw"):
        select_cameras(TOPICS, ["/x"])
    cams = select_cameras(TOPICS, ["/rear_left/image_raw/compressed"])
    assert [c.msgtype for c in cams] == [COMPRESSED_IMAGE]
    with pytest.raises(GapcamError, match="hold no messages"):
        select_cameras([TopicInfo("/a/image_raw", IMAGE, 0)])


def test_node_parameter_files_drive_replay(tmp_path):
    """The node's own config file gives the replay defaults: if someone changes a default in one
    place only, this fails."""
    opts = load_node_params(NODE_CONFIG / "cam_node.yaml", ReplayOptions())
    assert opts == ReplayOptions()
    custom = tmp_path / "p.yaml"
    custom.write_text(
        "/**:\n  ros__parameters:\n    cam_threshold: 0.3\n    smoothing:\n      hold_frames: 4\n"
        "/rear_left/cam_node:\n  ros__parameters:\n    overlay:\n      scale: 0.25\n"
    )
    opts = load_node_params([NODE_CONFIG / "cam_node.yaml", custom], ReplayOptions())
    assert opts.settings.smoothing == SmoothingConfig(hold_frames=4)
    assert (opts.settings.cam_threshold, opts.settings.overlay.scale) == (0.3, 0.25)
    assert read_ros_parameters(custom)["smoothing.hold_frames"] == 4
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("/**:\n  ros__parameters:\n    smoothing:\n      ema_alpha: 0.0\n")
    with pytest.raises(GapcamError, match="wrong.yaml: parameter smoothing.ema_alpha=0.0"):
        load_node_params(wrong, ReplayOptions())
    bad = tmp_path / "bad.yaml"
    bad.write_text("x: 1\n")
    with pytest.raises(GapcamError, match="no 'ros__parameters'"):
        load_node_params(bad, ReplayOptions())
    bad.write_text("/**:\n  ros__parameters:\n    smoothing:\n      hold_frames: 0\n")
    with pytest.raises(GapcamError, match="hold_frames"):
        load_node_params(bad, ReplayOptions())


def test_reorder_releases_in_stamp_order_within_the_window():
    r = Reorder(window=2)
    released = []
    for stamp in (1, 3, 2, 5, 4, 6):
        released += [s for s, _ in r.push(stamp, None)]
    released += [s for s, _ in r.drain()]
    assert released == [1, 2, 3, 4, 5, 6] and r.late == 0
    r = Reorder(window=0)
    released = [s for stamp in (1, 3, 2) for s, _ in r.push(stamp, None)]
    assert released == [1, 3, 2] and r.late == 1


def test_change_collector_keeps_context_around_changes(pipeline, scene_image):
    from gapcam.stream import StreamProcessor

    proc = StreamProcessor(pipeline)
    col = ChangeCollector(proc, context=2, max_changes=1, tile_width=64)
    out = proc.process("c", scene_image, 0, "f")
    labels = ["free", "free", "free", "blocked", "blocked", "blocked", "free", "free"]
    for i, label in enumerate(labels):
        o = type(out)(**{**out.__dict__, "stamp_ns": i})
        o.decision = type(out.decision)(label, 0.9, (0.1, 0.9, 0.0), False)
        col.add("c", scene_image, o, 0)
    assert col.changes == {"c": 2}  # two changes counted ...
    (g,) = col.groups  # ... one shown (max_changes=1)
    assert (g.before, g.after, g.stamp_ns) == ("free", "blocked", 3)
    assert len(g.tiles) == 5 and g.tiles[0].shape[1] == 64  # 2 before, the change, 2 after
    assert g.tiles[2][0, 0].tolist() == [255, 255, 255]  # the change is framed


def test_charts_draw_what_they_are_given():
    n = 50
    t = np.linspace(0, 5, n)
    p = np.stack([np.linspace(0, 1, n), np.linspace(1, 0, n), np.zeros(n)], axis=1)
    dec = (t > 2.5).astype(int)
    img = timeline_image(t, p, p, dec, dec, ("blocked", "free", "undefined"), truth=dec)
    assert img.shape[1] == 1200 and img.dtype == np.uint8
    # the decision band changes colour half way: blocked (red) -> free (green)
    band_y = 40 + 9
    left, right = img[band_y, 200], img[band_y, 1100]
    assert left.tolist() == [40, 40, 230] and right.tolist() == [60, 200, 60]
    h = histogram_image(np.r_[np.ones(90), np.full(10, 9.0)], "t", "ms", bins=8)
    assert h.shape == (320, 800, 3)
    assert histogram_image([], "t", "ms").shape == (320, 800, 3)
