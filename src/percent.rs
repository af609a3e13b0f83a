//! Percent-encoding (`%XX`, RFC 3986 §2.1): one encoder, parametrised by the bytes a caller
//! leaves as they are, and one decoder.
//!
//! The callers differ only in what they keep: SigV4's canonical query and WebHDFS's query
//! values keep RFC 3986's unreserved characters ([`unreserved`]); an S3 key or an HDFS path in
//! a URL keeps `/` too ([`unreserved_or_slash`]). Non-ASCII bytes are always encoded, with
//! upper-case hex as SigV4 requires. Decoding is CloudFront's: `%XX` only, `+` left alone.

use std::borrow::Cow;

use memchr::memchr;

/// RFC 3986 unreserved characters: `A–Z a–z 0–9 - _ . ~`.
pub(crate) fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Unreserved characters and `/`: a URL path.
pub(crate) fn unreserved_or_slash(b: u8) -> bool {
    unreserved(b) || b == b'/'
}

/// `s` with every byte that is not ASCII or that `keep` refuses written as `%XX`.
pub(crate) fn encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii() && keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Decodes `%XX`; a `%` not followed by two hex digits is kept as written. Borrowed when there
/// is nothing to decode; invalid UTF-8 after decoding is replaced lossily.
pub(crate) fn decode(b: &[u8]) -> Cow<'_, str> {
    if memchr(b'%', b).is_none() {
        return String::from_utf8_lossy(b);
    }
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_the_caller_does_not_keep() {
        assert_eq!(encode("a b/c~d*", unreserved_or_slash), "a%20b/c~d%2A");
        assert_eq!(encode("a/b", unreserved), "a%2Fb");
        assert_eq!(encode("日", unreserved_or_slash), "%E6%97%A5");
        assert_eq!(encode("x+y/z", unreserved), "x%2By%2Fz");
        // Non-ASCII is encoded even when `keep` would take it.
        assert_eq!(encode("é", |_| true), "%C3%A9");
    }

    #[test]
    fn decodes_percent_escapes_only() {
        assert_eq!(decode(b"Mozilla/5.0%20(X)"), "Mozilla/5.0 (X)");
        assert_eq!(decode(b"100%"), "100%");
        assert_eq!(decode(b"a+b%2Fc%e6%97%a5"), "a+b/c日");
        assert_eq!(decode(b"%zz%2"), "%zz%2");
        assert!(matches!(decode(b"plain"), Cow::Borrowed("plain")));
        assert_eq!(decode(encode("a b/日", unreserved).as_bytes()), "a b/日");
    }
}
