#!/usr/bin/env bash
# Set up (with the dev tools) and run deepfolder's checks: lint, types, tests.
# Tests that read ../shared/data skip cleanly when it is absent; the one slow test runs
# the embedded model on the demo folder (a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check --no-cache src tests scripts benchmarks
.venv/bin/ruff format --no-cache --check src tests scripts benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
