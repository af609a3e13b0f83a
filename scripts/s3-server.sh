#!/usr/bin/env bash
# Start, stop and inspect a local S3-compatible server for the object-store tests: s3s-fs
# (pure Rust; checks SigV4 signatures and PutObject digests), on 127.0.0.1 only.
#
#   scripts/s3-server.sh start    install s3s-fs into target/tools if missing, start it on a
#                                 random free port with fresh test credentials, wait until
#                                 it answers
#   scripts/s3-server.sh stop     stop the server started by `start` (by its recorded PID)
#   scripts/s3-server.sh status   running or not, and its endpoint
#   scripts/s3-server.sh env      shell exports: eval "$(scripts/s3-server.sh env)"
#
# The exports: FILEX_S3_ENDPOINT, FILEX_S3_REGION, FILEX_S3_BUCKET (created at start),
# FILEX_S3_DATA_DIR (the server's root: <bucket>/<key> files, .upload-* for open multipart
# uploads), FILEX_S3_ACCESS_KEY_ID, FILEX_S3_SECRET_ACCESS_KEY. The credentials are random
# per start and only good for this loopback server (s3s-fs takes them on its command line;
# it has no other way).
#
# Environment:
#   FILEX_S3_DIR       state directory (default <project>/target/s3-server; relative paths
#                      are taken against the project root)
#   FILEX_S3_TIMEOUT   seconds to wait for the server to answer (default 30)
#
# The install is `cargo install s3s-fs --version 0.14.1 --features binary --locked` into
# target/tools (about 4 minutes on 2 cores, once). 0.14.1 is the last release building on
# rustc < 1.96.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TOOLS_DIR="$PROJECT_ROOT/target/tools"
SERVER_BIN="$TOOLS_DIR/bin/s3s-fs"
SERVER_VERSION="0.14.1"

STATE_DIR="${FILEX_S3_DIR:-$PROJECT_ROOT/target/s3-server}"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$PROJECT_ROOT/$STATE_DIR"
DATA_DIR="$STATE_DIR/data"
PID_FILE="$STATE_DIR/server.pid"
LOG_FILE="$STATE_DIR/server.log"
ENV_FILE="$STATE_DIR/server.env"
START_TIMEOUT="${FILEX_S3_TIMEOUT:-30}"
BUCKET="filex-test"
REGION="us-east-1"

die() {
  echo "s3-server.sh: $*" >&2
  exit 1
}

# PID of the running server, or nothing. Trusted only if that process still runs s3s-fs.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == "$SERVER_BIN"* ]]; then
    echo "$pid"
  fi
}

install_server() {
  if [[ -x "$SERVER_BIN" ]] && "$SERVER_BIN" --version 2>/dev/null | grep -q "$SERVER_VERSION"; then
    return 0
  fi
  mkdir -p "$TOOLS_DIR" "$STATE_DIR"
  echo "s3-server.sh: installing s3s-fs $SERVER_VERSION into $TOOLS_DIR (a few minutes, once)" >&2
  if ! cargo install s3s-fs --version "$SERVER_VERSION" --features binary --locked \
      --root "$TOOLS_DIR" >"$STATE_DIR/install.log" 2>&1; then
    tail -n 30 "$STATE_DIR/install.log" >&2
    die "cargo install s3s-fs failed (log: $STATE_DIR/install.log)"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

random_hex() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

answers() {
  # Any HTTP status (an unsigned request gets 403) means the server is up.
  local code
  code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null || true)"
  [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

start() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "s3-server.sh: already running (pid $pid)"
    return 0
  fi
  install_server
  mkdir -p "$STATE_DIR"
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR/$BUCKET"
  local key secret port attempt
  key="FILEXTEST$(random_hex 6 | tr 'a-f' 'A-F')"
  secret="$(random_hex 20)"
  for attempt in 1 2 3; do
    port="$(free_port)"
    [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.prev"
    RUST_LOG="${FILEX_S3_LOG:-warn}" nohup "$SERVER_BIN" --host 127.0.0.1 --port "$port" \
      --access-key "$key" --secret-key "$secret" "$DATA_DIR" >"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local waited=0
    while (( waited < START_TIMEOUT * 10 )); do
      if ! kill -0 "$pid" 2>/dev/null; then
        break
      fi
      if answers "$port"; then
        umask 077
        cat >"$ENV_FILE" <<EOF
export FILEX_S3_ENDPOINT=http://127.0.0.1:$port
export FILEX_S3_REGION=$REGION
export FILEX_S3_BUCKET=$BUCKET
export FILEX_S3_DATA_DIR=$DATA_DIR
export FILEX_S3_ACCESS_KEY_ID=$key
export FILEX_S3_SECRET_ACCESS_KEY=$secret
EOF
        echo "s3-server.sh: s3s-fs running on http://127.0.0.1:$port (pid $pid, data $DATA_DIR)"
        return 0
      fi
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "s3s-fs did not answer within ${START_TIMEOUT}s (log: $LOG_FILE)"
    fi
    echo "s3-server.sh: s3s-fs exited at start (attempt $attempt; port $port taken?)" >&2
    tail -n 5 "$LOG_FILE" >&2 || true
    rm -f "$PID_FILE"
  done
  die "could not start s3s-fs (log: $LOG_FILE)"
}

stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE" "$ENV_FILE"
    echo "s3-server.sh: not running"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null && (( waited < 100 )); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE" "$ENV_FILE"
  echo "s3-server.sh: stopped (pid $pid)"
}

status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    echo "running (pid $pid)"
    grep -E 'ENDPOINT|DATA_DIR|BUCKET' "$ENV_FILE" 2>/dev/null | sed 's/^export //'
  else
    echo "not running"
    return 1
  fi
}

env_cmd() {
  [[ -n "$(running_pid)" && -f "$ENV_FILE" ]] || die "not running (scripts/s3-server.sh start)"
  cat "$ENV_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_cmd ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
