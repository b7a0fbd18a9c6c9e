#!/usr/bin/env bash
# The webhook figures, each next to a baseline measured in the same run (the receiving side is a Kestrel listener on
# loopback inside the benchmark process; the app runs with Platform__Webhooks__AllowPrivateNetworks=true to reach it):
#   latency:    change-to-delivery p50/p99 of 50 POST .../movements a second for SECONDS (after 5 s warm-up), each
#               movement's delivery timed from its request's answer, next to the requests' own latency. Goal p50 < 1 s;
#   isolation:  the same pass with a second endpoint (same events) that never answers, then again after deleting it:
#               the healthy endpoint's p99 with and without. Goal: within 10 %;
#   deliveries: DELIVERIES user.created events (bulk create) to one endpoint, deliveries/s at the receiver from first to
#               last, next to as many Standard Webhooks-signed POSTs sent by the benchmark itself, one at a time;
#   intake:     INTAKE signed POST /api/v1/hooks/{id} (1 movement line each) with 16 clients, requests/s and p50/p99,
#               next to GET /api/health/live; and how long after the last 202 all were acted on.
#
#   infra/bench/webhooks.sh [SECONDS] [DELIVERIES] [INTAKE]     (defaults 30 1000 2000; about 6 minutes with the build)
#
# Platform__Webhooks__*, Platform__Triggers__* and Platform__Events__* variables set when calling are handed on to the
# app (e.g. Platform__Triggers__MaxPollingInterval), to try settings without a rebuild. Starts the pinned Azurite (in
# memory, free ports) and stops it on exit; publishes the app as deployed into a temporary folder. Progress goes to
# stderr, the figures to stdout. Never fails on the figures. Set PLATFORM_BUILD_LOCK to a file to hold that flock(1)
# lock around the builds only.
set -euo pipefail

bench="webhooks.sh"
case "${1:-}" in
  -h | --help)
    sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 3 ]] || { echo "usage: infra/bench/webhooks.sh [SECONDS] [DELIVERIES] [INTAKE]" >&2; exit 1; }
seconds="${1:-30}"
deliveries="${2:-1000}"
intake="${3:-2000}"
for value in "$seconds" "$deliveries" "$intake"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "$bench: SECONDS, DELIVERIES and INTAKE must be positive whole numbers: $value" >&2; exit 1; }
done

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
# Tables from the key-indexed service (docs/benchmarks.md, "Seeding the scale figures"): stock Azurite's inserts and
# point reads walk their partition, which at 100,000 rows makes both sides of a figure crawl; PLATFORM_BENCH_INDEXED_KEYS=0 for stock.
bench_use_preloadable_table
bench_build
bench_wait_for_azurite

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- webhooks "$work/app/Platform.Functions" "$seconds" "$deliveries" "$intake"
