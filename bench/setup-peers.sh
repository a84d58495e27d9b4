#!/usr/bin/env bash
# Install every benchmark peer, once, from the machine's own package sources:
#   ripgrep, yara, nmap, hyperfine and GNU time from Debian's packages;
#   IntelMQ (AGPL, pins its own dependencies) in a venv of its own, outside the repository.
# Idempotent; prints where each peer is. `make bench` runs it first.
set -euo pipefail
cache="${EXHUNT_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exhunt-bench}"
missing=()
for tool in rg yara nmap hyperfine; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x /usr/bin/time ] || missing+=(time)  # GNU time: each timed command's own peak memory
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=()
  for tool in "${missing[@]}"; do
    case "$tool" in rg) pkgs+=(ripgrep) ;; *) pkgs+=("$tool") ;; esac
  done
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo -n"
  $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null 2>&1 \
    || { $sudo_ apt-get update -qq >/dev/null \
         && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null; }
fi
venv="$cache/intelmq-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import intelmq' 2>/dev/null; then
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check intelmq
fi
for tool in rg yara nmap hyperfine; do printf '%-10s %s\n' "$tool" "$(command -v "$tool")"; done
printf '%-10s %s\n' intelmq "$venv/bin/python"
