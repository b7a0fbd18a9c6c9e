#!/usr/bin/env bash
# Builds and runs every test against a throwaway Azurite that the tests start themselves (free ports, in memory).
# Ends with one line "N passed, N failed" counted from the TRX results; the exit code is dotnet test's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v dotnet >/dev/null || { echo "test.sh: the .NET 10 SDK (dotnet) is needed" >&2; exit 1; }
command -v node >/dev/null || { echo "test.sh: Node.js is needed to run Azurite" >&2; exit 1; }

if [[ ! -f infra/node_modules/azurite/dist/src/azurite.js || ! -f infra/node_modules/@seriousme/openapi-schema-validator/package.json ]]; then
  (cd infra && npm ci --no-audit --no-fund --loglevel=error)
fi

# The html report test draws the report in headless Chromium (Debian's package). Installed here when missing, as root
# or through sudo without a password, alongside the build (apt's minutes do not add to the run's); when neither works
# (or apt has no network) that one test fails and says why.
install_chromium() {
  local apt_get=()
  if [[ $(id -u) -eq 0 ]]; then
    apt_get=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt_get=(sudo -n apt-get)
  fi
  if [[ ${#apt_get[@]} -gt 0 ]] && command -v apt-get >/dev/null; then
    echo "test.sh: installing chromium for the html report test" >&2
    { timeout 120 "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 "${apt_get[@]}" install -y -qq --no-install-recommends chromium >/dev/null; } \
      || echo "test.sh: could not install chromium; the html report test will fail" >&2
  else
    echo "test.sh: chromium is missing and apt-get cannot run here; the html report test will fail" >&2
  fi
}

chromium_install=""
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  install_chromium &
  chromium_install=$!
fi

# PLATFORM_TEST_RESULTS keeps the TRX in a folder of your choice; otherwise it goes with the run.
if [[ -n "${PLATFORM_TEST_RESULTS:-}" ]]; then
  results="$PLATFORM_TEST_RESULTS"
  mkdir -p "$results"
else
  results="$(mktemp -d)"
  trap 'rm -rf "$results"' EXIT
fi

export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
set +e
dotnet build Platform.sln -v q -nologo
status=$?
[[ -z "$chromium_install" ]] || wait "$chromium_install" || true
if [[ $status -ne 0 ]]; then
  echo "0 passed, 1 failed"  # the build failed: no test ran
  exit $status
fi

dotnet test Platform.sln --no-build --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" --results-directory "$results" "$@"
status=$?
set -e

passed=0
failed=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  p="$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  f="$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done

# Name what failed, with the first lines of its message, so a CI log that keeps only its tail still says what broke.
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  command -v python3 >/dev/null || break
  python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") != "Failed":
        continue
    message = r.findtext(".//t:Message", default="", namespaces=ns).strip().splitlines()
    print("FAILED " + r.get("testName", "?"))
    for line in message[:6]:
        print("  " + line[:300])
PY
done

if [[ $status -ne 0 && $failed -eq 0 ]]; then
  failed=1  # the build or the test host failed before any result was written
fi
echo "${passed} passed, ${failed} failed"
exit $status
