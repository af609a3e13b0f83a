//! Whole-corpus tests of the generator: determinism, counts that match the shards, the job
//! file, option validation.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use super::*;

fn small(out: &Path) -> GenArgs {
    let mut a = GenArgs::with_defaults(out.to_path_buf());
    a.hours = 1;
    a.rate = 0.3;
    a.traps = true;
    a.late = 0.1;
    a.disorder = 0.2;
    a.threads = Some(2);
    a.platforms = Platform::ALL.iter().map(|p| p.name().to_owned()).collect();
    a
}

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let (Ok(rel), Ok(bytes)) = (p.strip_prefix(base), std::fs::read(&p)) {
                out.insert(rel.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("shard does not decompress: {e}"));
    out
}

#[test]
fn defaults_parse() {
    let a = GenArgs::with_defaults("x".into());
    assert_eq!(a.hours, 2);
    assert_eq!(a.platforms.len(), 6);
    assert_eq!(a.output_format, "json");
}

#[test]
fn same_seed_same_bytes_and_counts_match_the_shards() {
    let t1 = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let t2 = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s1 = generate(&small(t1.path())).unwrap_or_else(|e| panic!("{e:#}"));
    let mut a2 = small(t2.path());
    a2.threads = Some(1);
    let s2 = generate(&a2).unwrap_or_else(|e| panic!("{e:#}"));
    let (f1, f2) = (tree(t1.path()), tree(t2.path()));
    assert_eq!(f1.keys().collect::<Vec<_>>(), f2.keys().collect::<Vec<_>>());
    for (k, v) in &f1 {
        assert!(
            f2.get(k) == Some(v),
            "{k} differs between two runs with the same seed"
        );
    }
    assert_eq!((s1.lines, s1.rejects), (s2.lines, s2.rejects));

    // Count lines in the shards as a reader would.
    let mut lines = 0u64;
    let mut garbage = 0u64;
    let mut crlf = 0u64;
    let mut raw = 0u64;
    let mut multi = 0;
    let mut per_dir: BTreeMap<String, u64> = BTreeMap::new();
    let mut len_by_platform: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (name, bytes) in f1.iter().filter(|(k, _)| k.starts_with("shards/")) {
        let text = gunzip(bytes);
        raw += text.len() as u64;
        if bytes
            .windows(3)
            .skip(1)
            .filter(|w| w == &[0x1f, 0x8b, 0x08])
            .count()
            > 0
        {
            multi += 1;
        }
        assert_eq!(
            text.last(),
            Some(&b'\n'),
            "{name} does not end with a newline"
        );
        for line in text.split(|&b| b == b'\n') {
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            lines += 1;
            garbage += u64::from(line[0] == 0);
            crlf += u64::from(line.ends_with(b"\r"));
            let l = line.len();
            assert!(line[0] == 0 || l < 1000, "{name}: {l}-byte line");
            let e = len_by_platform
                .entry(name.split('/').nth(1).unwrap_or("").to_owned())
                .or_default();
            e.0 += 1;
            e.1 += l as u64;
        }
        *per_dir
            .entry(name.split('/').nth(1).unwrap_or("").to_owned())
            .or_default() += 1;
    }
    for (p, (n, total)) in &len_by_platform {
        let mean = total / n.max(&1);
        eprintln!("{p}: {n} lines, mean {mean} bytes");
        // NDJSON repeats its key names on every line: about 200 bytes more.
        let max = if p == "cloudflare" { 550 } else { 450 };
        assert!((200..=max).contains(&mean), "{p}: mean line length {mean}");
    }
    assert_eq!(lines, s1.lines);
    assert_eq!(raw, s1.bytes_raw);
    assert!(
        garbage > 0 && garbage < s1.rejects,
        "{garbage} garbage lines of {} rejects",
        s1.rejects
    );
    assert!(crlf > 0, "no CRLF trap line");
    assert!(multi > 0, "no multi-member shard");
    assert!(s1.out_of_window > 0);
    // 14 slots (one before and one after the hour); nginx and apache have one shard per domain.
    for p in Platform::ALL {
        let per = if p.host_from_path() { 14 * 3 } else { 14 };
        assert_eq!(per_dir.get(p.name()), Some(&per), "{p:?}");
    }

    // The ground truth adds up and names the output files.
    let truth: serde_json::Value =
        serde_json::from_slice(&f1[TRUTH_FILE]).unwrap_or_else(|e| panic!("{e}"));
    let tot = &truth["totals"];
    let get = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(get(tot, "lines_in"), s1.lines);
    assert_eq!(
        get(tot, "lines_in"),
        get(tot, "lines_out") + get(tot, "rejected") + get(tot, "out_of_window")
    );
    let parts = truth["partitions"].as_array().cloned().unwrap_or_default();
    let sum: u64 = parts.iter().map(|p| get(p, "lines")).sum();
    assert_eq!(sum, get(tot, "lines_out"));
    assert!(parts
        .iter()
        .any(|p| p["path"] == "img.example.com/20261105/img.example.com_2026110500.log.gz"));
}

#[test]
fn job_file_lists_sources_in_order() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut a = small(t.path());
    a.platforms = vec!["cloudflare".into(), "upyun".into()];
    a.output_format = "raw".into();
    let s = generate(&a).unwrap_or_else(|e| panic!("{e:#}"));
    let text = std::fs::read_to_string(&s.job_file).unwrap_or_default();
    let job: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(job["name"].as_str(), Some("demo-hourly"));
    assert_eq!(
        job["window"]["start"].as_str(),
        Some("2026-11-05T00:00:00+08:00")
    );
    assert_eq!(
        job["window"]["end"].as_str(),
        Some("2026-11-05T01:00:00+08:00")
    );
    assert_eq!(job["window"]["slack"].as_str(), Some("5m"));
    let src = job["source"].as_array().cloned().unwrap_or_default();
    let names: Vec<_> = src.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["cloudflare", "upyun"]);
    assert_eq!(src[0]["timezone"].as_str(), Some("+00:00"));
    assert_eq!(
        src[1]["shards"].as_str(),
        Some("shards/upyun/%Y%m%d/%H%M/*.gz")
    );
    assert_eq!(job["output"]["format"].as_str(), Some("raw"));
    assert_eq!(job["output"]["root"].as_str(), Some("output"));

    // A second run into the same directory needs --force.
    assert!(generate(&a).is_err());
    a.force = true;
    assert!(generate(&a).is_ok());
}

#[test]
fn bad_options_are_refused() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    type Edit = Box<dyn Fn(&mut GenArgs)>;
    let cases: Vec<Edit> = vec![
        Box::new(|a| a.start = "yesterday".into()),
        Box::new(|a| a.start = "2026-11-05T00:01:00+08:00".into()),
        Box::new(|a| a.platforms = vec!["akamai".into()]),
        Box::new(|a| a.platforms = vec!["upyun".into(), "UPYUN".into()]),
        Box::new(|a| a.domains = vec!["bad host".into()]),
        Box::new(|a| a.late = 1.5),
        Box::new(|a| a.rate = -1.0),
        Box::new(|a| a.hours = 0),
    ];
    for (i, f) in cases.iter().enumerate() {
        let mut a = small(&t.path().join(i.to_string()));
        f(&mut a);
        assert!(generate(&a).is_err(), "case {i} accepted");
    }
}
