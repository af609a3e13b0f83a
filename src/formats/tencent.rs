//! Tencent Cloud (腾讯云) CDN logs:
//! `yyyyMMddHHmmss ip host path bytes province isp status referer request_time_ms "ua" range
//! method protocol cache port`.
//!
//! The time has no offset: it is read in the source zone (`ctx.tz_offset_secs`; Tencent
//! documents Beijing time, see [`DEFAULT_TZ_OFFSET_SECS`]). The path carries no query string.

use super::fields::{millis, opt, parse_status, parse_u64, text, Cursor};
use super::time::parse_compact14;
use super::{host_of, FormatInfo, ParseContext, Record, RejectReason};

/// Beijing time, UTC+8: the zone Tencent writes its times in.
pub(super) const DEFAULT_TZ_OFFSET_SECS: i32 = 8 * 3600;

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "tencent",
    description: "Tencent Cloud CDN: yyyyMMddHHmmss (source zone, default UTC+8) ip host path bytes province isp status referer request_time_ms \"ua\" range method protocol cache port",
    sample: r#"20210305181532 203.0.113.7 img.example.com /a.jpg 48952 1442 2 200 https://www.example.com/ 12 "Mozilla/5.0 (Windows NT 10.0)" - GET HTTP/2.0 hit 52311"#,
};

pub(super) fn parse<'a>(
    line: &'a [u8],
    ctx: &ParseContext<'_>,
) -> Result<Record<'a>, RejectReason> {
    let mut c = Cursor::new(line);
    let t = c.token().ok_or(RejectReason::BadTime)?;
    let time_ms = parse_compact14(t, ctx.tz_offset_secs).ok_or(RejectReason::BadTime)?;
    let client_ip = c.token().ok_or(RejectReason::Missing("client_ip"))?;
    let host = host_of(c.token().ok_or(RejectReason::NoHost)?)?;
    let path = c.req_field("path")?;
    let bytes = c.req_field("bytes")?;
    let bytes = match bytes.non_empty() {
        None => None,
        Some(b) => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
    };
    c.skip(2).ok_or(RejectReason::Missing("status"))?; // province, isp
    let status = c.token().ok_or(RejectReason::Missing("status"))?;
    let status = parse_status(status).ok_or(RejectReason::Invalid("status"))?;
    let referer = c.req_text("referer")?;
    let request_time_ms = opt(c.req_field("request_time").map(Some), millis)?;
    let user_agent = c.req_text("user_agent")?;
    let _range = c.req_field("range")?;
    let method = c.req_text("method")?;
    let protocol = c.req_text("protocol")?;
    let cache = c.req_text("cache")?;
    Ok(Record {
        time_ms,
        client_ip: text(client_ip),
        host,
        method,
        uri: path.text(),
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
    use super::super::testing::{ms, parse_err, parse_ok, parse_ok_with};
    use super::super::{Format, ParseContext, RejectReason};

    #[test]
    fn parses_the_spec_example_in_beijing_time() {
        let ctx = ParseContext {
            domain: None,
            tz_offset_secs: super::DEFAULT_TZ_OFFSET_SECS,
        };
        let r = parse_ok_with(&Format::Tencent, super::INFO.sample, &ctx);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host, &*r.uri),
            ("203.0.113.7", "img.example.com", "/a.jpg")
        );
        assert_eq!(
            (&*r.method, &*r.protocol, &*r.cache),
            ("GET", "HTTP/2", "HIT")
        );
        assert_eq!(
            (r.status, r.bytes, r.request_time_ms),
            (Some(200), Some(48952), Some(12))
        );
        assert_eq!(
            (&*r.referer, &*r.user_agent),
            ("https://www.example.com/", "Mozilla/5.0 (Windows NT 10.0)")
        );
        assert_eq!(Format::Tencent.default_tz_offset_secs(), Some(8 * 3600));
    }

    #[test]
    fn source_zone_applies_and_rejects() {
        // The test context is UTC.
        let r = parse_ok(&Format::Tencent, "20210305101532 2001:db8::7 IMG.example.com:443 /a.jpg - 0 0 404 - - \"\" - HEAD HTTP/1.1 MISS");
        assert_eq!(
            (r.time_ms, &*r.host, r.bytes),
            (ms("2021-03-05T10:15:32Z"), "img.example.com", None)
        );
        assert_eq!((&*r.protocol, &*r.cache), ("HTTP/1.1", "MISS"));
        assert_eq!(
            parse_err(&Format::Tencent, "2021030510153 1.2.3.4 a.com / 1 0 0 200"),
            RejectReason::BadTime
        );
        assert_eq!(
            parse_err(&Format::Tencent, "20210305101532 1.2.3.4 - / 1 0 0 200"),
            RejectReason::NoHost
        );
        assert_eq!(
            parse_err(&Format::Tencent, "20210305101532 1.2.3.4 a.com / 1 0"),
            RejectReason::Missing("status")
        );
        assert_eq!(
            parse_err(
                &Format::Tencent,
                "20210305101532 1.2.3.4 a.com / 1 0 0 200 - 1 \"UA"
            ),
            RejectReason::Unterminated
        );
        assert_eq!(
            parse_err(
                &Format::Tencent,
                "20210305101532 1.2.3.4 a.com / 1 0 0 200 - 1 \"UA\" - GET"
            ),
            RejectReason::Missing("protocol")
        );
    }
}
