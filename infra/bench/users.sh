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
# Starts the pinned Azurite (in memory, free ports; installed with npm ci if missing) and stops it on exit. The app
# is published self-contained linux-x64 into a temporary folder, removed on exit. Build output goes to stderr, progress
# too; the figures go to stdout. Prints figures, never fails on them: the exit code is 0 unless the measurement itself
# failed. Set PLATFORM_BUILD_LOCK to a file to take that flock(1) lock around the publish and the build only (not the
# measurement), when other builds share the machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

die() { echo "users.sh: $*" >&2; exit 1; }

case "${1:-}" in
  -h | --help)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 2 ]] || die "usage: infra/bench/users.sh [USERS] [SCANS]"
users="${1:-100000}"
scans="${2:-20}"
[[ "$users" =~ ^[1-9][0-9]*$ ]] || die "USERS must be a positive whole number: $users"
[[ "$scans" =~ ^[1-9][0-9]*$ ]] || die "SCANS must be a positive whole number: $scans"

command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is needed"
command -v node >/dev/null || die "Node.js is needed to run Azurite"
command -v python3 >/dev/null || die "python3 is needed to pick free ports"
locked=()
if [[ -n "${PLATFORM_BUILD_LOCK:-}" ]]; then
  command -v flock >/dev/null || die "PLATFORM_BUILD_LOCK is set but flock(1) is missing"
  locked=(flock "$PLATFORM_BUILD_LOCK")
fi

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

work="$(mktemp -d)"
azurite_pid=""
cleanup() {
  if [[ -n "$azurite_pid" ]]; then
    kill "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -f infra/node_modules/azurite/dist/src/azurite.js ]]; then
  echo "users.sh: installing Azurite (npm ci in infra/)" >&2
  (cd infra && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

read -r blob_port queue_port table_port < <(python3 - <<'PY'
import socket
sockets = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(*(s.getsockname()[1] for s in sockets))
for s in sockets:
    s.close()
PY
)

node infra/node_modules/azurite/dist/src/azurite.js --silent --inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
  --blobHost 127.0.0.1 --blobPort "$blob_port" \
  --queueHost 127.0.0.1 --queuePort "$queue_port" \
  --tableHost 127.0.0.1 --tablePort "$table_port" >"$work/azurite.log" 2>&1 &
azurite_pid=$!

# Publish while Azurite starts, exactly as deployed (the app's csproj makes every publish Release, self-contained
# linux-x64, ReadyToRun). The benchmarks reference the app: the baseline uses its entity types, parser and evaluator.
echo "users.sh: dotnet publish -c Release functions/Platform.Functions" >&2
"${locked[@]}" dotnet publish functions/Platform.Functions -c Release -o "$work/app" >&2 || die "publishing the app failed"
echo "users.sh: dotnet build -c Release tests/Platform.Benchmarks" >&2
"${locked[@]}" dotnet build tests/Platform.Benchmarks -c Release >&2 || die "building the benchmarks failed"

for _ in $(seq 1 150); do
  if answers "$blob_port" && answers "$queue_port" && answers "$table_port"; then break; fi
  kill -0 "$azurite_pid" 2>/dev/null || { cat "$work/azurite.log" >&2; die "Azurite exited"; }
  sleep 0.2
done
answers "$table_port" || { cat "$work/azurite.log" >&2; die "Azurite did not start within 30 s"; }

account="devstoreaccount1"
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/$account;QueueEndpoint=http://127.0.0.1:$queue_port/$account;TableEndpoint=http://127.0.0.1:$table_port/$account;"

# The app process inherits no Platform__ setting from here (ServerProcess clears them); the users command gives it
# its own storage prefix and raised per-IP sign-up and sign-in limits (every request comes from 127.0.0.1).
dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- users "$work/app/Platform.Functions" "$users" "$scans"
