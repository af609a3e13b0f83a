#!/usr/bin/env bash
# The whole test suite, installing and starting what it needs:
#   1. formatting, lints, docs and imports (cargo fmt --check, cargo clippy -D warnings, cargo
#      doc with warnings denied, no import cycles between files);
#   2. unit tests and embedded end-to-end tests (cargo test: no cluster needed), then the
#      test hooks' own tests and the embedded dying workers (--features fault-injection);
#      the release tarball (scripts/release.sh), checked by scripts/check-release.sh: no
#      glibc symbol above 2.17, and the demo runs with it;
#   3. the Hadoop mini cluster (built from integration/harness with Maven on first use,
#      downloading hadoop-client-minicluster from Maven Central) and the integration suite
#      against it; the cluster is stopped afterwards, also on failure. Beside it, a Kerberized
#      mini cluster (FILEX_CLUSTER_SECURE=1, state in target/secure-cluster, about 30 s to
#      start) for the secure-cluster tests (integration/tests/secure_yarn.rs, secure_submit.rs),
#      which use MIT's kinit and ktutil (Debian krb5-user, installed here when missing); after
#      it, a privacy-only one
#      (FILEX_CLUSTER_PROTECTION=privacy, state in target/privacy-cluster) for
#      integration/tests/secure_privacy.rs alone; then one with short-lived delegation tokens
#      (FILEX_CLUSTER_SHORT_TOKENS=1, state in target/short-cluster) for
#      integration/tests/secure_long_jobs.rs alone. The local S3 server (s3s-fs) for the
#      object-store tests of the library (storage::object::live_tests) and the suite.
#
# Environment: FILEX_SKIP_INTEGRATION=1 runs steps 1–2 only; FILEX_SKIP_RELEASE=1 skips the
# release tarball.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features filex/fault-injection -- -D warnings

step "cargo doc (-D warnings: broken links, bad doc syntax)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "no import cycles between files (scripts/check-cycles.py)"
python3 scripts/check-cycles.py

step "unit and embedded end-to-end tests"
cargo test --workspace --exclude filex-integration
cargo test -p filex --features fault-injection --lib --test embedded_run -- fault:: faults::

if [ "${FILEX_SKIP_RELEASE:-0}" = "1" ]; then
  echo "FILEX_SKIP_RELEASE=1: skipping the release tarball"
else
  step "release tarball (scripts/release.sh: zig, glibc 2.17) and its checks: glibc floor, the demo"
  tarball="$("$ROOT/scripts/release.sh" | tee /dev/stderr | tail -n 1)"
  "$ROOT/scripts/check-release.sh" "$tarball"
fi

if [ "${FILEX_SKIP_INTEGRATION:-0}" = "1" ]; then
  echo "FILEX_SKIP_INTEGRATION=1: skipping the integration suite"
  exit 0
fi

step "building the filex binary for the integration suite (with the test hooks)"
cargo build --bin filex --features fault-injection

step "starting the Hadoop mini cluster"
SECURE_CLUSTER_DIR="$ROOT/target/secure-cluster"
PRIVACY_CLUSTER_DIR="$ROOT/target/privacy-cluster"
SHORT_CLUSTER_DIR="$ROOT/target/short-cluster"
cleanup() {
  "$ROOT/scripts/cluster.sh" stop || true
  FILEX_CLUSTER_DIR="$SECURE_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop || true
  FILEX_CLUSTER_DIR="$PRIVACY_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop || true
  FILEX_CLUSTER_DIR="$SHORT_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop || true
  "$ROOT/scripts/s3-server.sh" stop || true
}
trap cleanup EXIT
"$ROOT/scripts/cluster.sh" start
eval "$("$ROOT/scripts/cluster.sh" env)"

step "starting the Kerberized mini cluster (MiniKdc; its own state dir and ports)"
if ! command -v kinit >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing krb5-user (kinit, for the ticket-cache tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y krb5-user >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y krb5-user >/dev/null; }
  else
    echo "kinit is missing: apt-get install krb5-user" >&2
    exit 1
  fi
fi
FILEX_CLUSTER_SECURE=1 FILEX_CLUSTER_DIR="$SECURE_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" start
export FILEX_SECURE_CLUSTER_DIR="$SECURE_CLUSTER_DIR"

step "starting the local S3 server (s3s-fs; installed into target/tools on first use)"
"$ROOT/scripts/s3-server.sh" start
eval "$("$ROOT/scripts/s3-server.sh" env)"

step "object-store tests against the S3 server (upload markers; ignored by a plain cargo test)"
cargo test --workspace --exclude filex-integration --lib storage::object::live_tests -- --include-ignored

step "integration suite (mini cluster; the secure-cluster tests against the Kerberized one)"
FILEX_BIN="$ROOT/target/debug/filex" cargo test -p filex-integration -- --test-threads=1
FILEX_CLUSTER_DIR="$SECURE_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop

step "privacy-only Kerberized cluster (RPC and data transfer: privacy only) and its tests"
FILEX_CLUSTER_SECURE=1 FILEX_CLUSTER_PROTECTION=privacy FILEX_CLUSTER_DIR="$PRIVACY_CLUSTER_DIR" \
  "$ROOT/scripts/cluster.sh" start
FILEX_PRIVACY_CLUSTER_DIR="$PRIVACY_CLUSTER_DIR" FILEX_BIN="$ROOT/target/debug/filex" \
  cargo test -p filex-integration --test secure_privacy -- --test-threads=1
FILEX_CLUSTER_DIR="$PRIVACY_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop

step "Kerberized cluster with short-lived delegation tokens (30 s renew interval) and the long-job test"
# Authentication only: the first submit uploads the (debug) filex executable, which block
# encryption would slow down; what this step tests is token lifetimes.
FILEX_CLUSTER_SECURE=1 FILEX_CLUSTER_SHORT_TOKENS=1 FILEX_CLUSTER_PROTECTION=authentication \
  FILEX_CLUSTER_DIR="$SHORT_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" start
FILEX_SHORT_TOKENS_CLUSTER_DIR="$SHORT_CLUSTER_DIR" FILEX_BIN="$ROOT/target/debug/filex" \
  cargo test -p filex-integration --test secure_long_jobs -- --test-threads=1
FILEX_CLUSTER_DIR="$SHORT_CLUSTER_DIR" "$ROOT/scripts/cluster.sh" stop

step "scheduler integrations (Airflow, in a venv under target/)"
FILEX_BIN="$ROOT/target/debug/filex" "$ROOT/scripts/test-schedulers.sh" airflow

step "yarn crate against the mini cluster"
cargo test -p filex-yarn --features integration-test --test cluster -- --test-threads=1
