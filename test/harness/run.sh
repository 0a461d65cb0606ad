#!/usr/bin/env bash
# `npm test`: start the throwaway engines, run the tap suite against them,
# stop the engines, and close with one plain line "N passed, N failed".
#
#   npm test                                   # every test/**/*.test.ts
#   npm test -- test/integration/x.test.ts     # extra args go to tap as they are
#   PULSER_KEEP_ENGINES=1 npm test             # leave the engines up afterwards
#
# Several runs may share the engines (same PULSER_TEST_ROOT): each holds a
# shared lock while it runs, and only the last one out stops them.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1

export PULSER_TEST_ROOT=${PULSER_TEST_ROOT:-/tmp/pulser-test}
ROOT=$PULSER_TEST_ROOT
out=$(mktemp "${TMPDIR:-/tmp}/pulser-tap.XXXXXX")

# Shared while this run uses the engines; see engines_down.
exec 9>"$ROOT.users.lock"
flock -s 9

cleaned=
engines_down() {
  [ -z "$cleaned" ] || return 0
  cleaned=1
  if [ "${PULSER_KEEP_ENGINES:-}" = 1 ]; then
    echo "engines left up (PULSER_KEEP_ENGINES=1): source $ROOT/env.sh" >&2
  elif flock -x -n 9; then
    bash "$here/engines.sh" down 9>&- || echo "run: stopping the engines failed" >&2
  else
    echo "run: engines still used by another run, leaving them up" >&2
  fi
  exec 9>&-
}
on_exit() {
  engines_down
  rm -f "$out"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fd 9 is closed for the engines: a daemon must not inherit (and hold) the lock.
if ! bash "$here/engines.sh" up 9>&-; then
  echo "run: the test engines did not start" >&2
  engines_down
  echo "0 passed, 0 failed"
  exit 1
fi
# shellcheck source=/dev/null
. "$ROOT/env.sh"

tap=$repo/node_modules/.bin/tap
[ -x "$tap" ] || tap="npx tap"
start=$SECONDS
# --include only applies when no test files are named on the command line.
$tap --include='test/**/*.test.ts' "$@" 9>&- 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
elapsed=$((SECONDS - start))

engines_down

# tap (any reporter) closes with a line like "# { total: 5, pass: 4, fail: 1, skip: 1 }".
line=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^# \{ total: [0-9]+' | tail -n 1 || true)
field() {
  local v
  v=$(sed -nE "s/.*[{ ,]$1: ([0-9]+).*/\1/p" <<<"$line")
  echo "${v:-0}"
}
total=$(field total)
pass=$(field pass)
fail=$(field fail)
skip=$(($(field skip) + $(field todo)))

status=0
if [ -z "$line" ]; then
  echo "run: tap printed no summary (exit code $rc)" >&2
  status=1
elif [ "$total" -eq 0 ]; then
  echo "run: no tests ran" >&2
  status=1
elif [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
  echo "run: tap exited with code $rc" >&2
  status=1
fi
echo "run: tests took ${elapsed}s" >&2

if [ "$skip" -gt 0 ]; then
  echo "$pass passed, $fail failed, $skip skipped"
else
  echo "$pass passed, $fail failed"
fi
exit "$status"
