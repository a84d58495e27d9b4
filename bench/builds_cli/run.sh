#!/usr/bin/env bash
# `exhunt builds`: one build, and 300 builds from standard input, through the lean entry point;
# peer: the same one-build answer through the whole command line (every part registered, as
# before issue 12). Needs hyperfine. Usage: bench/builds_cli/run.sh [PYTHON]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
py="${1:-$here/.venv/bin/python}"
list="$(mktemp)"
PYTHONPATH="$here/src" "$py" -c "
import csv, importlib.resources as r
rows = csv.DictReader(r.files('exhunt.intel').joinpath('data', 'exchange_builds.csv').open())
print('\n'.join(row['build'] for row in list(rows)[:300]))" > "$list"
export PYTHONPATH="$here/src"
hyperfine -N -w 2 -r 20 \
  -n "exhunt builds, 1 build" "$py -c 'from exhunt.cli import main; main()' builds 15.1.2176.9 --format json" \
  -n "exhunt builds, 300 builds (stdin)" "$py -c 'import sys; sys.stdin = open(\"$list\"); from exhunt.cli import main; main()' builds - --format jsonl" \
  -n "peer: whole CLI loaded, 1 build" "$py -c 'from exhunt.cli import app, _register_parts; _register_parts(); app()' builds 15.1.2176.9 --format json"
rm -f "$list"
