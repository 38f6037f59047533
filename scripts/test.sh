#!/usr/bin/env bash
# The one test command (README and .ci/run): set up, lint, type-check, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy tap_dialfire target_dialfire_sql target_dialfire_webhook dialfire_sandbox
echo "== pytest"; pytest -q -p no:cacheprovider "$@"
