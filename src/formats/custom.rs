//! Job-defined formats: a regular expression (the `regex` crate's syntax, matched on bytes, so
//! lines with invalid UTF-8 still match) whose named groups are canonical field names, plus
//! the layout of the `time` group.
//!
//! Groups: `time` (required), `host` (else the URL's host, else the shard path), `client_ip`,
//! `method`, `uri`, `protocol`, `request` (`METHOD uri PROTO` in one group), `status`, `bytes`,
//! `request_time_ms`, `request_time_s`, `referer`, `user_agent`, `cache`. Other names are an
//! error (they are most likely typos); unnamed groups are fine. Layouts: a strftime string
//! (jiff's `strtime`; without `%z`/`%Z`/`%s` the source zone applies) or `epoch_s` (a
//! fraction is allowed), `epoch_ms`, `epoch_ns`. Values with a backslash get nginx/Apache
//! escapes decoded. The regex is not anchored unless you anchor it (`^…$`).

use std::borrow::Cow;

use regex::bytes::Regex;

use super::fields::{
    host_and_uri, millis, parse_status, parse_u64, request_parts, seconds_to_ms, split_url, Field,
};
use super::time::{parse_epoch, parse_strftime, EpochUnit};
use super::{
    host_from_ctx, host_of, CustomFormatSpec, FormatError, ParseContext, Record, RejectReason,
};

/// The group names a custom regex may use.
pub const GROUP_NAMES: &[&str] = &[
    "time",
    "host",
    "client_ip",
    "method",
    "uri",
    "protocol",
    "request",
    "status",
    "bytes",
    "request_time_ms",
    "request_time_s",
    "referer",
    "user_agent",
    "cache",
];

/// How the `time` group is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeLayout {
    Epoch(EpochUnit),
    Strftime(String),
}

impl TimeLayout {
    fn parse(&self, b: &[u8], ctx: &ParseContext<'_>) -> Option<i64> {
        match self {
            TimeLayout::Epoch(unit) => parse_epoch(b, *unit),
            TimeLayout::Strftime(layout) => parse_strftime(layout, b, ctx.tz_offset_secs),
        }
    }
}

/// Capture group indices of the canonical fields (0 = absent; group 0 is the whole match).
#[derive(Debug, Clone, Default)]
struct Groups {
    time: usize,
    host: usize,
    client_ip: usize,
    method: usize,
    uri: usize,
    protocol: usize,
    request: usize,
    status: usize,
    bytes: usize,
    request_time_ms: usize,
    request_time_s: usize,
    referer: usize,
    user_agent: usize,
    cache: usize,
}

/// A compiled custom format.
#[derive(Debug, Clone)]
pub struct CustomFormat {
    regex: Regex,
    groups: Groups,
    time_layout: TimeLayout,
}

impl CustomFormat {
    /// Compiles and checks a job's custom format: the regex compiles, has a `time` group and
    /// only known group names, and the layout is an epoch unit or a strftime string that can
    /// read what it writes.
    pub fn new(spec: &CustomFormatSpec) -> Result<CustomFormat, FormatError> {
        let regex = Regex::new(&spec.regex)
            .map_err(|e| FormatError::Custom(format!("invalid regex '{}': {e}", spec.regex)))?;
        let mut groups = Groups::default();
        for (i, name) in regex.capture_names().enumerate() {
            let Some(name) = name else { continue };
            let slot = match name {
                "time" => &mut groups.time,
                "host" => &mut groups.host,
                "client_ip" => &mut groups.client_ip,
                "method" => &mut groups.method,
                "uri" => &mut groups.uri,
                "protocol" => &mut groups.protocol,
                "request" => &mut groups.request,
                "status" => &mut groups.status,
                "bytes" => &mut groups.bytes,
                "request_time_ms" => &mut groups.request_time_ms,
                "request_time_s" => &mut groups.request_time_s,
                "referer" => &mut groups.referer,
                "user_agent" => &mut groups.user_agent,
                "cache" => &mut groups.cache,
                other => {
                    return Err(FormatError::Custom(format!(
                        "unknown group name '{other}' in regex '{}' (known: {})",
                        spec.regex,
                        GROUP_NAMES.join(", ")
                    )))
                }
            };
            *slot = i;
        }
        if groups.time == 0 {
            return Err(FormatError::Custom(format!(
                "regex '{}' has no (?P<time>…) group; every format needs the event time",
                spec.regex
            )));
        }
        let time_layout = match spec.time_layout.as_str() {
            "epoch_s" => TimeLayout::Epoch(EpochUnit::Seconds),
            "epoch_ms" => TimeLayout::Epoch(EpochUnit::Millis),
            "epoch_ns" => TimeLayout::Epoch(EpochUnit::Nanos),
            layout => {
                check_strftime(layout)?;
                TimeLayout::Strftime(layout.to_string())
            }
        };
        Ok(CustomFormat {
            regex,
            groups,
            time_layout,
        })
    }

    /// True when no group can give the host, so it comes from the shard path.
    pub(super) fn needs_domain(&self) -> bool {
        let g = &self.groups;
        g.host == 0 && g.uri == 0 && g.request == 0
    }

    pub(super) fn parse<'a>(
        &self,
        line: &'a [u8],
        ctx: &ParseContext<'_>,
    ) -> Result<Record<'a>, RejectReason> {
        let caps = self.regex.captures(line).ok_or(RejectReason::NoMatch)?;
        let g = &self.groups;
        let get = |i: usize| -> Option<&'a [u8]> {
            (i != 0)
                .then(|| caps.get(i))
                .flatten()
                .map(|m| m.as_bytes())
        };
        let t = get(g.time).ok_or(RejectReason::BadTime)?;
        let time_ms = self
            .time_layout
            .parse(t, ctx)
            .ok_or(RejectReason::BadTime)?;

        let (mut method, mut target, mut protocol) = match get(g.request) {
            Some(r) => request_parts(field(r)),
            None => (Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed("")),
        };
        if let Some(m) = get(g.method) {
            method = field(m).text();
        }
        if let Some(u) = get(g.uri) {
            target = field(u).text();
        }
        if let Some(p) = get(g.protocol) {
            protocol = field(p).text();
        }
        let (host, uri) = match get(g.host) {
            Some(h) => {
                let host = host_of(h)?;
                // A full URL in the uri still loses its scheme and host.
                let uri = match split_url(target.as_bytes()) {
                    Some((_, u)) => Cow::Owned(u.into_owned()),
                    None => target,
                };
                (host, uri)
            }
            None if target.is_empty() => (host_from_ctx(ctx)?, target),
            None => host_and_uri(target, ctx)?,
        };
        let status = match get(g.status).and_then(|b| field(b).non_empty()) {
            None => None,
            Some(b) => Some(parse_status(b).ok_or(RejectReason::Invalid("status"))?),
        };
        let bytes = match get(g.bytes).and_then(|b| field(b).non_empty()) {
            None => None,
            Some(b) => Some(parse_u64(b).ok_or(RejectReason::Invalid("bytes"))?),
        };
        let request_time_ms = get(g.request_time_ms)
            .and_then(millis)
            .or_else(|| get(g.request_time_s).and_then(seconds_to_ms));
        let text = |i: usize| get(i).map_or(Cow::Borrowed(""), |b| field(b).text());
        Ok(Record {
            time_ms,
            client_ip: text(g.client_ip),
            host,
            method,
            uri,
            protocol,
            status,
            bytes,
            request_time_ms,
            referer: text(g.referer),
            user_agent: text(g.user_agent),
            cache: text(g.cache),
        })
    }
}

/// A captured value as a field: escapes are decoded when it contains a backslash.
fn field(b: &[u8]) -> Field<'_> {
    Field {
        bytes: b,
        escaped: memchr::memchr(b'\\', b).is_some(),
        quoted: false,
    }
}

/// A strftime layout must read back what it writes (catches typos and write-only directives).
fn check_strftime(layout: &str) -> Result<(), FormatError> {
    if !layout.contains('%') {
        return Err(FormatError::Custom(format!(
            "time_layout '{layout}' is neither epoch_s, epoch_ms, epoch_ns nor a strftime layout (no % directive)"
        )));
    }
    let probe = jiff::Timestamp::from_second(1_614_939_332)
        .map_err(|e| FormatError::Custom(e.to_string()))?
        .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)));
    let written = jiff::fmt::strtime::format(layout, &probe).map_err(|e| {
        FormatError::Custom(format!(
            "time_layout '{layout}' is not a valid strftime layout: {e}"
        ))
    })?;
    jiff::fmt::strtime::parse(layout, &written)
        .and_then(|tm| tm.to_datetime())
        .map_err(|e| {
            FormatError::Custom(format!(
                "time_layout '{layout}' cannot be read back (wrote '{written}'): {e}; it needs at least year, month, day, hour and minute"
            ))
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_contract, ctx, ms, parse_err, parse_ok};
    use super::super::{CustomFormatSpec, Format, FormatError, FormatSpec, RejectReason};

    fn custom(regex: &str, layout: &str) -> Result<Format, FormatError> {
        Format::from_spec(&FormatSpec::Custom(CustomFormatSpec {
            regex: regex.into(),
            time_layout: layout.into(),
        }))
    }

    const COMBINED_LIKE: &str = r#"^(?P<client_ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)")?"#;

    #[test]
    fn strftime_layout_with_offset() {
        let f = custom(COMBINED_LIKE, "%d/%b/%Y:%H:%M:%S %z").unwrap();
        let line = r#"203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] "GET https://IMG.example.com/a.jpg?w=200 HTTP/1.1" 200 48731 "-" "UA \x22x\x22""#;
        let r = parse_ok(&f, line);
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.host, &*r.uri, &*r.method, &*r.protocol),
            ("img.example.com", "/a.jpg?w=200", "GET", "HTTP/1.1")
        );
        assert_eq!(
            (r.status, r.bytes, &*r.referer, &*r.user_agent),
            (Some(200), Some(48731), "", "UA \"x\"")
        );
        let h2 = line.replacen("HTTP/1.1", "HTTP/2.0", 1);
        assert_eq!(
            f.parse(h2.as_bytes(), &ctx()).unwrap().unwrap().protocol,
            "HTTP/2"
        );
        check_contract(&f, line.as_bytes());
    }

    #[test]
    fn strftime_layout_without_offset_uses_the_source_zone_and_host_from_ctx() {
        let f = custom(
            r"^(?P<time>\S+ \S+) (?P<uri>\S+) (?P<status>\d+) (?P<request_time_s>[\d.]+)",
            "%Y-%m-%d %H:%M:%S",
        )
        .unwrap();
        let ctx8 = super::super::ParseContext {
            domain: Some("Shard.Example.com"),
            tz_offset_secs: 8 * 3600,
        };
        let r = f
            .parse(b"2021-03-05 18:15:32 /x?y 200 0.5", &ctx8)
            .unwrap()
            .unwrap();
        assert_eq!(r.time_ms, ms("2021-03-05T10:15:32Z"));
        assert_eq!(
            (&*r.host, &*r.uri, r.request_time_ms),
            ("shard.example.com", "/x?y", Some(500))
        );
    }

    #[test]
    fn epoch_layouts() {
        for (layout, value, want) in [
            ("epoch_s", "1614939332", "2021-03-05T10:15:32Z"),
            ("epoch_s", "1614939332.250", "2021-03-05T10:15:32.250Z"),
            ("epoch_ms", "1614939332123", "2021-03-05T10:15:32.123Z"),
            (
                "epoch_ns",
                "1614939332123456789",
                "2021-03-05T10:15:32.123Z",
            ),
        ] {
            let f = custom(
                r"^(?P<time>[\d.]+)\t(?P<host>[^\t]+)\t(?P<cache>\w+)",
                layout,
            )
            .unwrap();
            let line = format!("{value}\tA.example.com\thit");
            let r = f.parse(line.as_bytes(), &ctx()).unwrap().unwrap();
            assert_eq!(
                (r.time_ms, &*r.host, &*r.cache),
                (ms(want), "a.example.com", "HIT"),
                "{layout}"
            );
        }
        let f = custom(r"^(?P<time>\S+) (?P<host>\S+)", "epoch_ms").unwrap();
        assert_eq!(parse_err(&f, "12.5 a.example.com"), RejectReason::BadTime);
        assert_eq!(parse_err(&f, "nothing"), RejectReason::NoMatch);
    }

    #[test]
    fn definition_errors_are_clear() {
        let msg = |r: Result<Format, FormatError>| r.unwrap_err().to_string();
        let m = msg(custom(r"^(?P<time>\S+", "epoch_s"));
        assert!(m.contains("invalid regex"), "{m}");
        let m = msg(custom(r"^(?P<host>\S+)", "epoch_s"));
        assert!(m.contains("no (?P<time>"), "{m}");
        let m = msg(custom(r"^(?P<time>\S+) (?P<agent>.*)", "epoch_s"));
        assert!(m.contains("unknown group name 'agent'"), "{m}");
        let m = msg(custom(r"^(?P<time>\S+)", "yyyy-MM-dd"));
        assert!(m.contains("neither epoch_s"), "{m}");
        let m = msg(custom(r"^(?P<time>\S+)", "%H:%M"));
        assert!(m.contains("cannot be read back"), "{m}");
    }
}
