//! Lexing helpers shared by the space-separated formats: a cursor over one line that yields
//! unquoted tokens, `"quoted"` fields (nginx `\xHH` and Apache `\"`, `\\` escapes), and
//! `[bracketed]` CLF times; plus the conversions from field bytes to record values (empties,
//! lossy UTF-8, host and URL handling).
//!
//! Nothing here allocates unless a value really needs rewriting (escapes, invalid UTF-8,
//! upper-case host): plain values are borrowed from the line.

use std::borrow::Cow;

use memchr::{memchr, memchr2};

use super::{host_from_ctx, host_of, ParseContext, RejectReason};

/// One field as it appears in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The bytes between the quotes (or the whole token when unquoted), escapes not decoded.
    pub bytes: &'a [u8],
    /// A backslash occurs inside a quoted field: [`Field::text`] decodes escapes.
    pub escaped: bool,
    pub quoted: bool,
}

impl<'a> Field<'a> {
    /// The value as text: empties (`-`, `""`, `"-"`, whitespace only) become `""`, escapes of
    /// quoted fields are decoded, bytes that are not UTF-8 are replaced by U+FFFD (lossy).
    pub fn text(&self) -> Cow<'a, str> {
        if is_empty_value(self.bytes) {
            return Cow::Borrowed("");
        }
        if self.escaped {
            Cow::Owned(String::from_utf8_lossy(&unescape(self.bytes)).into_owned())
        } else {
            lossy(self.bytes)
        }
    }

    /// The raw bytes, unless the value is one of the empty spellings.
    pub fn non_empty(&self) -> Option<&'a [u8]> {
        (!is_empty_value(self.bytes)).then_some(self.bytes)
    }
}

/// Bytes as text, borrowed when valid UTF-8 (std's validator has an ASCII fast path), with
/// invalid sequences replaced by U+FFFD otherwise.
#[inline]
pub(crate) fn lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `-`, nothing, or only spaces/tabs: the ways logs spell "no value".
pub(crate) fn is_empty_value(b: &[u8]) -> bool {
    b == b"-" || b.iter().all(|&c| c == b' ' || c == b'\t')
}

/// Decodes nginx `\xHH` and Apache `\"`, `\\`, `\n`, `\t`, `\r` escapes. An unknown or
/// incomplete escape is kept as written.
pub(crate) fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let Some(off) = memchr(b'\\', &b[i..]) else {
            out.extend_from_slice(&b[i..]);
            break;
        };
        out.extend_from_slice(&b[i..i + off]);
        i += off;
        let next = b.get(i + 1).copied();
        match next {
            Some(b'x') | Some(b'X') => match (
                b.get(i + 2).and_then(|&c| hex(c)),
                b.get(i + 3).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 4;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                }
            },
            Some(c @ (b'"' | b'\\')) => {
                out.push(c);
                i += 2;
            }
            Some(b'n') => {
                out.push(b'\n');
                i += 2;
            }
            Some(b't') => {
                out.push(b'\t');
                i += 2;
            }
            Some(b'r') => {
                out.push(b'\r');
                i += 2;
            }
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

#[inline]
pub(crate) fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A cursor over a line of space-separated fields. Runs of spaces (and a stray `\r` or tab)
/// between fields count as one separator.
pub(crate) struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
}

#[inline]
fn is_sep(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r'
}

impl<'a> Cursor<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        let mut c = Cursor { line, pos: 0 };
        c.skip_separators();
        c
    }

    fn skip_separators(&mut self) {
        while self.pos < self.line.len() && is_sep(self.line[self.pos]) {
            self.pos += 1;
        }
    }

    /// What is left of the line, from the next field on.
    pub fn rest(&self) -> &'a [u8] {
        &self.line[self.pos..]
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// The next field, quoted or not. `None` at the end of the line or on an unterminated
    /// quote (a cut line).
    pub fn field(&mut self) -> Option<Field<'a>> {
        match self.line.get(self.pos)? {
            b'"' => self.quoted(),
            _ => self.token().map(|bytes| Field {
                bytes,
                escaped: false,
                quoted: false,
            }),
        }
    }

    /// The next optional field: `Ok(None)` at the end of the line, an error for a quote that
    /// is never closed (a cut line must not pass as a line with empty trailing fields).
    pub fn opt_field(&mut self) -> Result<Option<Field<'a>>, RejectReason> {
        if self.at_end() {
            return Ok(None);
        }
        self.field().map(Some).ok_or(RejectReason::Unterminated)
    }

    /// The next optional field as text (`""` at the end of the line).
    pub fn opt_text(&mut self) -> Result<Cow<'a, str>, RejectReason> {
        Ok(self.opt_field()?.map_or(Cow::Borrowed(""), |f| f.text()))
    }

    /// The next required field as text.
    pub fn req_text(&mut self, what: &'static str) -> Result<Cow<'a, str>, RejectReason> {
        Ok(self.req_field(what)?.text())
    }

    /// The next required field; `what` names it in the reject.
    pub fn req_field(&mut self, what: &'static str) -> Result<Field<'a>, RejectReason> {
        if self.at_end() {
            return Err(RejectReason::Missing(what));
        }
        self.field().ok_or(RejectReason::Unterminated)
    }

    /// The next field, which must be quoted; `what` names it in the reject.
    pub fn req_quoted(&mut self, what: &'static str) -> Result<Field<'a>, RejectReason> {
        match self.line.get(self.pos) {
            None => Err(RejectReason::Missing(what)),
            Some(b'"') => self.quoted().ok_or(RejectReason::Unterminated),
            Some(_) => Err(RejectReason::Invalid(what)),
        }
    }

    /// The next unquoted token: bytes up to the next space.
    pub fn token(&mut self) -> Option<&'a [u8]> {
        if self.at_end() {
            return None;
        }
        let rest = &self.line[self.pos..];
        let len = rest.iter().position(|&c| is_sep(c)).unwrap_or(rest.len());
        self.pos += len;
        self.skip_separators();
        Some(&rest[..len])
    }

    /// Skips `n` fields (quoted or not).
    pub fn skip(&mut self, n: usize) -> Option<()> {
        for _ in 0..n {
            self.field()?;
        }
        Some(())
    }

    /// The next field, which must be quoted. A backslash escapes the next byte (Apache `\"`,
    /// `\\`; nginx `\x22` contains no quote at all), so the closing quote is the first
    /// unescaped one.
    pub fn quoted(&mut self) -> Option<Field<'a>> {
        if self.line.get(self.pos) != Some(&b'"') {
            return None;
        }
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let off = memchr2(b'"', b'\\', self.line.get(i..)?)?;
            i += off;
            if self.line[i] == b'\\' {
                escaped = true;
                i += 2;
                continue;
            }
            break;
        }
        let bytes = &self.line[start..i];
        self.pos = i + 1;
        // A quote must end the field: `"a"b` is not two fields glued together.
        if self.pos < self.line.len() && !is_sep(self.line[self.pos]) {
            return None;
        }
        self.skip_separators();
        Some(Field {
            bytes,
            escaped,
            quoted: true,
        })
    }

    /// The next `[...]` field's inside (a CLF time); `None` if the next field is not bracketed.
    pub fn bracketed(&mut self) -> Option<&'a [u8]> {
        if self.line.get(self.pos) != Some(&b'[') {
            return None;
        }
        let start = self.pos + 1;
        let end = start + memchr(b']', &self.line[start..])?;
        self.pos = end + 1;
        self.skip_separators();
        Some(&self.line[start..end])
    }
}

/// A decimal `u64` (no sign); `None` for anything else, including `-`.
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    Some(n)
}

/// An HTTP status: three digits, 100..=999. Nginx writes `000` for a client that left before
/// a response; that is kept as `Some(0)`.
pub(crate) fn parse_status(b: &[u8]) -> Option<u16> {
    if b.len() != 3 {
        return None;
    }
    parse_u64(b).map(|n| n as u16)
}

/// A duration in seconds with an optional fraction (`0.012`, `3`, `1.5`) → whole ms
/// (rounded down), read without floats.
pub(crate) fn seconds_to_ms(b: &[u8]) -> Option<u64> {
    let dot = memchr(b'.', b).unwrap_or(b.len());
    let secs = if dot == 0 { 0 } else { parse_u64(&b[..dot])? };
    let mut ms = 0u64;
    if dot < b.len() {
        let frac = &b[dot + 1..];
        if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..3 {
            ms = ms * 10 + frac.get(i).map_or(0, |c| (c - b'0') as u64);
        }
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

/// A duration that is milliseconds, possibly with a fraction (`12`, `12.7`) → whole ms.
pub(crate) fn millis(b: &[u8]) -> Option<u64> {
    let dot = memchr(b'.', b).unwrap_or(b.len());
    let whole = parse_u64(&b[..dot])?;
    let frac = b.get(dot + 1..).unwrap_or(b"");
    (frac.iter().all(u8::is_ascii_digit)).then_some(whole)
}

/// An optional numeric field: empties give `None`, garbage gives `None` too (optional trailing
/// columns must not cost a line); an unterminated quote is a cut line.
pub(crate) fn opt<T>(
    f: Result<Option<Field<'_>>, RejectReason>,
    parse: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, RejectReason> {
    Ok(f?.and_then(|f| f.non_empty()).and_then(parse))
}

/// Longest DNS name.
const MAX_HOST_LEN: usize = 253;

/// Why a host value is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    Missing,
    Invalid,
}

/// Normalizes a host: lower-case, port and a trailing dot removed, IPv6 literals kept in
/// brackets. Only letters, digits, `-`, `.`, `_`, and (in brackets) `:` are allowed, because
/// the host names output files. Borrowed when already normal.
pub(crate) fn host(b: &[u8]) -> Result<Cow<'_, str>, HostError> {
    if is_empty_value(b) {
        return Err(HostError::Missing);
    }
    let h = if b[0] == b'[' {
        let end = memchr(b']', b).ok_or(HostError::Invalid)?;
        let inner = &b[1..end];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err(HostError::Invalid);
        }
        &b[..=end]
    } else {
        let h = match memchr(b':', b) {
            Some(i) => &b[..i],
            None => b,
        };
        let h = h.strip_suffix(b".").unwrap_or(h);
        // The host becomes a path segment of the output: no `.`/`..` tricks, no names
        // hidden by a leading `_` or `.` (filex's own files start with `_`), DNS length.
        if h.is_empty()
            || h.len() > MAX_HOST_LEN
            || matches!(h[0], b'.' | b'-' | b'_')
            || h.windows(2).any(|w| w == b"..")
        {
            return Err(HostError::Invalid);
        }
        h
    };
    let mut upper = false;
    for &c in h {
        match c {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'[' | b']' | b':' => {}
            b'A'..=b'Z' => upper = true,
            _ => return Err(HostError::Invalid),
        }
    }
    // Only ASCII is left, so this cannot fail.
    let s = std::str::from_utf8(h).map_err(|_| HostError::Invalid)?;
    Ok(if upper {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    })
}

/// The parts of `"METHOD uri PROTO"` (PROTO optional; a URI with spaces keeps them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestLine<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub protocol: &'a [u8],
}

/// Splits a request line. A value with no space (`-`, or the garbage a scanner sends) has no
/// method: it is kept as the target so it is not lost.
pub(crate) fn split_request(b: &[u8]) -> RequestLine<'_> {
    if is_empty_value(b) {
        return RequestLine::default();
    }
    let Some(sp) = memchr(b' ', b) else {
        return RequestLine {
            target: b,
            ..Default::default()
        };
    };
    let method = &b[..sp];
    let rest = &b[sp + 1..];
    if let Some(last) = memchr::memrchr(b' ', rest) {
        let proto = &rest[last + 1..];
        if looks_like_protocol(proto) {
            return RequestLine {
                method,
                target: &rest[..last],
                protocol: proto,
            };
        }
    }
    RequestLine {
        method,
        target: rest,
        protocol: b"",
    }
}

/// `HTTP/1.1`, `HTTP/2.0`, `HTTP/3`, `h2`, `h3`, `QUIC`… : a short token starting with `HTTP/`
/// or naming a known protocol.
pub(crate) fn looks_like_protocol(b: &[u8]) -> bool {
    (b.len() >= 6 && b.len() <= 16 && b[..5].eq_ignore_ascii_case(b"HTTP/"))
        || matches!(b, b"h2" | b"h3" | b"h2c" | b"QUIC" | b"quic" | b"SPDY/3.1")
}

/// A full URL `scheme://host[:port]/path?q` (or `//host/path`) split into (host bytes, uri).
/// The uri is the path plus query, `/` when the URL has no path. `None` when the value is
/// not an absolute URL (a bare path): the caller decides where the host comes from then.
pub(crate) fn split_url(b: &[u8]) -> Option<(&[u8], Cow<'_, str>)> {
    let after = if let Some(rest) = b.strip_prefix(b"//") {
        rest
    } else {
        let colon = memchr(b':', b)?;
        let scheme = &b[..colon];
        if scheme.is_empty()
            || !scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return None;
        }
        b[colon + 1..].strip_prefix(b"//")?
    };
    let end = after
        .iter()
        .position(|&c| c == b'/' || c == b'?' || c == b'#')
        .unwrap_or(after.len());
    let host = &after[..end];
    // userinfo@host
    let host = match memchr::memrchr(b'@', host) {
        Some(i) => &host[i + 1..],
        None => host,
    };
    let path = &after[end..];
    let uri = match path.first() {
        Some(b'/') => lossy(path),
        None => Cow::Borrowed("/"),
        Some(_) => Cow::Owned(format!("/{}", String::from_utf8_lossy(path))),
    };
    Some((host, uri))
}

/// A field as text, for a value the line provides borrowed bytes of.
pub(crate) fn text(b: &[u8]) -> Cow<'_, str> {
    if is_empty_value(b) {
        Cow::Borrowed("")
    } else {
        lossy(b)
    }
}

/// The three parts of a quoted request field as record values (escapes decoded).
pub(crate) fn request_parts(f: Field<'_>) -> (Cow<'_, str>, Cow<'_, str>, Cow<'_, str>) {
    if f.escaped {
        let decoded = unescape(f.bytes);
        let r = split_request(&decoded);
        let own = |b: &[u8]| Cow::Owned(text(b).into_owned());
        (own(r.method), own(r.target), own(r.protocol))
    } else {
        let r = split_request(f.bytes);
        (text(r.method), text(r.target), text(r.protocol))
    }
}

/// For formats that log full URLs: (host, uri) from the request target. A target that is
/// not an absolute URL (a bare path) takes its host from the shard path instead, and is the
/// uri as it is.
pub(crate) fn host_and_uri<'a>(
    target: Cow<'a, str>,
    ctx: &ParseContext<'_>,
) -> Result<(Cow<'a, str>, Cow<'a, str>), RejectReason> {
    match target {
        Cow::Borrowed(s) => match split_url(s.as_bytes()) {
            Some((h, uri)) => Ok((host_of(h)?, uri)),
            None => Ok((host_from_ctx(ctx)?, Cow::Borrowed(s))),
        },
        Cow::Owned(s) => match split_url(s.as_bytes()) {
            Some((h, uri)) => Ok((
                Cow::Owned(host_of(h)?.into_owned()),
                Cow::Owned(uri.into_owned()),
            )),
            None => Ok((host_from_ctx(ctx)?, Cow::Owned(s))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_tokens_quotes_and_brackets() {
        let line = br#"1.2.3.4  - [5/Mar/2021:18:15:32 +0800] "a \"b\" c" "" " " "-" tail"#;
        let mut c = Cursor::new(line);
        assert_eq!(c.token(), Some(&b"1.2.3.4"[..]));
        assert_eq!(c.token(), Some(&b"-"[..]));
        assert_eq!(c.bracketed(), Some(&b"5/Mar/2021:18:15:32 +0800"[..]));
        let q = c.quoted().unwrap();
        assert!(q.escaped);
        assert_eq!(q.text(), "a \"b\" c");
        assert_eq!(c.field().unwrap().text(), "");
        assert_eq!(c.field().unwrap().text(), "");
        assert_eq!(c.field().unwrap().text(), "");
        assert_eq!(c.field().unwrap().text(), "tail");
        assert!(c.field().is_none());
    }

    #[test]
    fn unterminated_quote_and_glued_quote_fail() {
        assert!(Cursor::new(br#""abc"#).quoted().is_none());
        assert!(Cursor::new(br#""abc\"#).quoted().is_none());
        assert!(Cursor::new(br#""abc"def"#).quoted().is_none());
    }

    #[test]
    fn escapes_decode_nginx_and_apache_styles() {
        assert_eq!(
            unescape(br#"\xE4\xB8\xAD \x22q\x22 \\ \" \n \q \x4"#),
            "中 \"q\" \\ \" \n \\q \\x4".as_bytes()
        );
        let f = Field {
            bytes: b"\\xE4\\xB8",
            escaped: true,
            quoted: true,
        };
        // A cut multi-byte character decodes lossily.
        assert_eq!(f.text(), "\u{FFFD}");
    }

    #[test]
    fn hosts_that_could_escape_the_output_root_are_invalid() {
        for ok in [
            "img.example.com",
            "a-b.example.net",
            "192.0.2.1",
            "[2001:db8::1]",
        ] {
            assert_eq!(host(ok.as_bytes()).as_deref(), Ok(ok), "{ok}");
        }
        assert_eq!(host(b"UPPER").as_deref(), Ok("upper"));
        for bad in [
            "", "..", "../etc", "a/b", "_x", ".hidden", "a b", "a\\b", "a..b",
        ] {
            assert!(host(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(host("a".repeat(254).as_bytes()).is_err());
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(host(b"IMG.Example.com:8080").unwrap(), "img.example.com");
        assert!(matches!(
            host(b"img.example.com").unwrap(),
            Cow::Borrowed(_)
        ));
        assert_eq!(host(b"[2001:DB8::1]:443").unwrap(), "[2001:db8::1]");
        assert_eq!(host(b"example.com.").unwrap(), "example.com");
        assert_eq!(host(b"-"), Err(HostError::Missing));
        assert_eq!(host(b"../etc"), Err(HostError::Invalid));
        assert_eq!(host(b"a/b"), Err(HostError::Invalid));
        assert_eq!(host(b"a b"), Err(HostError::Invalid));
    }

    #[test]
    fn urls_and_requests_split() {
        let (h, u) = split_url(b"https://img.example.com:443/a.jpg?w=200").unwrap();
        assert_eq!((h, &*u), (&b"img.example.com:443"[..], "/a.jpg?w=200"));
        assert_eq!(&*split_url(b"http://a.com").unwrap().1, "/");
        assert_eq!(&*split_url(b"http://a.com?x=1").unwrap().1, "/?x=1");
        assert_eq!(split_url(b"//u@a.com/p").unwrap().0, b"a.com");
        assert!(split_url(b"/a.jpg").is_none());
        let r = split_request(b"GET /a b.jpg HTTP/1.1");
        assert_eq!(
            (r.method, r.target, r.protocol),
            (&b"GET"[..], &b"/a b.jpg"[..], &b"HTTP/1.1"[..])
        );
        let r = split_request(b"GET https://a.com/x");
        assert_eq!(
            (r.method, r.target, r.protocol),
            (&b"GET"[..], &b"https://a.com/x"[..], &b""[..])
        );
        let r = split_request(b"\x16\x03\x01");
        assert_eq!((r.method, r.target), (&b""[..], &b"\x16\x03\x01"[..]));
    }

    #[test]
    fn numbers_durations_cache() {
        assert_eq!(seconds_to_ms(b"0.012"), Some(12));
        assert_eq!(seconds_to_ms(b"1.5"), Some(1500));
        assert_eq!(seconds_to_ms(b"3"), Some(3000));
        assert_eq!(seconds_to_ms(b".25"), Some(250));
        assert_eq!(seconds_to_ms(b"1.x"), None);
        assert_eq!(millis(b"12.7"), Some(12));
        assert_eq!(parse_status(b"200"), Some(200));
        assert_eq!(parse_status(b"20"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
    }
}
