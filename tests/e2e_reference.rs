//! End to end against an independent reference: `filex gen` writes a corpus with traps, late
//! and disordered lines from all nine vendors; `filex run` fuses it; this test computes the
//! expected output itself and compares it byte for byte.
//!
//! The reference shares no code with the engine: it finds shards with a regex built from each
//! source's path template, reads them with flate2, takes the event time and host of each line
//! with one simple regex per vendor (serde_json for Cloudflare), drops rejects and lines outside
//! the window, groups by (host, hour in UTC+8) and sorts in memory by (time in ms, source
//! order, shard path, line number). With the `raw` output format every output line is the
//! input line as it was, so the expected files are just those lines in that order.
//!
//! Also checked: the manifest's counters and partitions (against the reference and against
//! `_gen.json`, the generator's own ground truth), checksums, the rejects file, a re-run giving
//! the same bytes, a run with a tiny memory budget (forcing spills) giving the same bytes, and
//! a `json` run whose protocol and cache status are the canonical values of FORMATS.md, which
//! the reference finds in each vendor's line and maps with its own table.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use regex::bytes::Regex;
use sha2::{Digest, Sha256};

mod common;
use common::filex;

/// Platforms generated, in job (tie-break) order.
const PLATFORMS: &str = "upyun,aliyun,tencent,nginx,cloudfront,cloudflare,apache,huawei,qiniu";
/// Time zone of the output partitions, as the generated job file says.
const OUTPUT_OFFSET_S: i64 = 8 * 3600;

fn gunzip(bytes: &[u8], what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{what} does not decompress: {e}"));
    out
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Every file under `dir` (recursively), as paths relative to `dir` with `/` separators.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for entry in rd.flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Time, written out here rather than shared with the engine.

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch_s(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, offset_s: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s
}

fn num(b: &[u8]) -> i64 {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {:?}", String::from_utf8_lossy(b)))
}

/// `+08:00` / `+0800` / `-05:00` → seconds.
fn offset_secs(s: &str) -> i64 {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let n = num(digits.as_bytes());
    let secs = (n / 100) * 3600 + (n % 100) * 60;
    if s.starts_with('-') {
        -secs
    } else {
        secs
    }
}

/// `%Y%m%d%H` of an instant in the output zone.
fn hour_label(ms: i64) -> (String, String) {
    let s = ms.div_euclid(1000) + OUTPUT_OFFSET_S;
    let days = s.div_euclid(86_400);
    // Civil from days, by search from a nearby year (the corpus spans hours).
    let mut y = 1970 + days / 366;
    while days_from_civil(y + 1, 1, 1) <= days {
        y += 1;
    }
    let mut m = 1;
    while m < 12 && days_from_civil(y, m + 1, 1) <= days {
        m += 1;
    }
    let d = days - days_from_civil(y, m, 1) + 1;
    let h = s.rem_euclid(86_400) / 3600;
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{y:04}{m:02}{d:02}{h:02}"),
    )
}

// ---------------------------------------------------------------------------------------
// The reference parsers: event time (ms, UTC) and host of one line, or None for a reject.

struct Reference {
    upyun: Regex,
    aliyun: Regex,
    tencent: Regex,
    nginx: Regex,
    huawei: Regex,
    qiniu: Regex,
    cloudfront: Regex,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Reference {
    fn new() -> Reference {
        // CLF time: day (1 or 2 digits), month name, year, h, m, s, offset.
        let clf = r"\[(\d{1,2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\]";
        let q = r#""(?:[^"\\]|\\.)*""#; // a quoted field with backslash escapes
        let re = |s: String| Regex::new(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        Reference {
            upyun: re(format!(
                r#"^\S+ \S+ \S+ {clf} "[A-Z]+ https?://([^/\s"?]+)[^"\s]* [^"\s]+" \d{{3}} \d+ {q} {q} "#
            )),
            aliyun: re(format!(
                r#"^{clf} \S+ \S+ \d+ {q} "[A-Z]+ https?://([^/\s"?]+)[^"\s]*" \d{{3}} \d+ \d+ \S+ {q}"#
            )),
            tencent: re(r#"^(\d{14}) \S+ (\S+) /\S* \d+ \d+ \d+ \d{3} \S+ \d+ "#.to_string()),
            nginx: re(format!(r#"^\S+ \S+ \S+ {clf} "[^"]*" \d{{3}} (?:\d+|-) {q} {q}"#)),
            huawei: re(format!(
                r#"^{clf} \S+ \d+ {q} "[^"]*" "[A-Z]+" "([^"]+)" "[^"]*" \d{{3}} \d+ \S+ {q}"#
            )),
            qiniu: re(format!(
                r#"^\S+ \S+ \d+ {clf} "[A-Z]+ https?://([^/\s"?]+)[^"\s]* [^"\s]+" \d{{3}} \d+ {q} {q}"#
            )),
            // date, time, 13 fields, then x-host-header (field 16); 33 fields at least.
            cloudfront: re(
                r"^(\d{4})-(\d{2})-(\d{2})\t(\d{2}):(\d{2}):(\d{2})\t(?:[^\t]*\t){13}([^\t]+)(?:\t[^\t]*){17,}$"
                    .to_string(),
            ),
        }
    }

    /// Time from CLF captures starting at group `g`.
    fn clf_ms(c: &regex::bytes::Captures<'_>, g: usize) -> i64 {
        let mon = MONTHS
            .iter()
            .position(|m| m.as_bytes() == &c[g + 1])
            .unwrap_or_else(|| panic!("month {:?}", String::from_utf8_lossy(&c[g + 1])))
            as i64;
        let off = offset_secs(&String::from_utf8_lossy(&c[g + 6]));
        epoch_s(
            num(&c[g + 2]),
            mon + 1,
            num(&c[g]),
            num(&c[g + 3]),
            num(&c[g + 4]),
            num(&c[g + 5]),
            off,
        ) * 1000
    }

    /// (event time ms, host) of a log line, or None when the line must be rejected.
    fn parse(&self, format: &str, line: &[u8], path_domain: Option<&str>) -> Option<(i64, String)> {
        match format {
            "upyun" | "qiniu" => {
                let re = if format == "upyun" {
                    &self.upyun
                } else {
                    &self.qiniu
                };
                let c = re.captures(line)?;
                Some((Self::clf_ms(&c, 1), host(&c[8])))
            }
            "aliyun" => {
                let c = self.aliyun.captures(line)?;
                Some((Self::clf_ms(&c, 1), host(&c[8])))
            }
            "huawei" => {
                let c = self.huawei.captures(line)?;
                Some((Self::clf_ms(&c, 1), host(&c[8])))
            }
            "nginx" | "apache" => {
                let c = self.nginx.captures(line)?;
                Some((Self::clf_ms(&c, 1), path_domain?.to_string()))
            }
            "tencent" => {
                let c = self.tencent.captures(line)?;
                let t = &c[1];
                let s = epoch_s(
                    num(&t[0..4]),
                    num(&t[4..6]),
                    num(&t[6..8]),
                    num(&t[8..10]),
                    num(&t[10..12]),
                    num(&t[12..14]),
                    8 * 3600,
                );
                Some((s * 1000, host(&c[2])))
            }
            "cloudfront" => {
                let c = self.cloudfront.captures(line)?;
                let s = epoch_s(
                    num(&c[1]),
                    num(&c[2]),
                    num(&c[3]),
                    num(&c[4]),
                    num(&c[5]),
                    num(&c[6]),
                    0,
                );
                Some((s * 1000, host(&c[7])))
            }
            "cloudflare" => {
                let v: serde_json::Value = serde_json::from_slice(line).ok()?;
                let h = v.get("ClientRequestHost")?.as_str()?;
                let ts = v.get("EdgeStartTimestamp")?;
                let ms = if let Some(n) = ts.as_i64() {
                    if n > 100_000_000_000_000 {
                        n.div_euclid(1_000_000) // nanoseconds
                    } else {
                        n * 1000 // seconds
                    }
                } else {
                    let t: jiff::Timestamp = ts.as_str()?.parse().ok()?;
                    t.as_millisecond()
                };
                Some((ms, host(h.as_bytes())))
            }
            other => panic!("the reference does not know format {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Canonical values: the protocol and cache status each vendor writes, and their one spelling.

/// Finds the protocol and cache status in a line the reference accepted: one regex per
/// vendor that logs them in fixed columns (tab and JSON formats are split instead).
struct RawValues {
    upyun: Regex,
    aliyun: Regex,
    qiniu: Regex,
    huawei: Regex,
    request: Regex,
}

impl RawValues {
    fn new() -> RawValues {
        let q = r#""(?:[^"\\]|\\.)*""#;
        let re = |s: String| Regex::new(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        RawValues {
            upyun: re(format!(
                r#"^\S+ \S+ \S+ \[[^\]]+\] "([^"]*)" \d{{3}} \d+ {q} {q} (?:{q}|\S+) \d+ (\S+) "#
            )),
            aliyun: re(format!(
                r#"^\[[^\]]+\] \S+ \S+ \d+ {q} "[^"]*" \d{{3}} \d+ \d+ (\S+) {q} {q}(?: (HTTP/[0-9.]+|h2|h3)\b)?"#
            )),
            qiniu: re(r#"^\S+ (\S+) \d+ \[[^\]]+\] "([^"]*)""#.to_string()),
            huawei: re(format!(
                r#"^\[[^\]]+\] \S+ \d+ {q} "([^"]*)" "[A-Z]+" "[^"]+" "[^"]*" \d{{3}} \d+ (\S+) "#
            )),
            request: re(format!(r#"^\S+ \S+ \S+ \[[^\]]+\] ({q})"#)),
        }
    }

    /// (protocol, cache status) as written; `""` when the vendor does not log them.
    fn of(&self, format: &str, line: &[u8]) -> (String, String) {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        // The last word of a request line, if it names a protocol.
        let proto_of_request = |r: &[u8]| {
            let last = r.rsplit(|&b| b == b' ').next().unwrap_or_default();
            if last.starts_with(b"HTTP/") {
                s(last)
            } else {
                String::new()
            }
        };
        let caps = |re: &Regex| {
            re.captures(line)
                .unwrap_or_else(|| panic!("{format}: no values in {:?}", s(line)))
        };
        match format {
            "upyun" => {
                let c = caps(&self.upyun);
                (proto_of_request(&c[1]), s(&c[2]))
            }
            "aliyun" => {
                let c = caps(&self.aliyun);
                (
                    c.get(2).map_or(String::new(), |m| s(m.as_bytes())),
                    s(&c[1]),
                )
            }
            "qiniu" => {
                let c = caps(&self.qiniu);
                (proto_of_request(&c[2]), s(&c[1]))
            }
            "huawei" => {
                let c = caps(&self.huawei);
                (s(&c[1]), s(&c[2]))
            }
            "nginx" | "apache" => {
                let c = caps(&self.request);
                let r = &c[1];
                (proto_of_request(&r[1..r.len() - 1]), String::new())
            }
            "tencent" => {
                // After the quoted user agent: range method protocol cache port.
                let at = line.iter().rposition(|&b| b == b'"').unwrap_or(0);
                let words: Vec<&[u8]> = line[at + 1..]
                    .split(|&b| b == b' ')
                    .filter(|w| !w.is_empty())
                    .collect();
                (s(words[2]), s(words[3]))
            }
            "cloudfront" => {
                let f: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
                (s(f[23]), s(f[13]))
            }
            "cloudflare" => {
                let v: serde_json::Value =
                    serde_json::from_slice(line).unwrap_or_else(|e| panic!("{e}"));
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                (field("ClientRequestProtocol"), field("CacheCacheStatus"))
            }
            other => panic!("the reference does not know format {other}"),
        }
    }
}

/// The one spelling of a protocol (FORMATS.md, "Canonical values").
fn canonical_protocol(p: &str) -> &'static str {
    match p {
        "" | "-" => "",
        "HTTP/1.0" => "HTTP/1.0",
        "HTTP/1.1" => "HTTP/1.1",
        "HTTP/2" | "HTTP/2.0" | "h2" => "HTTP/2",
        "HTTP/3" | "HTTP/3.0" | "h3" => "HTTP/3",
        other => panic!("protocol {other:?} unknown to the reference"),
    }
}

/// The one spelling of a cache status (FORMATS.md, "Canonical values").
fn canonical_cache(c: &str) -> &'static str {
    match c.to_ascii_lowercase().as_str() {
        "" | "-" => "",
        "hit" => "HIT",
        "miss" => "MISS",
        "expired" => "EXPIRED",
        "refreshhit" => "REFRESH_HIT",
        "dynamic" => "DYNAMIC",
        "error" => "ERROR",
        other => panic!("cache status {other:?} unknown to the reference"),
    }
}

fn host(b: &[u8]) -> String {
    let h = String::from_utf8_lossy(b).to_ascii_lowercase();
    match h.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => h,
    }
}

// ---------------------------------------------------------------------------------------
// The reference pipeline.

/// One source of the job file.
struct Source {
    name: String,
    format: String,
    /// Matches a shard's path relative to the job directory; captures listed in `fields`.
    path: Regex,
    /// What each capture group of `path` is: a strftime letter or `D` for `{domain}`.
    fields: Vec<char>,
    offset_s: i64,
}

impl Source {
    fn from_toml(v: &toml::Value) -> Source {
        let s = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_else(|| panic!("source without {k}: {v}"))
                .to_string()
        };
        let template = s("shards");
        let mut pat = String::from("^");
        let mut fields = Vec::new();
        let mut rest = template.as_str();
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("{domain}") {
                pat.push_str("([^/]+)");
                fields.push('D');
                rest = r;
            } else if c == '%' {
                let f = rest[1..].chars().next().unwrap_or('%');
                pat.push_str(if f == 'Y' { r"(\d{4})" } else { r"(\d{2})" });
                fields.push(f);
                rest = &rest[1 + f.len_utf8()..];
            } else if c == '*' {
                pat.push_str("[^/]*");
                rest = &rest[1..];
            } else {
                pat.push_str(&regex::escape(&c.to_string()));
                rest = &rest[c.len_utf8()..];
            }
        }
        pat.push('$');
        Source {
            name: s("name"),
            format: s("format"),
            path: Regex::new(&pat).unwrap_or_else(|e| panic!("{pat}: {e}")),
            fields,
            offset_s: offset_secs(&s("timezone")),
        }
    }

    /// (slot start ms, domain) of a shard path, if the path matches the template.
    fn slot_of(&self, rel: &str) -> Option<(i64, Option<String>)> {
        let c = self.path.captures(rel.as_bytes())?;
        let mut ymdhm = [1970, 1, 1, 0, 0];
        let mut domain = None;
        for (i, f) in self.fields.iter().enumerate() {
            let g = &c[i + 1];
            match f {
                'D' => domain = Some(String::from_utf8_lossy(g).into_owned()),
                'Y' => ymdhm[0] = num(g),
                'm' => ymdhm[1] = num(g),
                'd' => ymdhm[2] = num(g),
                'H' => ymdhm[3] = num(g),
                'M' => ymdhm[4] = num(g),
                other => panic!("template field %{other} unknown to the reference"),
            }
        }
        let [y, mo, d, h, mi] = ymdhm;
        Some((epoch_s(y, mo, d, h, mi, 0, self.offset_s) * 1000, domain))
    }
}

/// A line that goes to the output.
struct Kept {
    time_ms: i64,
    source: usize,
    shard: String,
    line_no: u64,
    raw: Vec<u8>,
    /// Canonical (protocol, cache status).
    values: (&'static str, &'static str),
}

/// What the reference expects of a run.
#[derive(Default)]
struct Expected {
    /// Output path (relative to the output root) → the file's uncompressed bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// Output path → canonical (protocol, cache status) of each line, in output order.
    values: BTreeMap<String, Vec<(&'static str, &'static str)>>,
    lines_in: u64,
    rejected: u64,
    out_of_window: u64,
    /// Per source: (lines_in, rejected, out_of_window).
    per_source: BTreeMap<String, (u64, u64, u64)>,
    /// (source, raw line) of every reject.
    rejects: Vec<(String, Vec<u8>)>,
    shards: usize,
}

fn parse_duration_ms(s: &str) -> i64 {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n = num(n.as_bytes());
    match unit {
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "" => n * 1000,
        other => panic!("duration unit {other}"),
    }
}

fn reference(job_dir: &Path) -> Expected {
    let text =
        fs::read_to_string(job_dir.join("job.toml")).unwrap_or_else(|e| panic!("job.toml: {e}"));
    let job: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("job.toml: {e}"));
    let window = |k: &str| -> i64 {
        let s = job["window"][k]
            .as_str()
            .unwrap_or_else(|| panic!("window.{k}"));
        let t: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("window.{k} {s}: {e}"));
        t.as_millisecond()
    };
    let (start, end) = (window("start"), window("end"));
    let slack = parse_duration_ms(job["window"]["slack"].as_str().unwrap_or("0s"));
    let out_path = job["output"]["path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        out_path, "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz",
        "the reference renders only this template"
    );
    assert_eq!(job["output"]["format"].as_str(), Some("raw"));
    let sources: Vec<Source> = job["source"]
        .as_array()
        .unwrap_or_else(|| panic!("no [[source]]"))
        .iter()
        .map(Source::from_toml)
        .collect();

    let parsers = Reference::new();
    let raw_values = RawValues::new();
    let all_files = files_under(job_dir);
    let mut kept: BTreeMap<String, Vec<Kept>> = BTreeMap::new();
    let mut exp = Expected::default();
    for (si, src) in sources.iter().enumerate() {
        let counts = exp.per_source.entry(src.name.clone()).or_default();
        // Bytewise path order, the same as the engine's tie-break under a common prefix.
        for rel in &all_files {
            let Some((slot_ms, domain)) = src.slot_of(rel) else {
                continue;
            };
            if slot_ms < start - slack || slot_ms >= end + slack {
                continue;
            }
            exp.shards += 1;
            let bytes = fs::read(job_dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let text = gunzip(&bytes, rel);
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(|b| b.is_ascii_whitespace())
                    || (src.format == "cloudfront" && line.starts_with(b"#"))
                {
                    continue;
                }
                counts.0 += 1;
                match parsers.parse(&src.format, line, domain.as_deref()) {
                    None => {
                        counts.1 += 1;
                        exp.rejects.push((src.name.clone(), line.to_vec()));
                    }
                    Some((t, _)) if t < start || t >= end => counts.2 += 1,
                    Some((t, h)) => {
                        let (p, c) = raw_values.of(&src.format, line);
                        let values = (canonical_protocol(&p), canonical_cache(&c));
                        let (day, hour) = hour_label(t);
                        let path = format!("{h}/{day}/{h}_{hour}.log.gz");
                        kept.entry(path).or_default().push(Kept {
                            time_ms: t,
                            source: si,
                            shard: rel.clone(),
                            line_no: i as u64,
                            raw: line.to_vec(),
                            values,
                        });
                    }
                }
            }
        }
        exp.lines_in += counts.0;
        exp.rejected += counts.1;
        exp.out_of_window += counts.2;
    }
    for (path, mut lines) in kept {
        lines.sort_by(|a, b| {
            (a.time_ms, a.source, a.shard.as_bytes(), a.line_no).cmp(&(
                b.time_ms,
                b.source,
                b.shard.as_bytes(),
                b.line_no,
            ))
        });
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(&l.raw);
            body.push(b'\n');
        }
        exp.values
            .insert(path.clone(), lines.iter().map(|l| l.values).collect());
        exp.files.insert(path, body);
    }
    exp
}

// ---------------------------------------------------------------------------------------
// Comparison helpers that say precisely what differs.

/// The first difference between two files, line by line.
fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let e: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    let a: Vec<&[u8]> = actual.split(|&b| b == b'\n').collect();
    let show = |l: Option<&&[u8]>| match l {
        Some(l) => {
            let s = String::from_utf8_lossy(l);
            s.chars().take(240).collect::<String>()
        }
        None => "<end of file>".to_string(),
    };
    for i in 0..e.len().max(a.len()) {
        if e.get(i) != a.get(i) {
            let found_at = e.get(i).and_then(|el| a.iter().position(|al| al == el));
            return format!(
                "{} lines expected, {} found; first difference at line {}:\n  expected: {}\n  found:    {}\n  (the expected line is at line {} of the output)",
                e.len() - 1,
                a.len() - 1,
                i + 1,
                show(e.get(i)),
                show(a.get(i)),
                found_at.map_or("nowhere".to_string(), |p| (p + 1).to_string()),
            );
        }
    }
    "identical".to_string()
}

/// The output files of a run (uncompressed), excluding `_`-prefixed bookkeeping.
fn outputs(root: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(root)
        .into_iter()
        .filter(|rel| !rel.split('/').any(|part| part.starts_with('_')))
        .map(|rel| {
            let bytes = fs::read(root.join(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel.clone(), bytes)
        })
        .collect()
}

/// Runs the job and returns the parsed manifest.
fn run(job: &Path, extra: &[&str]) -> serde_json::Value {
    let job_s = job.to_string_lossy().into_owned();
    let mut args = vec!["run", job_s.as_str(), "--no-progress"];
    args.extend_from_slice(extra);
    let out = filex(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let url = last
        .strip_prefix("manifest: ")
        .unwrap_or_else(|| panic!("last stdout line is not 'manifest: <url>':\n{stdout}"));
    let path = url
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("manifest url is not file://: {url}"));
    json(Path::new(path))
}

fn generate(dir: &Path, seed: u64) -> serde_json::Value {
    let dir_s = dir.to_string_lossy().into_owned();
    let seed_s = seed.to_string();
    filex(&[
        "gen",
        "--out",
        &dir_s,
        "--seed",
        &seed_s,
        "--traps",
        "--late",
        "0.05",
        "--disorder",
        "0.1",
        "--output-format",
        "raw",
        "--platforms",
        PLATFORMS,
        "--rate",
        "0.2",
        "--hours",
        "2",
    ]);
    json(&dir.join("_gen.json"))
}

#[test]
fn fused_output_matches_the_reference_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    let truth = generate(dir, 20261105);
    let job = dir.join("job.toml");
    let exp = reference(dir);

    // The reference and the generator's ground truth agree (else the reference is wrong).
    let tot = &truth["totals"];
    assert_eq!(
        exp.lines_in,
        u(&tot["lines_in"]),
        "reference vs _gen.json: lines_in"
    );
    assert_eq!(
        exp.rejected,
        u(&tot["rejected"]),
        "reference vs _gen.json: rejected"
    );
    assert_eq!(
        exp.out_of_window,
        u(&tot["out_of_window"]),
        "reference vs _gen.json: out_of_window"
    );
    assert_eq!(
        exp.shards as u64,
        u(&tot["shards"]),
        "reference vs _gen.json: shards"
    );
    assert!(
        exp.rejected > 0 && exp.out_of_window > 0,
        "the corpus has no traps or late lines"
    );

    let manifest = run(&job, &[]);
    let root = dir.join("output");
    let c = &manifest["counters"];
    let (lines_in, lines_out, rejected, oow) = (
        u(&c["lines_in"]),
        u(&c["lines_out"]),
        u(&c["rejected"]),
        u(&c["out_of_window"]),
    );
    assert_eq!(
        lines_in,
        lines_out + rejected + oow,
        "counters do not add up: {c}"
    );
    let expected_out: u64 = exp
        .files
        .values()
        .map(|b| b.iter().filter(|&&x| x == b'\n').count() as u64)
        .sum();
    assert_eq!(
        (lines_in, lines_out, rejected, oow),
        (exp.lines_in, expected_out, exp.rejected, exp.out_of_window),
        "manifest counters (in, out, rejected, out_of_window) vs reference"
    );
    assert_eq!(
        lines_out,
        u(&tot["lines_out"]),
        "manifest lines_out vs _gen.json"
    );

    // Per source, against the generator's per-platform truth.
    let sources = manifest["sources"].as_array().cloned().unwrap_or_default();
    for p in truth["platforms"].as_array().cloned().unwrap_or_default() {
        let name = p["name"].as_str().unwrap_or_default();
        let s = sources
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("manifest has no source {name}"));
        let sc = &s["counters"];
        assert_eq!(
            (
                u(&sc["lines_in"]),
                u(&sc["rejected"]),
                u(&sc["out_of_window"])
            ),
            (u(&p["lines"]), u(&p["rejected"]), u(&p["out_of_window"])),
            "source {name}: (lines_in, rejected, out_of_window), manifest vs _gen.json"
        );
        assert_eq!(
            exp.per_source[name],
            (u(&p["lines"]), u(&p["rejected"]), u(&p["out_of_window"]))
        );
        assert_eq!(
            u(&s["shards"]),
            u(&p["shards"]),
            "source {name}: shards read"
        );
    }

    // Output files: exactly the reference's, byte for byte, and as the manifest says.
    let got = outputs(&root);
    let got_names: BTreeSet<&String> = got.keys().collect();
    let exp_names: BTreeSet<&String> = exp.files.keys().collect();
    assert_eq!(got_names, exp_names, "output file names");
    let parts = manifest["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(parts.len(), exp.files.len(), "manifest partitions");
    for (path, want) in &exp.files {
        let gz = &got[path];
        let have = gunzip(gz, path);
        assert!(have == *want, "{path}: {}", first_difference(want, &have));
        let entry = parts
            .iter()
            .find(|p| p["path"] == path.as_str())
            .unwrap_or_else(|| panic!("manifest does not list {path}"));
        let lines = want.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(u(&entry["lines"]), lines, "{path}: manifest lines");
        assert_eq!(
            u(&entry["bytes"]),
            gz.len() as u64,
            "{path}: manifest bytes"
        );
        assert_eq!(
            entry["sha256"].as_str(),
            Some(hex::encode(Sha256::digest(gz)).as_str()),
            "{path}: sha256"
        );
    }
    for p in truth["partitions"].as_array().cloned().unwrap_or_default() {
        let path = p["path"].as_str().unwrap_or_default();
        let lines = exp
            .files
            .get(path)
            .map_or(0, |b| b.iter().filter(|&&x| x == b'\n').count() as u64);
        assert_eq!(
            lines,
            u(&p["lines"]),
            "{path}: lines, reference vs _gen.json"
        );
    }

    // Rejects: one file under the output root whose name starts with `_`, one line per reject
    // (`source \t shard \t line \t reason \t raw`), holding exactly the reference's rejects.
    let reject_files: Vec<String> = files_under(&root)
        .into_iter()
        .filter(|rel| rel.starts_with('_') && rel.contains("reject"))
        .collect();
    assert_eq!(reject_files.len(), 1, "rejects files: {reject_files:?}");
    let rbytes = fs::read(root.join(&reject_files[0])).unwrap_or_default();
    let rtext = if reject_files[0].ends_with(".gz") {
        gunzip(&rbytes, &reject_files[0])
    } else {
        rbytes
    };
    let mut got_rejects: Vec<(String, Vec<u8>)> = rtext
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&[u8]> = l.splitn(5, |&b| b == b'\t').collect();
            assert_eq!(f.len(), 5, "rejects line {:?}", String::from_utf8_lossy(l));
            (String::from_utf8_lossy(f[0]).into_owned(), f[4].to_vec())
        })
        .collect();
    let mut want_rejects = exp.rejects.clone();
    got_rejects.sort();
    want_rejects.sort();
    assert_eq!(
        got_rejects.len(),
        want_rejects.len(),
        "rejected lines in the rejects file"
    );
    assert!(
        got_rejects == want_rejects,
        "the rejects file does not hold the reference's rejects"
    );

    // A re-run of the same window replaces the output with the same bytes.
    let first = outputs(&root);
    let again = run(&job, &[]);
    assert_eq!(again["counters"], manifest["counters"]);
    let second = outputs(&root);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        assert!(second[k] == *v, "{k}: a re-run wrote different bytes");
    }

    // A 1 MB memory budget forces spills and merges: same bytes.
    let spill_root = dir.join("output-spill");
    let spill_set = format!("output.root={}", spill_root.display());
    let spilled = run(
        &job,
        &["--memory", "1M", "--threads", "2", "--set", &spill_set],
    );
    assert_eq!(spilled["counters"], manifest["counters"]);
    let third = outputs(&spill_root);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        third.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        let (a, b) = (gunzip(v, k), gunzip(&third[k], k));
        assert!(
            a == b,
            "{k}: --memory 1M wrote different lines: {}",
            first_difference(&a, &b)
        );
        assert!(
            third[k] == *v,
            "{k}: --memory 1M wrote the same lines but different gzip bytes"
        );
    }

    // The same lines as json: protocol and cache status in their one spelling per vendor.
    let json_root = dir.join("output-json");
    let json_set = format!("output.root={}", json_root.display());
    let as_json = run(&job, &["--set", "output.format=json", "--set", &json_set]);
    assert_eq!(as_json["counters"], manifest["counters"]);
    let got = outputs(&json_root);
    let mut seen = BTreeSet::new();
    for (path, want) in &exp.values {
        let text = gunzip(&got[path], path);
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), want.len(), "{path}: json lines");
        for (i, (line, &(protocol, cache))) in lines.iter().zip(want).enumerate() {
            let v: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("{path}:{}: not json: {e}", i + 1));
            assert_eq!(
                (v["protocol"].as_str(), v["cache"].as_str()),
                (Some(protocol), Some(cache)),
                "{path}:{}: {}",
                i + 1,
                String::from_utf8_lossy(line)
            );
            seen.insert((
                v["source"].as_str().unwrap_or_default().to_string(),
                protocol,
                cache,
            ));
        }
    }
    // Every vendor spelling of HTTP/2 and of a hit was met (else the check proves little).
    for source in [
        "upyun",
        "tencent",
        "cloudfront",
        "cloudflare",
        "huawei",
        "qiniu",
    ] {
        assert!(
            seen.iter().any(|(s, p, _)| s == source && *p == "HTTP/2"),
            "{source}: no HTTP/2 line"
        );
        assert!(
            seen.iter().any(|(s, _, c)| s == source && *c == "HIT"),
            "{source}: no HIT line"
        );
    }
}

#[test]
fn the_reference_itself_rejects_trap_lines_and_reads_vendor_examples() {
    let r = Reference::new();
    // docs/FORMATS.md examples (times 2021-03-05T10:15:32Z).
    let t = 1_614_939_332_000;
    let cases: [(&str, &str); 6] = [
        (
            "upyun",
            r#"203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] "GET https://img.example.com/a.jpg?w=200 HTTP/2.0" 200 48213 "https://www.example.com/" "Mozilla/5.0 (iPhone)" "image/jpeg" 0 Hit "C/200" Static "max-age=86400" 0.012 198.51.100.23"#,
        ),
        (
            "aliyun",
            r#"[5/Mar/2021:18:15:32 +0800] 203.0.113.7 - 12 "https://www.example.com/" "GET https://img.example.com/a.jpg?w=200" 200 512 48731 HIT "Mozilla/5.0 (Windows NT 10.0)" "image/jpeg""#,
        ),
        (
            "tencent",
            r#"20210305181532 203.0.113.7 img.example.com /a.jpg 48952 1442 2 200 https://www.example.com/ 12 "Mozilla/5.0 (Windows NT 10.0)" - GET HTTP/2.0 hit 52311"#,
        ),
        (
            "nginx",
            r#"203.0.113.7 - - [05/Mar/2021:18:15:32 +0800] "GET /a.jpg?w=200 HTTP/1.1" 200 48731 "https://www.example.com/" "Mozilla/5.0 (Windows NT 10.0)""#,
        ),
        (
            "cloudflare",
            r#"{"EdgeStartTimestamp":1614939332000000000,"ClientIP":"2001:db8::7","ClientRequestHost":"img.example.com","ClientRequestMethod":"GET","ClientRequestURI":"/a.jpg?w=200","EdgeResponseStatus":200,"EdgeResponseBytes":49120}"#,
        ),
        (
            "qiniu",
            r#"203.0.113.7 HIT 12 [05/Mar/2021:18:15:32 +0800] "GET https://img.example.com/a.jpg?w=200 HTTP/2.0" 200 48731 "-" "Mozilla/5.0 (X11)""#,
        ),
    ];
    for (format, line) in cases {
        assert_eq!(
            r.parse(format, line.as_bytes(), Some("img.example.com")),
            Some((t, "img.example.com".to_string())),
            "{format}"
        );
        // Cut inside the time field: a reject.
        let cut = line.find("2021").or_else(|| line.find("1614")).unwrap_or(1) + 3;
        assert_eq!(
            r.parse(format, &line.as_bytes()[..cut], Some("img.example.com")),
            None,
            "{format} cut"
        );
    }
    assert_eq!(r.parse("upyun", b"\x00\xff garbage", None), None);
    assert_eq!(
        hour_label(t),
        ("20210305".to_string(), "2021030518".to_string())
    );
}
