#!/usr/bin/env bash
# Build the deployment package of the function app: the zip that is deployed to Azure Functions.
#
#   infra/package.sh [OUTPUT_ZIP]        default: artifacts/platform.zip (relative to the repository root)
#
# It runs the same publish as `azd deploy` (dotnet publish -c Release -o <dir>) and zips the publish folder's
# contents, so host.json and every <Function>/function.json sit at the root of the zip, as the Functions host
# expects. Entries are sorted, dated 1980-01-01 and keep their Unix permissions (the executable bit of the app),
# so the same build gives the same zip. Build output goes to stderr; the last line on stdout is the zip's path.
#
# Deploy it without azd:  az functionapp deploy -g <group> -n <app> --src-path <zip> --type zip
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="$root/functions/Platform.Functions/Platform.Functions.csproj"

die() {
  echo "package.sh: $*" >&2
  exit 1
}

case "${1:-}" in
  -h | --help)
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $# -le 1 ]] || die "usage: infra/package.sh [OUTPUT_ZIP]"

output="${1:-$root/artifacts/platform.zip}"
case "$output" in
  /*) ;;
  *) output="$PWD/$output" ;;
esac
[[ "$output" == *.zip ]] || die "the output must be a .zip file: $output"

command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is needed"
[[ -f "$project" ]] || die "project not found: $project"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
publish="$work/publish"

echo "package.sh: dotnet publish -c Release ($project)" >&2
DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
  dotnet publish "$project" -c Release -o "$publish" >&2 || die "dotnet publish failed"

# What the Functions host needs at the root of the package.
[[ -f "$publish/host.json" ]] || die "host.json is missing from the publish output"
shopt -s nullglob
functions=("$publish"/*/function.json)
shopt -u nullglob
[[ ${#functions[@]} -gt 0 ]] || die "no <Function>/function.json in the publish output"

mkdir -p "$(dirname "$output")"
rm -f "$output"

if command -v python3 >/dev/null 2>&1; then
  python3 - "$publish" "$output" <<'PY'
import os
import sys
import zipfile

source, target = sys.argv[1], sys.argv[2]
paths = []
for directory, subdirectories, files in os.walk(source):
    subdirectories.sort()
    for name in files:
        paths.append(os.path.join(directory, name))
paths.sort(key=lambda p: os.path.relpath(p, source).replace(os.sep, "/"))

with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for path in paths:
        entry = zipfile.ZipInfo(os.path.relpath(path, source).replace(os.sep, "/"), date_time=(1980, 1, 1, 0, 0, 0))
        entry.create_system = 3  # Unix, so the permission bits below are honoured on extraction
        entry.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
        entry.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as handle:
            archive.writestr(entry, handle.read())
PY
elif command -v zip >/dev/null 2>&1; then
  find "$publish" -exec touch -h -t 198001010000 {} +
  (cd "$publish" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | zip -q -X -9 "$output" -@)
else
  die "python3 or zip is needed to write the zip"
fi

echo "package.sh: ${#functions[@]} functions, $(du -h "$output" | cut -f1) -> $output" >&2
echo "$output"
