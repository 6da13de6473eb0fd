#!/usr/bin/env bash
# Create the project's virtual environment with everything `make demo` and `make test` need.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
echo "[setup] installing Python packages (requirements/dev.txt)"
"$venv/bin/python" -m pip install -q -r requirements/dev.txt
"$venv/bin/python" -m pip install -q --no-deps -e .
if [ -f scripts/build_msgs.sh ]; then
  echo "[setup] building the ROS 2 message package"
  bash scripts/build_msgs.sh "$venv"
fi
echo "[setup] done"
