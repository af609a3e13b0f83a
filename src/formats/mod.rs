//! Input formats: one parser per vendor, the canonical [`Record`] they all fill, and the
//! output renderers.
//!
//! [`Format`] is an enum that dispatches to one module per vendor (`nginx` also reads Apache),
//! the way a command enum dispatches to its commands; `custom` compiles a job's own regex.
//! The built-in parsers scan bytes by hand (no regex, no allocation for plain lines); field
//! values borrow from the line and are only copied when they need rewriting (escapes,
//! URL-decoding, invalid UTF-8, upper-case hosts). Specification: `docs/FORMATS.md`.
//!
//! This module does not read files, strip line terminators or count anything: the engine feeds
//! one line at a time and counts what [`Format::parse`] returns.
//!
//! # Layout
//! * `fields`: the shared lexer (quoted fields with `\xHH`/`\"` escapes, CLF brackets, empties)
//!   and value helpers (hosts, URLs, request lines, numbers).
//! * `canonical`: one spelling of protocols and cache statuses, applied to every record.
//! * `time`: hand-rolled time decoding (CLF, 14-digit, RFC 3339, epochs; strftime via jiff)
//!   and the encoders the renderers use.
//! * `nginx`, `upyun`, `aliyun`, `tencent`, `huawei`, `qiniu`, `cloudfront`, `cloudflare`:
//!   one built-in format each; `custom`: regex formats from the job file.
//! * `render`: the `json`, `combined` and `raw` output lines.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod aliyun;
mod canonical;
mod cloudflare;
mod cloudfront;
mod custom;
mod fields;
mod huawei;
mod nginx;
mod qiniu;
mod render;
mod tencent;
#[cfg(test)]
mod testing;
pub(crate) mod time;
mod upyun;

pub use custom::CustomFormat;
pub use render::Renderer;

/// One request, in the canonical field set of docs/FORMATS.md. Missing values are empty / `None`.
///
/// String fields borrow from the input line when they can. A field whose bytes are not valid
/// UTF-8 is still accepted: that field alone is converted lossily (invalid sequences become
/// U+FFFD); the `raw` output keeps the original bytes. Escapes (`\xHH`, `\"`, CloudFront's
/// `%XX`) are decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record<'a> {
    /// Event time, milliseconds since the epoch, UTC.
    pub time_ms: i64,
    pub client_ip: Cow<'a, str>,
    /// Lower-case, without port. Never empty for an accepted line.
    pub host: Cow<'a, str>,
    pub method: Cow<'a, str>,
    /// Path plus `?query` (scheme and host removed for formats that log full URLs).
    pub uri: Cow<'a, str>,
    /// `HTTP/1.0`, `HTTP/1.1`, `HTTP/2`, `HTTP/3` (canonical spelling), empty if not logged.
    pub protocol: Cow<'a, str>,
    pub status: Option<u16>,
    /// Response bytes.
    pub bytes: Option<u64>,
    pub request_time_ms: Option<u64>,
    pub referer: Cow<'a, str>,
    pub user_agent: Cow<'a, str>,
    /// Canonical cache status (`HIT`, `MISS`, `EXPIRED`, `REFRESH_HIT`, …), empty if the
    /// format has none.
    pub cache: Cow<'a, str>,
}

impl Record<'_> {
    /// A copy that owns its strings, for keeping a record beyond its line.
    pub fn into_owned(self) -> Record<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Record {
            time_ms: self.time_ms,
            client_ip: own(self.client_ip),
            host: own(self.host),
            method: own(self.method),
            uri: own(self.uri),
            protocol: own(self.protocol),
            status: self.status,
            bytes: self.bytes,
            request_time_ms: self.request_time_ms,
            referer: own(self.referer),
            user_agent: own(self.user_agent),
            cache: own(self.cache),
        }
    }
}

/// What a parser knows besides the line.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    /// The host taken from the shard path (`{domain}` in the template), if any.
    pub domain: Option<&'a str>,
    /// Offset of the source's time zone, for line times written without one.
    pub tz_offset_secs: i32,
}

/// Why a line was rejected. Cheap to copy; `Display` gives the message for the rejects file
/// and [`RejectReason::kind`] a stable label for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// A required field is absent: the line ends early (cut) or has another layout.
    Missing(&'static str),
    /// A field is present but malformed.
    Invalid(&'static str),
    /// The event time is missing or unreadable.
    BadTime,
    /// No host in the line (or, for nginx/apache, in the shard path).
    NoHost,
    /// A host with characters that cannot name an output file.
    BadHost,
    /// A custom format's regex does not match the line.
    NoMatch,
    /// A quoted field (or JSON object) is not closed: the line was cut.
    Unterminated,
}

impl RejectReason {
    /// A short stable label: `missing_field`, `invalid_field`, `bad_time`, `no_host`,
    /// `bad_host`, `no_match`, `cut_line`.
    pub fn kind(&self) -> &'static str {
        match self {
            RejectReason::Missing(_) => "missing_field",
            RejectReason::Invalid(_) => "invalid_field",
            RejectReason::BadTime => "bad_time",
            RejectReason::NoHost => "no_host",
            RejectReason::BadHost => "bad_host",
            RejectReason::NoMatch => "no_match",
            RejectReason::Unterminated => "cut_line",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::Missing(field) => {
                write!(f, "missing {field} (line cut or another layout)")
            }
            RejectReason::Invalid(field) => write!(f, "invalid {field}"),
            RejectReason::BadTime => f.write_str("missing or unreadable time"),
            RejectReason::NoHost => f.write_str("no host"),
            RejectReason::BadHost => f.write_str("invalid host"),
            RejectReason::NoMatch => f.write_str("line does not match the format's regex"),
            RejectReason::Unterminated => f.write_str("unterminated quoted field (line cut?)"),
        }
    }
}

impl std::error::Error for RejectReason {}

/// A format as written in the job file: a built-in name or a custom regex table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FormatSpec {
    Named(String),
    Custom(CustomFormatSpec),
}

/// A custom format: a regular expression with named groups for the canonical fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFormatSpec {
    /// Regex (syntax of the `regex` crate) with named groups among `time` (required), `host`,
    /// `client_ip`, `method`, `uri`, `protocol`, `request` (`METHOD uri PROTO` in one group),
    /// `status`, `bytes`, `request_time_ms`, `request_time_s`, `referer`, `user_agent`, `cache`.
    pub regex: String,
    /// strftime layout of the `time` group, or `epoch_s` / `epoch_ms` / `epoch_ns`.
    pub time_layout: String,
}

/// Errors in a format definition.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("unknown format '{name}' (built-in formats: {known})")]
    Unknown { name: String, known: String },
    #[error("custom format: {0}")]
    Custom(String),
}

/// A built-in format, for `filex formats` and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    /// The name used in job files.
    pub name: &'static str,
    /// One line: layout and where the host and time come from.
    pub description: &'static str,
    /// A line in this format (made-up values).
    pub sample: &'static str,
}

const BUILTINS: &[(FormatInfo, Format)] = &[
    (nginx::INFO, Format::Nginx),
    (nginx::APACHE_INFO, Format::Apache),
    (upyun::INFO, Format::Upyun),
    (aliyun::INFO, Format::Aliyun),
    (tencent::INFO, Format::Tencent),
    (huawei::INFO, Format::Huawei),
    (qiniu::INFO, Format::Qiniu),
    (cloudfront::INFO, Format::CloudFront),
    (cloudflare::INFO, Format::Cloudflare),
];

/// Every built-in format, in documentation order.
pub fn builtin_formats() -> impl ExactSizeIterator<Item = &'static FormatInfo> {
    BUILTINS.iter().map(|(info, _)| info)
}

/// A compiled input format.
#[derive(Debug, Clone)]
pub enum Format {
    /// nginx `combined` (`main`); host from the shard path.
    Nginx,
    /// Apache `common` or `combined`; host from the shard path.
    Apache,
    Upyun,
    Aliyun,
    /// Tencent Cloud CDN; times in the source zone (default UTC+8, see
    /// [`Format::default_tz_offset_secs`]).
    Tencent,
    Huawei,
    Qiniu,
    /// Amazon CloudFront standard logs (tab separated, UTC).
    CloudFront,
    /// Cloudflare Logpush `http_requests` NDJSON.
    Cloudflare,
    /// A job-defined regex format.
    Custom(Arc<CustomFormat>),
}

impl Format {
    /// Resolves a job file's format: a built-in name (case-insensitive) or a custom regex.
    pub fn from_spec(spec: &FormatSpec) -> Result<Format, FormatError> {
        match spec {
            FormatSpec::Named(name) => BUILTINS
                .iter()
                .find(|(info, _)| info.name.eq_ignore_ascii_case(name.trim()))
                .map(|(_, f)| f.clone())
                .ok_or_else(|| FormatError::Unknown {
                    name: name.clone(),
                    known: builtin_formats()
                        .map(|i| i.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            FormatSpec::Custom(c) => Ok(Format::Custom(Arc::new(CustomFormat::new(c)?))),
        }
    }

    /// The format's name in job files (`custom` for a regex format).
    pub fn name(&self) -> &'static str {
        match self {
            Format::Custom(_) => "custom",
            f => BUILTINS
                .iter()
                .find(|(_, b)| std::mem::discriminant(b) == std::mem::discriminant(f))
                .map_or("custom", |(info, _)| info.name),
        }
    }

    /// The source zone to assume when the job does not set one, for formats whose times carry
    /// no offset and are documented in a fixed zone: `Some(28800)` (UTC+8) for Tencent. `None`
    /// means the format's times carry their own offset or the job must say (custom layouts
    /// without `%z`; UTC if it does not).
    pub fn default_tz_offset_secs(&self) -> Option<i32> {
        match self {
            Format::Tencent => Some(tencent::DEFAULT_TZ_OFFSET_SECS),
            _ => None,
        }
    }

    /// Whether lines take their host from the shard path (`ctx.domain`, the `{domain}` of the
    /// shard template): always for nginx and apache, and for a custom format whose regex has
    /// neither a `host` nor a `uri`/`request` group (a full URL there can carry the host).
    /// Job validation can require `{domain}` in such a source's shard template.
    pub fn host_from_shard_path(&self) -> bool {
        match self {
            Format::Nginx | Format::Apache => true,
            Format::Custom(c) => c.needs_domain(),
            _ => false,
        }
    }

    /// Parses one line. `Ok(None)`: not a log line (blank, CloudFront `#` header), skipped and
    /// not counted. `Err`: a counted reject. Protocol and cache status come out in their
    /// canonical spelling, whatever the vendor wrote.
    ///
    /// The engine strips `\n` / `\r\n`; a trailing `\r` left over is ignored here as well, and
    /// a stray `\r` inside the line counts as a field separator. Never panics, whatever the
    /// bytes (binary garbage, a cut line, a 1 MB line).
    pub fn parse<'a>(
        &self,
        line: &'a [u8],
        ctx: &ParseContext<'_>,
    ) -> Result<Option<Record<'a>>, RejectReason> {
        let line = trim_line(line);
        if line.is_empty() {
            return Ok(None);
        }
        let parsed = match self {
            Format::Nginx | Format::Apache => nginx::parse(line, ctx).map(Some),
            Format::Upyun => upyun::parse(line, ctx).map(Some),
            Format::Aliyun => aliyun::parse(line, ctx).map(Some),
            Format::Tencent => tencent::parse(line, ctx).map(Some),
            Format::Huawei => huawei::parse(line, ctx).map(Some),
            Format::Qiniu => qiniu::parse(line, ctx).map(Some),
            Format::CloudFront => cloudfront::parse(line),
            Format::Cloudflare => cloudflare::parse(line).map(Some),
            Format::Custom(c) => c.parse(line, ctx).map(Some),
        };
        parsed.map(|r| r.map(canonical::canonical))
    }
}

/// The line without surrounding whitespace and terminators (`\r`, `\n`, spaces, tabs).
fn trim_line(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n' | b' ' | b'\t'] = line {
        line = rest;
    }
    while let [b'\r' | b'\n' | b' ' | b'\t', rest @ ..] = line {
        line = rest;
    }
    line
}

/// Maps a host value to the record's host or the matching reject.
fn host_of(b: &[u8]) -> Result<Cow<'_, str>, RejectReason> {
    fields::host(b).map_err(|e| match e {
        fields::HostError::Missing => RejectReason::NoHost,
        fields::HostError::Invalid => RejectReason::BadHost,
    })
}

/// The host from the shard path (nginx, apache, or a custom format without a `host` group).
///
/// The record may only borrow from the line, so the normalized domain is interned: each
/// distinct domain is leaked once per process (domains are few: one per output partition
/// family), and the last one is cached per thread, so the per-line cost is one string compare
/// and no allocation.
fn host_from_ctx<'a>(ctx: &ParseContext<'_>) -> Result<Cow<'a, str>, RejectReason> {
    use std::cell::Cell;
    use std::collections::HashSet;
    use std::sync::Mutex;

    static INTERNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    thread_local! {
        static LAST: Cell<(&'static str, &'static str)> = const { Cell::new(("", "")) };
    }
    let domain = ctx.domain.ok_or(RejectReason::NoHost)?;
    let (last_in, last_out) = LAST.with(Cell::get);
    if !last_in.is_empty() && last_in == domain {
        return Ok(Cow::Borrowed(last_out));
    }
    let normalized = host_of(domain.as_bytes())?;
    let mut guard = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    let intern = |set: &mut HashSet<&'static str>, s: &str| -> &'static str {
        match set.get(s) {
            Some(&k) => k,
            None => {
                let k: &'static str = Box::leak(s.to_owned().into_boxed_str());
                set.insert(k);
                k
            }
        }
    };
    let key = intern(set, domain);
    let value = intern(set, &normalized);
    drop(guard);
    LAST.with(|c| c.set((key, value)));
    Ok(Cow::Borrowed(value))
}

/// The output line layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Json,
    Combined,
    Raw,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_names_list_the_known_ones() {
        for info in builtin_formats() {
            let f = Format::from_spec(&FormatSpec::Named(info.name.to_string())).unwrap();
            assert_eq!(f.name(), info.name);
        }
        assert_eq!(
            Format::from_spec(&FormatSpec::Named("NGINX".into()))
                .unwrap()
                .name(),
            "nginx"
        );
        let err = Format::from_spec(&FormatSpec::Named("akamai".into())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("'akamai'") && msg.contains("cloudfront"),
            "{msg}"
        );
    }

    #[test]
    fn every_builtin_sample_parses_and_passes_the_contract() {
        for info in builtin_formats() {
            let f = Format::from_spec(&FormatSpec::Named(info.name.to_string())).unwrap();
            testing::check_contract(&f, info.sample.as_bytes());
        }
    }

    #[test]
    fn job_file_specs_deserialize() {
        #[derive(Deserialize)]
        struct T {
            a: FormatSpec,
            b: FormatSpec,
        }
        let t: T = toml::from_str(
            "a = \"nginx\"\nb = { regex = '^(?P<time>\\d+) (?P<host>\\S+)', time_layout = 'epoch_s' }\n",
        )
        .unwrap();
        assert_eq!(t.a, FormatSpec::Named("nginx".into()));
        assert!(matches!(
            Format::from_spec(&t.b).unwrap(),
            Format::Custom(_)
        ));
    }

    #[test]
    fn host_sources_and_owned_records() {
        assert!(Format::Nginx.host_from_shard_path() && Format::Apache.host_from_shard_path());
        assert!(
            !Format::Upyun.host_from_shard_path() && !Format::CloudFront.host_from_shard_path()
        );
        let custom = |re: &str| {
            Format::from_spec(&FormatSpec::Custom(CustomFormatSpec {
                regex: re.into(),
                time_layout: "epoch_s".into(),
            }))
            .unwrap()
        };
        assert!(custom(r"^(?P<time>\d+)").host_from_shard_path());
        assert!(!custom(r"^(?P<time>\d+) (?P<host>\S+)").host_from_shard_path());
        let line = nginx::INFO.sample.to_string();
        let owned = {
            let r = Format::Nginx
                .parse(line.as_bytes(), &testing::ctx())
                .unwrap()
                .unwrap();
            r.into_owned()
        };
        drop(line);
        assert_eq!(owned.uri, "/a.jpg?w=200");
    }

    #[test]
    fn reject_reasons_display() {
        assert_eq!(RejectReason::NoHost.to_string(), "no host");
        assert_eq!(
            RejectReason::Invalid("status").to_string(),
            "invalid status"
        );
        assert_eq!(RejectReason::Missing("status").kind(), "missing_field");
    }
}
