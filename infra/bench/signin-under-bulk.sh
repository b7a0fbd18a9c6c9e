#!/usr/bin/env bash
# Sign-in while bulk creates hash passwords, next to sign-in alone, in the same run:
#   p50/p99 of POST /api/v1/auth/login (1 client, one after another) for as long as two POST /api/v1/users/bulk of
#   BULK_USERS creates with passwords each (2 x 1000 Argon2id hashes by default) run at once, next to LOGINS sign-ins
#   alone before and LOGINS after; sign-ins answered 503 busy are counted. The bulk hashes run in the gate's bulk lane
#   (Platform__Auth__PasswordHashing__MaxConcurrentBulkHashes, by default a quarter of the slots).
#
#   infra/bench/signin-under-bulk.sh [LOGINS] [BULK_USERS]      defaults: 100, 1000 (about 3-5 minutes on 2 cores)
#
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# is published self-contained linux-x64 into a temporary folder, removed on exit. Build output goes to stderr; the
# figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the measurement itself failed.
# Set PLATFORM_BUILD_LOCK to a file to take that flock(1) lock around the publish and the build only.
set -euo pipefail

bench="signin-under-bulk.sh"
die() { echo "$bench: $*" >&2; exit 1; }
case "${1:-}" in
  -h | --help)
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 2 ]] || die "usage: infra/bench/signin-under-bulk.sh [LOGINS] [BULK_USERS]"
logins="${1:-100}"
bulk_users="${2:-1000}"
[[ "$logins" =~ ^[1-9][0-9]*$ ]] || die "LOGINS must be a positive whole number: $logins"
[[ "$bulk_users" =~ ^[1-9][0-9]*$ && "$bulk_users" -le 1000 ]] || die "BULK_USERS must be a whole number from 1 to 1000: $bulk_users"

# shellcheck source=infra/bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

bench_start_azurite
bench_build
bench_wait_for_azurite

# The app process inherits no Platform__ setting from here (ServerProcess clears them); the command gives it its own
# storage prefix and raised per-IP sign-up and sign-in limits (every request comes from 127.0.0.1).
dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- signin-under-bulk "$work/app/Platform.Functions" "$logins" "$bulk_users"
