#!/usr/bin/env bash
# Container entrypoint of the gapcam images (docker/Dockerfile.{jetson,x86,cpu}).
#
#   gapcam-entrypoint [launch]   (default) ensure the TensorRT engine, then launch both rear cameras
#   gapcam-entrypoint ensure     only build/check the engine for this device, print its path, exit
#   gapcam-entrypoint record     record a drive beside a running node (the compose recorder):
#                                ros2 bag record -s mcap into $BAG_DIR/drive-<time>, the topics of
#                                cam_node's config/record.yaml (those of `record:=true`)
#   gapcam-entrypoint CMD ...    anything else runs as given, in the ROS environment
#                                (e.g. `gapcam replay ...`, `ros2 topic list`, `bash`)
#
# The engine is built by `engine-builder ensure`, which rebuilds only when the plan is missing or
# stale for this device and writes it atomically under a file lock (engine_builder/ensure.py), so
# concurrent starts sharing $ENGINE_DIR are safe. Its progress goes to the container log; its last
# line on stdout is the plan path, passed to the launch file as model_path:=PLAN backend:=tensorrt.
#
# Environment (defaults in brackets):
#   BACKEND      tensorrt | onnxruntime [tensorrt]; onnxruntime skips the engine (CPU fallback)
#   MODEL        ONNX model, its JSON card beside it [/opt/gapcam/src/models/lane_change.onnx]
#   PRECISION    engine precision passed to engine-builder [fp16]
#   ENGINE_DIR   engines + timing cache, a volume [/data/engines]
#   ENGINE_BUILDER_ARGS  extra arguments for `engine-builder ensure` (split on spaces) []
#   RVIZ, RECORD launch rviz2 / record a bag from the launch file: true | false [false]
#   BAG_DIR      where recordings go, as drive-<time>/ [/data/bags]
#   RECORD_TOPICS  topics for `record` (split on spaces) [those of config/record.yaml]
#   RECORD_CAMERAS camera namespaces of config/record.yaml [rear_left rear_right]
#   LAUNCH_PACKAGE, LAUNCH_FILE  [cam_node, rear_cameras.launch.py]
#   LAUNCH_ARGS  extra name:=value launch arguments (split on spaces) []
#   ROS_SETUP    ROS 2 setup script [/opt/ros/$ROS_DISTRO/setup.bash]
#   GAPCAM_WS    colcon install space of ros2_ws [/opt/gapcam/ws/install]
#   ENTRYPOINT_DRY_RUN=1  print the commands it would run, run nothing
set -euo pipefail

log() { printf '[gapcam-entrypoint] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

MODEL=${MODEL:-/opt/gapcam/src/models/lane_change.onnx}
PRECISION=${PRECISION:-fp16}
BACKEND=${BACKEND:-tensorrt}
ENGINE_DIR=${ENGINE_DIR:-/data/engines}
BAG_DIR=${BAG_DIR:-/data/bags}
LAUNCH_PACKAGE=${LAUNCH_PACKAGE:-cam_node}
LAUNCH_FILE=${LAUNCH_FILE:-rear_cameras.launch.py}
ROS_DISTRO=${ROS_DISTRO:-humble}
ROS_SETUP=${ROS_SETUP:-/opt/ros/$ROS_DISTRO/setup.bash}
GAPCAM_WS=${GAPCAM_WS:-/opt/gapcam/ws/install}
DRY_RUN=${ENTRYPOINT_DRY_RUN:-0}

# "true"/"false" for launch arguments; accepts 1/0, yes/no, on/off.
as_bool() {
  case "${2,,}" in
    1 | true | yes | on) echo true ;;
    0 | false | no | off | "") echo false ;;
    *) die "$1 must be true or false, got '$2'" ;;
  esac
}
RVIZ=$(as_bool RVIZ "${RVIZ:-false}")
RECORD=$(as_bool RECORD "${RECORD:-false}")

# Split the optional space-separated lists into arrays.
read -r -a ENGINE_BUILDER_EXTRA <<<"${ENGINE_BUILDER_ARGS:-}"
read -r -a LAUNCH_EXTRA <<<"${LAUNCH_ARGS:-}"
read -r -a RECORD_TOPIC_ARGS <<<"${RECORD_TOPICS:-}"
read -r -a RECORD_CAMERA_NS <<<"${RECORD_CAMERAS:-rear_left rear_right}"
DRIVE=drive-$(date +%Y%m%d-%H%M%S)

source_ros() {
  local f
  for f in "$ROS_SETUP" "$GAPCAM_WS/setup.bash"; do
    if [[ -f $f ]]; then
      # ROS setup scripts read unset variables.
      set +u
      # shellcheck source=/dev/null
      source "$f"
      set -u
    else
      log "warning: $f not found, not sourced"
    fi
  done
}

# Print a command (shell-quoted) in dry-run mode; otherwise replace this shell with it.
run_exec() {
  if [[ $DRY_RUN == 1 ]]; then
    printf 'would run:'
    printf ' %q' "$@"
    printf '\n'
    exit 0
  fi
  log "exec: $*"
  exec "$@"
}

# Build the engine if missing or stale; sets PLAN to its path.
ensure_engine() {
  [[ -f $MODEL ]] || die "model not found: $MODEL (set MODEL=/path/to/model.onnx)"
  local cmd=(engine-builder ensure "$MODEL" --precision "$PRECISION" --out "$ENGINE_DIR"
    "${ENGINE_BUILDER_EXTRA[@]}")
  if [[ $DRY_RUN == 1 ]]; then
    printf 'would run:'
    printf ' %q' "${cmd[@]}"
    printf '\n'
    PLAN="<plan printed by engine-builder ensure>"
    return
  fi
  command -v engine-builder >/dev/null || die "engine-builder not on PATH (is gapcam installed?)"
  mkdir -p "$ENGINE_DIR"
  log "checking the TensorRT engine for $MODEL ($PRECISION) in $ENGINE_DIR;" \
    "a build on first start takes minutes"
  local out status=0
  out=$(mktemp)
  # Progress goes to the log live (stderr); stdout is kept to read the plan path from.
  "${cmd[@]}" | tee "$out" >&2 || status=$?
  PLAN=$(awk 'NF { last = $0 } END { print last }' "$out")
  rm -f "$out"
  if [[ $status -ne 0 ]]; then
    die "engine-builder ensure failed (exit $status); to run on the CPU instead set BACKEND=onnxruntime"
  fi
  [[ -n $PLAN && -f $PLAN ]] || die "engine-builder ensure reported no existing plan file (last line: '$PLAN')"
  log "engine ready: $PLAN"
}

# Topics of cam_node's config/record.yaml (found through AMENT_PREFIX_PATH), unless RECORD_TOPICS.
record_topics() {
  if [[ ${#RECORD_TOPIC_ARGS[@]} -gt 0 ]]; then
    return
  fi
  local prefix prefixes cfg=""
  IFS=: read -r -a prefixes <<<"${AMENT_PREFIX_PATH:-}"
  for prefix in "${prefixes[@]}"; do
    if [[ -f $prefix/share/cam_node/config/record.yaml ]]; then
      cfg=$prefix/share/cam_node/config/record.yaml
      break
    fi
  done
  [[ -n $cfg ]] || die "cam_node's config/record.yaml not found (AMENT_PREFIX_PATH); set RECORD_TOPICS"
  mapfile -t RECORD_TOPIC_ARGS < <(python3 -c '
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for ns in sys.argv[2:]:
    for topic in cfg["per_camera"]:
        print(topic.format(ns=ns))
for topic in cfg.get("global") or []:
    print(topic)
' "$cfg" "${RECORD_CAMERA_NS[@]}")
  [[ ${#RECORD_TOPIC_ARGS[@]} -gt 0 ]] || die "no topics read from $cfg"
}

launch() {
  local model
  case "$BACKEND" in
    tensorrt)
      ensure_engine
      model=$PLAN
      ;;
    onnxruntime)
      [[ -f $MODEL ]] || die "model not found: $MODEL (set MODEL=/path/to/model.onnx)"
      log "BACKEND=onnxruntime: no engine, running $MODEL on ONNX Runtime"
      model=$MODEL
      ;;
    *) die "BACKEND must be tensorrt or onnxruntime, got '$BACKEND'" ;;
  esac
  local args=("model_path:=$model" "backend:=$BACKEND" "rviz:=$RVIZ" "record:=$RECORD")
  if [[ $RECORD == true ]]; then
    args+=("bag:=$BAG_DIR/$DRIVE")
    [[ $DRY_RUN == 1 ]] || mkdir -p "$BAG_DIR"
  fi
  source_ros
  run_exec ros2 launch "$LAUNCH_PACKAGE" "$LAUNCH_FILE" "${args[@]}" "${LAUNCH_EXTRA[@]}"
}

main() {
  local mode=${1:-launch}
  case "$mode" in
    launch)
      launch
      ;;
    ensure)
      [[ $BACKEND == tensorrt ]] || die "ensure builds TensorRT engines; BACKEND is '$BACKEND'"
      ensure_engine
      [[ $DRY_RUN == 1 ]] || printf '%s\n' "$PLAN"
      ;;
    record)
      source_ros
      record_topics
      [[ $DRY_RUN == 1 ]] || mkdir -p "$BAG_DIR"
      run_exec ros2 bag record -s mcap -o "$BAG_DIR/$DRIVE" "${RECORD_TOPIC_ARGS[@]}"
      ;;
    *)
      source_ros
      run_exec "$@"
      ;;
  esac
}

main "$@"
