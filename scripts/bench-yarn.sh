#!/usr/bin/env bash
# Benchmark: the same corpus through `filex run` (embedded, local files) and `filex submit`
# (YARN application on the mini cluster, shards and output on HDFS), in one invocation, and
# the YARN overhead between them, with the submit's own milestones (time to the first task,
# planning, maps, reduces), the AM's peak RSS and where the CPU went: the mini cluster's JVM
# (NameNode, DataNode, ResourceManager and NodeManager in one process) and everything else on
# the machine (the AM, the workers, their container launch scripts). On two cores the JVM
# serving thousands of small reads competes with the workers for the same cores, so its CPU
# seconds say how much of a submit's wall is the cluster's and not filex's. Each binary
# submits twice: the first with a fresh filex.yarn.lib-dir uploads the executable, the second
# finds it cached.
#
#   scripts/cluster.sh start && scripts/bench-yarn.sh
#   BENCH_CORPORA="job domains day" BENCH_BASELINE=/tmp/filex-main scripts/bench-yarn.sh
#
# Corpora (BENCH_CORPORA, space-separated, in order; default: job):
#   job      6 platforms, 3 domains, BENCH_HOURS h at BENCH_RATE lines/s per platform
#            (default 1 h at 20/s: ~430k lines, 72 shards)
#   domains  a customer with 300 domains: nginx + upyun, 6 hours, 20 lines/s per platform
#            (~22k shards, 1,800 partitions)
#   day      a customer-day: 420 domains, nginx + upyun, 24 hours, 24 lines/s per platform
#            (>= 100k shards, >= 10,000 partitions)
#
# Environment (all optional):
#   BENCH_DIR      working directory                   (default: target/bench-yarn)
#   BENCH_RATE     lines/s per platform, job corpus    (default: 20)
#   BENCH_HOURS    window length in hours, job corpus  (default: 1)
#   BENCH_WORKERS  -D filex.workers.max, and filex run --threads (default: 2)
#   FILEX          the filex binary                    (default: target/release/filex, built)
#   BENCH_BASELINE another filex binary submitted beside it (e.g. a build of main): before
#                  and after in one invocation
#   BENCH_KEEP=1   keep the corpora locally and on HDFS afterwards
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-$ROOT/target/bench-yarn}"
RATE="${BENCH_RATE:-20}"
HOURS="${BENCH_HOURS:-1}"
WORKERS="${BENCH_WORKERS:-2}"
CORPORA="${BENCH_CORPORA:-job}"
BASELINE="${BENCH_BASELINE:-}"
if [ -z "${FILEX:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin filex)
  FILEX="$ROOT/target/release/filex"
fi
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || {
  echo "bench-yarn: BENCH_BASELINE=$BASELINE is not an executable" >&2
  exit 1
}

"$ROOT/scripts/cluster.sh" status >/dev/null || {
  echo "bench-yarn: the mini cluster is not running; start it with scripts/cluster.sh start" >&2
  exit 1
}
eval "$("$ROOT/scripts/cluster.sh" env)"

# domain_list N: d001.example.com,…,dN.example.com
domain_list() { seq -f 'd%03g.example.com' 1 "$1" | paste -sd, -; }

gen_args() {
  case "$1" in
    job) echo "--seed 5 --hours $HOURS --rate $RATE" ;;
    domains) echo "--seed 5 --hours 6 --platforms nginx,upyun --rate 20 --domains $(domain_list 300)" ;;
    day) echo "--seed 5 --hours 24 --platforms nginx,upyun --rate 24 --domains $(domain_list 420)" ;;
    *)
      echo "bench-yarn: unknown corpus $1 (job, domains, day)" >&2
      exit 1
      ;;
  esac
}

now() { date +%s.%N; }

# The mini cluster's JVM (scripts/cluster.sh records its pid).
CLUSTER_PID="$(tr -dc '0-9' <"${FILEX_CLUSTER_DIR:-$ROOT/target/cluster}/harness.pid" 2>/dev/null || true)"
TICKS="$(getconf CLK_TCK)"
# busy_ticks: CPU ticks the whole machine spent busy (user, nice, system, irq, softirq, steal).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# jvm_ticks: CPU ticks of the mini cluster's JVM, all its threads (0 if it is not known).
jvm_ticks() {
  [ -n "$CLUSTER_PID" ] || { echo 0; return; }
  # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
  sed 's/^.*) //' "/proc/$CLUSTER_PID/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}
# secs TICKS: ticks as seconds, one decimal.
secs() { echo "scale=1; $1 / $TICKS" | bc; }

# am_peak_rss OUT: samples the running AM's VmHWM (kB) every 0.2 s until killed, keeping the
# last value seen in OUT (the mini cluster runs one application at a time here).
am_peak_rss() {
  local hwm pid
  while :; do
    for pid in $(pgrep -f 'filex am --spec' || true); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = filex ] || continue
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$hwm" ] && echo "$hwm" >"$1"
    done
    sleep 0.2
  done
}

# submit BIN OUT LIB_DIR: one `filex submit` of the corpus's HDFS job, --full (the output of
# the submit before would otherwise make it an incremental re-run with nothing to do); prints
# its wall s.
submit() {
  local t0 t1 sampler b0 j0
  : >"$2.rss"
  b0=$(busy_ticks) j0=$(jvm_ticks)
  am_peak_rss "$2.rss" &
  sampler=$!
  t0=$(now)
  FILEX_LOG=warn "$1" submit "$CDIR/job-hdfs.toml" --force-new --full -D "filex.workers.max=$WORKERS" \
    -D filex.worker.input-bytes=1 -D filex.uber.max-bytes=0 -D "filex.yarn.lib-dir=$3" >"$2"
  t1=$(now)
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "$(($(jvm_ticks) - j0)) $(($(busy_ticks) - b0))" >"$2.cpu"
  echo "$t1 - $t0" | bc
}
# cpu_cols OUT: the submit's CPU seconds: the cluster's JVM, and all the rest of the machine.
cpu_cols() {
  local jvm busy
  read -r jvm busy <"$1.cpu" || { echo "- -"; return; }
  echo "$(secs "$jvm") $(secs $((busy - jvm)))"
}

# milestone OUT NAME: seconds from "submitted" to the timeline event NAME, or -.
milestone() { grep -o "$2 +[0-9.]*s" "$1" | head -1 | grep -o '[0-9.]*s$' || echo -; }
# uploaded OUT: bytes uploaded (the executable's when it was not cached, plus staging).
uploaded() {
  local exe staged
  exe=$(grep -o '^Executable .*: uploaded [0-9]* bytes' "$1" | grep -o '[0-9]* bytes$' | cut -d' ' -f1 || true)
  staged=$(grep -o '^Staged [0-9]* bytes' "$1" | cut -d' ' -f2 || true)
  echo $((${exe:-0} + ${staged:-0}))
}
rss_mb() { awk '{ printf "%.0f", $1 / 1024 }' "$1.rss" 2>/dev/null || echo -; }

binaries=("new@@$FILEX")
[ -n "$BASELINE" ] && binaries=("baseline@@$BASELINE" "${binaries[@]}")

rm -rf "$DIR" && mkdir -p "$DIR"
stamp=$(date +%s)
for corpus in $CORPORA; do
  CDIR="$DIR/$corpus"
  # shellcheck disable=SC2046  # gen_args is a list of words
  tg0=$(now)
  "$FILEX" gen --out "$CDIR/corpus" $(gen_args "$corpus") >/dev/null
  gen_s=$(echo "$(now) - $tg0" | bc)
  shards=$(find "$CDIR/corpus/shards" -type f | wc -l)
  gz_mb=$(du -sm --apparent-size "$CDIR/corpus/shards" | cut -f1)
  remote="/filex-bench/$stamp-$corpus"
  echo "== $corpus: $shards shards ($gz_mb MB gzip, generated in ${gen_s} s); uploading to hdfs://$remote"
  "$ROOT/scripts/cluster.sh" fs -mkdir -p "$remote" >/dev/null
  # FsShell copies files 8 at a time with -t: 22k small shards in about 2 min, not 5.
  "$ROOT/scripts/cluster.sh" fs -put -t 8 "$CDIR/corpus/shards" "$remote/" >/dev/null
  sed -e "s#shards = \"shards/#shards = \"hdfs://$remote/shards/#" \
    -e "s#root = \"output\"#root = \"hdfs://$remote/out\"#" \
    "$CDIR/corpus/job.toml" >"$CDIR/job-hdfs.toml"

  echo "== $corpus: filex run"
  t0=$(now) rb0=$(busy_ticks)
  "$FILEX" run "$CDIR/corpus/job.toml" --threads "$WORKERS" --no-progress >"$CDIR/run.txt" 2>/dev/null
  run_s=$(echo "$(now) - $t0" | bc)
  run_cpu=$(secs $(($(busy_ticks) - rb0)))
  lines=$(grep -o 'lines in [0-9]*' "$CDIR/run.txt" | head -1 | grep -o '[0-9]*' || echo "?")
  partitions=$(find "$CDIR/corpus/output" -name '*.gz' | wc -l)

  declare -A S1 S2
  for b in "${binaries[@]}"; do
    name="${b%%@@*}" bin="${b#*@@}"
    echo "== $corpus: filex submit ($name), twice"
    S1[$name]=$(submit "$bin" "$CDIR/submit-$name-1.txt" "$remote/lib-$name")
    S2[$name]=$(submit "$bin" "$CDIR/submit-$name-2.txt" "$remote/lib-$name")
  done

  echo
  printf '%s: %s lines, %s shards, %s MB gzip, %s partitions\n' "$corpus" "$lines" "$shards" "$gz_mb" "$partitions"
  printf '  %-44s %9.2f s, machine CPU %s s\n' "filex run (embedded, $WORKERS threads, local files)" "$run_s" "$run_cpu"
  printf '  %-26s %9s %9s %9s %10s %8s %8s %8s %7s %12s %8s %8s\n' "filex submit ($WORKERS workers)" \
    "wall s" "overhead" "1st task" "plan done" "maps" "reduces" "done" "AM MB" "uploaded" "JVM CPU" "rest CPU"
  for b in "${binaries[@]}"; do
    name="${b%%@@*}"
    for i in 1 2; do
      out="$CDIR/submit-$name-$i.txt"
      wall=$([ "$i" = 1 ] && echo "${S1[$name]}" || echo "${S2[$name]}")
      read -r jvm_cpu rest_cpu <<<"$(cpu_cols "$out")"
      printf '  %-26s %9.2f %9.2f %9s %10s %8s %8s %8s %7s %12s %8s %8s\n' "$name, submit $i" "$wall" \
        "$(echo "$wall - $run_s" | bc)" "$(milestone "$out" 'first task running')" \
        "$(milestone "$out" 'planned')" "$(milestone "$out" 'maps done')" \
        "$(milestone "$out" 'reduces done')" "$(milestone "$out" 'finished')" \
        "$(rss_mb "$out")" "$(uploaded "$out")" "$jvm_cpu" "$rest_cpu"
    done
  done
  echo "  (milestones: seconds after 'submitted' in the submit's timeline; overhead: wall - filex run;"
  echo "   CPU s: the mini cluster's JVM, and the rest of the machine: AM, workers, launch scripts)"
  echo
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$CDIR"
    "$ROOT/scripts/cluster.sh" fs -rm -r -f -skipTrash "$remote" >/dev/null 2>&1 || true
  fi
done
