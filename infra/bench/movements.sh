#!/usr/bin/env bash
# The Inventory figures, each next to the Azure.Data.Tables SDK doing the same storage work in the same run:
#   movements: movements/s and p50/p99 with 16 clients, on one hot item and spread over 1,000 items
#              (POST /api/v1/inventory/items/{id}/movements, PER_PASS each), next to the SDK reading the item and
#              stock rows and writing the ETag-conditioned transaction itself, retried on a lost race;
#   analytics: GET /api/v1/inventory/analytics by category and by location for one tenant of ITEMS items and
#              MOVEMENTS movements (rows shaped as the app writes them, preloaded into Azurite's store: see
#              preloadable-table.js), cold and warm, next to an SDK scan of the tenant's item and stock rows
#              aggregated in memory.
#
#   infra/bench/movements.sh [ITEMS] [MOVEMENTS] [PER_PASS]     (defaults 100000 1000000 2000)
#
# Starts the pinned Azurite (in memory, free ports) and stops it on exit; publishes the app as deployed into a
# temporary folder. Progress goes to stderr, the figures to stdout. Never fails on the figures. Set
# PLATFORM_BUILD_LOCK to a file to hold that flock(1) lock around the builds only.
set -euo pipefail

bench="movements.sh"
case "${1:-}" in
  -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 3 ]] || { echo "usage: infra/bench/movements.sh [ITEMS] [MOVEMENTS] [PER_PASS]" >&2; exit 1; }
items="${1:-100000}"
movements="${2:-1000000}"
per_pass="${3:-2000}"
[[ "$items" =~ ^[1-9][0-9]*$ ]] || { echo "$bench: ITEMS must be a positive whole number: $items" >&2; exit 1; }
[[ "$movements" =~ ^[0-9]+$ ]] || { echo "$bench: MOVEMENTS must be a whole number: $movements" >&2; exit 1; }
[[ "$per_pass" =~ ^[1-9][0-9]*$ ]] || { echo "$bench: PER_PASS must be a positive whole number: $per_pass" >&2; exit 1; }

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_use_preloadable_table
bench_build
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- movements "$work/app/Platform.Functions" "$items" "$movements" "$per_pass"
