//! Alibaba Cloud (阿里云) CDN logs:
//! `[CLF time] ip proxy_ip request_time_ms "referer" "METHOD full_url" status req_size bytes
//! cache "ua" "content_type"`, then optional trailing fields (protocol, connecting ip, …).
//!
//! The host comes from the URL; the protocol, when logged, is the first trailing field that
//! looks like one (`HTTP/1.1`, `h2`).

use super::fields::{
    host_and_uri, looks_like_protocol, millis, opt, parse_status, parse_u64, request_parts, text,
    Cursor,
};
use super::time::parse_clf;
use super::{FormatInfo, ParseContext, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "aliyun",
    description: "Alibaba Cloud CDN: [time] ip proxy_ip request_time_ms \"referer\" \"METHOD url\" status req_size bytes cache \"ua\" \"content_type\" …; host from the URL",
    sample: r#"[5/Mar/2021:18:15:32 +0800] 203.0.113.7 - 12 "https://www.example.com/" "GET https://img.example.com/a.jpg?w=200" 200 512 48731 HIT "Mozilla/5.0 (Windows NT 10.0)" "image/jpeg""#,
};

/// How many trailing fields are searched for the protocol.
const MAX_TRAILING_FOR_PROTOCOL: usize = 4;

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let t = c.bracketed().ok_or(RejectReason::BadTime)?;
    let time_ms = parse_clf(t, ctx.tz_offset_secs).ok_or(RejectReason::BadTime)?;
    let client_ip = c.token().ok_or(RejectReason::Missing("client_ip"))?;
    let _proxy_ip = c.req_field("proxy_ip")?;
    let request_time_ms = opt(c.req_field("request_time").map(Some), millis)?;
    let referer = c.req_field("referer")?.text();
    let request = c.req_quoted("request")?;
    let status = c.token().ok_or(RejectReason::Missing("status"))?;
    let status = parse_status(status).ok_or(RejectReason::Invalid("status"))?;
    let _req_size = c.req_field("bytes")?;
    let bytes = c.req_field("bytes")?;
    let bytes = match bytes.non_empty() {
        None => None,
        Some(b) => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
    };
    let cache = c.req_text("cache")?;
    let user_agent = c.req_text("user_agent")?;
    let _content_type = c.opt_field()?;
    let (method, target, mut protocol) = request_parts(request);
    if protocol.is_empty() {
        for _ in 0..MAX_TRAILING_FOR_PROTOCOL {
            match c.opt_field()? {
                Some(f) if looks_like_protocol(f.bytes) => {
                    protocol = text(f.bytes);
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
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
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ms, parse_err, parse_ok};
    use super::super::{Format, RejectReason};

    #[test]
    fn parses_the_spec_example() {
        let r = parse_ok(&Format::Aliyun, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host),
            ("203.0.113.7", "img.example.com")
        );
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a.jpg?w=200", "")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(48731), Some(12))
        );
        assert_eq!(
            (&*r.referer, &*r.user_agent, &*r.cache),
            (
                "https://www.example.com/",
                "Mozilla/5.0 (Windows NT 10.0)",
                "HIT"
            )
        );
    }

    #[test]
    fn trailing_protocol_and_ipv6() {
        let r = parse_ok(
            &Format::Aliyun,
            r#"[05/Mar/2021:10:15:32 +0000] 2001:db8::7 - 3 "-" "GET http://img.example.com/x" 304 100 0 MISS "" "-" HTTP/1.1 198.51.100.1 more"#,
        );
        assert_eq!(
            (&*r.protocol, &*r.client_ip, &*r.cache, &*r.user_agent),
            ("HTTP/1.1", "2001:db8::7", "MISS", "")
        );
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        // A trailing `h2` and a lower-case status: canonical spellings.
        let r = parse_ok(
            &Format::Aliyun,
            r#"[05/Mar/2021:10:15:32 +0000] 203.0.113.7 - 3 "-" "GET http://img.example.com/x" 200 100 5 Hit "UA" "image/png" h2"#,
        );
        assert_eq!((&*r.protocol, &*r.cache), ("HTTP/2", "HIT"));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            parse_err(
                &Format::Aliyun,
                r#"203.0.113.7 [5/Mar/2021:18:15:32 +0800]"#
            ),
            RejectReason::BadTime
        );
        assert_eq!(
            parse_err(
                &Format::Aliyun,
                r#"[5/Mar/2021:18:15:32 +0800] 203.0.113.7 - 12 "-" "GET https://img.example.com/a.jpg" 2x0 1 1"#
            ),
            RejectReason::Invalid("status")
        );
    }
}
