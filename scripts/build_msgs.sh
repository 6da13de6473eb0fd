#!/usr/bin/env bash
# Build the ROS 2 interface package (ros2_ws/src/gapcam_msgs) into the virtual environment, without
# colcon, against the ROS 2 wheels from PyPI (see shared/ROS_PIP.md), and install the cam_node
# Python package into the same venv so that tests and `python -m cam_node` can import it.
#
#   bash scripts/build_msgs.sh [.venv]
#
# Idempotent: when the installed message package is newer than its sources it only checks that it
# imports (well under a second). On a real ROS 2 install use `colcon build` instead.
set -euo pipefail
venv=$(cd "${1:-.venv}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
pkg=gapcam_msgs
src="$root/ros2_ws/src/$pkg"
build="$root/build/$pkg"
stamp="$venv/.${pkg}.built"

# Tools the generators need, and a setuptools that builds the editable cam_node below (the 65.x of
# a fresh Python 3.11 venv has no bdist_wheel): all pinned in requirements/ros.txt, installed here
# only when missing, so that this script also works on a venv made before they were added.
if ! "$py" -c "import catkin_pkg" 2>/dev/null || [ ! -d "$venv/share/rosidl_default_generators" ] \
  || [ ! -d "$venv/share/ament_cmake_ros_core" ] \
  || ! "$py" -c "from setuptools.command import bdist_wheel" 2>/dev/null; then
  echo "[build_msgs] installing the generators and setuptools (requirements/ros.txt)"
  "$py" -m pip install -q -r "$root/requirements/ros.txt"
fi

up_to_date() {
  [ -f "$stamp" ] || return 1
  [ -z "$(find "$src" "$0" "$root/ros2_ws/src/cam_node/setup.py" -newer "$stamp" -type f -print -quit)" ] \
    || return 1
  "$py" -c "import gapcam_msgs.msg, cam_node" 2>/dev/null
}

if up_to_date; then
  echo "[build_msgs] $pkg up to date in $venv"
  exit 0
fi

# The wheels' cmake files hard-code two include paths of the machine they were built on.
numpy_inc=$("$py" -c "import numpy; print(numpy.get_include())")
py_inc=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
{ grep -rlZ --include='*.cmake' -e '/opt/python/cp311-cp311/' "$venv/share" 2>/dev/null || true; } \
  | xargs -0 -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${numpy_inc}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g"

start=$(date +%s)
mkdir -p "$root/build"
echo "[build_msgs] configuring $pkg"
cmake -S "$src" -B "$build" -Wno-dev \
  -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" \
  -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF >"$build.log" 2>&1 \
  || { tail -n 40 "$build.log"; exit 1; }
echo "[build_msgs] building $pkg"
cmake --build "$build" -j2 >>"$build.log" 2>&1 || { tail -n 40 "$build.log"; exit 1; }
cmake --install "$build" >>"$build.log" 2>&1 || { tail -n 40 "$build.log"; exit 1; }

# The node package (ament_python): an editable install so that `import cam_node` works in tests.
"$py" -m pip install -q --no-deps --no-build-isolation -e "$root/ros2_ws/src/cam_node" \
  >>"$build.log" 2>&1 || { tail -n 20 "$build.log"; exit 1; }

"$py" -c "import gapcam_msgs.msg, cam_node" || { echo "[build_msgs] import check failed" >&2; exit 1; }
touch "$stamp"
echo "[build_msgs] $pkg installed into $venv in $(( $(date +%s) - start )) s (log: $build.log)"
