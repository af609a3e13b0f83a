//! Error text for places that carry an error as a string (worker reports, manifests,
//! `filex validate`): the error and all its causes on one line, as `anyhow`'s `{:#}` prints
//! them, and multi-line messages (TOML and regex errors draw the line at fault under a
//! gutter) folded to one line.

/// `outer: cause: root cause`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// `text` on one line: the lines of a multi-line message joined with `: `, without the
/// snippet lines that TOML and regex errors draw (`3 | key = …`, `  |     ^^^`).
pub fn one_line(text: &str) -> String {
    let snippet = |l: &str| {
        let t = l.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        t.starts_with('|') || l.trim().chars().all(|c| c == '^' || c == '~' || c == ' ')
    };
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || snippet(line) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { ": " });
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {0}")]
    struct Outer(String, #[source] std::io::Error);

    #[test]
    fn joins_causes_once() {
        let e = Outer("f.gz".into(), std::io::Error::other("disk on fire"));
        assert_eq!(super::chain(&e), "cannot open f.gz: disk on fire");
    }

    #[test]
    fn one_line_drops_snippets() {
        let toml = "TOML parse error at line 2, column 1\n  |\n2 | nmae = \"x\"\n  | ^^^^\nunknown field `nmae`\n";
        assert_eq!(
            super::one_line(toml),
            "TOML parse error at line 2, column 1: unknown field `nmae`"
        );
        assert_eq!(super::one_line("plain"), "plain");
        assert_eq!(
            super::one_line("regex parse error:\n    (a\n    ^\nerror: unclosed group"),
            "regex parse error: (a: error: unclosed group"
        );
    }
}
