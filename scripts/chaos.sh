#!/usr/bin/env bash
# The chaos suite (integration/tests/chaos.rs) on its own, with its table at the end: the AM
# SIGKILLed during maps, reduces and the commit, three workers killed in one run, a stopped
# worker, `filex kill` then a re-run, object-store faults during the commit — each case
# FILEX_CHAOS_RUNS times (default 2) with timings from FILEX_CHAOS_SEED (default: the clock).
# Needs the mini cluster and the S3 server running, and their environment:
#   eval "$(scripts/cluster.sh env)"; eval "$(scripts/s3-server.sh env)"
# FILEX_BIN names the filex binary (default target/debug/filex, built here when missing).
# Extra arguments go to the test binary (a case's name runs that case alone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export FILEX_BIN="${FILEX_BIN:-$ROOT/target/debug/filex}"
[ -x "$FILEX_BIN" ] || cargo build --bin filex
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
export FILEX_CHAOS_TABLE="$table"
started=$SECONDS
status=0
cargo test -p filex-integration --test chaos -- --test-threads=1 --nocapture "$@" || status=$?
echo
echo "chaos suite: $((SECONDS - started)) s, exit $status"
echo "| case                   | runs | faults | lines lost | lines duplicated | over clean  |"
echo "|------------------------|------|--------|------------|------------------|-------------|"
cat "$table"
exit "$status"
