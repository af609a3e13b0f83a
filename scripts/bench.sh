#!/usr/bin/env bash
# shellcheck disable=SC2016  # the `bash -c '...'` snippets expand their own "$1"...
# Benchmark: `filex run` against the shell pipeline a user would write instead and against
# the floor (decompress the input, compress the output, with the fastest codec there is), in one
# run on one corpus, for json and raw output.
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
#   BENCH_LEVEL      gzip level of filex, the shell and the floor (default: 6, filex's default)
#   BENCH_FILEX      the filex binary to measure (default: build target/release/filex)
#   BENCH_BASELINE   another filex binary to run beside this one (e.g. a build of main), so
#                    that a change is measured before/after within one invocation
#   BENCH_PERF=1     afterwards, profile one raw `filex run` with `perf record -g` and print
#                    the top of `perf report --no-children`
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
# yardstick users reach for. The floor does only what no implementation can avoid, with
# libdeflate (the fastest deflate codec, and the one filex compresses with) at the same level:
# decompressing every input shard (libdeflate-gunzip, whole-buffer inflate, batches of shards
# spread over all cores by xargs -P) and compressing every output byte (the output's
# uncompressed bytes, json- or raw-sized, cut into 4 MB pieces compressed by libdeflate-gzip on
# all cores). Its CPU is the user + system time of all those processes (/usr/bin/time counts
# every waited-for descendant); its wall is the two steps' wall times added.
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
LEVEL="${BENCH_LEVEL:-6}"
BASELINE="${BENCH_BASELINE:-}"
FILEX="${BENCH_FILEX:-$ROOT/target/release/filex}"
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
need_tool libdeflate-gzip libdeflate-tools
need_tool libdeflate-gunzip libdeflate-tools
[ "${BENCH_PERF:-0}" = 1 ] && need_tool perf linux-perf
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || die "BENCH_BASELINE=$BASELINE is not an executable"

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
if [ -z "${BENCH_FILEX:-}" ]; then
  echo "== build"
  (cd "$ROOT" && cargo build --release --bin filex) || die "cargo build failed"
fi
[ -x "$FILEX" ] || die "no filex binary at $FILEX"

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

# run_filex NAME FORMAT [BINARY]: one `filex run` into its own output root; checks its
# counters and keeps the uncompressed output for the floor's compression step.
run_filex() {
  local name="$1" format="$2" bin="${3:-$FILEX}" root="$DIR/out-$2"
  rm -rf "$root"
  echo "== $bin run (output $format)"
  timed "$name" bash -c 'out="$1"; shift; "$@" >"$out"' _ "$DIR/$name.stdout" \
    "$bin" run "$CORPUS/job.toml" --threads "$THREADS" --memory "$MEMORY" --no-progress \
    --set "output.format=$format" --set "output.root=$root" --set "output.gzip_level=$LEVEL"
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
  if [ -n "${PLAIN_SHA[$format]:-}" ]; then
    [ "$(sha256sum <"$DIR/plain-$format.txt")" = "${PLAIN_SHA[$format]}" ] ||
      die "$name: its $format output differs from the other binary's"
  fi
  PLAIN_SHA[$format]="$(sha256sum <"$DIR/plain-$format.txt")"
}
declare -A OUT_BYTES PLAIN_SHA
if [ -n "$BASELINE" ]; then
  run_filex base_json json "$BASELINE"
  run_filex base_raw raw "$BASELINE"
fi
run_filex filex_json json
run_filex filex_raw raw

echo "== shell pipeline: zcat | LC_ALL=C sort -S 50% --parallel=$THREADS | gzip -$LEVEL"
mkdir -p "$DIR/sort-tmp"
timed shell bash -c 'set -o pipefail; xargs -a "$1" -d "\n" zcat | LC_ALL=C sort -S 50% --parallel="$2" -T "$3" | gzip -"$5" >"$4"' _ \
  "$DIR/inputs.txt" "$THREADS" "$DIR/sort-tmp" "$DIR/shell-out.gz" "$LEVEL"
SHELL_LINES="$(pigz -dc "$DIR/shell-out.gz" | wc -l)"

echo "== floor: libdeflate-gunzip the shards on $THREADS cores; libdeflate-gzip -$LEVEL the output on $THREADS cores"
# Batches of 16 shards keep every core busy to the end; process start-up is then noise.
timed decompress bash -c 'xargs -a "$1" -d "\n" -n 16 -P "$2" libdeflate-gunzip -c >/dev/null' _ "$DIR/inputs.txt" "$THREADS"
for format in json raw; do
  rm -rf "$DIR/pieces-$format" && mkdir -p "$DIR/pieces-$format"
  split -b 4M -a 5 -d "$DIR/plain-$format.txt" "$DIR/pieces-$format/p"
  timed "compress_$format" bash -c 'find "$1" -type f | xargs -d "\n" -n 4 -P "$2" libdeflate-gzip -"$3" -c >/dev/null' _ \
    "$DIR/pieces-$format" "$THREADS" "$LEVEL"
  rm -rf "$DIR/pieces-$format"
  WALL[floor_$format]="$(python3 -c "print(${WALL[decompress]} + ${WALL[compress_$format]})")"
  CPU[floor_$format]="$(python3 -c "print(${CPU[decompress]} + ${CPU[compress_$format]})")"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

rows=(
  "filex run, json output@@${WALL[filex_json]}@@${CPU[filex_json]}@@${RSS[filex_json]}@@${OUT_BYTES[filex_json]}"
  "filex run, raw output@@${WALL[filex_raw]}@@${CPU[filex_raw]}@@${RSS[filex_raw]}@@${OUT_BYTES[filex_raw]}"
)
if [ -n "$BASELINE" ]; then
  rows+=(
    "baseline, json output@@${WALL[base_json]}@@${CPU[base_json]}@@${RSS[base_json]}@@${OUT_BYTES[base_json]}"
    "baseline, raw output@@${WALL[base_raw]}@@${CPU[base_raw]}@@${RSS[base_raw]}@@${OUT_BYTES[base_raw]}"
  )
fi
rows+=(
  "zcat | sort | gzip -$LEVEL (shell)@@${WALL[shell]}@@${CPU[shell]}@@${RSS[shell]}@@$(stat -c %s "$DIR/shell-out.gz")"
  "floor, json output@@${WALL[floor_json]}@@${CPU[floor_json]}@@-@@-"
  "floor, raw output@@${WALL[floor_raw]}@@${CPU[floor_raw]}@@-@@-"
)
python3 - "$RAW_BYTES" "$GZ_BYTES" "$LINES_IN" "$SHARDS" "$GEN_SECS" "$THREADS" "$SHELL_LINES" \
  "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" "$LEVEL" \
  "${WALL[decompress]}@@${CPU[decompress]}" "${WALL[compress_json]}@@${CPU[compress_json]}" \
  "${WALL[compress_raw]}@@${CPU[compress_raw]}" "${rows[@]}" <<'EOF'
import sys
a = sys.argv[1:]
raw, gz, lines, shards = int(a[0]), int(a[1]), int(a[2]), int(a[3])
gen, threads, shell_lines = a[4], a[5], int(a[6])
load_before, load_after, cores, level = a[7], a[8], int(a[9]), a[10]
dec, cj, cr = ([float(x) for x in v.split("@@")] for v in a[11:14])
rows = [r.split("@@") for r in a[14:]]
mb = raw / 1e6
gen_speed = ""
try:
    gen_speed = f" ({mb / float(gen):.0f} MB/s raw)"
except ValueError:
    pass
print()
print(f"corpus: {shards} shards, {lines:,} lines, {mb:.0f} MB raw, {gz / 1e6:.0f} MB gzip; generated in {gen} s{gen_speed}")
print(f"threads: {threads}; gzip level {level}; load average before {load_before}, after {load_after} ({cores} cores)")
if max(float(x) for x in (load_before + " " + load_after).split()) > cores:
    print("  warning: the machine was busy with other work; wall times are stretched, compare CPU s too")
print()
floor = {}
for name, wall, cpu, _, _ in rows:
    if name.startswith("floor, "):
        floor[name.split(", ")[1].split()[0]] = (float(wall), float(cpu))
shell = next((float(r[1]), float(r[2])) for r in rows if r[0].endswith("(shell)"))
print(f"{'':32} {'wall s':>8} {'CPU s':>8} {'MB/s raw':>9} {'lines/s':>11} {'peak RSS MB':>12} {'out MB':>8}"
      f" {'wall/floor':>10} {'CPU/floor':>10}")
figures = {}
for name, wall, cpu, rss, out in rows:
    w, c = float(wall), float(cpu)
    figures[name] = (w, c)
    out_mb = f"{int(out) / 1e6:.1f}" if out != "-" else "-"
    fmt = "json" if "json" in name else "raw"
    ratio = ""
    if not name.startswith("floor") and not name.endswith("(shell)"):
        ratio = f" {w / floor[fmt][0]:10.2f} {c / floor[fmt][1]:10.2f}"
    print(f"{name:32} {w:8.2f} {c:8.2f} {mb / w:9.1f} {lines / w:11,.0f} {rss:>12} {out_mb:>8}{ratio}")
print(f"  floor wall/CPU s: libdeflate-gunzip {dec[0]:.2f}/{dec[1]:.2f}; libdeflate-gzip -{level} "
      f"json {cj[0]:.2f}/{cj[1]:.2f}, raw {cr[0]:.2f}/{cr[1]:.2f}")
if shell_lines != lines:
    print(f"  note: the shell pipeline wrote {shell_lines:,} lines (it keeps headers, rejects and out-of-window lines)")
print()
ok = True
for fmt in ("json", "raw"):
    f = figures[f"filex run, {fmt} output"]
    fl = floor[fmt]
    speed, over, cover = shell[0] / f[0], f[0] / fl[0], f[1] / fl[1]
    s_ok, f_ok = speed >= 4, over <= 1.5 and cover <= 1.5
    ok &= s_ok and f_ok
    print(f"filex ({fmt}): {speed:.1f}x faster than the shell (CPU {shell[1] / f[1]:.1f}x; target >= 4x: "
          f"{'met' if s_ok else 'MISSED'}); {over:.2f}x the floor's wall, {cover:.2f}x its CPU "
          f"(target <= 1.5x both: {'met' if f_ok else 'MISSED'})")
    base = figures.get(f"baseline, {fmt} output")
    if base:
        print(f"  against the baseline binary: wall {f[0] / base[0]:.2f}x, CPU {f[1] / base[1]:.2f}x")
print(f"the shell pipeline itself takes {shell[0] / floor['json'][0]:.1f}x the floor's wall (json) here")
print()
print("all targets met" if ok else "some targets missed")
EOF

if [ "${BENCH_PERF:-0}" = 1 ]; then
  echo
  echo "== perf record -g: filex run, raw output"
  rm -rf "$DIR/out-perf"
  perf record -g -o "$DIR/perf.data" -- "$FILEX" run "$CORPUS/job.toml" --threads "$THREADS" \
    --memory "$MEMORY" --no-progress --set output.format=raw --set "output.root=$DIR/out-perf" \
    --set "output.gzip_level=$LEVEL" >/dev/null 2>"$DIR/perf.stderr" || die "perf record failed (see $DIR/perf.stderr)"
  # (head closes the pipe early; that is not a failure)
  { perf report -i "$DIR/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    grep -v -e '^#' -e '^$' | head -n 25 | cut -c1-110; } || true
  rm -rf "$DIR/out-perf"
fi

if [ "${BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$CORPUS" "$DIR"/out-* "$DIR"/plain-*.txt "$DIR/perf.data" "$DIR/shell-out.gz" "$DIR/sort-tmp" "$DIR/corpus.settings"
fi
