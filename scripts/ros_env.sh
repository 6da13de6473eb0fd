# Source me: DDS settings for running the node and its tests on one machine (see shared/ROS_PIP.md).
#   source scripts/ros_env.sh [domain_id]
# Discovery stays on this machine, logs go to a writable directory, and the Fast DDS profile adds a
# 64 MB shared-memory transport (full-size best-effort images between processes) and UDP on
# 127.0.0.1 only. Python code uses cam_node.ros_env.localhost_env(), which sets the same.
_gapcam_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR=${ROS_LOG_DIR:-${TMPDIR:-/tmp}/gapcam-ros-log-$(id -u)}
export ROS_DOMAIN_ID=${1:-$(( 1 + $$ % 100 ))}
export FASTDDS_DEFAULT_PROFILES_FILE="$_gapcam_root/ros2_ws/fastdds_localhost.xml"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
unset ROS_LOCALHOST_ONLY
mkdir -p "$ROS_LOG_DIR"
unset _gapcam_root
