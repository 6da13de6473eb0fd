#!/usr/bin/env bash
# Image build step shared by docker/Dockerfile.{jetson,x86,cpu}; runs inside `docker build` only.
#
#   bash docker/build_workspace.sh SRC_DIR
#
# 1. installs the gapcam core + engine builder (`pip install .`) with the pinned runtime packages
#    of docker/requirements-ros-images.txt into the image's system Python (ROS comes from the
#    base image, never from requirements/ros.txt);
# 2. builds the ROS 2 workspace (ros2_ws/src: gapcam_msgs + cam_node, which installs launch/)
#    with colcon into $GAPCAM_WS.
set -euo pipefail
src=${1:?usage: build_workspace.sh SRC_DIR}
: "${ROS_DISTRO:?ROS_DISTRO must be set by the Dockerfile}"
: "${GAPCAM_WS:?GAPCAM_WS must be set by the Dockerfile}"
ros_setup=${ROS_SETUP:-/opt/ros/$ROS_DISTRO/setup.bash}
cd "$src"

echo "[build_workspace] Python $(python3 -c 'import sys; print(sys.version.split()[0])')"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else
  "gapcam needs Python >= 3.10 (pyproject requires-python); this base image has "
  + sys.version.split()[0] + ": see docker/README.md, JetPack 5")'

python3 -m pip install --no-cache-dir -r docker/requirements-ros-images.txt .
python3 -c 'import gapcam, engine_builder, numpy, onnxruntime; print("[build_workspace] gapcam",
  gapcam.__file__, "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__)'

# gapcam.cli finds its default model relative to the source tree (../models). In an installed
# package that is site-packages/models: point it at the image's models (copied to
# $src/models), so `gapcam replay BAG --out OUT` works without --model.
default_models=$(python3 -c 'from gapcam.cli import DEFAULT_MODEL; print(DEFAULT_MODEL.parent)' \
  2>/dev/null || true)
if [[ -n $default_models && ! -e $default_models ]]; then
  ln -s "$src/models" "$default_models"
  echo "[build_workspace] default model directory $default_models -> $src/models"
fi

# ROS setup scripts read unset variables: relax nounset while sourcing them.
set +u
# shellcheck source=/dev/null
source "$ros_setup"
set -u
colcon build \
  --base-paths ros2_ws/src \
  --build-base /tmp/colcon-build \
  --install-base "$GAPCAM_WS" \
  --event-handlers console_direct+ \
  --cmake-args -DBUILD_TESTING=OFF
rm -rf /tmp/colcon-build log
echo "[build_workspace] workspace installed in $GAPCAM_WS"
