//! Qiniu (七牛) CDN logs:
//! `ip cache request_time_ms [CLF time] "METHOD full_url PROTO" status bytes "referer" "ua"`.
//!
//! The host comes from the URL.

use super::fields::{
    host_and_uri, millis, opt, parse_status, parse_u64, request_parts, text, Cursor,
};
use super::time::parse_clf;
use super::{FormatInfo, ParseContext, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "qiniu",
    description: "Qiniu CDN: ip cache request_time_ms [time] \"METHOD url PROTO\" status bytes \"referer\" \"ua\"; host from the URL",
    sample: r#"203.0.113.7 HIT 12 [05/Mar/2021:18:15:32 +0800] "GET https://img.example.com/a.jpg?w=200 HTTP/1.1" 200 48731 "https://www.example.com/" "Mozilla/5.0 (Windows NT 10.0)""#,
};

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let client_ip = c.token().ok_or(RejectReason::Missing("client_ip"))?;
    let cache = c.req_field("cache")?;
    let request_time_ms = opt(c.req_field("request_time").map(Some), millis)?;
    let t = c.bracketed().ok_or(RejectReason::BadTime)?;
    let time_ms = parse_clf(t, ctx.tz_offset_secs).ok_or(RejectReason::BadTime)?;
    let request = c.req_quoted("request")?;
    let status = c.token().ok_or(RejectReason::Missing("status"))?;
    let status = parse_status(status).ok_or(RejectReason::Invalid("status"))?;
    let bytes = c.token().ok_or(RejectReason::Missing("bytes"))?;
    let bytes = match bytes {
        b"-" => None,
        b => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
    };
    let referer = c.req_text("referer")?;
    let user_agent = c.req_text("user_agent")?;
    let (method, target, protocol) = request_parts(request);
    let (host, uri) = host_and_uri(target, ctx)?;
    Ok(Record {
        time_ms,
        client_ip: text(client_ip),
        host,
        method,
        uri,
        protocol,
        status: Some(status),
        bytes,
        request_time_ms,
        referer,
        user_agent,
        cache: cache.text(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ms, parse_err, parse_ok};
    use super::super::{Format, RejectReason};

    #[test]
    fn parses_the_sample() {
        let r = parse_ok(&Format::Qiniu, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host, &*r.cache),
            ("203.0.113.7", "img.example.com", "HIT")
        );
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a.jpg?w=200", "HTTP/1.1")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(48731), Some(12))
        );
        assert_eq!(
            (&*r.referer, &*r.user_agent),
            ("https://www.example.com/", "Mozilla/5.0 (Windows NT 10.0)")
        );
    }

    #[test]
    fn ipv6_one_digit_day_and_rejects() {
        let r = parse_ok(
            &Format::Qiniu,
            r#"2001:db8::7 miss - [5/Mar/2021:10:15:32 +0000] "HEAD https://img.example.com HTTP/2.0" 200 - "" " ""#,
        );
        assert_eq!(
            (&*r.cache, r.request_time_ms, r.bytes, &*r.uri),
            ("MISS", None, None, "/")
        );
        assert_eq!(r.protocol, "HTTP/2");
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            parse_err(&Format::Qiniu, "203.0.113.7 HIT 12 05/Mar/2021:18:15:32"),
            RejectReason::BadTime
        );
    }
}
