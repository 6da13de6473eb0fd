#!/usr/bin/env bash
# The project's test command (what `make test` and .ci/run execute).
set -euo pipefail
venv=${1:-.venv}
# Quick when up to date; builds gapcam_msgs into an older venv whose setup predates it.
bash scripts/build_msgs.sh "$venv"
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q
