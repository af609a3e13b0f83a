#!/usr/bin/env bash
# Checks a release tarball built by scripts/release.sh: its SHA-256 file matches; it holds
# filex, README.md, LICENSE and conf/; the binary is stripped, dynamically linked, and needs
# no glibc symbol version above 2.17 (every GLIBC_x.y it references, by `objdump -p` and
# `objdump -T`); and the demo (scripts/demo.sh, the README's first command) runs with it.
#
#   scripts/check-release.sh dist/filex-<version>-x86_64-linux-gnu.tar.gz
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GLIBC_MAX=2.17
tarball="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
name="$(basename "$tarball" .tar.gz)"

fail() { echo "check-release: $*" >&2; exit 1; }

(cd "$(dirname "$tarball")" && sha256sum --quiet -c "$name.tar.gz.sha256") ||
  fail "$tarball does not match $name.tar.gz.sha256"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
dir="$work/$name"
for f in filex README.md LICENSE conf/quickstart.toml; do
  [ -e "$dir/$f" ] || fail "$name.tar.gz lacks $name/$f"
done
bin="$dir/filex"

sections="$(objdump -h "$bin")"
if grep -qE ' \.(symtab|debug_info) ' <<<"$sections"; then
  fail "$name/filex is not stripped (it has .symtab or .debug_info)"
fi
headers="$(objdump -p "$bin")"
grep -q 'NEEDED *libc\.so\.6' <<<"$headers" || fail "$name/filex is not linked against glibc"

# Every glibc version the binary needs: the version references (verneed) and the versions of
# its undefined dynamic symbols, which name the culprit.
needed="$(grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' <<<"$headers" | sort -uV)"
[ -n "$needed" ] || fail "$name/filex references no GLIBC_ version at all (not a glibc binary?)"
newest="$(sed 's/^GLIBC_//' <<<"$needed" | sort -V | tail -n 1)"
if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_MAX" | sort -V | tail -n 1)" != "$GLIBC_MAX" ]; then
  echo "check-release: $name/filex needs glibc $newest (at most $GLIBC_MAX allowed); symbols:" >&2
  objdump -T "$bin" | awk -v max="$GLIBC_MAX" '
    match($0, /GLIBC_[0-9.]+/) {
      v = substr($0, RSTART + 6, RLENGTH - 6)
      split(v, a, "."); split(max, b, ".")
      if (a[1] > b[1] || (a[1] == b[1] && a[2] + 0 > b[2] + 0)) print "  " $NF " (GLIBC_" v ")"
    }' >&2
  exit 1
fi
echo "check-release: $name/filex: stripped, glibc versions needed: $(tr '\n' ' ' <<<"$needed")(newest $newest <= $GLIBC_MAX)"

"$bin" --version
FILEX="$bin" "$ROOT/scripts/demo.sh" "$work/demo"
echo "check-release: the demo ran with $name/filex"
