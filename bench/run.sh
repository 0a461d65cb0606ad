#!/usr/bin/env bash
# `npm run bench`: start the throwaway engines the tests use, run the benchmarks against them,
# stop the engines again.
#
#   bash bench/run.sh [--only P1,P3,P4,P5,P7] [--envs 200] [--changes 100] [--rollouts 10]
#   PULSER_BENCH_SCALE=35 bash bench/run.sh --only P5  # pgbench scale of P5's database (35 ≈ 500 MiB)
#   PULSER_KEEP_ENGINES=1 bash bench/run.sh     # leave the engines up afterwards
#
# The engines are shared with test runs the way test/harness/with-engines.sh describes.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
PULSER_RUN_NAME=bench exec bash "$repo/test/harness/with-engines.sh" bash -c '
  node --import tsx bench/containers.bench.ts "$@" || rc=$?
  node --import tsx bench/backups.bench.ts "$@" || rc=$?
  exit ${rc:-0}' bench "$@"
