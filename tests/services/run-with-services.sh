#!/usr/bin/env bash
# Start the services the test suite needs (throwaway, loopback or unix socket only),
# run the command given, and stop them again whatever happens.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for script in "$here"/start-*.sh; do
  [ -e "$script" ] || continue
  # shellcheck disable=SC1090
  source "$script"
done
status=0
"$@" || status=$?
for script in "$here"/stop-*.sh; do
  [ -e "$script" ] || continue
  # shellcheck disable=SC1090
  source "$script" || true
done
exit $status
