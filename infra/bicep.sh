#!/usr/bin/env bash
# Build and lint the Azure infrastructure (bicep/main.bicep) with a pinned Bicep CLI, failing on any warning.
#
#   infra/bicep.sh [check]            build + lint; exit 1 on any warning or error (the default)
#   infra/bicep.sh build-json FILE    compile bicep/main.bicep to ARM JSON in FILE; exit 1 on any warning or error
#   infra/bicep.sh lint               lint only; print the diagnostics; exit 1 on any warning or error
#   infra/bicep.sh path               print the path of the bicep executable (restoring it first if needed)
#   infra/bicep.sh exec ARGS...       run that bicep with ARGS (e.g. exec format bicep/main.bicep)
#
# The CLI is the NuGet package Azure.Bicep.CommandLine.<rid> (version below), restored through
# infra/bicep/BicepCli.proj into the NuGet global packages folder; nothing else is downloaded.
# Set BICEP=/path/to/bicep to use another executable. Linter rule levels live in bicep/bicepconfig.json.
set -euo pipefail

readonly BICEP_VERSION=0.49.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$root/bicep/main.bicep"

die() {
  echo "bicep.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

bicep_rid() {
  local os arch
  os="$(uname -s)"
  arch="$(uname -m)"
  case "$os/$arch" in
    Linux/x86_64) echo linux-x64 ;;
    Linux/aarch64 | Linux/arm64) echo linux-arm64 ;;
    Darwin/x86_64) echo osx-x64 ;;
    Darwin/arm64) echo osx-arm64 ;;
    *) die "no Bicep CLI package for $os/$arch; set BICEP=/path/to/bicep" ;;
  esac
}

packages_folder() {
  if [[ -n "${NUGET_PACKAGES:-}" ]]; then
    echo "${NUGET_PACKAGES%/}"
    return
  fi
  local line
  line="$(dotnet nuget locals global-packages --list --force-english-output 2>/dev/null | grep -m1 'global-packages:' || true)"
  if [[ -n "$line" ]]; then
    line="${line#*global-packages: }"
    echo "${line%/}"
  else
    echo "$HOME/.nuget/packages"
  fi
}

# Prints the bicep executable, restoring the pinned package the first time.
resolve_bicep() {
  if [[ -n "${BICEP:-}" ]]; then
    [[ -x "$BICEP" ]] || die "BICEP=$BICEP is not an executable file"
    echo "$BICEP"
    return
  fi
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is needed to restore the Bicep CLI"

  local rid id exe
  rid="$(bicep_rid)"
  id="azure.bicep.commandline.$rid"
  exe="$(packages_folder)/$id/$BICEP_VERSION/tools/bicep"
  if [[ ! -f "$exe" ]]; then
    echo "bicep.sh: restoring Azure.Bicep.CommandLine.$rid $BICEP_VERSION" >&2
    DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
      dotnet restore "$root/infra/bicep/BicepCli.proj" -p:BicepRid="$rid" -p:BicepVersion="$BICEP_VERSION" \
      --verbosity quiet >&2 || die "restore of the Bicep CLI failed"
    exe="$(packages_folder)/$id/$BICEP_VERSION/tools/bicep"
    [[ -f "$exe" ]] || die "restore finished but $exe is missing"
  fi
  if [[ ! -x "$exe" ]]; then
    chmod u+x "$exe" 2>/dev/null || die "$exe is not executable (and chmod failed)"
  fi
  echo "$exe"
}

# Runs bicep with the given arguments; prints its diagnostics to stderr; fails on a non-zero exit or on any
# warning or error diagnostic (bicep itself exits 0 when there are only warnings).
run_strict() {
  local bicep="$1"
  shift
  local log status=0
  log="$(mktemp)"
  "$bicep" "$@" 2>"$log" || status=$?
  # Each diagnostic is printed once per pass; show each line once.
  awk '!seen[$0]++' "$log" >&2
  if [[ $status -ne 0 ]] || grep -Eq ' : (Warning|Error) ' "$log"; then
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

cmd_build_json() {
  local out="$1" bicep
  bicep="$(resolve_bicep)"
  mkdir -p "$(dirname "$out")"
  run_strict "$bicep" build "$template" --outfile "$out" || die "bicep build reported warnings or errors (see above)"
}

cmd_lint() {
  local bicep
  bicep="$(resolve_bicep)"
  run_strict "$bicep" lint "$template" || die "bicep lint reported warnings or errors (see above)"
}

cmd_check() {
  local bicep json
  bicep="$(resolve_bicep)"
  json="$(mktemp)"
  if ! run_strict "$bicep" build "$template" --stdout >"$json"; then
    rm -f "$json"
    die "bicep build reported warnings or errors (see above)"
  fi
  rm -f "$json"
  run_strict "$bicep" lint "$template" || die "bicep lint reported warnings or errors (see above)"
  echo "bicep.sh: bicep/main.bicep builds and lints clean (Bicep CLI $("$bicep" --version | awk '{print $4}'))"
}

case "${1:-check}" in
  check)
    [[ $# -le 1 ]] || die "check takes no arguments"
    cmd_check
    ;;
  build-json)
    [[ $# -eq 2 ]] || die "usage: infra/bicep.sh build-json OUTPUT_JSON"
    cmd_build_json "$2"
    ;;
  lint)
    [[ $# -le 1 ]] || die "lint takes no arguments"
    cmd_lint
    ;;
  path)
    resolve_bicep
    ;;
  exec)
    shift
    bicep="$(resolve_bicep)"
    exec "$bicep" "$@"
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
