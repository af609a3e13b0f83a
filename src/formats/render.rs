//! The output lines: `json`, `combined` and `raw`, each appended to a byte buffer and
//! terminated by `\n`. Hand-written (no serde per line): this runs once per output record.

use super::{OutputFormat, Record};
use crate::calendar::{push_clf, push_rfc3339, Rfc3339};

/// Renders records into output lines.
///
/// * `json`: one object per line, keys always in this order: `time` (RFC 3339 with
///   milliseconds in the output zone, e.g. `2021-03-05T18:15:32.000+08:00`), `client_ip`,
///   `host`, `method`, `uri`, `protocol`, `status`, `bytes`, `request_time_ms`, `referer`,
///   `user_agent`, `cache`, `source`. Numbers are numbers, missing numbers `null`, missing
///   strings `""`.
/// * `combined`: nginx combined, extended with four columns:
///
///   ```text
///   client_ip - - [dd/Mon/yyyy:HH:MM:SS +zzzz] "METHOD uri PROTOCOL" status bytes "referer" "user_agent" host request_time_ms cache source
///   ```
///
///   The time is in the output zone. Empty values are `-` (the request as a whole is `"-"`
///   when method, uri and protocol are all empty). Inside quotes, `"` and `\` are written
///   `\"` and `\\`; control bytes are written `\xHH` everywhere, and so are spaces in the
///   unquoted columns, so a line always splits the same way.
/// * `raw`: the input line as read (without its terminator), then `\n`.
#[derive(Debug, Clone)]
pub struct Renderer {
    pub format: OutputFormat,
    /// Offset of the output zone, seconds east of UTC.
    pub tz_offset_secs: i32,
}

impl Renderer {
    pub fn new(format: OutputFormat, tz_offset_secs: i32) -> Self {
        Renderer {
            format,
            tz_offset_secs,
        }
    }

    /// Appends the rendered line, terminated by `\n`, to `out`. `raw` is the input line
    /// without its terminator; `source` the job's name for the platform.
    pub fn render(&self, rec: &Record<'_>, source: &str, raw: &[u8], out: &mut Vec<u8>) {
        match self.format {
            OutputFormat::Json => self.json(rec, source, out),
            OutputFormat::Combined => self.combined(rec, source, out),
            OutputFormat::Raw => {
                out.extend_from_slice(raw);
                out.push(b'\n');
            }
        }
    }

    fn json(&self, rec: &Record<'_>, source: &str, out: &mut Vec<u8>) {
        out.reserve(256);
        out.extend_from_slice(b"{\"time\":\"");
        push_rfc3339(out, rec.time_ms, self.tz_offset_secs, Rfc3339::Millis);
        out.push(b'"');
        json_str(out, b",\"client_ip\":", &rec.client_ip);
        json_str(out, b",\"host\":", &rec.host);
        json_str(out, b",\"method\":", &rec.method);
        json_str(out, b",\"uri\":", &rec.uri);
        json_str(out, b",\"protocol\":", &rec.protocol);
        json_num(out, b",\"status\":", rec.status.map(u64::from));
        json_num(out, b",\"bytes\":", rec.bytes);
        json_num(out, b",\"request_time_ms\":", rec.request_time_ms);
        json_str(out, b",\"referer\":", &rec.referer);
        json_str(out, b",\"user_agent\":", &rec.user_agent);
        json_str(out, b",\"cache\":", &rec.cache);
        json_str(out, b",\"source\":", source);
        out.extend_from_slice(b"}\n");
    }

    fn combined(&self, rec: &Record<'_>, source: &str, out: &mut Vec<u8>) {
        bare(out, &rec.client_ip);
        out.extend_from_slice(b" - - [");
        push_clf(out, rec.time_ms, self.tz_offset_secs, false);
        out.extend_from_slice(b"] \"");
        if rec.method.is_empty() && rec.uri.is_empty() && rec.protocol.is_empty() {
            out.push(b'-');
        } else {
            quoted_body(out, &rec.method);
            out.push(b' ');
            quoted_body(out, &rec.uri);
            out.push(b' ');
            quoted_body(out, &rec.protocol);
        }
        out.extend_from_slice(b"\" ");
        num(out, rec.status.map(u64::from));
        out.push(b' ');
        num(out, rec.bytes);
        out.extend_from_slice(b" \"");
        dash_or(out, &rec.referer, quoted_body);
        out.extend_from_slice(b"\" \"");
        dash_or(out, &rec.user_agent, quoted_body);
        out.extend_from_slice(b"\" ");
        bare(out, &rec.host);
        out.push(b' ');
        num(out, rec.request_time_ms);
        out.push(b' ');
        bare(out, &rec.cache);
        out.push(b' ');
        bare(out, source);
        out.push(b'\n');
    }
}

fn json_num(out: &mut Vec<u8>, key: &[u8], v: Option<u64>) {
    out.extend_from_slice(key);
    match v {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// For each byte: 0 = copy as is, 1 = `\u00XX`, else the letter after the backslash.
const JSON_ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = 1;
        c += 1;
    }
    t[0x7f] = 1;
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t
};

/// Appends `key` (`,"name":` with its punctuation) and `"value"` with JSON escaping (`"`, `\`,
/// and every control character). Runs of plain bytes are copied in one piece.
fn json_str(out: &mut Vec<u8>, key: &[u8], s: &str) {
    let b = s.as_bytes();
    out.reserve(key.len() + b.len() + 2);
    out.extend_from_slice(key);
    out.push(b'"');
    let mut start = 0;
    let mut i = next_json_escape(b, 0);
    while let Some(&c) = b.get(i) {
        out.extend_from_slice(&b[start..i]);
        let e = JSON_ESCAPE[c as usize];
        if e == 1 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
        i = next_json_escape(b, start);
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// The position of the first byte at or after `from` that JSON escapes (see [`JSON_ESCAPE`]),
/// or `b.len()`. Eight bytes at a time: most values have nothing to escape, and a table
/// lookup per byte was the renderer's largest cost.
#[inline]
fn next_json_escape(b: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of `v` is zero (exact, whatever the other bytes are).
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = from;
    while let Some(word) = b.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*word);
        // Bytes below 0x20 (exact for the same reason), `"`, `\` and DEL.
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let hit = below_space
            | has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            | has_zero(w ^ (ONES * 0x7f));
        if hit != 0 {
            if let Some(at) = word.iter().position(|&c| JSON_ESCAPE[c as usize] != 0) {
                return i + at;
            }
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if JSON_ESCAPE[c as usize] != 0 {
            return i;
        }
        i += 1;
    }
    b.len()
}

fn push_hex_escape(out: &mut Vec<u8>, c: u8) {
    out.extend_from_slice(b"\\x");
    out.push(HEX[(c >> 4) as usize]);
    out.push(HEX[(c & 0xf) as usize]);
}

/// Text inside a quoted combined column.
fn quoted_body(out: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f | 0x7f => push_hex_escape(out, c),
            _ => out.push(c),
        }
    }
}

/// An unquoted combined column: `-` when empty, spaces and control bytes as `\xHH`.
fn bare(out: &mut Vec<u8>, s: &str) {
    dash_or(out, s, |out, s| {
        for &c in s.as_bytes() {
            match c {
                0..=0x20 | 0x7f | b'"' | b'\\' => push_hex_escape(out, c),
                _ => out.push(c),
            }
        }
    })
}

fn dash_or(out: &mut Vec<u8>, s: &str, write: fn(&mut Vec<u8>, &str)) {
    if s.is_empty() {
        out.push(b'-');
    } else {
        write(out, s);
    }
}

fn num(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(n) => push_u64(out, n),
        None => out.push(b'-'),
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::super::testing::ms;
    use super::super::{Format, OutputFormat, ParseContext, Record};
    use super::{json_str, Renderer, JSON_ESCAPE};

    fn record() -> Record<'static> {
        Record {
            time_ms: ms("2021-03-05T10:15:32.007Z"),
            client_ip: "2001:db8::7".into(),
            host: "img.example.com".into(),
            method: "GET".into(),
            uri: "/a b.jpg?q=\"x\"".into(),
            protocol: "HTTP/1.1".into(),
            status: Some(200),
            bytes: Some(48731),
            request_time_ms: None,
            referer: "".into(),
            user_agent: Cow::Owned("UA \"中\" \\ \n\t\u{1}\u{7f} 😀".into()),
            cache: "HIT".into(),
        }
    }

    fn render(format: OutputFormat, tz: i32, rec: &Record<'_>, raw: &[u8]) -> Vec<u8> {
        let mut out = b"previous\n".to_vec();
        Renderer::new(format, tz).render(rec, "cdn \"a\"", raw, &mut out);
        assert!(out.ends_with(b"\n"));
        assert_eq!(
            out.iter().filter(|&&c| c == b'\n').count(),
            2,
            "exactly one line appended"
        );
        out.split_off(b"previous\n".len())
    }

    #[test]
    fn json_strings_escape_every_byte_at_every_offset_of_the_word_scan() {
        // Each ASCII byte at each position of strings around the 8-byte words of the scan,
        // plus multi-byte characters: serde_json reads back the same string, and only the
        // bytes JSON needs escaped are escaped.
        let mut values = Vec::new();
        for len in [1usize, 7, 8, 9, 16, 17, 23] {
            for at in 0..len {
                for c in 0u8..0x80 {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    values.push(String::from_utf8(v).unwrap());
                }
            }
        }
        values.push(String::new());
        values.push("\u{7f}\u{1f}\\\"".repeat(3));
        values.push("中文 😀 \"quoted\" and \\ past the first words".into());
        for value in values {
            let mut out = Vec::new();
            json_str(&mut out, b"", &value);
            let text = std::str::from_utf8(&out).unwrap();
            let back: String = serde_json::from_str(text).unwrap();
            assert_eq!(back, value, "{text}");
            let escapes = value
                .bytes()
                .filter(|&c| JSON_ESCAPE[c as usize] != 0)
                .count();
            // Every escape starts with a backslash; an escaped backslash is two.
            assert_eq!(
                text.matches('\\').count(),
                escapes + value.matches('\\').count(),
                "escapes in {text}"
            );
        }
    }

    #[test]
    fn json_round_trips_through_serde_json_with_a_fixed_key_order() {
        let rec = record();
        let out = render(OutputFormat::Json, 8 * 3600, &rec, b"");
        let text = std::str::from_utf8(&out).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["time"], "2021-03-05T18:15:32.007+08:00");
        assert_eq!(v["client_ip"], "2001:db8::7");
        assert_eq!(v["host"], "img.example.com");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["uri"], "/a b.jpg?q=\"x\"");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 48731);
        assert!(v["request_time_ms"].is_null());
        assert_eq!(v["referer"], "");
        assert_eq!(v["user_agent"], rec.user_agent.as_ref());
        assert_eq!(v["cache"], "HIT");
        assert_eq!(v["source"], "cdn \"a\"");
        let keys: Vec<&str> = [
            "time",
            "client_ip",
            "host",
            "method",
            "uri",
            "protocol",
            "status",
            "bytes",
            "request_time_ms",
            "referer",
            "user_agent",
            "cache",
            "source",
        ]
        .to_vec();
        let mut last = 0;
        for k in keys {
            let pos = text.find(&format!("\"{k}\":")).unwrap();
            assert!(pos >= last, "{k} out of order");
            last = pos;
        }
        let utc = render(OutputFormat::Json, 0, &rec, b"");
        assert!(utc.starts_with(b"{\"time\":\"2021-03-05T10:15:32.007+00:00\""));
    }

    #[test]
    fn combined_layout_and_escapes() {
        let rec = record();
        let out = render(OutputFormat::Combined, 8 * 3600, &rec, b"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2001:db8::7 - - [05/Mar/2021:18:15:32 +0800] \"GET /a b.jpg?q=\\\"x\\\" HTTP/1.1\" 200 48731 \"-\" \
             \"UA \\\"中\\\" \\\\ \\x0a\\x09\\x01\\x7f 😀\" img.example.com - HIT cdn\\x20\\x22a\\x22\n"
        );
        let empty = Record {
            host: "a.com".into(),
            ..Record::default()
        };
        let out = render(OutputFormat::Combined, 0, &empty, b"");
        assert_eq!(out, b"- - - [01/Jan/1970:00:00:00 +0000] \"-\" - - \"-\" \"-\" a.com - - cdn\\x20\\x22a\\x22\n");
    }

    #[test]
    fn combined_output_reads_back_as_nginx() {
        let rec = record();
        let out = render(OutputFormat::Combined, -5 * 3600, &rec, b"");
        let line = &out[..out.len() - 1];
        let ctx = ParseContext {
            domain: Some("img.example.com"),
            tz_offset_secs: 0,
        };
        let back = Format::Nginx.parse(line, &ctx).unwrap().unwrap();
        assert_eq!(back.time_ms, rec.time_ms - 7); // whole seconds in CLF
        assert_eq!(
            (&*back.uri, &*back.user_agent.replace('\u{7f}', "")),
            (&*rec.uri, &*rec.user_agent.replace('\u{7f}', ""))
        );
        assert_eq!((back.status, back.bytes), (rec.status, rec.bytes));
    }

    #[test]
    fn raw_is_the_line_unchanged() {
        let raw = b"anything \xff\xfe \"as is\"";
        assert_eq!(
            render(OutputFormat::Raw, 0, &record(), raw),
            [&raw[..], b"\n"].concat()
        );
    }
}
