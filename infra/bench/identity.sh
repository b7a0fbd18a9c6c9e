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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

die() { echo "identity.sh: $*" >&2; exit 1; }

case "${1:-}" in
  -h | --help)
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/bench/identity.sh [LOGINS]"
logins="${1:-200}"
[[ "$logins" =~ ^[1-9][0-9]*$ ]] || die "LOGINS must be a positive whole number: $logins"

command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is needed"
command -v node >/dev/null || die "Node.js is needed to run Azurite"
command -v python3 >/dev/null || die "python3 is needed to pick free ports"

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
  echo "identity.sh: installing Azurite (npm ci in infra/)" >&2
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

# Publish while Azurite starts, exactly as deployed (the app's csproj makes every publish Release-ready,
# self-contained linux-x64). The benchmarks reference the app, for the in-process baselines.
echo "identity.sh: dotnet publish -c Release functions/Platform.Functions" >&2
dotnet publish functions/Platform.Functions -c Release -o "$work/app" >&2 || die "publishing the app failed"
echo "identity.sh: dotnet build -c Release tests/Platform.Benchmarks" >&2
dotnet build tests/Platform.Benchmarks -c Release >&2 || die "building the benchmarks failed"

for _ in $(seq 1 150); do
  if answers "$blob_port" && answers "$queue_port" && answers "$table_port"; then break; fi
  kill -0 "$azurite_pid" 2>/dev/null || { cat "$work/azurite.log" >&2; die "Azurite exited"; }
  sleep 0.2
done
answers "$table_port" || { cat "$work/azurite.log" >&2; die "Azurite did not start within 30 s"; }

account="devstoreaccount1"
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/$account;QueueEndpoint=http://127.0.0.1:$queue_port/$account;TableEndpoint=http://127.0.0.1:$table_port/$account;"
# The app process inherits no Platform__ setting from here (ServerProcess clears them, so nothing in this shell changes
# what is measured); the login command gives it what it needs, including Platform__RateLimits__SignUpsPerHourPerIp=100000
# (every sign-up comes from 127.0.0.1) and Platform__RateLimits__LoginsPerHourPerIp=1000000 (the figure signs in ~800 times).

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- login "$work/app/Platform.Functions" "$logins"
echo
dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- tokens
