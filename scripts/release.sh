#!/usr/bin/env bash
# The release operators install on a gateway host:
#   dist/filex-<version>-x86_64-linux-gnu.tar.gz         filex (stripped), README.md, LICENSE, conf/
#   dist/filex-<version>-x86_64-linux-gnu.tar.gz.sha256  its SHA-256, as `sha256sum -c` reads it
#   dist/filex-<version>-x86_64-linux-gnu.debug          the binary's debug info (not in the tarball)
#
# The binary is linked against glibc 2.17 (RHEL/CentOS 7 and everything newer) by
# cargo-zigbuild, with zig as the linker; not musl: hdfs-native loads libgssapi_krb5 at run
# time, which a static musl binary cannot. cargo-zigbuild and zig (PyPI packages
# `cargo-zigbuild` and `ziglang`) are installed into a venv under target/tools on first use.
# The build has its own target directory (target/release-gnu217), apart from `cargo build`'s.
#
#   scripts/release.sh      prints the tarball's path last; check it with scripts/check-release.sh PATH
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

GLIBC=2.17
TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR="$ROOT/target/release-gnu217"
VENV="$ROOT/target/tools/zig-venv"
DIST="$ROOT/dist"

for f in README.md LICENSE conf; do
  [ -e "$f" ] || { echo "release: $ROOT/$f is missing; the tarball must ship it" >&2; exit 1; }
done

if [ ! -x "$VENV/bin/cargo-zigbuild" ] || ! "$VENV/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "release: installing cargo-zigbuild and zig (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-zigbuild ziglang
fi
# cargo-zigbuild runs zig as `python3 -m ziglang` when no `zig` is on PATH: the venv's python.
export PATH="$VENV/bin:$PATH"

version="$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "filex"))')"
name="filex-$version-x86_64-linux-gnu"

echo "release: cargo zigbuild --release --target $TRIPLE.$GLIBC (zig $("$VENV/bin/python" -m ziglang version))"
# The tarball ships a stripped binary beside its debug info: built with it, unlike a plain
# `cargo build --release` (strip = "debuginfo").
CARGO_PROFILE_RELEASE_DEBUG=1 CARGO_PROFILE_RELEASE_STRIP=none \
  cargo zigbuild --release --locked --bin filex --target "$TRIPLE.$GLIBC" --target-dir "$TARGET_DIR"
built="$TARGET_DIR/$TRIPLE/release/filex"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$DIST"
objcopy --only-keep-debug "$built" "$DIST/$name.debug"
objcopy --strip-all --add-gnu-debuglink="$DIST/$name.debug" "$built" "$stage/$name/filex"
cp README.md LICENSE "$stage/$name/"
cp -R conf "$stage/$name/conf"

tarball="$DIST/$name.tar.gz"
# Reproducible member order, owners and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$stage" -czf "$tarball" "$name"
(cd "$DIST" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
echo "release: $(du -h "$tarball" | cut -f1), sha256 $(cut -d' ' -f1 "$tarball.sha256")"
# The last line is the tarball's path (scripts/test.sh reads it).
echo "$tarball"
