#!/usr/bin/env bash
# shellcheck disable=SC2016  # the `bash -c '...'` snippets expand their own "$1"...
# Benchmark: `filex run` against the shell pipeline a user would write instead and against
# the floor (decompress the input, compress the output), in one run on one corpus.
#
#   scripts/bench.sh
#
# Environment (all optional):
#   BENCH_DIR        working directory                 (default: target/bench)
#   BENCH_RATE       lines/s per platform               (default: 55, ~1.2 GB raw for 3 h x 6)
#   BENCH_HOURS      window length in hours             (default: 3)
#   BENCH_PLATFORMS  comma list for `filex gen`         (default: gen's six platforms)
#   BENCH_SEED       corpus seed                        (default: 7)
#   BENCH_THREADS    threads for filex and the baselines (default: number of cores)
#   BENCH_MEMORY     filex --memory                     (default: 1G)
#   BENCH_MIN_MB     refuse a corpus smaller than this  (default: 1000 MB raw)
#   BENCH_REUSE=1    reuse the corpus of a previous run with the same settings
#   BENCH_KEEP=1     keep the corpus and outputs afterwards (default: delete them)
#
# Every contender reads the same shards from the page cache (they are read once before the
# first timing). Wall time, CPU time (user + system) and peak RSS come from /usr/bin/time -v.
# On a machine shared with other work the wall times stretch; the load average is printed,
# and the CPU seconds are the steadier comparison then.
# The shell pipeline is `zcat | LC_ALL=C sort | gzip -6`: one file, sorted by the whole line,
# not by event time, not split by domain and hour: it does less than filex and is still the
# yardstick users reach for. The floor does only what no implementation can avoid:
# decompressing every input byte (pigz -dc, one process per core) and compressing every
# output byte (pigz -6 on all cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-$ROOT/target/bench}"
RATE="${BENCH_RATE:-55}"
HOURS="${BENCH_HOURS:-3}"
PLATFORMS="${BENCH_PLATFORMS:-}"
SEED="${BENCH_SEED:-7}"
THREADS="${BENCH_THREADS:-$(nproc)}"
MEMORY="${BENCH_MEMORY:-1G}"
MIN_MB="${BENCH_MIN_MB:-1000}"
FILEX="$ROOT/target/release/filex"
CORPUS="$DIR/corpus"

die() {
  echo "bench: FAILED: $*" >&2
  exit 1
}

need_tool() { # need_tool BINARY DEBIAN_PACKAGE
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    echo "bench: installing $2" >&2
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$2" >/dev/null; } ||
        die "cannot install $2"
    else
      die "$1 is missing (apt-get install $2)"
    fi
  fi
}

need_tool /usr/bin/time time
need_tool pigz pigz
need_tool python3 python3

# json_get FILE EXPR: evaluates a Python expression on the parsed JSON `j`.
json_get() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# timed NAME CMD...: runs CMD under /usr/bin/time -v; records wall seconds, CPU seconds and
# peak RSS (MB) in WALL[NAME], CPU[NAME] and RSS[NAME]. Fails the benchmark if CMD fails.
declare -A WALL CPU RSS
timed() {
  local name="$1"
  shift
  local tf="$DIR/time.$name.txt"
  if ! /usr/bin/time -v -o "$tf" "$@"; then
    cat "$tf" >&2 || true
    die "$name: command failed: $*"
  fi
  WALL[$name]="$(awk -F': ' '/Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tf")"
  CPU[$name]="$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$tf")"
  RSS[$name]="$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tf")"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== build"
(cd "$ROOT" && cargo build --release --bin filex) || die "cargo build failed"

mkdir -p "$DIR"
settings="rate=$RATE hours=$HOURS platforms=$PLATFORMS seed=$SEED"
if [ "${BENCH_REUSE:-0}" = 1 ] && [ -f "$CORPUS/_gen.json" ] && [ "$(cat "$DIR/corpus.settings" 2>/dev/null)" = "$settings" ]; then
  echo "== reusing the corpus in $CORPUS ($settings)"
  GEN_SECS="(reused)"
else
  echo "== generate ($settings)"
  rm -rf "$CORPUS"
  gen_args=(gen --out "$CORPUS" --rate "$RATE" --hours "$HOURS" --seed "$SEED" --threads "$THREADS")
  [ -n "$PLATFORMS" ] && gen_args+=(--platforms "$PLATFORMS")
  timed gen "$FILEX" "${gen_args[@]}"
  GEN_SECS="${WALL[gen]}"
  echo "$settings" >"$DIR/corpus.settings"
fi
TRUTH="$CORPUS/_gen.json"
[ -f "$TRUTH" ] || die "no $TRUTH: filex gen did not write its ground truth"
RAW_BYTES="$(json_get "$TRUTH" 'j["totals"]["bytes_raw"]')"
GZ_BYTES="$(json_get "$TRUTH" 'j["totals"]["bytes_gz"]')"
LINES_IN="$(json_get "$TRUTH" 'j["totals"]["lines_in"]')"
LINES_OUT="$(json_get "$TRUTH" 'j["totals"]["lines_out"]')"
SHARDS="$(json_get "$TRUTH" 'j["totals"]["shards"]')"
RAW_MB="$(python3 -c "print(round($RAW_BYTES / 1e6, 1))")"
python3 -c "import sys; sys.exit(0 if $RAW_BYTES >= $MIN_MB * 1e6 else 1)" ||
  die "corpus is only $RAW_MB MB raw (< $MIN_MB MB); raise BENCH_RATE or BENCH_HOURS"

find "$CORPUS/shards" -type f -name '*.gz' | LC_ALL=C sort >"$DIR/inputs.txt"
[ "$(wc -l <"$DIR/inputs.txt")" = "$SHARDS" ] || die "found $(wc -l <"$DIR/inputs.txt") shards, _gen.json says $SHARDS"
echo "== warm the page cache"
xargs -a "$DIR/inputs.txt" -d '\n' cat >/dev/null

# run_filex NAME FORMAT: one `filex run` into its own output root; checks its counters.
run_filex() {
  local name="$1" format="$2" root="$DIR/out-$2"
  rm -rf "$root"
  echo "== filex run (output $format)"
  timed "$name" bash -c 'out="$1"; shift; "$@" >"$out"' _ "$DIR/$name.stdout" \
    "$FILEX" run "$CORPUS/job.toml" --threads "$THREADS" --memory "$MEMORY" --no-progress \
    --set "output.format=$format" --set "output.root=$root"
  local url
  url="$(tail -n 1 "$DIR/$name.stdout")"
  case "$url" in
    "manifest: file://"*) ;;
    *) die "$name: last stdout line is not 'manifest: file://…': $url" ;;
  esac
  local manifest="${url#manifest: file://}"
  [ -f "$manifest" ] || die "$name: manifest $manifest missing"
  local out
  out="$(json_get "$manifest" 'j["counters"]["lines_out"]')"
  [ "$out" = "$LINES_OUT" ] || die "$name: lines_out $out, ground truth $LINES_OUT"
  OUT_BYTES[$name]="$(json_get "$manifest" 'sum(p["bytes"] for p in j["partitions"])')"
  # The uncompressed output, for the floor's compression step (not timed).
  json_get "$manifest" '"\n".join(p["path"] for p in j["partitions"])' |
    sed "s#^#$root/#" | xargs -d '\n' cat | pigz -dc >"$DIR/plain-$format.txt"
}
declare -A OUT_BYTES
run_filex filex_json json
run_filex filex_raw raw

echo "== shell pipeline: zcat | LC_ALL=C sort -S 50% --parallel=$THREADS | gzip -6"
mkdir -p "$DIR/sort-tmp"
timed shell bash -c 'set -o pipefail; xargs -a "$1" -d "\n" zcat | LC_ALL=C sort -S 50% --parallel="$2" -T "$3" | gzip -6 >"$4"' _ \
  "$DIR/inputs.txt" "$THREADS" "$DIR/sort-tmp" "$DIR/shell-out.gz"
SHELL_LINES="$(pigz -dc "$DIR/shell-out.gz" | wc -l)"

echo "== floor: decompress the input on $THREADS cores; compress the output (pigz -6 -p $THREADS)"
per=$(((SHARDS + THREADS - 1) / THREADS))
timed decompress bash -c 'xargs -a "$1" -d "\n" -n "$2" -P "$3" pigz -dc >/dev/null' _ "$DIR/inputs.txt" "$per" "$THREADS"
timed compress_json bash -c 'pigz -6 -p "$1" <"$2" >/dev/null' _ "$THREADS" "$DIR/plain-json.txt"
timed compress_raw bash -c 'pigz -6 -p "$1" <"$2" >/dev/null' _ "$THREADS" "$DIR/plain-raw.txt"
WALL[floor_json]="$(python3 -c "print(${WALL[decompress]} + ${WALL[compress_json]})")"
WALL[floor_raw]="$(python3 -c "print(${WALL[decompress]} + ${WALL[compress_raw]})")"
CPU[floor_json]="$(python3 -c "print(${CPU[decompress]} + ${CPU[compress_json]})")"
CPU[floor_raw]="$(python3 -c "print(${CPU[decompress]} + ${CPU[compress_raw]})")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RAW_BYTES" "$GZ_BYTES" "$LINES_IN" "$SHARDS" "$GEN_SECS" "$THREADS" "$SHELL_LINES" \
  "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" \
  "filex run, json output@@${WALL[filex_json]}@@${CPU[filex_json]}@@${RSS[filex_json]}@@${OUT_BYTES[filex_json]}" \
  "filex run, raw output@@${WALL[filex_raw]}@@${CPU[filex_raw]}@@${RSS[filex_raw]}@@${OUT_BYTES[filex_raw]}" \
  "zcat | sort | gzip -6 (shell)@@${WALL[shell]}@@${CPU[shell]}@@${RSS[shell]}@@$(stat -c %s "$DIR/shell-out.gz")" \
  "floor, json output@@${WALL[floor_json]}@@${CPU[floor_json]}@@-@@-" \
  "floor, raw output@@${WALL[floor_raw]}@@${CPU[floor_raw]}@@-@@-" \
  "${WALL[decompress]}" "${WALL[compress_json]}" "${WALL[compress_raw]}" <<'EOF'
import sys
a = sys.argv[1:]
raw, gz, lines, shards = int(a[0]), int(a[1]), int(a[2]), int(a[3])
gen, threads, shell_lines = a[4], a[5], int(a[6])
load_before, load_after, cores = a[7], a[8], int(a[9])
rows = [r.split("@@") for r in a[10:15]]
dec, cj, cr = (float(x) for x in a[15:18])
mb = raw / 1e6
gen_speed = ""
try:
    gen_speed = f" ({mb / float(gen):.0f} MB/s raw)"
except ValueError:
    pass
print()
print(f"corpus: {shards} shards, {lines:,} lines, {mb:.0f} MB raw, {gz / 1e6:.0f} MB gzip; generated in {gen} s{gen_speed}")
print(f"threads: {threads}; load average before {load_before}, after {load_after} ({cores} cores)")
if max(float(x) for x in (load_before + " " + load_after).split()) > cores:
    print("  warning: the machine was busy with other work; wall times are stretched, compare CPU s too")
print()
print(f"{'':32} {'wall s':>8} {'CPU s':>8} {'MB/s raw':>9} {'lines/s':>11} {'peak RSS MB':>12} {'out MB':>8}")
figures = {}
for name, wall, cpu, rss, out in rows:
    w, c = float(wall), float(cpu)
    figures[name] = (w, c)
    out_mb = f"{int(out) / 1e6:.1f}" if out != "-" else "-"
    print(f"{name:32} {w:8.2f} {c:8.2f} {mb / w:9.1f} {lines / w:11,.0f} {rss:>12} {out_mb:>8}")
print(f"  (floor = decompress {dec:.2f} s + compress json {cj:.2f} s / raw {cr:.2f} s, wall)")
if shell_lines != lines:
    print(f"  note: the shell pipeline wrote {shell_lines:,} lines (it keeps headers, rejects and out-of-window lines)")
print()
shell = figures["zcat | sort | gzip -6 (shell)"]
ok = True
for fmt in ("json", "raw"):
    f = figures[f"filex run, {fmt} output"]
    fl = figures[f"floor, {fmt} output"]
    speed, over = shell[0] / f[0], f[0] / fl[0]
    s_ok, f_ok = speed >= 5, over <= 1.5
    ok &= s_ok and f_ok
    print(f"filex ({fmt}): {speed:.1f}x faster than the shell (CPU {shell[1] / f[1]:.1f}x; target >= 5x: "
          f"{'met' if s_ok else 'MISSED'}); {over:.2f}x the floor (CPU {f[1] / fl[1]:.2f}x; target <= 1.5x: "
          f"{'met' if f_ok else 'MISSED'})")
print(f"the shell pipeline itself takes {shell[0] / figures['floor, json output'][0]:.1f}x the floor (json) here")
print()
print("all targets met" if ok else "some targets missed")
EOF

if [ "${BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$CORPUS" "$DIR"/out-* "$DIR"/plain-*.txt "$DIR/shell-out.gz" "$DIR/sort-tmp" "$DIR/corpus.settings"
fi
