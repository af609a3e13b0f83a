//! UPYUN (又拍云) CDN logs: the nginx combined head with a full URL in the request, then
//! `content_type req_len cache origin_status dynamic cache_control request_time_s edge_ip`.
//!
//! The host comes from the URL. `content_type`, `origin_status` and `cache_control` may or may
//! not be quoted; the request time is in seconds (`0.012`). Trailing columns that are
//! unreadable leave their value empty instead of costing the line.

use super::fields::{host_and_uri, opt, parse_u64, request_parts, seconds_to_ms, text, Cursor};
use super::nginx::parse_head;
use super::{FormatInfo, ParseContext, Record, RejectReason};

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "upyun",
    description: "UPYUN: nginx combined with a full URL, then content_type req_len cache origin_status dynamic cache_control request_time_s edge_ip; host from the URL",
    sample: r#"203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] "GET https://img.example.com/a.jpg?w=200 HTTP/2.0" 200 48213 "https://www.example.com/" "Mozilla/5.0 (iPhone)" "image/jpeg" 0 Hit "C/200" Static "max-age=86400" 0.012 198.51.100.23"#,
};

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let head = parse_head(&mut c, ctx)?;
    let bytes = match head.bytes {
        b"-" => None,
        b => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
    };
    let referer = c.req_text("referer")?;
    let user_agent = c.req_text("user_agent")?;
    let _content_type = c.req_field("content_type")?;
    let _req_len = c.req_field("req_len")?;
    let cache = c.req_text("cache")?;
    let _origin_status = c.req_field("origin_status")?;
    let _dynamic = c.req_field("dynamic")?;
    let _cache_control = c.req_field("cache_control")?;
    let request_time_ms = opt(c.req_field("request_time").map(Some), seconds_to_ms)?;
    let (method, target, protocol) = request_parts(head.request);
    let (host, uri) = host_and_uri(target, ctx)?;
    Ok(Record {
        time_ms: head.time_ms,
        client_ip: text(head.client_ip),
        host,
        method,
        uri,
        protocol,
        status: Some(head.status),
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
        let r = parse_ok(&Format::Upyun, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host),
            ("203.0.113.7", "img.example.com")
        );
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a.jpg?w=200", "HTTP/2")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(48213), Some(12))
        );
        assert_eq!(
            (&*r.referer, &*r.user_agent, &*r.cache),
            ("https://www.example.com/", "Mozilla/5.0 (iPhone)", "HIT")
        );
    }

    #[test]
    fn unquoted_optional_columns_and_upper_case_host_with_port() {
        let r = parse_ok(
            &Format::Upyun,
            r#"2001:db8::1 - - [5/Mar/2021:10:15:32 +0000] "GET http://IMG.Example.com:8080/b%20c.jpg HTTP/1.1" 206 10 "-" "UA \"x\"" image/png 12 MISS 200 Dynamic no-cache 1.5 198.51.100.23 extra"#,
        );
        assert_eq!((&*r.host, &*r.uri), ("img.example.com", "/b%20c.jpg"));
        assert_eq!(
            (&*r.cache, r.request_time_ms, &*r.user_agent),
            ("MISS", Some(1500), "UA \"x\"")
        );
        assert_eq!(r.protocol, "HTTP/1.1");
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
    }

    #[test]
    fn cut_lines_and_hostless_urls_are_rejected() {
        let head = r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET https://a.example.com/ HTTP/1.1" 200 5"#;
        assert_eq!(
            parse_err(&Format::Upyun, head),
            RejectReason::Missing("referer")
        );
        let cut = format!("{head} \"-\" \"Mozilla (cut");
        assert_eq!(parse_err(&Format::Upyun, &cut), RejectReason::Unterminated);
        let cut = format!("{head} \"-\" \"UA\" image/png 0 HIT 200 Static");
        assert_eq!(
            parse_err(&Format::Upyun, &cut),
            RejectReason::Missing("cache_control")
        );
        let line = r#"1.2.3.4 - - [05/Mar/2021:18:15:32 +0800] "GET https:/// HTTP/1.1" 200 5 "-" "-" - 0 - - - - - -"#;
        assert_eq!(parse_err(&Format::Upyun, line), RejectReason::NoHost);
    }
}
