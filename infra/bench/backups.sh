#!/usr/bin/env bash
# The backup figures (issue 20), each next to a baseline measured in the same run, for one tenant of USERS users and
# ITEMS items (rows shaped as the app writes them):
#   backup:  rows/s of a consistent, compressed, sealed snapshot of its users and inventory partitions, next to an
#            SDK scan of the same partitions (goal: at least 60 %);
#   restore: rows/s of those parts written into a new tenant, next to SDK 100-row transactions of the same rows
#            (goal: at least 60 %);
#   size:    stored bytes per 1,000 rows; verify: MB/s of stored bytes read back and checked.
#
#   infra/bench/backups.sh [USERS] [ITEMS]     (defaults 100000 100000)
#
# In-process, by the app's own composition (tests/Platform.Benchmarks `backups`); the rows are preloaded into Azurite's
# store (see preloadable-table.js). Starts the pinned Azurite (in memory, free ports) and stops it on exit. Progress
# goes to stderr, the figures to stdout; never fails on the figures. Set PLATFORM_BUILD_LOCK to a file to hold that
# flock(1) lock around the build only.
set -euo pipefail

bench="backups.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 2 ]] || die "usage: infra/bench/backups.sh [USERS] [ITEMS]"
for n in "${1:-1}" "${2:-1}"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "USERS and ITEMS must be positive whole numbers: $n"
done
# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_use_preloadable_table
echo "${bench}: dotnet build -c Release tests/Platform.Benchmarks" >&2
"${locked[@]}" dotnet build tests/Platform.Benchmarks -c Release >&2 || die "building the benchmarks failed"
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- backups "${1:-100000}" "${2:-100000}"
