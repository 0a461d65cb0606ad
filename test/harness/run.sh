#!/usr/bin/env bash
# `npm test`: build dist/, start the throwaway engines, run the tap suite against them,
# stop the engines, and close with one plain line "N passed, N failed".
#
#   npm test                                   # every test/**/*.test.ts
#   npm test -- test/integration/x.test.ts     # extra args go to tap as they are
#   PULSER_KEEP_ENGINES=1 npm test             # leave the engines up afterwards
#
# Several runs may share the engines (same PULSER_TEST_ROOT): see with-engines.sh.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 1

out=$(mktemp "${TMPDIR:-/tmp}/pulser-tap.XXXXXX")
trap 'rm -f "$out"' EXIT

tap=$repo/node_modules/.bin/tap
[ -x "$tap" ] || tap="npx tap"
start=$SECONDS
# Tests run `bin/pulser.js` as a child process, which runs dist/: build it from the sources first.
if ! node scripts/build.mjs; then
  echo "run: the build failed" >&2
  echo "0 passed, 0 failed"
  exit 1
fi
# --include only applies when no test files are named on the command line.
PULSER_RUN_NAME=run bash "$here/with-engines.sh" $tap --include='test/**/*.test.ts' "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
elapsed=$((SECONDS - start))

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
