#!/usr/bin/env bash
# Runs Platform on http://localhost:7071 (Development).
#
# Storage: when AzureWebJobsStorage is set (environment or functions/Platform.Functions/local.settings.json),
# that account is used. Otherwise the pinned Azurite (infra/package.json) is installed if missing, started on
# 127.0.0.1:10000-10002 with its data under .azurite/, and stopped when the app stops.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is needed"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

configured_storage() {
  [[ -n "${AzureWebJobsStorage:-}" || -n "${AzureWebJobsStorage__tableServiceUri:-}" ]] && return 0
  local settings="functions/Platform.Functions/local.settings.json"
  [[ -f "$settings" ]] && grep -q '"AzureWebJobsStorage' "$settings"
}

azurite_pid=""
stop_azurite() {
  if [[ -n "$azurite_pid" ]]; then
    kill "$azurite_pid" 2>/dev/null || true
    wait "$azurite_pid" 2>/dev/null || true
  fi
}
trap stop_azurite EXIT INT TERM

if configured_storage; then
  echo "run.sh: using the configured storage account (AzureWebJobsStorage)" >&2
else
  command -v node >/dev/null || die "Node.js is needed to run Azurite (or set AzureWebJobsStorage)"
  if [[ ! -f infra/node_modules/azurite/dist/src/azurite.js ]]; then
    echo "run.sh: installing Azurite (npm ci in infra/)" >&2
    (cd infra && npm ci --no-audit --no-fund --loglevel=error)
  fi
  for port in 10000 10001 10002; do
    answers "$port" && die "port $port is taken. If that is an Azurite you started, run with AzureWebJobsStorage=UseDevelopmentStorage=true"
  done
  mkdir -p .azurite
  node infra/node_modules/azurite/dist/src/azurite.js --silent --location .azurite --debug .azurite/debug.log \
    --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 --skipApiVersionCheck --disableTelemetry &
  azurite_pid=$!
  for _ in $(seq 1 150); do
    if answers 10000 && answers 10001 && answers 10002; then break; fi
    kill -0 "$azurite_pid" 2>/dev/null || die "Azurite exited; see .azurite/debug.log"
    sleep 0.2
  done
  answers 10002 || die "Azurite did not start within 30 s; see .azurite/debug.log"
  echo "run.sh: Azurite is up (data in .azurite/)" >&2
  export AzureWebJobsStorage="UseDevelopmentStorage=true"
fi

export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"
dotnet run --project functions/Platform.Functions --launch-profile Platform "$@"
