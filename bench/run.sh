#!/usr/bin/env bash
# `npm run bench`: start the throwaway engines the tests use, run the benchmarks against them,
# stop the engines again.
#
#   bash bench/run.sh [--only P1,P3,P4,P7] [--envs 200] [--changes 100] [--rollouts 10]
#   PULSER_KEEP_ENGINES=1 bash bench/run.sh     # leave the engines up afterwards
#
# The engines are shared with test runs the way test/harness/with-engines.sh describes.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
PULSER_RUN_NAME=bench exec bash "$repo/test/harness/with-engines.sh" node --import tsx bench/containers.bench.ts "$@"
