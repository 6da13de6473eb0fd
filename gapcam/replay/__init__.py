"""Logging and replay with rosbag2: offline replay through the node's code path, output bags,
sample bags and a visual report.

Modules: :mod:`~gapcam.replay.bag_io` (rosbags reader/writer set up for ``ros2 bag``),
:mod:`~gapcam.replay.replay` (the replay loop), :mod:`~gapcam.replay.report` and
:mod:`~gapcam.replay.plots` (Markdown + PNG report), :mod:`~gapcam.replay.make_bag` (synthetic
sample bags), :mod:`~gapcam.replay.cli` (``gapcam replay`` / ``gapcam make-bag``) and
:mod:`~gapcam.replay.demo_job` (the replay part of ``make demo``). ROS-free: ``rosbags`` does the
(de)serialisation, so replay runs where rclpy does not.
"""
