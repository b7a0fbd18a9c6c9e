#!/usr/bin/env bash
# The startup figure: process start to first 200 on GET /api/health/live (median of N runs) and resident memory
# after 5 s idle, of the Release publish of the app exactly as deployed, next to a bare ASP.NET Core app
# (tests/Platform.Benchmarks.Baseline) measured in the same run. Goal: under 1 s and under 150 MB.
#
#   infra/bench/startup.sh [RUNS]        default: 5
#
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# and the baseline are published self-contained linux-x64 into a temporary folder, removed on exit. Build output
# goes to stderr; the figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the
# measurement itself failed.
set -euo pipefail

bench="startup.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/bench/startup.sh [RUNS]"
runs="${1:-5}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number: $runs"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_build
echo "startup.sh: dotnet publish -c Release -r linux-x64 --self-contained tests/Platform.Benchmarks.Baseline" >&2
"${locked[@]}" dotnet publish tests/Platform.Benchmarks.Baseline -c Release -r linux-x64 --self-contained -o "$work/baseline" >&2 \
  || die "publishing the baseline failed"
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- \
  startup "$work/app/Platform.Functions" "$work/baseline/Platform.Benchmarks.Baseline" "$runs"
