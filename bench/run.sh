#!/usr/bin/env bash
# `npm run bench`: start the throwaway engines the tests use, run the benchmarks against them,
# stop the engines again.
#
#   bash bench/run.sh [--only P1,P2,P3,P4,P5,P6,P7,C1,C2] [--envs 200] [--changes 100] [--rollouts 10]
#   PULSER_BENCH_SCALE=35 bash bench/run.sh --only P5  # pgbench scale of P5's database (35 ≈ 500 MiB)
#   PULSER_KEEP_ENGINES=1 bash bench/run.sh     # leave the engines up afterwards
#
# The engines are shared with test runs the way test/harness/with-engines.sh describes.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# Each script runs the sections of --only it knows (containers: P1 P3 P4 P7; gitops: P2 P6;
# backups: P5; startup: C1 C2). The start-up benchmarks run bin/pulser.js, which runs dist/.
node scripts/build.mjs || exit 1
PULSER_RUN_NAME=bench exec bash "$repo/test/harness/with-engines.sh" bash -c '
  rc=0
  node --import tsx bench/containers.bench.ts "$@" || rc=1
  node --import tsx bench/gitops.bench.ts "$@" || rc=1
  node --import tsx bench/backups.bench.ts "$@" || rc=1
  node --import tsx bench/startup.bench.ts "$@" || rc=1
  exit $rc' bench "$@"
