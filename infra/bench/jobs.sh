#!/usr/bin/env bash
# The job engine's figures (imports and exports on the Durable Task Framework), each next to a baseline measured in the
# same run:
#   import:   ROWS inventory items and ROWS users (no passwords) from CSV, upload to succeeded, rows/s, next to the
#             raw limit: the same rows as the import writes them (item + SKU index row; user + email index row) written
#             with the Azure.Data.Tables SDK as 100-action transactions, as many writers as the import's chunk
#             parallelism. Goal: at least 70 % of raw. Then how long the relay took to hand the import's events on
#             (the outbox empty), so the next figure starts with the relay idle;
#   dry run:  the same items file with dryRun=true;
#   export:   the imported items to CSV, request to succeeded + download, next to an SDK scan written to a CSV file;
#   memory:   peak resident memory of the app (VmHWM, reset before) during dry-run imports of a 100 MB CSV and a 20 MB
#             xlsx (written with the app's own writer). Goal: under 400 MB;
#   overhead: a 1-row dry-run import, request to succeeded, p50/p99 of 50, next to GET /api/v1/me;
#   resume:   an import of ROWS/10 items, the app killed (SIGKILL) at half, a new process on the same storage finishes
#             it: rows stored exactly once, and the pause the crash cost.
#
#   infra/bench/jobs.sh [ROWS]     (default 100000)
#
# Platform__Jobs__* variables set when calling are handed on to the app (ChunkRows, ChunkParallelism, ...), to try
# settings without a rebuild. PLATFORM_BENCH_JOBS_ROUNDS=N (1-9, default 1) takes N pairs of the raw and import figures,
# each in a tenant of its own, and prints every pair's ratio and their median: one pair spreads by several points.
# Starts the pinned Azurite (in memory, free ports) and stops it on exit; publishes the app as deployed into a temporary
# folder; the generated files go to a temporary folder too (about 130 MB at most).
# Progress goes to stderr, the figures to stdout. Never fails on the figures. Set PLATFORM_BUILD_LOCK to a file to hold
# that flock(1) lock around the builds only.
set -euo pipefail

bench="jobs.sh"
case "${1:-}" in
  -h | --help)
    sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || { echo "usage: infra/bench/jobs.sh [ROWS]" >&2; exit 1; }
rows="${1:-100000}"
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || { echo "$bench: ROWS must be a positive whole number: $rows" >&2; exit 1; }

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
# Tables from the key-indexed service (docs/benchmarks.md, "Seeding the scale figures"): stock Azurite's inserts and
# point reads walk their partition, which at 100,000 rows makes both sides of a figure crawl; PLATFORM_BENCH_INDEXED_KEYS=0 for stock.
bench_use_preloadable_table
bench_build
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- jobs "$work/app/Platform.Functions" "$rows"
