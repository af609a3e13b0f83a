//! Amazon CloudFront standard logs: 33 tab-separated fields, `#Version`/`#Fields` header
//! lines, times in UTC to the second, strings URL-encoded.
//!
//! Fields used (0-based): 0 `date`, 1 `time`, 3 `sc-bytes`, 4 `c-ip`, 5 `cs-method`,
//! 6 `cs(Host)` (the distribution's domain, used only when 15 is empty), 7 `cs-uri-stem`,
//! 8 `sc-status`, 9 `cs(Referer)`, 10 `cs(User-Agent)`, 11 `cs-uri-query`,
//! 13 `x-edge-result-type`, 15 `x-host-header`, 18 `time-taken` (seconds),
//! 23 `cs-protocol-version`. The first 19 are required; more than 33 are accepted.
//! Strings are `%XX`-decoded once for the record (so `%2520` becomes `%20`).

use std::borrow::Cow;

use memchr::memchr_iter;

use super::fields::{is_empty_value, parse_status, parse_u64, seconds_to_ms, text};
use super::time::parse_date_and_time;
use super::{host_of, FormatInfo, Record, RejectReason};
use crate::percent::decode as percent_decode;

pub(super) const INFO: FormatInfo = FormatInfo {
    name: "cloudfront",
    description: "Amazon CloudFront standard logs: 33 tab-separated URL-encoded fields, '#' headers skipped, UTC; host from x-host-header",
    sample: "2021-03-05\t10:15:32\tSFO5-C1\t48731\t2001:db8::7\tGET\td111111abcdef8.cloudfront.net\t/a%20b.jpg\t200\thttps://www.example.com/\tMozilla/5.0%20(Windows%20NT%2010.0)\tw=200\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\timg.example.com\thttps\t512\t0.012\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tHit\tHTTP/2.0\t-\t-\t52311\t0.010\tHit\timage/jpeg\t48731\t-\t-",
};

/// Fields the parser reads, up to `cs-protocol-version`.
const READ_FIELDS: usize = 24;
/// Fields a line must have: up to and including `time-taken` (the oldest layouts stop there;
/// fewer means a cut line).
const REQUIRED_FIELDS: usize = 19;

const DATE: usize = 0;
const TIME: usize = 1;
const SC_BYTES: usize = 3;
const C_IP: usize = 4;
const CS_METHOD: usize = 5;
const CS_HOST: usize = 6;
const CS_URI_STEM: usize = 7;
const SC_STATUS: usize = 8;
const CS_REFERER: usize = 9;
const CS_USER_AGENT: usize = 10;
const CS_URI_QUERY: usize = 11;
const X_EDGE_RESULT_TYPE: usize = 13;
const X_HOST_HEADER: usize = 15;
const TIME_TAKEN: usize = 18;
const CS_PROTOCOL_VERSION: usize = 23;

pub(super) fn parse(line: &[u8]) -> Result<Option<Record<'_>>, RejectReason> {
    if line.starts_with(b"#") {
        return Ok(None);
    }
    let mut f: [&[u8]; READ_FIELDS] = [b""; READ_FIELDS];
    let mut n = 0;
    let mut start = 0;
    for tab in memchr_iter(b'\t', line) {
        f[n] = &line[start..tab];
        n += 1;
        start = tab + 1;
        if n == READ_FIELDS {
            break;
        }
    }
    if n < READ_FIELDS {
        f[n] = &line[start..];
        n += 1;
    }
    if n < REQUIRED_FIELDS {
        return Err(RejectReason::Missing(if n <= TIME {
            "time"
        } else {
            "time-taken"
        }));
    }
    let time_ms = parse_date_and_time(f[DATE], f[TIME]).ok_or(RejectReason::BadTime)?;
    let host = if is_empty_value(f[X_HOST_HEADER]) {
        f[CS_HOST]
    } else {
        f[X_HOST_HEADER]
    };
    let host = host_of(host)?;
    let status = parse_status(f[SC_STATUS]).ok_or(RejectReason::Invalid("sc-status"))?;
    let bytes = match f[SC_BYTES] {
        b"-" => None,
        b => Some(parse_u64(b).ok_or(RejectReason::Invalid("sc-bytes"))?),
    };
    let uri = if is_empty_value(f[CS_URI_QUERY]) {
        percent_decode(f[CS_URI_STEM])
    } else {
        Cow::Owned(format!(
            "{}?{}",
            percent_decode(f[CS_URI_STEM]),
            percent_decode(f[CS_URI_QUERY])
        ))
    };
    let decoded = |b| {
        if is_empty_value(b) {
            Cow::Borrowed("")
        } else {
            percent_decode(b)
        }
    };
    Ok(Some(Record {
        time_ms,
        client_ip: text(f[C_IP]),
        host,
        method: text(f[CS_METHOD]),
        uri,
        protocol: text(f[CS_PROTOCOL_VERSION]),
        status: Some(status),
        bytes,
        request_time_ms: seconds_to_ms(f[TIME_TAKEN]),
        referer: decoded(f[CS_REFERER]),
        user_agent: decoded(f[CS_USER_AGENT]),
        cache: text(f[X_EDGE_RESULT_TYPE]),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, ms, parse_err, parse_ok};
    use super::super::{Format, RejectReason};

    #[test]
    fn parses_the_sample_and_decodes_strings() {
        let r = parse_ok(&Format::CloudFront, super::INFO.sample);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.client_ip, &*r.host),
            ("2001:db8::7", "img.example.com")
        );
        assert_eq!(
            (&*r.method, &*r.uri, &*r.protocol),
            ("GET", "/a b.jpg?w=200", "HTTP/2")
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
    fn headers_are_skipped_and_short_lines_rejected() {
        let f = Format::CloudFront;
        assert_eq!(f.parse(b"#Version: 1.0", &ctx()), Ok(None));
        assert_eq!(
            f.parse(b"#Fields: date time x-edge-location", &ctx()),
            Ok(None)
        );
        assert_eq!(
            parse_err(&f, "2021-03-05\t10:15:32\tSFO5-C1\t48731"),
            RejectReason::Missing("time-taken")
        );
        // The older 24-field layout (no protocol version) with the host header missing: cs(Host).
        let line = "2021-03-05\t10:15:32\tSFO5\t1\t192.0.2.1\tGET\tD1.cloudfront.net\t/\t304\t-\t-\t-\t-\tRefreshHit\tid\t-\thttp\t1\t-";
        let r = parse_ok(&f, line);
        assert_eq!(
            (&*r.host, &*r.cache, r.request_time_ms, &*r.protocol),
            ("d1.cloudfront.net", "REFRESH_HIT", None, "")
        );
        // Canonical values: CloudFront's result types and protocol versions.
        for (result, version, want) in [
            ("Miss", "HTTP/1.1", ("MISS", "HTTP/1.1")),
            ("Error", "HTTP/3.0", ("ERROR", "HTTP/3")),
            (
                "OriginShieldHit",
                "HTTP/2.0",
                ("ORIGIN_SHIELD_HIT", "HTTP/2"),
            ),
            ("-", "-", ("", "")),
        ] {
            let line = super::INFO
                .sample
                .replacen("\tHit\t", &format!("\t{result}\t"), 1)
                .replacen("HTTP/2.0", version, 1);
            let r = f.parse(line.as_bytes(), &ctx()).unwrap().unwrap();
            assert_eq!((&*r.cache, &*r.protocol), want, "{result} {version}");
        }
    }
}
