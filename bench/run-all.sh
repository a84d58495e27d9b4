#!/usr/bin/env bash
# Every benchmark, one after the other, each with its documented defaults: the figures of
# BENCHMARKS.md's summary table. Peers first (bench/setup-peers.sh). Extra arguments (say
# --append) go to every benchmark. Long: about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
bash bench/setup-peers.sh
for bench in hunt_vs_ripgrep scan_vs_nmap ingest_vs_intelmq evtx webshell_scan fleet notify \
             uptake dashboard lab_triage; do
  [ -f "bench/$bench/run.py" ] || continue
  echo "== $bench: $py bench/$bench/run.py $*"
  "$py" "bench/$bench/run.py" "$@"
done
