#!/usr/bin/env bash
# The identity figures, each next to a baseline measured in the same run:
#   login:  sign-in throughput and p50/p99 of the Release publish of the app (Argon2id m=19456,t=2,p=1), with 1 and
#           4 clients, next to PasswordHasher.Verify called in-process with 1 and 4 threads; then GET /api/v1/me with
#           a valid token (session cached) next to GET /api/health/live, and a session's first request (cache miss).
#   tokens: in-process, per request: validating an access token with the app's TokenValidationParameters, the
#           session check on a cache hit, and the whole bearer authentication, next to decoding the token.
#
#   infra/bench/identity.sh [LOGINS]      default: 200 (per pass)
#
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# is published self-contained linux-x64 into a temporary folder, removed on exit. Build output goes to stderr; the
# figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the measurement itself failed.
set -euo pipefail

bench="identity.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/bench/identity.sh [LOGINS]"
logins="${1:-200}"
[[ "$logins" =~ ^[1-9][0-9]*$ ]] || die "LOGINS must be a positive whole number: $logins"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_build
bench_wait_for_azurite

# The app process inherits no Platform__ setting from here (ServerProcess clears them, so nothing in this shell changes
# what is measured); the login command gives it what it needs, including Platform__RateLimits__SignUpsPerHourPerIp=100000
# (every sign-up comes from 127.0.0.1) and Platform__RateLimits__LoginsPerHourPerIp=1000000 (the figure signs in ~800 times).

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- login "$work/app/Platform.Functions" "$logins"
echo
dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- tokens
