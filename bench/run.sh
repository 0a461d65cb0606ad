#!/usr/bin/env bash
# `npm run bench`: start the throwaway engines the tests use, run the benchmarks against them,
# stop the engines again.
#
#   bash bench/run.sh [--only P1,P3,P4,P7] [--envs 200] [--changes 100] [--rollouts 10]
#   PULSER_KEEP_ENGINES=1 bash bench/run.sh     # leave the engines up afterwards
#
# Like test/harness/run.sh, a run holds a shared lock on the engines while it uses them and
# only stops them when no other run (tests or benchmarks) still holds it.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo" || exit 1

export PULSER_TEST_ROOT=${PULSER_TEST_ROOT:-/tmp/pulser-test}
ROOT=$PULSER_TEST_ROOT

exec 9>"$ROOT.users.lock"
flock -s 9

stopped=
engines_down() {
  [ -z "$stopped" ] || return 0
  stopped=1
  if [ "${PULSER_KEEP_ENGINES:-}" = 1 ]; then
    echo "bench: engines left up (PULSER_KEEP_ENGINES=1): source $ROOT/env.sh" >&2
  elif flock -x -n 9; then
    bash "$repo/test/harness/engines.sh" down 9>&- || echo "bench: stopping the engines failed" >&2
  else
    echo "bench: engines still used by another run, leaving them up" >&2
  fi
  exec 9>&-
}
trap engines_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! bash "$repo/test/harness/engines.sh" up 9>&-; then
  echo "bench: the engines did not start" >&2
  exit 1
fi
# shellcheck source=/dev/null
. "$ROOT/env.sh"

node --import tsx bench/containers.bench.ts "$@" 9>&-
