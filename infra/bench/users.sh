#!/usr/bin/env bash
# The Users figures, for one tenant of USERS users (default 100,000), each next to a baseline measured in the same run:
#   bulk create: users/s of POST /api/v1/users/bulk (1000 creates a call, no passwords) with 1 and 2 callers, next to
#                the Azure.Data.Tables SDK writing the same rows (50 users + 50 email rows a transaction) directly;
#   lists:       p50/p99 of GET /api/v1/users?q= and of a two-condition filter, warm (the first, cold list apart),
#                next to an SDK scan of the tenant's partition that applies the same search/filter in memory (SCANS
#                each, default 20). Goal: search p99 at least 10x faster than the scan.
#
#   infra/bench/users.sh [USERS] [SCANS]
#
# All but the last 4,000 users are preloaded into Azurite's store (see preloadable-table.js: its REST insert walks the
# whole partition, so creating 100,000 users one after another takes hours); the last 4,000 are created through the
# route, and by the baseline on top of as many preloaded rows, so bulk create is measured at the full size.
#
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# is published self-contained linux-x64 into a temporary folder, removed on exit. Build output goes to stderr, progress
# too; the figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the measurement itself
# failed. Set PLATFORM_BUILD_LOCK to a file to take that flock(1) lock around the publish and the build only (not the
# measurement), when other builds share the machine.
set -euo pipefail

bench="users.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 2 ]] || die "usage: infra/bench/users.sh [USERS] [SCANS]"
users="${1:-100000}"
scans="${2:-20}"
[[ "$users" =~ ^[1-9][0-9]*$ ]] || die "USERS must be a positive whole number: $users"
[[ "$scans" =~ ^[1-9][0-9]*$ ]] || die "SCANS must be a positive whole number: $scans"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_use_preloadable_table
bench_build
bench_wait_for_azurite

# The app process inherits no Platform__ setting from here (ServerProcess clears them); the users command gives it
# its own storage prefix and raised per-IP sign-up and sign-in limits (every request comes from 127.0.0.1).
dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- users "$work/app/Platform.Functions" "$users" "$scans"
