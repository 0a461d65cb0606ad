#!/usr/bin/env bash
# `npm run bench`: start the throwaway engines the tests use, run the benchmarks against them,
# stop the engines again.
#
#   bash bench/run.sh [--only P1,P2,P3,P4,P6,P7] [--envs 200] [--changes 100] [--rollouts 10]
#   PULSER_KEEP_ENGINES=1 bash bench/run.sh     # leave the engines up afterwards
#
# The engines are shared with test runs the way test/harness/with-engines.sh describes.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# Each script runs the sections of --only it knows (containers: P1 P3 P4 P7; gitops: P2 P6).
PULSER_RUN_NAME=bench exec bash "$repo/test/harness/with-engines.sh" bash -c '
  node --import tsx bench/containers.bench.ts "$@"; a=$?
  node --import tsx bench/gitops.bench.ts "$@"; b=$?
  exit $(( a | b ))' bench "$@"
