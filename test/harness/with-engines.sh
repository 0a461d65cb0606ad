#!/usr/bin/env bash
# Runs a command with the throwaway test engines up: `with-engines.sh CMD [ARGS…]`.
# The engines are started (or reused), env.sh is sourced for the command, and they are stopped
# afterwards unless PULSER_KEEP_ENGINES=1 or another run still uses them: every run holds a shared
# lock on "$PULSER_TEST_ROOT.users.lock", and only the last one out stops them.
# Exits with the command's exit code (1 when the engines do not start).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PULSER_TEST_ROOT=${PULSER_TEST_ROOT:-/tmp/pulser-test}
ROOT=$PULSER_TEST_ROOT
name=$(basename "${PULSER_RUN_NAME:-run}")

exec 9>"$ROOT.users.lock"
flock -s 9

stopped=
engines_down() {
  [ -z "$stopped" ] || return 0
  stopped=1
  if [ "${PULSER_KEEP_ENGINES:-}" = 1 ]; then
    echo "$name: engines left up (PULSER_KEEP_ENGINES=1): source $ROOT/env.sh" >&2
  elif flock -x -n 9; then
    bash "$here/engines.sh" down 9>&- || echo "$name: stopping the engines failed" >&2
  else
    echo "$name: engines still used by another run, leaving them up" >&2
  fi
  exec 9>&-
}
trap engines_down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fd 9 is closed for the engines: a daemon must not inherit (and hold) the lock.
if ! bash "$here/engines.sh" up 9>&-; then
  echo "$name: the test engines did not start" >&2
  exit 1
fi
# shellcheck source=/dev/null
. "$ROOT/env.sh"
# The suite's specs read their secrets from TEST_… variables, as a deployment declares its own.
export PULSER_SECRETS_ENV_PREFIX=${PULSER_SECRETS_ENV_PREFIX-TEST_}

"$@" 9>&-
rc=$?
engines_down
exit "$rc"
