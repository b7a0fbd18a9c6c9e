# Sourced by the figure scripts (startup.sh, identity.sh, users.sh, signin-under-bulk.sh): the setup they share - tools, a throwaway
# Azurite (in memory, free ports; installed with npm ci if missing; stopped on exit), the app published exactly as
# deployed into a temporary folder (removed on exit) - so each script says only what it measures. Set
# PLATFORM_BUILD_LOCK to a lock file to run only the builds under flock(1), not the measurement.
# The caller sets `bench` (its name, for messages) before sourcing.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

die() { echo "${bench}: $*" >&2; exit 1; }

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
table_pid=""
cleanup() {
  local pid
  for pid in "$azurite_pid" "$table_pid"; do
    if [[ -n "$pid" ]]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  # The table service's own account: what its key index served and, with PLATFORM_BENCH_INDEX_CHECK=1, whether every
  # answer was Azurite's. A difference stopped it (status 3): then this run fails whatever the runner printed.
  local failed=""
  if [[ -n "$table_pid" && -f "$work/table.log" ]]; then
    grep -E "^preloadable-table.js: " "$work/table.log" | sed "s/^/${bench}: /" >&2 || true
    grep -q "INDEX CHECK FAILED" "$work/table.log" && failed=1
  fi
  rm -rf "$work"
  if [[ -n "$failed" ]]; then
    echo "${bench}: the key index answered differently from Azurite (above): the figures of this run do not count" >&2
    exit 3
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints N free TCP ports of 127.0.0.1 on one line.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(*(s.getsockname()[1] for s in sockets))
for s in sockets:
    s.close()
PY
}

# Starts Azurite in the background; bench_wait_for_azurite waits for it (publish in between, while it starts).
bench_start_azurite() {
  if [[ ! -f infra/node_modules/azurite/dist/src/azurite.js ]]; then
    echo "${bench}: installing Azurite (npm ci in infra/)" >&2
    (cd infra && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi

  read -r blob_port queue_port table_port < <(free_ports 3)

  # PLATFORM_BENCH_AZURITE_DEBUG=FILE keeps Azurite's debug log (every request, its garbage collector's passes) there.
  local debug=()
  [[ -z "${PLATFORM_BENCH_AZURITE_DEBUG:-}" ]] || debug=(--debug "$PLATFORM_BENCH_AZURITE_DEBUG")
  # Its extent collection sweeps in one pass instead of a stop of seconds a minute (azurite-gc.js says why);
  # PLATFORM_BENCH_STOCK_GC=1 keeps the stock sweep.
  local gc=(--require "$PWD/infra/bench/azurite-gc.js")
  case "${PLATFORM_BENCH_STOCK_GC:-0}" in
    0) ;;
    1) gc=() ;;
    *) die "PLATFORM_BENCH_STOCK_GC must be 0 (the default) or 1" ;;
  esac
  node "${gc[@]}" infra/node_modules/azurite/dist/src/azurite.js "${debug[@]}" --silent --inMemoryPersistence --skipApiVersionCheck --disableTelemetry \
    --blobHost 127.0.0.1 --blobPort "$blob_port" \
    --queueHost 127.0.0.1 --queuePort "$queue_port" \
    --tableHost 127.0.0.1 --tablePort "$table_port" >"$work/azurite.log" 2>&1 &
  azurite_pid=$!
}

# After bench_start_azurite, for figures whose seed is too large for Azurite's REST insert: serves tables from
# infra/bench/preloadable-table.js instead (the same Azurite table service, in this process of its own, plus a preload
# endpoint), and exports PLATFORM_BENCH_TABLE_PRELOAD for the runner. Its heap may grow to 16 GB: millions of rows.
# Key lookups and single-partition key ranges are served by its key index (--indexed-keys; same answers, see
# docs/benchmarks.md "Seeding the scale figures") unless PLATFORM_BENCH_INDEXED_KEYS=0, which measures stock Azurite.
# PLATFORM_BENCH_INDEX_CHECK=1 makes it also run Azurite's own code for each of those and stop on any difference.
bench_use_preloadable_table() {
  local control_port indexed=(--indexed-keys)
  case "${PLATFORM_BENCH_INDEXED_KEYS:-1}" in
    1) ;;
    0) indexed=() ;;
    *) die "PLATFORM_BENCH_INDEXED_KEYS must be 1 (the default) or 0" ;;
  esac
  read -r table_port control_port < <(free_ports 2)
  node --max-old-space-size=16384 infra/bench/preloadable-table.js --port "$table_port" --controlPort "$control_port" "${indexed[@]}" \
    >"$work/table.log" 2>&1 &
  table_pid=$!
  export PLATFORM_BENCH_TABLE_PRELOAD="http://127.0.0.1:$control_port/"
}

# The app exactly as deployed (its csproj makes every publish Release, self-contained linux-x64, ReadyToRun) into
# $work/app, and the benchmark runner.
bench_build() {
  echo "${bench}: dotnet publish -c Release functions/Platform.Functions" >&2
  "${locked[@]}" dotnet publish functions/Platform.Functions -c Release -o "$work/app" >&2 || die "publishing the app failed"
  echo "${bench}: dotnet build -c Release tests/Platform.Benchmarks" >&2
  "${locked[@]}" dotnet build tests/Platform.Benchmarks -c Release >&2 || die "building the benchmarks failed"
}

# Waits until Azurite answers and exports AzureWebJobsStorage for the runner (which hands it to the app).
bench_wait_for_azurite() {
  for _ in $(seq 1 150); do
    if answers "$blob_port" && answers "$queue_port" && answers "$table_port"; then break; fi
    kill -0 "$azurite_pid" 2>/dev/null || { cat "$work/azurite.log" >&2; die "Azurite exited"; }
    [[ -z "$table_pid" ]] || kill -0 "$table_pid" 2>/dev/null || { cat "$work/table.log" >&2; die "the preloadable table service exited"; }
    sleep 0.2
  done
  answers "$table_port" || { cat "$work/azurite.log" >&2; die "Azurite did not start within 30 s"; }

  local account="devstoreaccount1"
  local key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/$account;QueueEndpoint=http://127.0.0.1:$queue_port/$account;TableEndpoint=http://127.0.0.1:$table_port/$account;"
}
