#!/usr/bin/env bash
# The report-type figures (issue 19: a report over 100,000 users or 100,000 items finishes in under 30 s), each next
# to a baseline measured in the same run:
#   user-insights:    build time over one tenant of USERS users (sign-in history, custom fields), cold (the instance's
#                     projection loads) and warm, next to an SDK read of the tenant's u: rows;
#   inventory-status: build time over one tenant of ITEMS items (20 locations, a stock row each) and MOVEMENTS movements
#                     in the last 90 days, cold and warm, next to SDK reads of its i:, s:, l: rows and those movements.
#
#   infra/bench/reports.sh [USERS] [ITEMS] [MOVEMENTS] [RUNS]     (defaults 100000 100000 100000 3)
#
# The types are built in-process by the app's own composition (tests/Platform.Benchmarks `reports`); the rows are
# preloaded into Azurite's store (see preloadable-table.js). Starts the pinned Azurite (in memory, free ports) and stops
# it on exit. Progress goes to stderr, the figures to stdout; never fails on the figures. Set PLATFORM_BUILD_LOCK to a
# file to hold that flock(1) lock around the build only.
set -euo pipefail

bench="reports.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 4 ]] || die "usage: infra/bench/reports.sh [USERS] [ITEMS] [MOVEMENTS] [RUNS]"
for n in "${1:-1}" "${2:-1}" "${4:-1}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "USERS, ITEMS and RUNS must be positive whole numbers: $n"
done
[[ "${3:-0}" =~ ^[0-9]+$ ]] || die "MOVEMENTS must be a whole number: $3"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_use_preloadable_table
echo "${bench}: dotnet build -c Release tests/Platform.Benchmarks" >&2
"${locked[@]}" dotnet build tests/Platform.Benchmarks -c Release >&2 || die "building the benchmarks failed"
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- reports "${1:-100000}" "${2:-100000}" "${3:-100000}" "${4:-3}"
