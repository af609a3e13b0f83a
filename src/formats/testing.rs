//! The contract every format passes (built-in or custom), and small test helpers.
//!
//! [`check_contract`] takes a format and one good line and checks: extra trailing fields are
//! accepted with the same record; a trailing or stray `\r` does not change the record; blank
//! lines are skipped (`Ok(None)`); every cut of the line, binary garbage and 1 MB lines give a
//! result without panicking; and the record renders to all three outputs, the json one
//! reading back with serde_json.

use super::{Format, OutputFormat, ParseContext, Record, RejectReason, Renderer};

/// The context tests use: the shard path names `img.example.com`, the source zone is UTC.
pub(crate) fn ctx() -> ParseContext<'static> {
    ParseContext {
        domain: Some("img.example.com"),
        tz_offset_secs: 0,
    }
}

/// Milliseconds since the epoch of an RFC 3339 string (through jiff, independently of ours).
pub(crate) fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .expect("test timestamp")
        .as_millisecond()
}

pub(crate) fn parse_ok_with(
    f: &Format,
    line: &'static str,
    ctx: &ParseContext<'_>,
) -> Record<'static> {
    match f.parse(line.as_bytes(), ctx) {
        Ok(Some(r)) => r,
        other => panic!("{} did not parse {line:?}: {other:?}", f.name()),
    }
}

pub(crate) fn parse_ok(f: &Format, line: &'static str) -> Record<'static> {
    parse_ok_with(f, line, &ctx())
}

pub(crate) fn parse_err(f: &Format, line: &str) -> RejectReason {
    match f.parse(line.as_bytes(), &ctx()) {
        Err(e) => e,
        other => panic!("{} accepted {line:?}: {other:?}", f.name()),
    }
}

/// `line` with extra trailing fields, in the format's own syntax.
fn with_extra_fields(f: &Format, line: &[u8]) -> Vec<u8> {
    match f {
        Format::Cloudflare => {
            let close = line.iter().rposition(|&c| c == b'}').expect("json sample");
            [&line[..close], br#","NewField":"x y","More":{"a":[1,2]}}"#].concat()
        }
        Format::CloudFront => [line, b"\textra\tfields with space"].concat(),
        _ => [line, br#" extra "trailing \"fields\"" 123 -"#].concat(),
    }
}

/// A tiny deterministic generator for garbage bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u8
    }
}

/// Runs the shared contract on one good sample line of `f`.
pub(crate) fn check_contract(f: &Format, sample: &[u8]) {
    let ctx = ctx();
    let name = f.name();
    let want = match f.parse(sample, &ctx) {
        Ok(Some(r)) => r,
        other => panic!("{name}: sample does not parse: {other:?}"),
    };
    assert!(!want.host.is_empty(), "{name}: accepted line without host");

    // Extra trailing fields.
    let extra = with_extra_fields(f, sample);
    assert_eq!(
        f.parse(&extra, &ctx),
        Ok(Some(want.clone())),
        "{name}: extra trailing fields"
    );

    // CRLF left over, a stray CR, surrounding blanks.
    for variant in [
        [sample, b"\r"].concat(),
        [sample, b"\r\n"].concat(),
        [sample, b" \r"].concat(),
        [b"  ", sample].concat(),
    ] {
        assert_eq!(
            f.parse(&variant, &ctx),
            Ok(Some(want.clone())),
            "{name}: {:?}",
            String::from_utf8_lossy(&variant)
        );
    }

    // Blank lines are skipped, not counted.
    for blank in [&b""[..], b"\r", b"   ", b"\t \r\n"] {
        assert_eq!(f.parse(blank, &ctx), Ok(None), "{name}: blank {blank:?}");
    }

    // Every cut of the line: no panic; the empty cut is blank; most cuts are rejects.
    for cut in 0..sample.len() {
        let _ = f.parse(&sample[..cut], &ctx);
    }
    let half = &sample[..sample.len() / 2];
    assert!(
        f.parse(half, &ctx).is_err() || matches!(f, Format::Custom(_)),
        "{name}: half a line accepted"
    );

    // Binary garbage, and garbage spliced into the sample.
    let mut rng = Lcg(0x5eed ^ name.len() as u64);
    for len in [1usize, 7, 64, 300, 4096] {
        for _ in 0..20 {
            let garbage: Vec<u8> = (0..len).map(|_| rng.next()).collect();
            let _ = f.parse(&garbage, &ctx);
            let at = rng.next() as usize % sample.len();
            let spliced = [&sample[..at], &garbage[..], &sample[at..]].concat();
            if let Ok(Some(r)) = f.parse(&spliced, &ctx) {
                render_all(&r, &spliced);
            }
        }
    }
    assert!(
        f.parse(b"\x00\x01\x02\xff\xfe garbage \x1b[0m", &ctx)
            .is_err(),
        "{name}: garbage accepted"
    );

    // 1 MB lines: one long value (accepted as an extra field), and 1 MB of nothing useful.
    let mut long = with_extra_fields(f, sample);
    long.extend(std::iter::repeat_n(b'a', 1 << 20));
    let _ = f.parse(&long, &ctx);
    let big_tail = [sample, b" ", &vec![b'x'; 1 << 20][..]].concat();
    let _ = f.parse(&big_tail, &ctx);
    assert!(
        f.parse(&vec![b'A'; 1 << 20], &ctx).is_err(),
        "{name}: 1 MB of 'A' accepted"
    );
    assert!(
        f.parse(&vec![b'"'; 1 << 20], &ctx).is_err(),
        "{name}: 1 MB of quotes accepted"
    );

    render_all(&want, sample);
}

/// Renders `rec` in every output format and checks the basic shape; json reads back.
pub(crate) fn render_all(rec: &Record<'_>, raw: &[u8]) {
    for format in [
        OutputFormat::Json,
        OutputFormat::Combined,
        OutputFormat::Raw,
    ] {
        let mut out = Vec::new();
        Renderer::new(format, 8 * 3600).render(rec, "src", raw, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(
            out.iter().filter(|&&c| c == b'\n').count(),
            1 + raw.iter().filter(|&&c| c == b'\n').count()
                * usize::from(format == OutputFormat::Raw)
        );
        if format == OutputFormat::Json {
            let v: serde_json::Value = serde_json::from_slice(&out).expect("json output parses");
            assert_eq!(v["host"].as_str(), Some(&*rec.host));
            assert_eq!(v["user_agent"].as_str(), Some(&*rec.user_agent));
            assert_eq!(v["uri"].as_str(), Some(&*rec.uri));
            assert_eq!(v["status"].as_u64(), rec.status.map(u64::from));
        }
    }
}

/// Measured 2026-11-25 on the 2-core build machine (shared, so CPU time), M lines/s for
/// parse / parse + json render: nginx 5.7 / 2.8, apache 5.8 / 2.8, upyun 2.9 / 2.0, aliyun
/// 3.5 / 2.2, tencent 4.0 / 2.4, huawei 3.8 / 2.2, qiniu 4.0 / 2.3, cloudfront 2.5 / 1.6
/// (URL-decoding allocates), cloudflare 3.4 / 2.4; i.e. 640–900 MB/s of input for parsing.
///
/// Lines/s of parse, and of parse + json render, per built-in format, on varied copies of
/// each sample (distinct IPs, seconds and URLs, so caches see realistic churn), in thread CPU
/// time. Release only:
/// `cargo test --release --lib formats::testing::measure_parse_speed -- --ignored --nocapture`.
#[test]
#[ignore = "micro-measure; run in release with --ignored --nocapture"]
fn measure_parse_speed() {
    use std::hint::black_box;

    /// CPU time of this thread (ns), from /proc: the build machine is shared, so wall time
    /// would measure the neighbours.
    struct Instant(u64);
    fn cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
    impl Instant {
        fn now() -> Self {
            Instant(cpu_ns())
        }
        fn elapsed(&self) -> std::time::Duration {
            std::time::Duration::from_nanos(cpu_ns() - self.0)
        }
    }

    const LINES: usize = 200_000;
    const ROUNDS: usize = 5;
    let ctx = ParseContext {
        domain: Some("img.example.com"),
        tz_offset_secs: 8 * 3600,
    };
    let renderer = Renderer::new(OutputFormat::Json, 8 * 3600);
    // FILEX_MEASURE=upyun,nginx measures only those formats.
    let only = std::env::var("FILEX_MEASURE").unwrap_or_default();
    for info in super::builtin_formats() {
        if !only.is_empty() && !only.split(',').any(|n| n == info.name) {
            continue;
        }
        let f = Format::from_spec(&super::FormatSpec::Named(info.name.into())).unwrap();
        let lines: Vec<Vec<u8>> = (0..LINES)
            .map(|i| {
                let s = info
                    .sample
                    .replacen("203.0.113.7", &format!("203.0.{}.{}", i % 251, i % 13), 1)
                    .replacen("a.jpg", &format!("p/{i}.jpg"), 1)
                    .replacen(":32 ", &format!(":{:02} ", i % 60), 1);
                s.into_bytes()
            })
            .collect();
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        let mut best_parse = f64::MAX;
        let mut best_render = f64::MAX;
        let mut out = Vec::with_capacity(1 << 20);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for l in &lines {
                black_box(f.parse(black_box(l), &ctx).unwrap());
            }
            best_parse = best_parse.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            for l in &lines {
                let r = f.parse(l, &ctx).unwrap().unwrap();
                out.clear();
                renderer.render(&r, "src", l, &mut out);
                black_box(&out);
            }
            best_render = best_render.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{:<11} parse {:>6.2} M lines/s ({:>5.0} MB/s, {:>4.0} ns/line)   parse+json {:>6.2} M lines/s",
            info.name,
            LINES as f64 / best_parse / 1e6,
            bytes as f64 / best_parse / 1e6,
            best_parse / LINES as f64 * 1e9,
            LINES as f64 / best_render / 1e6,
        );
    }
}

/// The docs/FORMATS.md traps, applied to every built-in sample where the sample has the field
/// (textual substitutions on the sample, then the record is compared with the sample's).
#[test]
fn every_builtin_format_survives_the_traps() {
    let ctx8 = ParseContext {
        domain: Some("img.example.com"),
        tz_offset_secs: 8 * 3600,
    };
    for info in super::builtin_formats() {
        let f = Format::from_spec(&super::FormatSpec::Named(info.name.into())).unwrap();
        let name = info.name;
        let sample = info.sample;
        let base = f.parse(sample.as_bytes(), &ctx8).unwrap().unwrap();
        let with = |from: &str, to: &str| -> Option<Record<'static>> {
            if !sample.contains(from) {
                return None;
            }
            let line: &'static str = Box::leak(sample.replacen(from, to, 1).into_boxed_str());
            match f.parse(line.as_bytes(), &ctx8) {
                Ok(Some(r)) => Some(r),
                other => panic!("{name}: {line:?} gave {other:?}"),
            }
        };
        // IPv6 client (JSON/CloudFront samples already use one).
        if let Some(r) = with("203.0.113.7", "2001:db8::7") {
            assert_eq!(r.client_ip, "2001:db8::7", "{name}");
            assert_eq!(r.time_ms, base.time_ms, "{name}");
        }
        // 1-digit day.
        if let Some(r) = with("[05/Mar/2021", "[5/Mar/2021") {
            assert_eq!(r.time_ms, base.time_ms, "{name}");
        }
        // +0000 next to +0800: the same wall time is 8 hours later in UTC.
        if let Some(r) = with("+0800]", "+0000]") {
            assert_eq!(r.time_ms, base.time_ms + 8 * 3_600_000, "{name}");
        }
        // Escaped UTF-8, an escaped quote and a raw UTF-8 user agent.
        let ua = "\"Mozilla/5.0 (Windows NT 10.0)\"";
        if let Some(r) = with(ua, r#""\xE4\xB8\xAD \"q\" \\""#) {
            assert_eq!(r.user_agent, "中 \"q\" \\", "{name}");
            assert_eq!((r.status, &r.host), (base.status, &base.host), "{name}");
        }
        if let Some(r) = with(ua, "\"Mozilla/5.0 (中文; Ünï)\"") {
            assert_eq!(r.user_agent, "Mozilla/5.0 (中文; Ünï)", "{name}");
        }
        // A user agent cut in the middle of an escape: lossy, not lost.
        if let Some(r) = with(ua, r#""UA \xE4\xB8""#) {
            assert_eq!(r.user_agent, "UA \u{FFFD}", "{name}");
        }
        // Empty "" and " " fields.
        if let Some(r) = with(ua, "\" \"") {
            assert_eq!(r.user_agent, "", "{name}");
        }
        if let Some(r) = with("\"https://www.example.com/\"", "\"\"") {
            assert_eq!(r.referer, "", "{name}");
            assert_eq!(r.user_agent, base.user_agent, "{name}");
        }
        // Invalid UTF-8 bytes in the user agent: accepted, that field lossy.
        if sample.contains("Windows NT 10.0") {
            let line = sample.replacen("Windows NT 10.0", "Windows \u{0}", 1);
            let mut bytes = line.into_bytes();
            let at = bytes.iter().position(|&b| b == 0).unwrap();
            bytes[at] = 0xff;
            let r = f.parse(&bytes, &ctx8).unwrap().unwrap();
            assert!(r.user_agent.contains('\u{FFFD}'), "{name}");
            assert_eq!(r.uri, base.uri, "{name}");
        }
    }
}
