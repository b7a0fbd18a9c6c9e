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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

die() { echo "startup.sh: $*" >&2; exit 1; }

case "${1:-}" in
  -h | --help)
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/bench/startup.sh [RUNS]"
runs="${1:-5}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number: $runs"

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
  echo "startup.sh: installing Azurite (npm ci in infra/)" >&2
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

# Publish while Azurite starts. Both exactly as deployed: Release, self-contained linux-x64 (the app's csproj sets
# that for every publish; the baseline is told so explicitly).
echo "startup.sh: dotnet publish -c Release functions/Platform.Functions" >&2
dotnet publish functions/Platform.Functions -c Release -o "$work/app" >&2 || die "publishing the app failed"
echo "startup.sh: dotnet publish -c Release -r linux-x64 --self-contained tests/Platform.Benchmarks.Baseline" >&2
dotnet publish tests/Platform.Benchmarks.Baseline -c Release -r linux-x64 --self-contained -o "$work/baseline" >&2 \
  || die "publishing the baseline failed"
echo "startup.sh: dotnet build -c Release tests/Platform.Benchmarks" >&2
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

dotnet run -c Release --no-build --project tests/Platform.Benchmarks -- \
  startup "$work/app/Platform.Functions" "$work/baseline/Platform.Benchmarks.Baseline" "$runs"
