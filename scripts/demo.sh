#!/usr/bin/env bash
# The embedded demo: generate sample shards from several CDN platforms, fuse them locally
# with the quick-start job (conf/quickstart.toml, copied to DIR/job.toml), print where the
# fused files are and the first lines of one of them. No cluster needed.
#
#   scripts/demo.sh [DIR]      (default DIR: demo/ under the project root)
#
# Environment: FILEX=path runs that binary instead of building target/release/filex
# (scripts/check-release.sh runs the demo with the released one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/demo}"
cd "$ROOT"

if [ -z "${FILEX:-}" ]; then
  cargo build --release --bin filex
  FILEX="$ROOT/target/release/filex"
fi

rm -rf "$DIR"
"$FILEX" gen --out "$DIR" --traps
# The quick-start example reads exactly what gen writes; it replaces gen's own job file.
cp "$ROOT/conf/quickstart.toml" "$DIR/job.toml"
echo
"$FILEX" run "$DIR/job.toml" | tee "$DIR/run.txt"

manifest_url="$(tail -n 1 "$DIR/run.txt" | sed 's/^manifest: //')"
manifest="${manifest_url#file://}"
first="$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["partitions"][0]["path"] if m["partitions"] else "")' "$manifest")"
echo
echo "fused files are under $DIR/output; the manifest is $manifest"
if [ -n "$first" ]; then
  echo "first lines of $DIR/output/$first:"
  # head closes the pipe early; that is not a failure of the demo.
  zcat "$DIR/output/$first" | head -n 3 || true
fi
