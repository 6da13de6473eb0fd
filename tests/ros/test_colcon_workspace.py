"""The ROS way in: this repository in a colcon workspace's ``src/``, built with ``colcon build``.

Once per test session the working tree (tracked and untracked, not ignored files, symbolic links
kept) is copied into ``<tmp>/plain/ws/src/gapcam`` and ``<tmp>/symlink/ws/src/gapcam`` and both
workspaces are built against this venv's ROS 2 wheels, one with ``--symlink-install``. The tests
check the install trees (launch files, configs, model, ament index entry, ``lib/cam_node/cam_node``),
that nothing was written beside the workspaces, and run two nodes from the plain install tree
with the rear-camera parameters over real DDS: a frame in, a decision out (checked against the
core), then SIGINT twice to their process group, ~30 ms apart, as a terminal's Ctrl-C plus the one
``ros2 launch`` forwards: both exit 0 without a traceback.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cam_node import launch_plan
from ros_harness import REPO, NodeProcess, scene, wait_for

COLCON = Path(sys.executable).parent / "colcon"
LAUNCH_FILES = ("cam_node.launch.py", "rear_cameras.launch.py")
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _source_files() -> list[str]:
    res = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return sorted({p for p in res.stdout.decode().split("\0") if p})


def _copy_working_tree(dest: Path) -> None:
    """What `git clone` of this working tree would hold, uncommitted edits included."""
    for rel in _source_files():
        src, dst = REPO / rel, dest / rel
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _build_env() -> dict[str, str]:
    """The venv's ROS 2 wheels as the underlay (what sourcing /opt/ros/<distro> does elsewhere)."""
    env = dict(os.environ)
    prefix = sys.prefix
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        env[var] = os.pathsep.join(filter(None, [prefix, env.get(var, "")]))
    return env


@dataclass
class Workspace:
    root: Path  #: <tmp>/<mode>/ws
    seconds: float  #: wall time of `colcon build`

    @property
    def install(self) -> Path:
        return self.root / "install"

    @property
    def share(self) -> Path:
        return self.install / "cam_node" / "share" / "cam_node"

    def sourced_env(self) -> dict[str, str]:
        """The environment after `source install/setup.bash` (what a user's shell has)."""
        res = subprocess.run(
            ["bash", "-c", 'source "$1/setup.bash" >/dev/null && env -0', "_", str(self.install)],
            env=_build_env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        pairs = (item.split("=", 1) for item in res.stdout.decode().split("\0") if "=" in item)
        return dict(pairs)


def _colcon_build(outer: Path, symlink: bool) -> subprocess.Popen:
    ws = outer / "ws"
    _copy_working_tree(ws / "src" / "gapcam")
    cmd = [str(COLCON), "build", "--event-handlers", "console_cohesion+"]
    if symlink:
        cmd.append("--symlink-install")
    cmd += ["--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}"]
    log = open(outer / "colcon.log", "wb")  # noqa: SIM115 - closed by the fixture
    return subprocess.Popen(cmd, cwd=ws, env=_build_env(), stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def workspaces(tmp_path_factory) -> dict[str, Workspace]:
    """Both workspaces, built concurrently once per session (about a minute here)."""
    if not COLCON.exists():
        pytest.skip("colcon is not installed in this venv: `make setup` (requirements/dev.txt)")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the workspace copy is made from `git ls-files`")
    base = tmp_path_factory.mktemp("colcon")
    start = time.monotonic()
    procs = {}
    for mode in ("plain", "symlink"):
        (base / mode).mkdir()
        procs[mode] = (_colcon_build(base / mode, symlink=mode == "symlink"), time.monotonic())
    out = {}
    for mode, (proc, t0) in procs.items():
        rc = proc.wait(timeout=1200)
        log = (base / mode / "colcon.log").read_text(errors="replace")
        assert rc == 0, f"colcon build ({mode}) failed:\n{log[-4000:]}"
        out[mode] = Workspace(base / mode / "ws", time.monotonic() - t0)
    print(f"\ncolcon build, both workspaces concurrently: {time.monotonic() - start:.0f} s")
    return out


@pytest.mark.parametrize("mode", ["plain", "symlink"])
def test_install_tree_has_everything_ros2_launch_needs(
    workspaces: dict[str, Workspace], mode: str
) -> None:
    ws = workspaces[mode]
    share = ws.share
    index = ws.install / "cam_node" / "share" / "ament_index" / "resource_index" / "packages"
    assert (index / "cam_node").is_file()
    exe = ws.install / "cam_node" / "lib" / "cam_node" / "cam_node"
    assert exe.is_file() and os.access(exe, os.X_OK)
    for name in LAUNCH_FILES:
        assert (share / "launch" / name).read_bytes() == (REPO / "launch" / name).read_bytes()
    config = REPO / "ros2_ws" / "src" / "cam_node" / "config"
    for f in config.iterdir():
        assert (share / "config" / f.name).read_bytes() == f.read_bytes(), f.name
    for name in ("lane_change.onnx", "lane_change.json"):
        assert (share / "models" / name).read_bytes() == (REPO / "models" / name).read_bytes()
    assert (share / "package.xml").is_file()
    msgs = ws.install / "gapcam_msgs" / "lib" / PY / "site-packages" / "gapcam_msgs" / "msg"
    assert msgs.is_dir()
    # What `ros2 launch cam_node ...` looks up, in the environment `source install/setup.bash` makes.
    env = ws.sourced_env()
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ament_index_python.packages import get_package_prefix as p, "
            "get_package_share_directory as s; print(p('cam_node')); print(s('cam_node'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    prefix, found_share = res.stdout.split()
    assert Path(prefix) == ws.install / "cam_node" and Path(found_share) == share


@pytest.mark.parametrize("mode", ["plain", "symlink"])
def test_nothing_written_outside_the_workspace(workspaces: dict[str, Workspace], mode: str) -> None:
    ws = workspaces[mode]
    assert sorted(p.name for p in ws.root.parent.iterdir()) == ["colcon.log", "ws"]
    assert sorted(p.name for p in ws.root.iterdir()) == ["build", "install", "log", "src"]
    links = [p for d in ("build", "install") for p in (ws.root / d).rglob("*") if p.is_symlink()]
    if mode == "symlink":
        assert any(p.name == "rear_cameras.launch.py" for p in links)
    underlay = Path(sys.prefix).resolve()  # ament_cmake links its environment hooks from there
    for link in links:
        target = link.resolve()
        assert target.exists(), f"dangling {link}"
        assert target.is_relative_to(ws.root) or target.is_relative_to(underlay), (
            f"{link} -> {target}: neither in the workspace nor in the underlay"
        )


def test_ros2_ws_copied_alone_fails_with_one_line(tmp_path: Path) -> None:
    """Not a package without launch files or model that builds "successfully"."""
    if not COLCON.exists():
        pytest.skip("colcon is not installed in this venv: `make setup` (requirements/dev.txt)")
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "ros2_ws", ws / "src" / "ros2_ws", symlinks=True)  # `cp -r ros2_ws`
    res = subprocess.run(
        [str(COLCON), "build", "--packages-ignore", "gapcam_msgs"],
        cwd=ws,
        env=_build_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    lines = [line for line in out.splitlines() if "cam_node setup.py:" in line]
    assert len(lines) == 1 and "whole gapcam repository" in lines[0], out
    assert "Traceback" not in out, out
    assert not (ws / "install" / "cam_node" / "share" / "cam_node" / "launch").exists()


def _launch_defaults() -> dict[str, str]:
    """rear_cameras.launch.py's argument defaults (what `ros2 launch` starts with)."""
    tree = ast.parse((REPO / "launch" / "rear_cameras.launch.py").read_text())
    out = {}
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", "") == "DeclareLaunchArgument"
            and not isinstance(call.args[0], ast.JoinedStr)  # per camera: given below
        ):
            default = next(k.value for k in call.keywords if k.arg == "default_value")
            out[ast.literal_eval(call.args[0])] = ast.literal_eval(default)
    return out


@dataclass
class InstalledNode(NodeProcess):
    """A cam_node started from the install tree's ``lib/cam_node/cam_node``."""

    executable: Path | None = None
    cwd: Path | None = None
    process_group: int = 0  #: 0: start a new group (this node leads it)

    def start(self) -> InstalledNode:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.executable), *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            process_group=self.process_group,
        )
        return self


def test_two_rear_cameras_from_the_install_tree_answer_and_stop_on_double_sigint(
    workspaces: dict[str, Workspace], ros, make_camera, tmp_path: Path
) -> None:
    ws = workspaces["plain"]
    env = ws.sourced_env()
    cameras = ("rear_left", "rear_right")
    plan = launch_plan.rear_cameras(
        _launch_defaults()
        | {launch_plan.image_argument(c): launch_plan.default_image_topic(c) for c in cameras},
        cameras,
        ws.share,
    )
    exe = ws.install / "cam_node" / "lib" / "cam_node" / "cam_node"
    nodes: list[InstalledNode] = []
    try:
        for p in plan.nodes:
            # A frame waiting behind a slow CI machine must not be dropped as stale.
            p = replace(p, overrides={**p.overrides, "max_age_s": "30.0"})
            node = InstalledNode(
                namespace=f"/{p.namespace}",
                args=p.ros_args(),
                log_path=tmp_path / f"{p.namespace}.log",
                env=env,
                executable=exe,
                cwd=tmp_path,  # not the repository: the model must come from the install tree
                process_group=nodes[0].proc.pid if nodes else 0,
            ).start()
            nodes.append(node)
        cams = [make_camera(n, p.image) for n, p in zip(nodes, plan.nodes, strict=True)]
        for cam in cams:
            cam.wait_ready()
        for i, cam in enumerate(cams):
            cam.send_and_wait(scene(100 + i))
            assert cam.verify() == 1
        for node in nodes:
            assert ros.get_parameters(node.name, ["threads"]) == {"threads": 1}  # rear_cameras.yaml
            model = ws.share / "models" / "lane_change.onnx"
            assert f"model {model}" in node.log(), node.log()[-2000:]
        pgid = nodes[0].proc.pid
        assert os.getpgid(nodes[1].proc.pid) == pgid
        os.killpg(pgid, signal.SIGINT)
        time.sleep(0.03)
        os.killpg(pgid, signal.SIGINT)
        for node in nodes:
            rc = node.proc.wait(timeout=30)
            log = node.log()
            assert rc == 0, f"{node.name} exited {rc}:\n{log[-3000:]}"
            assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    finally:
        for node in nodes:
            node.stop()
    wait_for(lambda: all(n.proc.poll() is not None for n in nodes), 5, "both nodes gone")
