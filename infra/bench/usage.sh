#!/usr/bin/env bash
# The usage-metering figure: the request overhead of metering, GET /api/v1/permissions (a cheap authenticated route)
# p50/p99/mean with 1 and 4 clients on the published app metering (the default) next to the same app with
# Platform__Usage__Enabled=false, both running at once on one Azurite and answering alternating blocks of requests,
# so both see the same machine load. Then checks that every request of the metering app was counted.
#
#   infra/bench/usage.sh [REQUESTS]      default: 4000 (per app and pass)
#
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# is published self-contained linux-x64 into a temporary folder, removed on exit. Build output goes to stderr; the
# figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the measurement itself failed.
set -euo pipefail

bench="usage.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/bench/usage.sh [REQUESTS]"
requests="${1:-4000}"
[[ "$requests" =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive whole number: $requests"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_build
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- usage "$work/app/Platform.Functions" "$requests"
