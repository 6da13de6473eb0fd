#!/usr/bin/env bash
# The project's test command (what `make test` and .ci/run execute).
set -euo pipefail
venv=${1:-.venv}
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q
