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

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

set +e
DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
  dotnet test Platform.sln --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" --results-directory "$results" "$@"
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

if [[ $status -ne 0 && $failed -eq 0 ]]; then
  failed=1  # the build or the test host failed before any result was written
fi
echo "${passed} passed, ${failed} failed"
exit $status
