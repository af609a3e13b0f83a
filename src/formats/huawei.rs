//! Huawei Cloud (华为云) CDN logs:
//! `[CLF time] ip request_time_ms "referer" "PROTO" "METHOD" "host" "path" status bytes cache
//! "ua" "range"`.
//!
//! Every text column is quoted; the host is its own field.

use super::fields::{millis, opt, parse_status, parse_u64, text, Cursor};
use super::time::parse_clf;
use super::{host_of, FormatInfo, ParseContext, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "huawei",
    description: "Huawei Cloud CDN: [time] ip request_time_ms \"referer\" \"PROTO\" \"METHOD\" \"host\" \"path\" status bytes cache \"ua\" \"range\"",
    sample: r#"[05/Mar/2021:18:15:32 +0800] 203.0.113.7 12 "https://www.example.com/" "HTTP/1.1" "GET" "img.example.com" "/a.jpg?w=200" 200 48731 HIT "Mozilla/5.0 (Windows NT 10.0)" "-""#,
};

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let t = c.bracketed().ok_or(RejectReason::BadTime)?;
    let time_ms = parse_clf(t, ctx.tz_offset_secs).ok_or(RejectReason::BadTime)?;
    let client_ip = c.token().ok_or(RejectReason::Missing("client_ip"))?;
    let request_time_ms = opt(c.req_field("request_time").map(Some), millis)?;
    let referer = c.req_field("referer")?.text();
    let protocol = c.req_field("protocol")?.text();
    let method = c.req_field("method")?.text();
    let host = c.req_field("host").map_err(|e| {
        if e == RejectReason::Missing("host") {
            RejectReason::NoHost
        } else {
            e
        }
    })?;
    let host = host_of(host.bytes)?;
    let uri = c.req_field("path")?.text();
    let status = c.token().ok_or(RejectReason::Missing("status"))?;
    let status = parse_status(status).ok_or(RejectReason::Invalid("status"))?;
    let bytes = c.token().ok_or(RejectReason::Missing("bytes"))?;
    let bytes = match bytes {
        b"-" => None,
        b => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
    };
    let cache = c.req_text("cache")?;
    let user_agent = c.req_text("user_agent")?;
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
    fn parses_the_sample() {
        let r = parse_ok(&Format::Huawei, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host),
            ("203.0.113.7", "img.example.com")
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
            (&*r.referer, &*r.user_agent, &*r.cache),
            (
                "https://www.example.com/",
                "Mozilla/5.0 (Windows NT 10.0)",
                "HIT"
            )
        );
    }

    #[test]
    fn escaped_ua_and_rejects() {
        let r = parse_ok(
            &Format::Huawei,
            r#"[5/Mar/2021:10:15:32 +0000] 2001:db8::7 - "" "HTTP/2.0" "GET" "Img.Example.com" "/" 200 1 MISS "\xE4\xB8\xAD \"q\"" "-""#,
        );
        assert_eq!(
            (&*r.user_agent, &*r.host, r.request_time_ms),
            ("中 \"q\"", "img.example.com", None)
        );
        assert_eq!((&*r.protocol, &*r.cache), ("HTTP/2", "MISS"));
        assert_eq!(
            parse_err(
                &Format::Huawei,
                r#"[5/Mar/2021:10:15:32 +0000] 1.2.3.4 1 "" "HTTP/2.0" "GET" "" "/" 200 1"#
            ),
            RejectReason::NoHost
        );
        assert_eq!(
            parse_err(
                &Format::Huawei,
                r#"[5/Mar/2021:10:15:32 +0000] 1.2.3.4 1 "" "HTTP/2.0" "GET" "a b" "/" 200 1"#
            ),
            RejectReason::BadHost
        );
    }
}
