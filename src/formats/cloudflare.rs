//! Cloudflare Logpush `http_requests` as NDJSON: one object per line, unknown keys ignored.
//!
//! A small hand-written scanner walks the top-level object, borrowing string values that have
//! no escapes and skipping nested values; no serde per line. `EdgeStartTimestamp` may be an
//! integer (unit guessed from its magnitude: s, ms, µs or ns) or an RFC 3339 string.

use std::borrow::Cow;

use super::fields::{hex, text};
use super::time::{epoch_any_unit_to_ms, parse_epoch, parse_rfc3339, EpochUnit};
use super::{host_of, FormatInfo, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "cloudflare",
    description: "Cloudflare Logpush http_requests NDJSON; EdgeStartTimestamp in ns, s or RFC 3339; host from ClientRequestHost",
    sample: r#"{"EdgeStartTimestamp":1614939332123000000,"ClientIP":"2001:db8::7","ClientRequestHost":"img.example.com","ClientRequestMethod":"GET","ClientRequestURI":"/a.jpg?w=200","EdgeResponseStatus":200,"EdgeResponseBytes":49120}"#,
};

/// Nesting deeper than this inside a skipped value is rejected rather than walked.
const MAX_DEPTH: usize = 64;

/// A scalar JSON value, still in its source bytes.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// The bytes between the quotes; `escaped` if a backslash occurs.
    Str { raw: &'a [u8], escaped: bool },
    /// A number, `true`, `false` or `null` as written.
    Bare(&'a [u8]),
    /// An object or array (skipped).
    Nested,
}

impl<'a> Value<'a> {
    fn text(self) -> Cow<'a, str> {
        match self {
            Value::Str {
                raw,
                escaped: false,
            } => text(raw),
            Value::Str { raw, escaped: true } => Cow::Owned(unescape_json(raw)),
            Value::Bare(b"null") | Value::Nested => Cow::Borrowed(""),
            Value::Bare(b) => text(b),
        }
    }

    fn uint(self) -> Option<u64> {
        match self {
            Value::Bare(b)
            | Value::Str {
                raw: b,
                escaped: false,
            } => {
                let int = b.split(|&c| c == b'.').next()?;
                super::fields::parse_u64(int)
            }
            _ => None,
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// After the opening quote: the raw string and whether it has escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        let start = self.i;
        let mut escaped = false;
        loop {
            let off = memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            self.i += off;
            if self.b[self.i] == b'\\' {
                escaped = true;
                self.i += 2;
            } else {
                let s = &self.b[start..self.i];
                self.i += 1;
                return Some((s, escaped));
            }
        }
    }

    fn value(&mut self) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                let (raw, escaped) = self.string()?;
                Some(Value::Str { raw, escaped })
            }
            b'{' | b'[' => {
                self.skip_nested()?;
                Some(Value::Nested)
            }
            _ => {
                let start = self.i;
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'
                    )
                {
                    self.i += 1;
                }
                (self.i > start).then(|| Value::Bare(&self.b[start..self.i]))
            }
        }
    }

    fn skip_nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                b'"' => {
                    self.string()?;
                }
                _ => {}
            }
        }
    }
}

/// Decodes a JSON string body (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\uXXXX` with
/// surrogate pairs); anything malformed becomes U+FFFD.
fn unescape_json(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex4 = |i: usize| -> Option<u32> {
        let h = b.get(i..i + 4)?;
        h.iter()
            .try_fold(0u32, |acc, &c| Some(acc << 4 | hex(c)? as u32))
    };
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b.get(i + 1).copied().unwrap_or(b'?');
        i += 2;
        let simple = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let mut ch = '\u{FFFD}';
        if c == b'u' {
            if let Some(hi) = hex4(i) {
                i += 4;
                if (0xD800..0xDC00).contains(&hi) && b.get(i..i + 2) == Some(b"\\u") {
                    if let Some(lo) = hex4(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        i += 6;
                        ch = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            .unwrap_or(ch);
                    }
                } else {
                    ch = char::from_u32(hi).unwrap_or(ch);
                }
            }
        }
        let mut buf = [0; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn time_of(v: Value<'_>) -> Option<i64> {
    let b = match v {
        Value::Bare(b)
        | Value::Str {
            raw: b,
            escaped: false,
        } => b,
        _ => return None,
    };
    if b.iter().all(u8::is_ascii_digit) {
        return parse_epoch(b, EpochUnit::Millis).map(epoch_any_unit_to_ms);
    }
    if matches!(v, Value::Bare(_)) {
        return parse_epoch(b, EpochUnit::Seconds);
    }
    parse_rfc3339(b, 0)
}

pub(super) fn parse(line: &[u8]) -> Result<Record<'_>, RejectReason> {
    let mut s = Scanner { b: line, i: 0 };
    let invalid = RejectReason::Invalid("json object");
    s.eat(b'{').ok_or(invalid)?;
    let mut rec = Record::default();
    let mut time = None;
    let mut host = None;
    if s.peek() != Some(b'}') {
        loop {
            s.eat(b'"').ok_or(invalid)?;
            let (key, _) = s.string().ok_or(invalid)?;
            s.eat(b':').ok_or(invalid)?;
            let v = s.value().ok_or(invalid)?;
            match key {
                b"EdgeStartTimestamp" => time = Some(time_of(v).ok_or(RejectReason::BadTime)?),
                b"ClientIP" => rec.client_ip = v.text(),
                b"ClientRequestHost" => host = Some(v),
                b"ClientRequestMethod" => rec.method = v.text(),
                b"ClientRequestURI" => rec.uri = v.text(),
                b"ClientRequestProtocol" => rec.protocol = v.text(),
                b"EdgeResponseStatus" => rec.status = v.uint().and_then(|n| u16::try_from(n).ok()),
                b"EdgeResponseBytes" => rec.bytes = v.uint(),
                b"EdgeTimeToFirstByteMs" => rec.request_time_ms = v.uint(),
                b"ClientRequestReferer" => rec.referer = v.text(),
                b"ClientRequestUserAgent" => rec.user_agent = v.text(),
                b"CacheCacheStatus" => rec.cache = v.text(),
                _ => {}
            }
            match s.peek() {
                Some(b',') => s.i += 1,
                Some(b'}') => break,
                _ => return Err(invalid),
            }
        }
    }
    rec.time_ms = time.ok_or(RejectReason::BadTime)?;
    rec.host = match host.ok_or(RejectReason::NoHost)? {
        Value::Str {
            raw,
            escaped: false,
        } => host_of(raw)?,
        v => Cow::Owned(host_of(v.text().as_bytes())?.into_owned()),
    };
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, ms, parse_err, parse_ok};
    use super::super::{Format, RejectReason};

    #[test]
    fn parses_the_spec_example() {
        let r = parse_ok(&Format::Cloudflare, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32.123Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host),
            ("2001:db8::7", "img.example.com")
        );
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a.jpg?w=200", "")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(49120), None)
        );
    }

    #[test]
    fn all_fields_time_encodings_escapes_and_nested_unknown_keys() {
        let line = r#" { "EdgeStartTimestamp" : "2021-03-05T18:15:32+08:00", "ClientIP":"203.0.113.7","Extra":{"a":[1,{"b":"}\""}]},"ClientRequestHost":"IMG.example.com","ClientRequestMethod":"GET","ClientRequestURI":"/a.jpg","ClientRequestProtocol":"HTTP/2","EdgeResponseStatus":404,"EdgeResponseBytes":0,"ClientRequestReferer":"","ClientRequestUserAgent":"UA \"\u4e2d\" \ud83d\ude00\n","CacheCacheStatus":"miss","EdgeTimeToFirstByteMs":12,"Z":null} "#;
        let r = parse_ok(&Format::Cloudflare, line);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.host, &*r.protocol, &*r.cache),
            ("img.example.com", "HTTP/2", "MISS")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(404), Some(0), Some(12))
        );
        assert_eq!(r.user_agent, "UA \"中\" 😀\n");
        // Cloudflare's own spellings: canonical already, or lower-case / escaped statuses.
        for (status, want) in [
            ("dynamic", "DYNAMIC"),
            ("stream_hit", "STREAM_HIT"),
            ("h\\u0069t", "HIT"),
        ] {
            let l = line.replacen("\"miss\"", &format!("\"{status}\""), 1);
            let r = Format::Cloudflare
                .parse(l.as_bytes(), &ctx())
                .unwrap()
                .unwrap();
            assert_eq!(r.cache, want, "{status}");
        }
        // The value matches what serde_json reads.
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ClientRequestUserAgent"].as_str().unwrap(), r.user_agent);
        let s = r#"{"EdgeStartTimestamp":1614939332,"ClientRequestHost":"a.example.com"}"#;
        assert_eq!(
            parse_ok(&Format::Cloudflare, s).time_ms,
            ms("2021-03-05T10:15:32Z")
        );
        let s = r#"{"EdgeStartTimestamp":"1614939332123","ClientRequestHost":"a.example.com"}"#;
        assert_eq!(
            parse_ok(&Format::Cloudflare, s).time_ms,
            ms("2021-03-05T10:15:32.123Z")
        );
    }

    #[test]
    fn rejects() {
        let f = Format::Cloudflare;
        assert_eq!(
            parse_err(&f, r#"{"ClientRequestHost":"a.example.com"}"#),
            RejectReason::BadTime
        );
        assert_eq!(
            parse_err(&f, r#"{"EdgeStartTimestamp":1614939332}"#),
            RejectReason::NoHost
        );
        assert_eq!(
            parse_err(
                &f,
                r#"{"EdgeStartTimestamp":1614939332,"ClientRequestHost":"a.exa"#
            ),
            RejectReason::Invalid("json object")
        );
        assert_eq!(
            parse_err(&f, "not json"),
            RejectReason::Invalid("json object")
        );
        assert_eq!(
            parse_err(
                &f,
                r#"{"EdgeStartTimestamp":"yesterday","ClientRequestHost":"a.com"}"#
            ),
            RejectReason::BadTime
        );
        let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_err(&f, &deep), RejectReason::Invalid("json object"));
    }
}
