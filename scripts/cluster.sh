#!/usr/bin/env bash
# Start, stop and inspect the filex test cluster: a MiniDFSCluster (3 DataNodes) and a
# MiniYARNCluster (3 NodeManagers) in one JVM on 127.0.0.1, built from integration/harness.
#
#   scripts/cluster.sh start    build the harness if needed, start it, wait until it is ready
#   scripts/cluster.sh stop     stop the harness started by `start` (by its recorded PID)
#   scripts/cluster.sh status   running or not, and its addresses (exit 3 when not running)
#   scripts/cluster.sh env      shell exports: eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh fs ARGS  Hadoop's FsShell (`hdfs dfs ARGS`) against the running cluster,
#                               e.g. `fs -put shards /data`, `fs -ls -R /data`; on a secure
#                               cluster as the submitter (FILEX_PRINCIPAL, from its keytab),
#                               or as the second user with FILEX_CLUSTER_FS_USER=other
#
# Environment:
#   FILEX_CLUSTER_DIR         state directory (default: <project>/target/cluster; a relative
#                             path is taken against the project root); holds
#                             conf/ (the *-site.xml files and cluster.env), work/ (DFS data,
#                             NodeManager dirs, container logs), harness.log (+ .prev),
#                             harness.pid, build.log
#   FILEX_CLUSTER_TIMEOUT     seconds to wait for the ready line (default 180)
#   FILEX_CLUSTER_JAVA_OPTS   extra JVM options, after the defaults (-Xmx2g, C1 only, serial GC)
#   FILEX_CLUSTER_ARGS        extra harness arguments, e.g. "-D yarn.nodemanager.resource.cpu-vcores=4"
#   MVN                       Maven command and options (default: mvn), e.g.
#                             MVN="mvn -Dmaven.repo.local=/tmp/m2"
#   FILEX_CLUSTER_SECURE      1: a Kerberized cluster (MiniKdc first; kerberos authentication,
#                             service authorization, hadoop.rpc.protection and
#                             dfs.data.transfer.protection offering authentication,integrity,
#                             privacy; block access tokens). `env` then also exports
#                             KRB5_CONFIG, FILEX_PRINCIPAL and FILEX_KEYTAB (the submitter
#                             filex; FILEX_OTHER_PRINCIPAL/_KEYTAB are a second user). Give it
#                             its own FILEX_CLUSTER_DIR to run it beside a plain cluster.
#   FILEX_CLUSTER_SHORT_TOKENS  1 (with FILEX_CLUSTER_SECURE=1): delegation tokens renew every
#                             30 s and live at most 5 min, for renewal tests
#   FILEX_CLUSTER_PROTECTION  authentication, integrity or privacy (with FILEX_CLUSTER_SECURE=1):
#                             the one hadoop.rpc.protection and dfs.data.transfer.protection
#                             the cluster accepts instead of all three; privacy also offers
#                             AES/CTR for block data (dfs.encrypt.data.transfer.cipher.suites)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
HARNESS_DIR="$PROJECT_ROOT/integration/harness"
HARNESS_JAR="$HARNESS_DIR/target/filex-cluster-harness-0.1.0.jar"
HARNESS_CLASSPATH_FILE="$HARNESS_DIR/target/classpath.txt"
HARNESS_MAIN="dev.filex.harness.FilexCluster"

CLUSTER_DIR="${FILEX_CLUSTER_DIR:-$PROJECT_ROOT/target/cluster}"
# A relative FILEX_CLUSTER_DIR is taken against the project root (as the Rust helpers do).
[[ "$CLUSTER_DIR" == /* ]] || CLUSTER_DIR="$PROJECT_ROOT/$CLUSTER_DIR"
CONF_DIR="$CLUSTER_DIR/conf"
WORK_DIR="$CLUSTER_DIR/work"
LOG_FILE="$CLUSTER_DIR/harness.log"
PID_FILE="$CLUSTER_DIR/harness.pid"
ENV_FILE="$CONF_DIR/cluster.env"

READY_PREFIX="FILEX-CLUSTER READY"
FAILED_PREFIX="FILEX-CLUSTER FAILED"
START_TIMEOUT="${FILEX_CLUSTER_TIMEOUT:-180}"
STOP_TIMEOUT=60
MVN="${MVN:-mvn}"

# Hadoop on Java 17 needs the JDK internals opened (Hadoop's and Spark's test lists, united).
JPMS_OPTS=(
  -XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.math=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/java.util.zip=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.security.util=ALL-UNNAMED
  --add-opens=java.base/sun.security.x509=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false
  -Dio.netty.tryReflectionSetAccessible=true
)

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# PID of the running harness, or nothing. A PID is only trusted if that process is still a
# java process running our main class (PIDs get reused).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$HARNESS_MAIN"; then
    echo "$pid"
  fi
}

# Up to date: jar and classpath file exist, nothing in pom.xml/src is newer than the jar, and
# every jar on the recorded classpath is still in the local Maven repository.
harness_up_to_date() {
  [[ -f "$HARNESS_JAR" && -f "$HARNESS_CLASSPATH_FILE" ]] || return 1
  [[ -z "$(find "$HARNESS_DIR/pom.xml" "$HARNESS_DIR/src" -newer "$HARNESS_JAR" -print -quit)" ]] || return 1
  local entry
  local -a entries
  IFS=':' read -r -a entries <"$HARNESS_CLASSPATH_FILE"
  for entry in "${entries[@]}"; do
    [[ -f "$entry" ]] || return 1
  done
}

build_harness() {
  if harness_up_to_date; then
    return 0
  fi
  local -a mvn_cmd
  read -r -a mvn_cmd <<<"$MVN"
  command -v "${mvn_cmd[0]}" >/dev/null || die "Maven ('${mvn_cmd[0]}') not found; it is needed to build $HARNESS_DIR"
  echo "cluster.sh: building the harness (the first build downloads the Hadoop jars into the local Maven repository)..." >&2
  mkdir -p "$CLUSTER_DIR"
  local build_log="$CLUSTER_DIR/build.log"
  if ! "${mvn_cmd[@]}" -B -q -Dstyle.color=never -f "$HARNESS_DIR/pom.xml" package >"$build_log" 2>&1; then
    echo "---- last lines of $build_log ----" >&2
    tail -n 40 "$build_log" >&2 || true
    die "building the harness failed (${mvn_cmd[*]} -B -f $HARNESS_DIR/pom.xml package)"
  fi
  # Maven keeps an unchanged jar's old timestamp; mark it as built now.
  touch "$HARNESS_JAR" "$HARNESS_CLASSPATH_FILE"
}

print_facts() {
  local key
  for key in FILEX_NAMENODE FILEX_WEBHDFS FILEX_RM_ADDRESS FILEX_RM_SCHEDULER_ADDRESS FILEX_RM_WEBAPP; do
    grep -E "^$key=" "$ENV_FILE" || true
  done
}

cmd_start() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "filex test cluster already running (pid $pid); conf: $CONF_DIR"
    return 0
  fi

  command -v java >/dev/null || die "java not found (Java 17 is required)"
  build_harness

  mkdir -p "$CLUSTER_DIR"
  rm -rf "$WORK_DIR" "$CONF_DIR"
  mkdir -p "$WORK_DIR" "$CONF_DIR"
  rm -f "$PID_FILE"
  # Keep the previous run's log for reference, and never read its ready line for this run.
  if [[ -f "$LOG_FILE" ]]; then
    mv -f "$LOG_FILE" "$LOG_FILE.prev"
  fi
  : >"$LOG_FILE"

  local classpath
  # $WORK_DIR/site first: on a secure cluster the harness writes the client security keys
  # there for the Configurations its NodeManagers' in-process localizers build.
  mkdir -p "$WORK_DIR/site"
  classpath="$WORK_DIR/site:$HARNESS_JAR:$(cat "$HARNESS_CLASSPATH_FILE")"
  # Jetty unpacks its web apps under java.io.tmpdir; keep that inside the work directory.
  mkdir -p "$WORK_DIR/jvm-tmp"
  # C1 only and the serial collector: start-up needs about a third less CPU (measured 14 vs
  # 22 CPU seconds), which matters on a small shared machine; a test cluster moves little data.
  local java_opts=(-Xmx2g -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1
    -Djava.net.preferIPv4Stack=true "-Djava.io.tmpdir=$WORK_DIR/jvm-tmp" "${JPMS_OPTS[@]}")
  # shellcheck disable=SC2206 # word splitting of the user's option strings is intended
  local extra_java=(${FILEX_CLUSTER_JAVA_OPTS:-})
  # shellcheck disable=SC2206
  local extra_args=(${FILEX_CLUSTER_ARGS:-})
  if [[ "${FILEX_CLUSTER_SECURE:-0}" == 1 ]]; then
    extra_args=(--secure "${extra_args[@]}")
    if [[ "${FILEX_CLUSTER_SHORT_TOKENS:-0}" == 1 ]]; then
      extra_args=(--short-tokens "${extra_args[@]}")
    fi
  elif [[ "${FILEX_CLUSTER_SHORT_TOKENS:-0}" == 1 ]]; then
    die "FILEX_CLUSTER_SHORT_TOKENS=1 needs FILEX_CLUSTER_SECURE=1"
  fi
  local protection="${FILEX_CLUSTER_PROTECTION:-}"
  if [[ -n "$protection" ]]; then
    [[ "${FILEX_CLUSTER_SECURE:-0}" == 1 ]] || die "FILEX_CLUSTER_PROTECTION needs FILEX_CLUSTER_SECURE=1"
    case "$protection" in
      authentication | integrity) ;;
      privacy) extra_args=(-D dfs.encrypt.data.transfer.cipher.suites=AES/CTR/NoPadding "${extra_args[@]}") ;;
      *) die "FILEX_CLUSTER_PROTECTION must be authentication, integrity or privacy, not '$protection'" ;;
    esac
    # Before FILEX_CLUSTER_ARGS, which may still override them.
    extra_args=(-D "hadoop.rpc.protection=$protection" -D "dfs.data.transfer.protection=$protection" "${extra_args[@]}")
  fi

  local started=$SECONDS
  # MiniYARNCluster writes under ./target, so run from the work directory. nohup keeps the
  # cluster alive when the terminal goes away; its PID is java's own.
  (
    cd "$WORK_DIR"
    exec nohup java "${java_opts[@]}" "${extra_java[@]}" -cp "$classpath" "$HARNESS_MAIN" \
      --conf-dir "$CONF_DIR" --work-dir "$WORK_DIR" --detached "${extra_args[@]}" \
      </dev/null >"$LOG_FILE" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$PID_FILE"

  echo "cluster.sh: started harness pid $pid, waiting up to ${START_TIMEOUT}s (log: $LOG_FILE)" >&2
  local line=""
  while true; do
    line="$(grep -m1 -E "^($READY_PREFIX|$FAILED_PREFIX)" "$LOG_FILE" 2>/dev/null || true)"
    if [[ "$line" == "$READY_PREFIX"* ]]; then
      break
    fi
    if [[ "$line" == "$FAILED_PREFIX"* ]] || ! kill -0 "$pid" 2>/dev/null; then
      echo "cluster.sh: the harness failed to start${line:+: $line}" >&2
      echo "---- last lines of $LOG_FILE ----" >&2
      tail -n 40 "$LOG_FILE" >&2 || true
      stop_pid "$pid" || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if ((SECONDS - started >= START_TIMEOUT)); then
      echo "cluster.sh: no ready line after ${START_TIMEOUT}s; stopping pid $pid" >&2
      echo "---- last lines of $LOG_FILE ----" >&2
      tail -n 40 "$LOG_FILE" >&2 || true
      stop_pid "$pid" || true
      rm -f "$PID_FILE"
      exit 1
    fi
    sleep 0.5
  done
  echo "$line"
  echo "cluster.sh: ready after $((SECONDS - started))s; conf: $CONF_DIR" >&2
}

# TERM, wait, then KILL the given PID (only that process).
stop_pid() {
  local pid="$1" waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= STOP_TIMEOUT * 2)); then
      echo "cluster.sh: pid $pid still alive after ${STOP_TIMEOUT}s; sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "filex test cluster not running"
    rm -f "$PID_FILE"
    return 0
  fi
  echo "stopping filex test cluster (pid $pid)"
  stop_pid "$pid"
  rm -f "$PID_FILE" "$ENV_FILE"
  if kill -0 "$pid" 2>/dev/null; then
    die "pid $pid did not exit"
  fi
  echo "stopped"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    echo "filex test cluster not running"
    return 3
  fi
  if [[ ! -f "$ENV_FILE" ]]; then
    echo "filex test cluster starting (pid $pid); log: $LOG_FILE"
    return 0
  fi
  echo "filex test cluster running (pid $pid)"
  echo "HADOOP_CONF_DIR=$CONF_DIR"
  print_facts
}

cmd_env() {
  local pid
  pid="$(running_pid)"
  [[ -n "$pid" && -f "$ENV_FILE" ]] || die "filex test cluster not running; start it with scripts/cluster.sh start"
  printf 'export FILEX_CLUSTER_DIR=%q\n' "$CLUSTER_DIR"
  printf 'export HADOOP_CONF_DIR=%q\n' "$CONF_DIR"
  printf 'export YARN_CONF_DIR=%q\n' "$CONF_DIR"
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^FILEX_[A-Z0-9_]+$ ]] || continue
    printf 'export %s=%q\n' "$key" "$value"
    # MIT Kerberos (kinit, libgssapi_krb5) finds the test KDC through KRB5_CONFIG.
    if [[ "$key" == FILEX_KRB5_CONFIG ]]; then
      printf 'export KRB5_CONFIG=%q\n' "$value"
    fi
  done <"$ENV_FILE"
}

# The value of KEY in cluster.env, or nothing.
env_fact() {
  grep -E "^$1=" "$ENV_FILE" | head -n1 | cut -d= -f2-
}

# Hadoop's FsShell from the harness classpath, with the cluster's conf directory in front so
# that it reads the cluster's *-site.xml; as the submitter on a secure cluster (as the second
# user with FILEX_CLUSTER_FS_USER=other).
cmd_fs() {
  local pid
  pid="$(running_pid)"
  [[ -n "$pid" && -f "$ENV_FILE" ]] || die "filex test cluster not running; start it with scripts/cluster.sh start"
  [[ -f "$HARNESS_JAR" && -f "$HARNESS_CLASSPATH_FILE" ]] || die "harness not built ($HARNESS_JAR); run scripts/cluster.sh start"
  local -a java_opts=(-Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true
    -Dlog4j.configuration=log4j-shell.properties "${JPMS_OPTS[@]}")
  if [[ "$(env_fact FILEX_SECURE)" == 1 ]]; then
    local who=""
    case "${FILEX_CLUSTER_FS_USER:-}" in
      "" | submitter) ;;
      other) who=OTHER_ ;;
      *) die "FILEX_CLUSTER_FS_USER=${FILEX_CLUSTER_FS_USER}: expected submitter or other" ;;
    esac
    java_opts+=("-Djava.security.krb5.conf=$(env_fact FILEX_KRB5_CONFIG)"
      "-Dfilex.principal=$(env_fact "FILEX_${who}PRINCIPAL")" "-Dfilex.keytab=$(env_fact "FILEX_${who}KEYTAB")")
  fi
  exec java "${java_opts[@]}" -cp "$CONF_DIR:$HARNESS_JAR:$(cat "$HARNESS_CLASSPATH_FILE")" \
    dev.filex.harness.Shell "$@"
}

usage() {
  echo "usage: $0 start|stop|status|env|fs ARGS..." >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
if [[ "$1" == fs ]]; then
  shift
  cmd_fs "$@"
fi
[[ $# -eq 1 ]] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
