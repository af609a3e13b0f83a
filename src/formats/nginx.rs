//! nginx `combined` and Apache `common`/`combined`:
//! `ip - user [CLF time] "METHOD uri PROTO" status bytes "referer" "ua"`.
//!
//! Neither logs the host, so it comes from the shard path (`ctx.domain`). Referer and user
//! agent are optional (Apache `common` stops after the bytes), `%b` may be `-` (0 bytes), and
//! the user field may contain spaces. The same head (up to the bytes) starts upyun lines.

use std::borrow::Cow;

use super::fields::{parse_status, parse_u64, request_parts, text, Cursor, Field};
use super::time::parse_clf;
use super::{host_from_ctx, FormatInfo, ParseContext, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "nginx",
    description: "nginx combined: ip - user [time] \"request\" status bytes \"referer\" \"ua\"; host from the shard path",
    sample: r#"203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] "GET /a.jpg?w=200 HTTP/1.1" 200 48731 "https://www.example.com/" "Mozilla/5.0 (Windows NT 10.0)""#,
};

pub(super) const APACHE_INFO: FormatInfo = FormatInfo {
    name: "apache",
    description: "Apache common or combined (bytes may be '-'); host from the shard path",
    sample: r#"192.0.2.10 - frank [5/Mar/2021:18:15:32 -0700] "GET /apache_pb.gif HTTP/1.0" 200 - "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
};

/// How many space-separated tokens the ident and user fields may take before the time.
const MAX_USER_TOKENS: usize = 8;

/// The fields every CLF-family line starts with.
pub(super) struct Head<'a> {
    pub client_ip: &'a [u8],
    pub time_ms: i64,
    pub request: Field<'a>,
    pub status: u16,
    /// The bytes field as written (`-` allowed).
    pub bytes: &'a [u8],
}

/// Reads `ip ident user [time] "request" status bytes`.
pub(super) fn parse_head<'a>(
    c: &mut Cursor<'a>,
    ctx: &ParseContext<'_>,
) -> Result<Head<'a>, RejectReason> {
    let client_ip = c.token().ok_or(RejectReason::Missing("client_ip"))?;
    // ident and user: normally `- -`, but a user name may contain spaces.
    let mut skipped = 0;
    while !c.rest().starts_with(b"[") {
        if skipped == MAX_USER_TOKENS || c.field().is_none() {
            return Err(RejectReason::BadTime);
        }
        skipped += 1;
    }
    let t = c.bracketed().ok_or(RejectReason::BadTime)?;
    let time_ms = parse_clf(t, ctx.tz_offset_secs).ok_or(RejectReason::BadTime)?;
    let request = c.req_quoted("request")?;
    let status = c.token().ok_or(RejectReason::Missing("status"))?;
    let status = parse_status(status).ok_or(RejectReason::Invalid("status"))?;
    let bytes = c.token().ok_or(RejectReason::Missing("bytes"))?;
    Ok(Head {
        client_ip,
        time_ms,
        request,
        status,
        bytes,
    })
}

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let head = parse_head(&mut c, ctx)?;
    // CLF writes `-` for zero bytes.
    let bytes = match head.bytes {
        b"-" => 0,
        b => parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?,
    };
    let referer = c.opt_text()?;
    let user_agent = c.opt_text()?;
    let (method, uri, protocol) = request_parts(head.request);
    Ok(Record {
        time_ms: head.time_ms,
        client_ip: text(head.client_ip),
        host: host_from_ctx(ctx)?,
        method,
        uri,
        protocol,
        status: Some(head.status),
        bytes: Some(bytes),
        request_time_ms: None,
        referer,
        user_agent,
        cache: Cow::Borrowed(""),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, ms, parse_err, parse_ok};
    use super::super::{Format, RejectReason};

    #[test]
    fn parses_the_spec_example() {
        let r = parse_ok(&Format::Nginx, INFO_SAMPLE);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(r.client_ip, "203.0.113.7");
        assert_eq!(r.host, "img.example.com");
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a.jpg?w=200", "HTTP/1.1")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(48731), None)
        );
        assert_eq!(r.referer, "https://www.example.com/");
        assert_eq!(r.user_agent, "Mozilla/5.0 (Windows NT 10.0)");
        assert_eq!(r.cache, "");
    }
    const INFO_SAMPLE: &str = super::INFO.sample;

    #[test]
    fn apache_common_and_combined() {
        let r = parse_ok(&Format::Apache, super::APACHE_INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-06T01:15:32Z"));
        assert_eq!(r.bytes, Some(0));
        assert_eq!(r.user_agent, "Mozilla/4.08 [en] (Win98; I ;Nav)");
        assert_eq!(r.protocol, "HTTP/1.0");
        let r = parse_ok(
            &Format::Apache,
            r#"192.0.2.10 - - [05/Mar/2021:18:15:32 +0000] "GET / HTTP/1.0" 304 -"#,
        );
        assert_eq!((r.status, r.bytes, &*r.referer), (Some(304), Some(0), ""));
    }

    #[test]
    fn traps() {
        let f = Format::Nginx;
        // IPv6 client, 1-digit day, +0000.
        let r = parse_ok(
            &f,
            r#"2001:db8::7 - - [5/Mar/2021:10:15:32 +0000] "GET / HTTP/2.0" 200 1 "-" "-""#,
        );
        assert_eq!(
            (&*r.client_ip, r.time_ms),
            ("2001:db8::7", ms("2021-03-05T10:15:32Z"))
        );
        assert_eq!((&*r.referer, &*r.user_agent), ("", ""));
        assert_eq!((&*r.protocol, &*r.cache), ("HTTP/2", ""));
        // nginx \xHH-escaped UTF-8 user agent and an escaped quote in the request.
        let r = parse_ok(
            &f,
            r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET /\x22q\x22 HTTP/1.1" 200 1 "" "UA \xE4\xB8\xAD""#,
        );
        assert_eq!((&*r.uri, &*r.user_agent), ("/\"q\"", "UA 中"));
        // Raw UTF-8, Apache \" escapes, a " " referer.
        let r = parse_ok(
            &f,
            r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1" 200 1 " " "Ünï \"x\" \\ y""#,
        );
        assert_eq!((&*r.referer, &*r.user_agent), ("", r#"Ünï "x" \ y"#));
        // A user name with a space, a cut multibyte escape.
        let r = parse_ok(
            &f,
            r#"1.2.3.4 - john doe [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1" 200 1 "-" "\xE4\xB8""#,
        );
        assert_eq!(r.user_agent, "\u{FFFD}");
        // Invalid UTF-8 bytes in a field: accepted, converted lossily.
        let mut line =
            br#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1" 200 1 "-" "a"#.to_vec();
        line.extend_from_slice(b"\xff\xfe\"");
        let r = f.parse(&line, &ctx()).unwrap().unwrap();
        assert_eq!(r.user_agent, "a\u{FFFD}\u{FFFD}");
        // Garbage request line from a scanner is kept, not lost.
        let r = parse_ok(
            &f,
            r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "\x16\x03\x01" 400 0 "-" "-""#,
        );
        assert_eq!((&*r.method, &*r.uri), ("", "\u{16}\u{3}\u{1}"));
    }

    #[test]
    fn a_one_megabyte_user_agent_is_kept_whole() {
        let ua = "M".repeat(1 << 20);
        let line = format!(
            r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1" 200 1 "-" "{ua}""#
        );
        let r = Format::Nginx
            .parse(line.as_bytes(), &ctx())
            .unwrap()
            .unwrap();
        assert_eq!(r.user_agent.len(), 1 << 20);
        assert!(
            matches!(r.user_agent, std::borrow::Cow::Borrowed(_)),
            "a plain field is borrowed"
        );
    }

    #[test]
    fn rejects() {
        let f = Format::Nginx;
        assert_eq!(
            parse_err(
                &f,
                r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1" abc 1"#
            ),
            RejectReason::Invalid("status")
        );
        assert_eq!(
            parse_err(
                &f,
                r#"1.2.3.4 - - [05/Xyz/2021:18:15:32 +0800] "GET / HTTP/1.1" 200 1"#
            ),
            RejectReason::BadTime
        );
        assert_eq!(
            parse_err(
                &f,
                r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET / HTTP/1.1"#
            ),
            RejectReason::Unterminated
        );
        let no_domain = super::super::ParseContext {
            domain: None,
            tz_offset_secs: 0,
        };
        assert_eq!(
            f.parse(INFO_SAMPLE.as_bytes(), &no_domain),
            Err(RejectReason::NoHost)
        );
    }
}
