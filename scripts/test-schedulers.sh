#!/usr/bin/env bash
# Scheduler integration tests: the Airflow operator (integration/airflow) in a real Airflow
# and the Oozie shell action (scripts/oozie, integration/tests/oozie_action.rs), both
# against the mini cluster.
#
#   scripts/test-schedulers.sh [airflow|oozie|all]     (default: all)
#
# Installs what it needs: a Python venv under target/schedulers/ with uv and the pinned
# Airflow set (integration/airflow/constraints.txt: apache-airflow 2.10.5 and its
# dependencies, pytest), reinstalled only when the constraints change; a SQLite Airflow
# metadata DB in target/schedulers/airflow-home. Builds target/debug/filex with the test
# hooks (--features fault-injection; FILEX_BIN overrides). Uses the running mini cluster,
# or starts it and stops it afterwards.
#
# Environment: PYTHON (default python3.11, else python3), FILEX_BIN, FILEX_CLUSTER_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHAT="${1:-all}"
case "$WHAT" in airflow | oozie | all) ;; *) echo "usage: $0 [airflow|oozie|all]" >&2; exit 2 ;; esac

UV_VERSION=0.13.8
DIR="$ROOT/target/schedulers"
VENV="$DIR/venv"
CONSTRAINTS="$ROOT/integration/airflow/constraints.txt"

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }

install_airflow() {
  local stamp="$VENV/.filex-constraints"
  local want
  want="$(sha256sum "$CONSTRAINTS" "$ROOT/integration/airflow/pyproject.toml" | sha256sum | cut -c1-16)"
  if [[ -x "$VENV/bin/airflow" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    echo "venv up to date ($VENV)"
    return
  fi
  local python="${PYTHON:-}"
  if [[ -z "$python" ]]; then
    python="$(command -v python3.11 || command -v python3)"
  fi
  local t0
  t0=$(now)
  rm -rf "$VENV" "$DIR/airflow-home"
  "$python" -m venv "$VENV"
  "$VENV/bin/pip" install -q "uv==$UV_VERSION"
  # uv resolves and installs the ~140 packages in seconds (pip takes minutes). It uses the
  # system's CA store, as pip does here.
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  UV_NATIVE_TLS=1 UV_CACHE_DIR="$DIR/uv-cache" "$VENV/bin/uv" pip install -q \
    --python "$VENV/bin/python" -c "$CONSTRAINTS" \
    "apache-airflow==2.10.5" "pytest==8.3.4" -e "$ROOT/integration/airflow"
  echo "$want" >"$stamp"
  echo "installed Airflow in $(($(now) - t0)) s"
}

FILEX_BIN="${FILEX_BIN:-}"
if [[ -z "$FILEX_BIN" ]]; then
  step "building the filex binary"
  cargo build --bin filex --features fault-injection
  FILEX_BIN="$ROOT/target/debug/filex"
fi
export FILEX_BIN

started_cluster=0
if ! "$ROOT/scripts/cluster.sh" status >/dev/null 2>&1; then
  step "starting the Hadoop mini cluster"
  started_cluster=1
  "$ROOT/scripts/cluster.sh" start
fi
cleanup() {
  if [[ "$started_cluster" == 1 ]]; then "$ROOT/scripts/cluster.sh" stop || true; fi
}
trap cleanup EXIT
eval "$("$ROOT/scripts/cluster.sh" env)"

if [[ "$WHAT" == airflow || "$WHAT" == all ]]; then
  step "Airflow: install (pinned, into $VENV)"
  install_airflow
  export AIRFLOW_HOME="$DIR/airflow-home"
  mkdir -p "$AIRFLOW_HOME"
  step "Airflow: operator tests and a real Airflow against the mini cluster"
  t0=$(now)
  (cd "$ROOT/integration/airflow" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests)
  echo "Airflow tests took $(($(now) - t0)) s"
fi

if [[ "$WHAT" == oozie || "$WHAT" == all ]]; then
  step "Oozie: shell action against the mini cluster, schemas"
  cargo test -p filex-integration --test oozie_action -- --test-threads=1
fi
