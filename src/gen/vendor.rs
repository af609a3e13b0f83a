//! The CDN platforms the generator imitates: their shard path templates, time zones and one
//! line writer per vendor layout, following docs/FORMATS.md field by field.
//!
//! A writer renders one `Request` at one instant and reports the event time a correct parser
//! must read back (vendors write seconds, Cloudflare nanoseconds) and where the time field sits,
//! so a trap can cut the line inside it.

use super::clock::{floor_s_ms, push_clf, push_date_time, push_digits14, push_seconds_3, strftime};
use super::request::{doc_v4, push_v4, Kind, Request};
use super::rng::Rng;
use super::text::{push_escaped, push_hex, push_i64, push_u64, Escape};
use crate::calendar::{push_rfc3339, Rfc3339};

/// Seconds east of UTC for Beijing time, in which the Chinese vendors write.
const BEIJING: i32 = 8 * 3600;

/// The CloudFront header lines at the top of every shard (not log lines, not counted).
const CLOUDFRONT_HEADER: &[u8] = b"#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n";

const CLOUDFRONT_EDGES: &[&str] = &[
    "HKG62-C1", "NRT57-P3", "SIN2-C1", "LAX50-P1", "FRA56-P7", "ICN57-P1",
];
const CLOUDFLARE_COLOS: &[&str] = &["HKG", "NRT", "SIN", "LAX", "FRA", "ICN", "SJC"];
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A CDN platform (and the built-in format of the same name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Upyun,
    Aliyun,
    Tencent,
    Nginx,
    Cloudfront,
    Cloudflare,
    Apache,
    Huawei,
    Qiniu,
}

/// Per-line deviations that docs/FORMATS.md says parsers must still accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variant {
    /// CLF day without its leading zero (`[5/Nov/…`).
    pub one_digit_day: bool,
    /// Vendor-plausible extra fields after the documented ones.
    pub extra_fields: bool,
    /// The vendor's alternative spelling: UpYun unquoted fields, nginx `\"` instead of `\x22`,
    /// Cloudflare timestamps as RFC 3339 strings or integer seconds.
    pub alternative: bool,
    /// An empty quoted referer `""` instead of `"-"`.
    pub empty_referer: bool,
}

/// What a writer tells about the line it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The event time a parser reads back, ms since the epoch (UTC).
    pub time_ms: i64,
    /// Byte range of the time field within the line (from the line's first byte).
    pub time_field: (usize, usize),
}

/// The instant and host of one generated line.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub time_ms: i64,
    /// Nanoseconds below the millisecond (Cloudflare writes nanoseconds).
    pub sub_ms_ns: u32,
    pub host: &'a str,
}

impl Platform {
    /// Every platform the generator knows, in the default job order first.
    pub const ALL: [Platform; 9] = [
        Platform::Upyun,
        Platform::Aliyun,
        Platform::Tencent,
        Platform::Nginx,
        Platform::Cloudfront,
        Platform::Cloudflare,
        Platform::Apache,
        Platform::Huawei,
        Platform::Qiniu,
    ];

    /// The platforms generated when `--platforms` is not given.
    pub const DEFAULT: [Platform; 6] = [
        Platform::Upyun,
        Platform::Aliyun,
        Platform::Tencent,
        Platform::Nginx,
        Platform::Cloudfront,
        Platform::Cloudflare,
    ];

    /// Source name and format name in the job file.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Upyun => "upyun",
            Platform::Aliyun => "aliyun",
            Platform::Tencent => "tencent",
            Platform::Nginx => "nginx",
            Platform::Cloudfront => "cloudfront",
            Platform::Cloudflare => "cloudflare",
            Platform::Apache => "apache",
            Platform::Huawei => "huawei",
            Platform::Qiniu => "qiniu",
        }
    }

    /// The platform called `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Platform> {
        Platform::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The UTC offset in which the platform names its shards and writes its times.
    pub fn offset_s(self) -> i32 {
        match self {
            Platform::Upyun
            | Platform::Aliyun
            | Platform::Tencent
            | Platform::Huawei
            | Platform::Qiniu => BEIJING,
            // Self-hosted servers: one on UTC, one on US Eastern standard time.
            Platform::Nginx | Platform::Cloudfront | Platform::Cloudflare => 0,
            Platform::Apache => -5 * 3600,
        }
    }

    /// The shard path template written into the job file (relative to the job's directory).
    pub fn template(self) -> &'static str {
        match self {
            Platform::Upyun => "shards/upyun/%Y%m%d/%H%M/*.gz",
            Platform::Aliyun => "shards/aliyun/%Y%m%d/%H/%H%M.gz",
            Platform::Tencent => "shards/tencent/%Y%m%d%H%M_*.gz",
            Platform::Nginx => "shards/nginx/{domain}/%Y%m%d/%H%M.log.gz",
            Platform::Cloudfront => "shards/cloudfront/%Y-%m-%d-%H-%M.*.gz",
            Platform::Cloudflare => "shards/cloudflare/%Y%m%d/%Y%m%dT%H%M00Z_*.log.gz",
            Platform::Apache => "shards/apache/{domain}/%Y%m%d/access_log.%H%M.gz",
            Platform::Huawei => "shards/huawei/%Y%m%d/%Y%m%d%H%M-*.gz",
            Platform::Qiniu => "shards/qiniu/%Y-%m-%d/%H-%M_part-*.gz",
        }
    }

    /// Whether the host comes from the shard path (`{domain}`) rather than the line.
    pub fn host_from_path(self) -> bool {
        matches!(self, Platform::Nginx | Platform::Apache)
    }

    /// The header lines a shard starts with (CloudFront's `#Version` / `#Fields`).
    fn header(self) -> &'static [u8] {
        match self {
            Platform::Cloudfront => CLOUDFRONT_HEADER,
            _ => b"",
        }
    }

    /// Appends the header lines a shard of this platform starts with (not log lines).
    pub fn push_header(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.header());
    }

    /// The concrete relative path of the shard for the slot starting at `slot_s`: the template
    /// with `{domain}` filled and each `*` replaced by a vendor-like name part.
    pub fn shard_path(self, slot_s: i64, domain: Option<&str>, tag: u64) -> String {
        let with_domain = self.template().replace("{domain}", domain.unwrap_or("_"));
        let mut tag_hex = Vec::with_capacity(8);
        push_hex(&mut tag_hex, tag, 8);
        let tag_hex = String::from_utf8_lossy(&tag_hex).into_owned();
        let star = match self {
            Platform::Upyun => strftime("upyun-%Y%m%d%H%M-0", slot_s, self.offset_s()),
            Platform::Tencent => "0".to_owned(),
            Platform::Cloudfront => tag_hex,
            Platform::Cloudflare => {
                format!(
                    "{}_{}",
                    strftime("%Y%m%dT%H%M00Z", slot_s + 300, 0),
                    tag_hex
                )
            }
            Platform::Huawei => "cdn01".to_owned(),
            Platform::Qiniu => "00000".to_owned(),
            Platform::Aliyun | Platform::Nginx | Platform::Apache => String::new(),
        };
        strftime(&with_domain.replace('*', &star), slot_s, self.offset_s())
    }

    /// Appends one log line (without terminator) for `req` at `ev`.
    pub fn write_line(
        self,
        out: &mut Vec<u8>,
        req: &Request,
        ev: &Event<'_>,
        v: Variant,
        rng: &mut Rng,
    ) -> Written {
        let base = out.len();
        let secs = ev.time_ms.div_euclid(1000);
        let off = self.offset_s();
        let s_ms = floor_s_ms(ev.time_ms);
        let mut time_field: (usize, usize);
        let mut time_ms = s_ms;
        let clf = |out: &mut Vec<u8>| {
            let a = out.len() - base;
            push_clf(out, secs, off, v.one_digit_day);
            (a, out.len() - base)
        };
        match self {
            Platform::Upyun => {
                req.client.push(out);
                out.extend_from_slice(b" - - ");
                time_field = clf(out);
                out.extend_from_slice(b" \"");
                out.extend_from_slice(req.method.as_bytes());
                out.push(b' ');
                req.push_url(out, ev.host);
                out.push(b' ');
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(b"\" ");
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                push_u64(out, req.bytes);
                out.push(b' ');
                push_quoted_referer(out, req, v, Escape::Apache);
                out.push(b' ');
                push_quoted(out, req.user_agent.as_bytes(), Escape::Apache);
                out.push(b' ');
                let unquoted = v.alternative;
                push_maybe_quoted(
                    out,
                    req.content_type.as_bytes(),
                    unquoted && !req.content_type.contains(' '),
                );
                out.push(b' ');
                push_u64(
                    out,
                    if req.method == "POST" {
                        req.request_bytes
                    } else {
                        0
                    },
                );
                out.extend_from_slice(if req.hit { b" Hit " } else { b" Miss " });
                let mut origin = Vec::with_capacity(8);
                origin.extend_from_slice(if req.hit { b"C/" } else { b"S/" });
                push_u64(&mut origin, u64::from(req.status));
                push_maybe_quoted(out, &origin, unquoted);
                out.extend_from_slice(if matches!(req.kind, Kind::Api | Kind::Page) {
                    b" Dynamic "
                } else {
                    b" Static "
                });
                let cc: &[u8] = match req.kind {
                    Kind::Api => b"no-cache",
                    Kind::Page => b"max-age=600",
                    _ => b"max-age=86400",
                };
                push_maybe_quoted(out, cc, unquoted);
                out.push(b' ');
                push_seconds_3(out, req.request_time_ms);
                out.push(b' ');
                push_v4(out, doc_v4(rng));
                if v.extra_fields {
                    out.extend_from_slice(b" \"-\" 443 h2");
                }
            }
            Platform::Aliyun => {
                // Aliyun writes the day without a leading zero.
                time_field = (out.len() - base, 0);
                push_clf(out, secs, off, true);
                time_field.1 = out.len() - base;
                out.push(b' ');
                req.client.push(out);
                out.extend_from_slice(b" - ");
                push_u64(out, req.request_time_ms);
                out.push(b' ');
                push_quoted_referer(out, req, v, Escape::Apache);
                out.extend_from_slice(b" \"");
                out.extend_from_slice(req.method.as_bytes());
                out.push(b' ');
                req.push_url(out, ev.host);
                out.extend_from_slice(b"\" ");
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                push_u64(out, req.request_bytes);
                out.push(b' ');
                push_u64(out, req.bytes);
                out.extend_from_slice(if req.hit { b" HIT " } else { b" MISS " });
                push_quoted(out, req.user_agent.as_bytes(), Escape::Apache);
                out.push(b' ');
                push_quoted(out, req.content_type.as_bytes(), Escape::Apache);
                if rng.below(10) < 3 {
                    out.push(b' ');
                    out.extend_from_slice(req.protocol.as_bytes());
                    out.push(b' ');
                    req.client.push(out);
                }
                if v.extra_fields {
                    out.extend_from_slice(b" \"x-trace=");
                    push_hex(out, rng.next_u64(), 16);
                    out.extend_from_slice(b"\" -");
                }
            }
            Platform::Tencent => {
                time_field = (out.len() - base, 0);
                push_digits14(out, secs, off);
                time_field.1 = out.len() - base;
                out.push(b' ');
                req.client.push(out);
                out.push(b' ');
                out.extend_from_slice(ev.host.as_bytes());
                out.push(b' ');
                out.extend_from_slice(&req.path);
                out.push(b' ');
                push_u64(out, req.bytes);
                out.push(b' ');
                push_u64(out, 1400 + rng.below(120));
                out.push(b' ');
                push_u64(out, rng.range(1, 4));
                out.push(b' ');
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                out.extend_from_slice(req.referer.as_bytes());
                out.push(b' ');
                push_u64(out, req.request_time_ms);
                out.push(b' ');
                push_quoted(out, req.user_agent.as_bytes(), Escape::Apache);
                out.push(b' ');
                push_range(out, req);
                out.push(b' ');
                out.extend_from_slice(req.method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(if req.hit { b" hit " } else { b" miss " });
                push_u64(out, rng.range(1024, 65_535));
                if v.extra_fields {
                    out.extend_from_slice(b" - 0 TLSv1.3");
                }
            }
            Platform::Nginx | Platform::Apache => {
                req.client.push(out);
                out.extend_from_slice(b" - - ");
                time_field = clf(out);
                out.extend_from_slice(b" \"");
                out.extend_from_slice(req.method.as_bytes());
                out.push(b' ');
                req.push_uri(out);
                out.push(b' ');
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(b"\" ");
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                if self == Platform::Apache && req.bytes == 0 {
                    out.push(b'-');
                } else {
                    push_u64(out, req.bytes);
                }
                out.push(b' ');
                let esc = if self == Platform::Apache || v.alternative {
                    Escape::Apache
                } else {
                    Escape::Nginx
                };
                push_quoted_referer(out, req, v, esc);
                out.push(b' ');
                push_quoted(out, req.user_agent.as_bytes(), esc);
                if v.extra_fields {
                    out.extend_from_slice(b" \"");
                    req.client.push(out);
                    out.extend_from_slice(b", ");
                    push_v4(out, doc_v4(rng));
                    out.extend_from_slice(b"\" ");
                    push_seconds_3(out, req.request_time_ms);
                }
            }
            Platform::Huawei => {
                time_field = clf(out);
                out.push(b' ');
                req.client.push(out);
                out.push(b' ');
                push_u64(out, req.request_time_ms);
                out.push(b' ');
                push_quoted_referer(out, req, v, Escape::Apache);
                out.extend_from_slice(b" \"");
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(b"\" \"");
                out.extend_from_slice(req.method.as_bytes());
                out.extend_from_slice(b"\" \"");
                out.extend_from_slice(ev.host.as_bytes());
                out.extend_from_slice(b"\" \"");
                req.push_uri(out);
                out.extend_from_slice(b"\" ");
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                push_u64(out, req.bytes);
                out.extend_from_slice(if req.hit { b" HIT " } else { b" MISS " });
                push_quoted(out, req.user_agent.as_bytes(), Escape::Apache);
                out.extend_from_slice(b" \"");
                push_range(out, req);
                out.push(b'"');
                if v.extra_fields {
                    out.extend_from_slice(b" \"https\" \"-\"");
                }
            }
            Platform::Qiniu => {
                req.client.push(out);
                out.extend_from_slice(if req.hit { b" HIT " } else { b" MISS " });
                push_u64(out, req.request_time_ms);
                out.push(b' ');
                time_field = clf(out);
                out.extend_from_slice(b" \"");
                out.extend_from_slice(req.method.as_bytes());
                out.push(b' ');
                req.push_url(out, ev.host);
                out.push(b' ');
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(b"\" ");
                push_u64(out, u64::from(req.status));
                out.push(b' ');
                push_u64(out, req.bytes);
                out.push(b' ');
                push_quoted_referer(out, req, v, Escape::Apache);
                out.push(b' ');
                push_quoted(out, req.user_agent.as_bytes(), Escape::Apache);
                if v.extra_fields {
                    out.extend_from_slice(b" \"");
                    push_hex(out, rng.next_u64(), 16);
                    out.extend_from_slice(b"\" 0");
                }
            }
            Platform::Cloudfront => {
                time_field = (out.len() - base, 0);
                push_date_time(out, secs, 0, b'\t');
                time_field.1 = out.len() - base;
                let t = |out: &mut Vec<u8>| out.push(b'\t');
                t(out);
                out.extend_from_slice(rng.pick(CLOUDFRONT_EDGES).as_bytes());
                t(out);
                push_u64(out, req.bytes + 280 + rng.below(200));
                t(out);
                req.client.push(out);
                t(out);
                out.extend_from_slice(req.method.as_bytes());
                t(out);
                out.extend_from_slice(b"d2x7example.cdn.example.net");
                t(out);
                push_escaped(out, &req.path, Escape::Url);
                t(out);
                push_u64(out, u64::from(req.status));
                t(out);
                push_escaped(out, req.referer.as_bytes(), Escape::Url);
                t(out);
                push_escaped(out, req.user_agent.as_bytes(), Escape::Url);
                t(out);
                if req.query.is_empty() {
                    out.push(b'-');
                } else {
                    out.extend_from_slice(&req.query);
                }
                t(out);
                out.push(b'-');
                t(out);
                let result: &[u8] = if req.status >= 500 {
                    b"Error"
                } else if req.hit {
                    b"Hit"
                } else {
                    b"Miss"
                };
                out.extend_from_slice(result);
                t(out);
                for _ in 0..54 {
                    out.push(BASE64URL[rng.below(64) as usize]);
                }
                out.extend_from_slice(b"==");
                t(out);
                out.extend_from_slice(ev.host.as_bytes());
                t(out);
                out.extend_from_slice(if req.https { b"https" } else { b"http" });
                t(out);
                push_u64(out, req.request_bytes);
                t(out);
                push_seconds_3(out, req.request_time_ms);
                t(out);
                out.push(b'-');
                t(out);
                out.extend_from_slice(if req.https {
                    b"TLSv1.3\tTLS_AES_128_GCM_SHA256"
                } else {
                    b"-\t-"
                });
                t(out);
                out.extend_from_slice(result);
                t(out);
                out.extend_from_slice(req.protocol.as_bytes());
                out.extend_from_slice(b"\t-\t-\t");
                push_u64(out, rng.range(1024, 65_535));
                t(out);
                push_seconds_3(out, req.request_time_ms.saturating_sub(1));
                t(out);
                out.extend_from_slice(result);
                t(out);
                push_escaped(out, req.content_type.as_bytes(), Escape::Url);
                t(out);
                push_u64(out, req.bytes);
                t(out);
                match req.range {
                    Some((a, b)) => {
                        push_u64(out, a);
                        t(out);
                        push_u64(out, b);
                    }
                    None => out.extend_from_slice(b"-\t-"),
                }
                if v.extra_fields {
                    out.extend_from_slice(b"\t-\tmax-age=86400");
                }
            }
            Platform::Cloudflare => {
                out.extend_from_slice(b"{\"CacheCacheStatus\":\"");
                out.extend_from_slice(if req.hit {
                    b"hit"
                } else if req.kind == Kind::Api {
                    b"dynamic"
                } else {
                    b"miss"
                });
                out.extend_from_slice(b"\",\"ClientIP\":\"");
                req.client.push(out);
                out.extend_from_slice(b"\",\"ClientRequestHost\":\"");
                out.extend_from_slice(ev.host.as_bytes());
                out.extend_from_slice(b"\",\"ClientRequestMethod\":\"");
                out.extend_from_slice(req.method.as_bytes());
                out.extend_from_slice(b"\",\"ClientRequestProtocol\":\"");
                out.extend_from_slice(if req.protocol == "HTTP/2.0" {
                    b"HTTP/2"
                } else {
                    b"HTTP/1.1"
                });
                out.extend_from_slice(b"\",\"ClientRequestReferer\":\"");
                if req.referer != "-" {
                    push_escaped(out, req.referer.as_bytes(), Escape::Json);
                }
                out.extend_from_slice(b"\",\"ClientRequestURI\":\"");
                let uri_start = out.len();
                req.push_uri(out);
                debug_assert!(!out[uri_start..].contains(&b'"'));
                out.extend_from_slice(b"\",\"ClientRequestUserAgent\":\"");
                push_escaped(out, req.user_agent.as_bytes(), Escape::Json);
                out.extend_from_slice(b"\",\"EdgeResponseBytes\":");
                push_u64(out, req.bytes);
                out.extend_from_slice(b",\"EdgeResponseStatus\":");
                push_u64(out, u64::from(req.status));
                out.extend_from_slice(b",\"EdgeStartTimestamp\":");
                let a = out.len() - base;
                if v.alternative && rng.below(2) == 0 {
                    out.push(b'"');
                    push_rfc3339(out, ev.time_ms, 0, Rfc3339::MillisZ);
                    out.push(b'"');
                    time_ms = ev.time_ms;
                } else if v.alternative {
                    push_i64(out, secs);
                } else {
                    push_i64(out, ev.time_ms * 1_000_000 + i64::from(ev.sub_ms_ns));
                    time_ms = ev.time_ms;
                }
                time_field = (a, out.len() - base);
                out.extend_from_slice(b",\"EdgeTimeToFirstByteMs\":");
                push_u64(out, req.request_time_ms);
                if v.extra_fields {
                    out.extend_from_slice(b",\"EdgeColoCode\":\"");
                    out.extend_from_slice(rng.pick(CLOUDFLARE_COLOS).as_bytes());
                    out.extend_from_slice(b"\",\"RayID\":\"");
                    push_hex(out, rng.next_u64(), 16);
                    out.extend_from_slice(b"\",\"SecurityAction\":\"\",\"WorkerSubrequest\":false,\"ZoneName\":\"example.com\",\"Tags\":[\"a\",\"b c\"],\"Extra\":{\"k\":1}");
                }
                out.push(b'}');
            }
        }
        Written {
            time_ms,
            time_field,
        }
    }
}

/// Appends `"…"` with `s` escaped.
fn push_quoted(out: &mut Vec<u8>, s: &[u8], esc: Escape) {
    out.push(b'"');
    push_escaped(out, s, esc);
    out.push(b'"');
}

/// Appends `s` bare or quoted.
fn push_maybe_quoted(out: &mut Vec<u8>, s: &[u8], bare: bool) {
    if bare {
        out.extend_from_slice(s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
    }
}

/// Appends the quoted referer: `"-"` for none, or `""` with the empty-referer variant.
fn push_quoted_referer(out: &mut Vec<u8>, req: &Request, v: Variant, esc: Escape) {
    if v.empty_referer && req.referer == "-" {
        out.extend_from_slice(b"\"\"");
    } else {
        push_quoted(out, req.referer.as_bytes(), esc);
    }
}

/// Appends `bytes=a-b`, or `-` without a range.
fn push_range(out: &mut Vec<u8>, req: &Request) {
    match req.range {
        Some((a, b)) => {
            out.extend_from_slice(b"bytes=");
            push_u64(out, a);
            out.push(b'-');
            push_u64(out, b);
        }
        None => out.push(b'-'),
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::{ClientIp, Profile, RequestStyle};
    use super::super::rng::Chance;
    use super::*;

    /// A `*`-only glob matcher, enough to check concrete paths against the templates.
    fn glob(pat: &[u8], s: &[u8]) -> bool {
        match pat.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => {
                (0..=s.len()).any(|i| !s[..i].contains(&b'/') && glob(rest, &s[i..]))
            }
            Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
        }
    }

    fn example_request() -> Request {
        Request {
            client: ClientIp::V4([203, 0, 113, 7]),
            path: b"/a.jpg".to_vec(),
            query: b"w=200".to_vec(),
            protocol: "HTTP/2.0",
            status: 200,
            bytes: 48_731,
            request_time_ms: 12,
            referer: "https://www.example.com/",
            user_agent: "Mozilla/5.0 (Windows NT 10.0)",
            ..Request::default()
        }
    }

    const EXAMPLE_MS: i64 = 1_614_939_332_123;

    fn line(p: Platform, v: Variant) -> (String, Written) {
        let mut out = Vec::new();
        let ev = Event {
            time_ms: EXAMPLE_MS,
            sub_ms_ns: 456,
            host: "img.example.com",
        };
        let w = p.write_line(&mut out, &example_request(), &ev, v, &mut Rng::new(1));
        (String::from_utf8_lossy(&out).into_owned(), w)
    }

    #[test]
    fn lines_follow_the_formats_examples() {
        let (l, w) = line(Platform::Upyun, Variant::default());
        assert!(
            l.starts_with("203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] \"GET https://img.example.com/a.jpg?w=200 HTTP/2.0\" 200 48731 \"https://www.example.com/\" \"Mozilla/5.0 (Windows NT 10.0)\" \"image/jpeg\" 0 Hit \"C/200\" Static \"max-age=86400\" 0.012 "),
            "{l}"
        );
        assert_eq!(w.time_ms, EXAMPLE_MS - 123);
        assert_eq!(
            &l[w.time_field.0..w.time_field.1],
            "[05/Mar/2021:18:15:32 +0800]"
        );

        let (l, _) = line(Platform::Aliyun, Variant::default());
        assert!(
            l.starts_with("[5/Mar/2021:18:15:32 +0800] 203.0.113.7 - 12 \"https://www.example.com/\" \"GET https://img.example.com/a.jpg?w=200\" 200 0 48731 HIT \"Mozilla/5.0 (Windows NT 10.0)\" \"image/jpeg\""),
            "{l}"
        );

        let (l, w) = line(Platform::Tencent, Variant::default());
        assert!(
            l.starts_with("20210305181532 203.0.113.7 img.example.com /a.jpg 48731 "),
            "{l}"
        );
        assert!(l.contains(" 200 https://www.example.com/ 12 \"Mozilla/5.0 (Windows NT 10.0)\" - GET HTTP/2.0 hit "), "{l}");
        assert_eq!(w.time_field, (0, 14));

        let (l, _) = line(Platform::Nginx, Variant::default());
        assert_eq!(
            l,
            "203.0.113.7 - - [05/Mar/2021:10:15:32 +0000] \"GET /a.jpg?w=200 HTTP/2.0\" 200 48731 \"https://www.example.com/\" \"Mozilla/5.0 (Windows NT 10.0)\""
        );

        let (l, w) = line(Platform::Cloudflare, Variant::default());
        assert!(
            l.contains("\"EdgeStartTimestamp\":1614939332123000456,"),
            "{l}"
        );
        assert!(
            l.contains("\"ClientRequestHost\":\"img.example.com\""),
            "{l}"
        );
        assert_eq!(w.time_ms, EXAMPLE_MS);
        assert!(serde_json::from_str::<serde_json::Value>(&l).is_ok(), "{l}");

        let (l, _) = line(Platform::Cloudfront, Variant::default());
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 33, "{l}");
        assert_eq!(
            (f[0], f[1], f[15]),
            ("2021-03-05", "10:15:32", "img.example.com")
        );
        assert_eq!(f[10], "Mozilla/5.0%20(Windows%20NT%2010.0)");
        assert_eq!(f[11], "w=200");

        let (l, _) = line(Platform::Huawei, Variant::default());
        assert!(l.starts_with("[05/Mar/2021:18:15:32 +0800] 203.0.113.7 12 \"https://www.example.com/\" \"HTTP/2.0\" \"GET\" \"img.example.com\" \"/a.jpg?w=200\" 200 48731 HIT "), "{l}");

        let (l, _) = line(Platform::Qiniu, Variant::default());
        assert!(l.starts_with("203.0.113.7 HIT 12 [05/Mar/2021:18:15:32 +0800] \"GET https://img.example.com/a.jpg?w=200 HTTP/2.0\" 200 48731 "), "{l}");

        let (l, _) = line(Platform::Apache, Variant::default());
        assert!(l.starts_with("203.0.113.7 - - [05/Mar/2021:05:15:32 -0500] \"GET /a.jpg?w=200 HTTP/2.0\" 200 48731 "), "{l}");
    }

    #[test]
    fn variants_stay_parseable_shapes() {
        let all = Variant {
            one_digit_day: true,
            extra_fields: true,
            alternative: true,
            empty_referer: true,
        };
        let (l, _) = line(Platform::Upyun, all);
        assert!(l.contains("[5/Mar/2021:18:15:32 +0800]"), "{l}");
        assert!(
            l.contains(" image/jpeg 0 Hit C/200 Static max-age=86400 0.012 "),
            "{l}"
        );
        let (l, w) = line(Platform::Cloudflare, all);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
        let ts = &v["EdgeStartTimestamp"];
        assert!(ts.is_string() || ts.as_i64() == Some(1_614_939_332), "{l}");
        assert_eq!(w.time_ms % 1000 == 0, ts.is_i64(), "{l}");
        let (l, _) = line(Platform::Cloudfront, all);
        assert_eq!(l.split('\t').count(), 35);
    }

    #[test]
    fn trap_user_agents_are_escaped_per_vendor() {
        let mut rng = Rng::new(2);
        let mut req = Request::default();
        for _ in 0..50 {
            req.fill(
                &mut rng,
                RequestStyle {
                    ipv6: Chance::NEVER,
                    trap_user_agent: true,
                    profile: Profile::Site,
                },
            );
            let ev = Event {
                time_ms: EXAMPLE_MS,
                sub_ms_ns: 0,
                host: "www.example.com",
            };
            let mut out = Vec::new();
            Platform::Nginx.write_line(&mut out, &req, &ev, Variant::default(), &mut rng);
            // nginx never writes a raw quote inside a field, nor a non-ASCII byte.
            let quotes = out.iter().filter(|&&b| b == b'"').count();
            assert_eq!(quotes, 6, "{}", String::from_utf8_lossy(&out));
            assert!(out.is_ascii());
            out.clear();
            Platform::Cloudflare.write_line(&mut out, &req, &ev, Variant::default(), &mut rng);
            assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        }
    }

    #[test]
    fn shard_paths_match_their_templates() {
        let slot = 1_793_808_000; // 2026-11-05 00:00 +08:00
        for p in Platform::ALL {
            let path = p.shard_path(slot, Some("img.example.com"), 0xabc);
            let pat = strftime(
                &p.template().replace("{domain}", "img.example.com"),
                slot,
                p.offset_s(),
            );
            assert!(
                glob(pat.as_bytes(), path.as_bytes()),
                "{p:?}: {path} !~ {pat}"
            );
            let next = p.shard_path(slot + 300, Some("img.example.com"), 0xabc);
            assert!(
                !glob(pat.as_bytes(), next.as_bytes()),
                "{p:?}: {next} also matches {pat}"
            );
        }
        assert_eq!(
            Platform::Upyun.shard_path(slot, None, 0),
            "shards/upyun/20261105/0000/upyun-202611050000-0.gz"
        );
        assert_eq!(
            Platform::Cloudflare.shard_path(slot, None, 0xabc),
            "shards/cloudflare/20261104/20261104T160000Z_20261104T160500Z_00000abc.log.gz"
        );
        assert_eq!(
            Platform::Nginx.shard_path(slot, Some("img.example.com"), 0),
            "shards/nginx/img.example.com/20261104/1600.log.gz"
        );
    }
}
