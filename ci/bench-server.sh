#!/usr/bin/env bash
# Load test of `aiconform serve` over loopback (127.0.0.1 only): a bounded number of
# requests (default 2000, 16 connections, 10 s deadline), printing requests/s and p50/p90/p99.
# Not part of the test suite. Bounds: AICONFORM_BENCH_REQUESTS (<= 20000),
# AICONFORM_BENCH_CONCURRENCY (<= 64), AICONFORM_BENCH_SECONDS (<= 60).
# Extra args go to cargo, e.g. `ci/bench-server.sh --profile dev` for a quicker build.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked --bench server_load "$@"
