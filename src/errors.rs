//! Error text for places that carry an error as a string (worker reports, manifests):
//! the error and all its causes on one line, as `anyhow`'s `{:#}` prints them.

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
}
