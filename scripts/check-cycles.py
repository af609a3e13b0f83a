#!/usr/bin/env python3
"""Report import cycles between the source files of the workspace's crates.

Usage: scripts/check-cycles.py [--strict]   (exit 0: no cycle; 1: cycles printed; 2: usage)

Every crate root (`src/lib.rs`, `src/main.rs`, `yarn/src/lib.rs`, `yarn/src/bin/*.rs`) is read
with the module tree it declares (`mod x;` → `x.rs` or `x/mod.rs`; an inline `mod x { … }` is a
module of the same file). A file uses another file of its crate when it names it:

* by a path starting with `crate::`, `$crate::`, `super::` or `self::`, or with a child module
  declared in the same module (`child::f()`), in a `use` declaration or in code;
* a path is resolved to the module it names — the longest prefix that is a declared module — and
  so to the file that defines that module; a name re-exported by a module (`pub use child::X`) is
  followed to the file that defines it.

Not counted:

* `#[cfg(test)]` items (the `mod tests` blocks and files, test-only helpers and imports), comments,
  string literals, paths into other crates (`yarn::…`, `std::…`, `::x::…`);
* a module declaring its children (`pub mod child;`) and re-exporting them (`pub use child::X`,
  `pub(crate) use child::{X, Y}`): that is the parent presenting its children, not depending on
  them. A re-export counts again as soon as the parent's own code uses the re-exported name;
* a module using its own ancestors' items (`super::Error` in a child of the module that declares
  `Error`): a child is part of its parent, built on the vocabulary the parent declares (Rust lets
  it see even the parent's private items). `--strict` counts these too, and then reports every
  `mod.rs` that both declares shared types and dispatches to its children.

Edges are drawn between siblings: a use of file B by file A joins, below the closest module
containing both, the child holding A and the child holding B — a file, or a directory module as
`dir/**` (so `src/cluster/** -> src/driver.rs` is a cycle even if no single file of `cluster/`
both uses and is used by `driver.rs`). A cycle is a closed chain of such edges; each elementary
cycle is printed with, for every edge, the first place that creates it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE_ROOTS = ["src/lib.rs", "src/main.rs", "yarn/src/lib.rs", "yarn/src/bin/*.rs"]
MAX_CYCLES = 200

IDENT_START = re.compile(r"[A-Za-z_]")
IDENT = re.compile(r"[A-Za-z0-9_]*")


@dataclass
class Tok:
    text: str
    line: int


def strip_and_tokenize(src: str) -> list[Tok]:
    """Identifiers, `::`, `$`, and single punctuation characters; no comments or literals."""
    toks: list[Tok] = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += src[i] == "\n"
                    i += 1
        elif c == '"':
            i, line = skip_string(src, i + 1, line)
        elif c == "'":
            # char literal ('a', '\n', '\u{1F600}') or lifetime ('a)
            if i + 1 < n and src[i + 1] == "\\":
                j = src.find("'", i + 2)
                while j > 0 and src[j - 1] == "\\" and src[j - 2] != "\\":
                    j = src.find("'", j + 1)
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                i += 3
            else:
                i += 1
        elif IDENT_START.match(c):
            m = IDENT.match(src, i + 1)
            word = src[i : m.end()]
            j = m.end()
            if word in ("r", "br") and j < n and src[j] in '"#':
                k = j
                while k < n and src[k] == "#":
                    k += 1
                if k < n and src[k] == '"':  # raw string r#"…"#
                    end = src.find('"' + "#" * (k - j), k + 1)
                    line += src.count("\n", k, end)
                    i = end + 1 + (k - j)
                    continue
                if word == "r" and k == j + 1:  # raw identifier r#type
                    m2 = IDENT.match(src, k)
                    toks.append(Tok(src[k : m2.end()], line))
                    i = m2.end()
                    continue
            if word == "b" and j < n and src[j] == '"':
                i, line = skip_string(src, j + 1, line)
                continue
            if word == "b" and j < n and src[j] == "'":
                i = j  # the char-literal branch skips it
                continue
            toks.append(Tok(word, line))
            i = j
        elif src.startswith("::", i):
            toks.append(Tok("::", line))
            i += 2
        else:
            toks.append(Tok(c, line))
            i += 1
    return toks


def skip_string(src: str, i: int, line: int) -> tuple[int, int]:
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            line += src[i + 1 : i + 2] == "\n"
            i += 2
        elif c == '"':
            return i + 1, line
        else:
            line += c == "\n"
            i += 1
    return i, line


@dataclass
class Use:
    path: list[str]  # segments as written
    line: int
    bound: str | None  # the name the `use` binds (None for globs and `self` imports of modules)
    public: bool
    module: tuple[str, ...]  # the module the path is written in


@dataclass
class FileInfo:
    path: Path
    module: tuple[str, ...]
    uses: list[Use] = field(default_factory=list)
    code_paths: list[Use] = field(default_factory=list)
    code_idents: dict[tuple[str, ...], set[str]] = field(default_factory=dict)


class Crate:
    def __init__(self, name: str, root: Path):
        self.name = name
        self.modules: dict[tuple[str, ...], Path] = {}
        self.children: dict[tuple[str, ...], set[str]] = {}
        self.files: dict[Path, FileInfo] = {}
        self.reexports: dict[tuple[str, ...], dict[str, Use]] = {}
        self.load(root, (), root.parent, is_mod_rs=True)

    def load(self, path: Path, module: tuple[str, ...], dir_: Path, is_mod_rs: bool) -> None:
        info = FileInfo(path, module)
        self.files[path] = info
        self.modules[module] = path
        toks = strip_and_tokenize(path.read_text(encoding="utf-8"))
        # Where this file's child module files live.
        child_dir = dir_ if is_mod_rs else dir_ / path.stem
        self.walk(toks, 0, len(toks), module, child_dir, info)

    def walk(self, toks, i, end, module, child_dir, info) -> None:
        self.children.setdefault(module, set())
        idents = info.code_idents.setdefault(module, set())
        while i < end:
            t = toks[i].text
            if t == "#" and i + 1 < end and toks[i + 1].text in ("[", "!"):
                inner = toks[i + 1].text == "!"
                close = match(toks, i + 1 + inner)
                attr = [x.text for x in toks[i + 2 + inner : close]]
                i = close + 1
                if attr == ["cfg", "(", "test", ")"] and not inner:
                    i = skip_item(toks, i, end)
                continue
            if t == "mod" and i + 2 < end and IDENT_START.match(toks[i + 1].text):
                name = toks[i + 1].text
                self.children[module].add(name)
                if toks[i + 2].text == ";":
                    sub = child_dir / f"{name}.rs"
                    if sub.exists():
                        self.load(sub, module + (name,), child_dir, is_mod_rs=False)
                    else:
                        self.load(child_dir / name / "mod.rs", module + (name,), child_dir / name, True)
                    i += 3
                    continue
                if toks[i + 2].text == "{":
                    close = match(toks, i + 2)
                    self.modules[module + (name,)] = info.path
                    self.walk(toks, i + 3, close, module + (name,), child_dir / name, info)
                    i = close + 1
                    continue
            if t == "use":
                public = i > 0 and (
                    toks[i - 1].text == "pub" or (toks[i - 1].text == ")" and i >= 4 and toks[i - 4].text == "pub")
                )
                semi = i + 1
                while toks[semi].text != ";":
                    semi += 1
                for segs, bound in expand_use(toks[i + 1 : semi]):
                    use = Use(segs, toks[i].line, bound, public, module)
                    info.uses.append(use)
                    if public and bound is not None:
                        self.reexports.setdefault(module, {})[bound] = use
                i = semi + 1
                continue
            if IDENT_START.match(t) and (i == 0 or toks[i - 1].text not in ("::", ".")):
                segs, j = [t], i + 1
                while j + 1 < end and toks[j].text == "::" and IDENT_START.match(toks[j + 1].text):
                    segs.append(toks[j + 1].text)
                    j += 2
                if i > 0 and toks[i - 1].text == "$":
                    segs[0] = "$" + segs[0]
                if len(segs) > 1:
                    info.code_paths.append(Use(segs, toks[i].line, None, False, module))
                idents.update(segs)
                i = j
                continue
            i += 1


def match(toks, i) -> int:
    """Index of the bracket closing the one at `i`."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[toks[i].text]]
    i += 1
    while stack:
        t = toks[i].text
        if t in pairs:
            stack.append(pairs[t])
        elif t == stack[-1]:
            stack.pop()
        i += 1
    return i - 1


def skip_item(toks, i, end) -> int:
    """Index after the item starting at `i`: further attributes, then up to `;` or a `{…}` body."""
    while i < end:
        t = toks[i].text
        if t == "#":
            i = match(toks, i + 1) + 1
        elif t in ("(", "["):
            i = match(toks, i) + 1
        elif t == ";":
            return i + 1
        elif t == "{":
            i = match(toks, i) + 1
            return i + 1 if i < end and toks[i].text == ";" else i
        else:
            i += 1
    return i


def expand_use(toks: list[Tok]) -> list[tuple[list[str], str | None]]:
    """`a::{b, c::d as e, f::*}` → [([a, b], b), ([a, c, d], e), ([a, f], None)]."""
    out: list[tuple[list[str], str | None]] = []

    def tree(i: int, prefix: list[str]) -> int:
        segs = list(prefix)
        while i < len(toks):
            t = toks[i].text
            if t == "{":
                i += 1
                while toks[i].text != "}":
                    i = tree(i, segs)
                    if toks[i].text == ",":
                        i += 1
                return i + 1
            if t == "*":
                out.append((segs, None))
                return i + 1
            if t in (",", "}"):
                if segs and segs != prefix:
                    last = segs[-1]
                    if last == "self":
                        segs = segs[:-1]
                        last = segs[-1] if segs else None
                    out.append((segs, last))
                return i
            if t == "as":
                alias = toks[i + 1].text
                if segs[-1] == "self":
                    segs = segs[:-1]
                out.append((segs, None if alias == "_" else alias))
                return i + 2
            if t == "::":
                if not segs:
                    segs = ["::"]  # leading `::`: an external crate
                i += 1
                continue
            segs.append(t)
            i += 1
        if segs and segs != prefix:
            last = segs[-1]
            if last == "self":
                segs = segs[:-1]
                last = segs[-1] if segs else None
            out.append((segs, last))
        return i

    tree(0, [])
    return out


def resolve(crate: Crate, use: Use, depth: int = 0) -> tuple[str, ...] | None:
    """The module a path names, or None if it leaves the crate. A name that a module re-exports
    (`pub use child::X`) resolves to the module that defines it."""
    segs = use.path
    if not segs:
        return None
    first = segs[0]
    if first in ("crate", "$crate"):
        base, rest = (), segs[1:]
    elif first in ("super", "self"):
        base, rest = use.module, segs
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif first in crate.children.get(use.module, ()):
        base, rest = use.module, segs
    else:
        return None
    for seg in rest:
        if base + (seg,) in crate.modules:
            base = base + (seg,)
            continue
        again = crate.reexports.get(base, {}).get(seg)
        target = resolve(crate, again, depth + 1) if again is not None and depth < 8 else None
        if target is None:
            break
        base = target
    return base


Node = str  # a file ("src/driver.rs") or a directory module seen from outside ("src/cluster/**")
Where = tuple[str, int, str]  # file, line, path as written


def module_edges(crate: Crate, strict: bool) -> dict[Node, dict[Node, Where]]:
    """Edges between sibling modules, each with the first use that creates it.

    A use from file A (module a) of file B (module b) meets at their closest common module c.
    Below c, A and B lie in two different children of c (or one of them is c's own file): the
    edge joins those two, as files if they are files, as `dir/**` if they are directories."""
    owner = {path: info.module for path, info in crate.files.items()}

    def node(c: tuple[str, ...], mod: tuple[str, ...]) -> Node:
        if mod == c:
            return rel(crate.modules[c])
        child = c + (mod[len(c)],)
        path = crate.modules[child]
        if owner[path] != child:  # an inline module: its file
            return rel(path)
        return rel(path.parent) + "/**" if path.name == "mod.rs" else rel(path)

    graph: dict[Node, dict[Node, Where]] = {}
    for info in crate.files.values():
        for use in info.uses + info.code_paths:
            target = resolve(crate, use)
            if target is None:
                continue
            if use.public and target[: len(use.module)] == use.module and target != use.module:
                # A re-export of a descendant: counts only if the parent uses the name itself.
                if use.bound is None or use.bound not in info.code_idents.get(use.module, set()):
                    continue
            dest = crate.modules[target]
            if dest == info.path:
                continue
            a, b = owner[info.path], owner[dest]
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            c = a[:k]
            if b == c and not strict:
                continue  # a module using its own ancestor's items: it is part of that ancestor
            src, dst = node(c, a), node(c, b)
            where = (rel(info.path), use.line, "::".join(use.path))
            out = graph.setdefault(src, {})
            if dst not in out or where < out[dst]:
                out[dst] = where
    return graph


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def cycles(graph: dict[Node, dict[Node, Where]]) -> list[list[Node]]:
    """Elementary cycles (Johnson's algorithm), each starting at its smallest file."""
    nodes = sorted(graph)
    index = {n: k for k, n in enumerate(nodes)}
    found: list[list[Node]] = []
    for k, start in enumerate(nodes):
        allowed = set(nodes[k:])
        blocked: set[Node] = set()
        blocked_by: dict[Node, set[Node]] = {}
        stack: list[Node] = []

        def unblock(v: Node) -> None:
            blocked.discard(v)
            for w in blocked_by.pop(v, set()):
                if w in blocked:
                    unblock(w)

        def circuit(v: Node) -> bool:
            closed = False
            stack.append(v)
            blocked.add(v)
            for w in sorted(graph.get(v, {}), key=lambda p: index.get(p, -1)):
                if w not in allowed:
                    continue
                if w == start:
                    found.append(list(stack))
                    closed = True
                elif w not in blocked and len(found) < MAX_CYCLES and circuit(w):
                    closed = True
            if closed:
                unblock(v)
            else:
                for w in graph.get(v, {}):
                    if w in allowed:
                        blocked_by.setdefault(w, set()).add(v)
            stack.pop()
            return closed

        circuit(start)
        if len(found) >= MAX_CYCLES:
            break
    return found


def main() -> int:
    args = sys.argv[1:]
    strict = args == ["--strict"]
    if args and not strict:
        print("usage: scripts/check-cycles.py [--strict]", file=sys.stderr)
        return 2
    roots = [p for pattern in CRATE_ROOTS for p in sorted(ROOT.glob(pattern))]
    total = 0
    for root in roots:
        crate = Crate(rel(root), root)
        graph = module_edges(crate, strict)
        for cycle in cycles(graph):
            total += 1
            print("cycle: " + " -> ".join(cycle + cycle[:1]))
            for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                file, line, path = graph[a][b]
                print(f"    {file}:{line}: {path}")
    if total:
        more = " (stopped at the limit)" if total >= MAX_CYCLES else ""
        print(f"{total} import cycle(s) between files{more}")
        return 1
    print("no import cycles between files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
