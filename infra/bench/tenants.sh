#!/usr/bin/env bash
# Lists with many tenants active on one instance, next to one tenant alone, in the same run: p50/p99 of
# GET /api/v1/users?q= for a random one of TENANTS tenants each request (default 200), and for one lone tenant, each
# tenant holding USERS users (default 1,000, preloaded into Azurite's store; see preloadable-table.js), REQUESTS
# requests over the many (default 400) and half as many before and after over the lone one. The first list of each
# tenant, which loads its projection, is reported apart.
#
#   infra/bench/tenants.sh [TENANTS] [USERS] [REQUESTS]
#
# Starts the pinned Azurite (in memory, free ports) and stops it on exit. The app is published self-contained
# linux-x64 into a temporary folder, removed on exit. Build output and progress go to stderr; the figures go to stdout.
# Prints figures, never fails on them. Set PLATFORM_BUILD_LOCK to a file to take that flock(1) lock around the
# publish and the build only.
set -euo pipefail

bench="tenants.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 3 ]] || die "usage: infra/bench/tenants.sh [TENANTS] [USERS] [REQUESTS]"
tenants="${1:-200}"
users="${2:-1000}"
requests="${3:-400}"
for n in "$tenants" "$users" "$requests"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "TENANTS, USERS and REQUESTS must be positive whole numbers: $n"
done

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_use_preloadable_table
bench_build
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- tenants "$work/app/Platform.Functions" "$tenants" "$users" "$requests"
