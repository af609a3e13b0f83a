#!/usr/bin/env bash
# Scheduler integration tests: the Airflow operator (integration/airflow) in a real Airflow
# and the Oozie shell action (scripts/oozie, integration/tests/oozie_action.rs), both
# against the mini cluster.
#
#   scripts/test-schedulers.sh [airflow|oozie|all]     (default: all)
#
# Installs what it needs: one Python venv per Airflow under target/schedulers/ with uv and a
# pinned set (integration/airflow/constraints-airflow-2.10.txt: apache-airflow 2.10.5;
# constraints-airflow-3.3.txt: apache-airflow 3.3.2; each with its dependencies and pytest),
# reinstalled only when its constraints or the package's pyproject.toml change; a SQLite
# Airflow metadata DB per venv in target/schedulers/airflow-home-<version>. The Airflow
# tests run in both, 2.10 first. Builds target/debug/filex with the test
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
# Airflow version and its constraints file (integration/airflow/), one venv each.
AIRFLOWS=("2.10.5 constraints-airflow-2.10.txt" "3.3.2 constraints-airflow-3.3.txt")

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s; }

# install_airflow VERSION CONSTRAINTS VENV
install_airflow() {
  local version="$1" constraints="$ROOT/integration/airflow/$2" venv="$3"
  local stamp="$venv/.filex-constraints"
  local want
  want="$(sha256sum "$constraints" "$ROOT/integration/airflow/pyproject.toml" | sha256sum | cut -c1-16)"
  if [[ -x "$venv/bin/airflow" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    echo "venv up to date ($venv)"
    return
  fi
  local python="${PYTHON:-}"
  if [[ -z "$python" ]]; then
    python="$(command -v python3.11 || command -v python3)"
  fi
  local t0
  t0=$(now)
  rm -rf "$venv" "$DIR/airflow-home-$version"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "uv==$UV_VERSION"
  # uv resolves and installs the ~140 packages in seconds (pip takes minutes). It uses the
  # system's CA store, as pip does here.
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  UV_NATIVE_TLS=1 UV_CACHE_DIR="$DIR/uv-cache" "$venv/bin/uv" pip install -q \
    --python "$venv/bin/python" -c "$constraints" \
    "apache-airflow==$version" "pytest==8.3.4" -e "$ROOT/integration/airflow"
  echo "$want" >"$stamp"
  echo "installed Airflow $version in $(($(now) - t0)) s"
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
failed=()

if [[ "$WHAT" == airflow || "$WHAT" == all ]]; then
  for airflow in "${AIRFLOWS[@]}"; do
    read -r version constraints <<<"$airflow"
    venv="$DIR/venv-airflow-$version"
    step "Airflow $version: install (pinned, into $venv)"
    install_airflow "$version" "$constraints" "$venv"
    step "Airflow $version: operator tests and a real Airflow against the mini cluster"
    # A fresh metadata DB every time: the tests read back the task instances, XComs and
    # dataset events of their DAGs, and an earlier suite's rows would be read with them.
    export AIRFLOW_HOME="$DIR/airflow-home-$version"
    rm -rf "$AIRFLOW_HOME"
    mkdir -p "$AIRFLOW_HOME"
    t0=$(now)
    # Both versions run even when the first fails; the script fails at the end.
    if (cd "$ROOT/integration/airflow" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests); then
      echo "Airflow $version tests took $(($(now) - t0)) s"
    else
      echo "Airflow $version tests FAILED after $(($(now) - t0)) s"
      failed+=("airflow $version")
    fi
  done
fi

if [[ "$WHAT" == oozie || "$WHAT" == all ]]; then
  step "Oozie: shell action against the mini cluster, schemas"
  cargo test -p filex-integration --test oozie_action -- --test-threads=1 || failed+=(oozie)
fi

if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
