#!/usr/bin/env bash
# Benchmark: the same corpus through `filex run` (embedded, local files) and `filex submit`
# (YARN application on the mini cluster, shards and output on HDFS), in one invocation, and
# the YARN overhead between them, with the submit's own milestones (time to the first task).
# Then a second submit of the same job: with the executable in its cache (a fresh
# filex.yarn.lib-dir for the first), it uploads only the staging files; the bytes uploaded
# and submit → first task running are shown for both.
#
#   scripts/cluster.sh start && scripts/bench-yarn.sh
#
# Environment (all optional):
#   BENCH_DIR      working directory                   (default: target/bench-yarn)
#   BENCH_RATE     lines/s per platform for filex gen  (default: 20)
#   BENCH_HOURS    window length in hours              (default: 1)
#   BENCH_WORKERS  -D filex.workers.max                (default: 2)
#   FILEX          the filex binary                    (default: target/release/filex, built)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${BENCH_DIR:-$ROOT/target/bench-yarn}"
RATE="${BENCH_RATE:-20}"
HOURS="${BENCH_HOURS:-1}"
WORKERS="${BENCH_WORKERS:-2}"
if [ -z "${FILEX:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin filex)
  FILEX="$ROOT/target/release/filex"
fi

"$ROOT/scripts/cluster.sh" status >/dev/null || {
  echo "bench-yarn: the mini cluster is not running; start it with scripts/cluster.sh start" >&2
  exit 1
}
eval "$("$ROOT/scripts/cluster.sh" env)"

rm -rf "$DIR" && mkdir -p "$DIR"
"$FILEX" gen --out "$DIR/corpus" --seed 5 --hours "$HOURS" --rate "$RATE" >/dev/null
raw_mb=$(du -sm "$DIR/corpus/shards" | cut -f1)

remote="/filex-bench/$(date +%s)"
echo "uploading the corpus ($raw_mb MB compressed) to hdfs://$remote"
(cd "$DIR/corpus" && find shards -type f) | while read -r f; do
  curl -sf -L -X PUT -T "$DIR/corpus/$f" \
    "$FILEX_WEBHDFS/webhdfs/v1$remote/$f?op=CREATE&user.name=${USER:-root}&overwrite=true" >/dev/null
done
sed -e "s#shards = \"shards/#shards = \"hdfs://$remote/shards/#" \
    -e "s#root = \"output\"#root = \"hdfs://$remote/out\"#" \
    "$DIR/corpus/job.toml" > "$DIR/job-hdfs.toml"

now() { date +%s.%N; }
submit() {
  FILEX_LOG=warn "$FILEX" submit "$DIR/job-hdfs.toml" --force-new -D "filex.workers.max=$WORKERS" \
    -D filex.worker.input-bytes=1 -D "filex.yarn.lib-dir=$remote/lib" > "$1"
}
t0=$(now)
"$FILEX" run "$DIR/corpus/job.toml" --threads "$WORKERS" --no-progress > "$DIR/run.txt" 2>/dev/null
t1=$(now)
submit "$DIR/submit.txt"
t2=$(now)
submit "$DIR/submit-again.txt"
t3=$(now)

run_s=$(echo "$t1 - $t0" | bc)
submit_s=$(echo "$t2 - $t1" | bc)
lines=$(grep -o 'lines in [0-9]*' "$DIR/run.txt" | head -1 | grep -o '[0-9]*')
printf '\n%-34s %10s\n' "corpus" "$lines lines, $raw_mb MB gzip"
printf '%-34s %10.2f s\n' "filex run (embedded, $WORKERS threads)" "$run_s"
printf '%-34s %10.2f s\n' "filex submit (YARN, $WORKERS workers)" "$submit_s"
printf '%-34s %10.2f s\n' "YARN overhead" "$(echo "$submit_s - $run_s" | bc)"
echo
grep -o 'timeline: .*' "$DIR/submit.txt" | sed 's/^timeline: //' | tr ',' '\n' | sed 's/^ */  /'

# Bytes uploaded: the executable's when it was not cached, plus the staging files.
uploaded() {
  local exe staged
  exe=$(grep -o '^Executable .*: uploaded [0-9]* bytes' "$1" | grep -o '[0-9]* bytes$' | cut -d' ' -f1)
  staged=$(grep -o '^Staged [0-9]* bytes' "$1" | cut -d' ' -f2)
  echo $(( ${exe:-0} + ${staged:-0} ))
}
# Submit → first task running: the timeline starts at "submitted".
first_task() { grep -o 'first task running +[0-9.]*s' "$1" | grep -o '[0-9.]*s$'; }
echo
printf '%-34s %14s %14s\n' "" "first submit" "second submit"
printf '%-34s %14s %14s\n' "executable" \
  "$(grep -q '^Executable .*: uploaded' "$DIR/submit.txt" && echo uploaded || echo cached)" \
  "$(grep -q '^Executable .*: uploaded' "$DIR/submit-again.txt" && echo uploaded || echo cached)"
printf '%-34s %14s %14s\n' "bytes uploaded to HDFS" "$(uploaded "$DIR/submit.txt")" \
  "$(uploaded "$DIR/submit-again.txt")"
printf '%-34s %14s %14s\n' "submit -> first task running" "$(first_task "$DIR/submit.txt")" \
  "$(first_task "$DIR/submit-again.txt")"
printf '%-34s %12.2f s %12.2f s\n' "submit wall time" "$submit_s" "$(echo "$t3 - $t2" | bc)"
