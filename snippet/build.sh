#!/usr/bin/env bash
# Rebuild dist/gov-tracking.min.js from src/gov-tracking.js with the terser pinned in
# package-lock.json. Usage: snippet/build.sh [OUT]   (default: snippet/dist/gov-tracking.min.js)
# The output is deterministic: tests/test_snippet_build.py rebuilds into a temporary file and
# compares it with the committed dist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/dist/gov-tracking.min.js}"
cd "$here"
if [ ! -x node_modules/.bin/terser ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
node_modules/.bin/terser src/gov-tracking.js \
  --ecma 5 --compress passes=3,unsafe=true --mangle --comments false \
  --output "$out"
