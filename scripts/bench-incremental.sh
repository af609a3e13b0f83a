#!/usr/bin/env bash
# Benchmark: incremental re-fusion. A 24-hour window (`filex gen`) is fused in full; late
# shards then arrive for two of its hours and the window is fused again: the re-run (which
# recomputes only the partitions the late shards feed) against a full run over the same
# inputs (into a fresh root), wall and CPU side by side. Also checks that both publish the
# same bytes.
#
#   scripts/bench-incremental.sh
#
# Environment (all optional):
#   BENCH_DIR        working directory                    (default: target/bench-incremental)
#   BENCH_RATE       lines/s per platform                 (default: 1, ~0.5 M lines over 24 h)
#   BENCH_HOURS      window length in hours               (default: 24)
#   BENCH_LATE_HOURS the hours (0-based) that get late shards (default: "5 17")
#   BENCH_THREADS    filex --threads                      (default: number of cores)
#   BENCH_MEMORY     filex --memory                       (default: 1G)
#   FILEX_BIN        the filex to measure (default: target/release/filex, built here)
#   BENCH_KEEP=1     keep the corpus and outputs afterwards
#
# Wall and CPU (user + system) come from /usr/bin/time -v; on a shared machine compare the
# CPU seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-$ROOT/target/bench-incremental}"
RATE="${BENCH_RATE:-1}"
HOURS="${BENCH_HOURS:-24}"
LATE_HOURS="${BENCH_LATE_HOURS:-5 17}"
THREADS="${BENCH_THREADS:-$(nproc)}"
MEMORY="${BENCH_MEMORY:-1G}"
START="2026-11-05T00:00:00+08:00"

die() {
  echo "bench-incremental: FAILED: $*" >&2
  exit 1
}
command -v /usr/bin/time >/dev/null || die "/usr/bin/time is missing (apt-get install time)"
command -v python3 >/dev/null || die "python3 is missing"

if [ -n "${FILEX_BIN:-}" ]; then
  FILEX="$FILEX_BIN"
else
  echo "== build"
  (cd "$ROOT" && cargo build --release --bin filex) || die "cargo build failed"
  FILEX="$ROOT/target/release/filex"
fi
[ -x "$FILEX" ] || die "no filex at $FILEX"

declare -A WALL CPU
timed() { # timed NAME CMD...: wall and CPU seconds of CMD in WALL[NAME], CPU[NAME]
  local name="$1" tf="$DIR/time.$1.txt"
  shift
  /usr/bin/time -v -o "$tf" "$@" >"$DIR/$name.stdout" 2>"$DIR/$name.stderr" ||
    { cat "$DIR/$name.stderr" >&2; die "$name: $*"; }
  WALL[$name]="$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tf")"
  CPU[$name]="$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$tf")"
}

rm -rf "$DIR"
mkdir -p "$DIR"
CORPUS="$DIR/corpus"
echo "== generate $HOURS h at $RATE lines/s per platform"
"$FILEX" gen --out "$CORPUS" --start "$START" --hours "$HOURS" --rate "$RATE" --traps \
  --threads "$THREADS" >/dev/null
run() { # run NAME ROOT [ARGS...]
  local name="$1" root="$2"
  shift 2
  timed "$name" "$FILEX" run "$CORPUS/job.toml" --threads "$THREADS" --memory "$MEMORY" \
    --no-progress --set "output.root=$root" "$@"
}
manifest() { # manifest ROOT: the window's manifest under ROOT
  find "$1/_manifests" -name '*.json' | head -n 1
}

echo "== full run"
run full "$DIR/out"

echo "== late shards for hours $LATE_HOURS (upyun, another seed)"
late=0
for h in $LATE_HOURS; do
  hour_start="$(python3 -c "
import datetime as d, sys
t = d.datetime.fromisoformat('$START') + d.timedelta(hours=$h)
print(t.isoformat())")"
  "$FILEX" gen --out "$DIR/late-$h" --start "$hour_start" --hours 1 --rate "$RATE" \
    --platforms upyun --seed $((100 + h)) --threads "$THREADS" >/dev/null
  while IFS= read -r f; do
    rel="${f#"$DIR/late-$h/shards/"}"
    dest="$CORPUS/shards/$(dirname "$rel")/late-$(basename "$rel")"
    mkdir -p "$(dirname "$dest")"
    cp "$f" "$dest"
    late=$((late + 1))
  done < <(find "$DIR/late-$h/shards" -type f -name '*.gz')
done
[ "$late" -gt 0 ] || die "no late shard generated"

echo "== re-run (incremental)"
run rerun "$DIR/out"
echo "== full run over the same inputs, into a fresh root"
run fresh "$DIR/fresh"

diff -r -x _manifests "$DIR/out" "$DIR/fresh" >/dev/null ||
  die "the re-run's output differs from a full run's"

python3 - "$(manifest "$DIR/out")" "$(manifest "$DIR/fresh")" "$late" "$THREADS" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "${WALL[full]}" "${CPU[full]}" "${WALL[fresh]}" "${CPU[fresh]}" \
  "${WALL[rerun]}" "${CPU[rerun]}" <<'EOF'
import json, sys
a = sys.argv[1:]
inc, fresh = json.load(open(a[0])), json.load(open(a[1]))
late, threads, load = int(a[2]), a[3], a[4]
full_w, full_c, fresh_w, fresh_c, re_w, re_c = (float(x) for x in a[5:11])
for k in ("counters", "rejects", "shards"):
    if inc[k] != fresh[k]:
        sys.exit(f"bench-incremental: FAILED: manifest {k} differs from the full run's")
strip = lambda m: [(p["path"], p["sha256"]) for p in m["partitions"]]
if strip(inc) != strip(fresh):
    sys.exit("bench-incremental: FAILED: partition checksums differ from the full run's")
s = inc["incremental"]
shards, lines = len(inc["shards"]), inc["counters"]["lines_in"]
print()
print(f"window: {shards} shards ({late} late), {lines:,} lines in, {len(inc['partitions'])} partitions;"
      f" threads {threads}; load average {load}")
print(f"re-run: {s['partitions_recomputed']} partitions recomputed, {s['partitions_kept']} kept;"
      f" {s['shards_read']} of {shards} shards read; output byte-identical to the full run")
print()
print(f"{'':40} {'wall s':>8} {'CPU s':>8}")
print(f"{'full run (before the late shards)':40} {full_w:8.2f} {full_c:8.2f}")
print(f"{'full run (same inputs as the re-run)':40} {fresh_w:8.2f} {fresh_c:8.2f}")
print(f"{'incremental re-run':40} {re_w:8.2f} {re_c:8.2f}")
print(f"re-run / full run: wall {re_w / fresh_w:.2f}x, CPU {re_c / fresh_c:.2f}x")
EOF

if [ "${BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$DIR"
fi
