//! `output.max_file_size` end to end through `filex run`: a big partition becomes numbered
//! parts, each a gzip file within the limit, whose concatenation is exactly the partition of
//! the same job without the limit; a small one keeps its unsplit name; the manifest lists
//! every part; threads and worker processes publish the same bytes.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

const LIMIT: u64 = 1 << 20;
const BIG: &str = "a.example.com/20261105/a.example.com_2026110500.log.gz";
const SMALL: &str = "b.example.com/20261105/b.example.com_2026110500.log.gz";

fn filex(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_filex"))
        .args(args)
        .env("FILEX_LOG", "warn")
        .output()
        .expect("run filex");
    assert!(
        out.status.success(),
        "filex {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Lines of hour 00 (+08:00) of 2026-11-05 with random paths, so that they compress poorly
/// and a few MiB of gzip come from a modest corpus.
fn shard(slot: u32, lines: u32, seed: &mut u64) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for k in 0..lines {
        let mut token = String::new();
        for _ in 0..6 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            token.push_str(&format!("{:016x}", *seed));
        }
        let secs = slot * 300 + (k * 37) % 300;
        writeln!(
            e,
            "203.0.113.{} - - [05/Nov/2026:00:{:02}:{:02} +0800] \"GET /{token}.jpg HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0\"",
            k % 250,
            secs / 60,
            secs % 60,
            1000 + k
        )
        .unwrap();
    }
    e.finish().unwrap()
}

fn corpus(dir: &Path) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for slot in 0..12u32 {
        for (domain, lines) in [("a.example.com", 6_000), ("b.example.com", 200)] {
            let p = dir.join(format!("ng/{domain}/20261105/00{:02}.log.gz", slot * 5));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, shard(slot, lines, &mut seed)).unwrap();
        }
    }
    fs::write(
        dir.join("job.toml"),
        r#"
name = "parts"
[window]
start = "2026-11-05T00:00:00+08:00"
end = "2026-11-05T01:00:00+08:00"
slack = "5m"

[[source]]
name = "edge"
format = "nginx"
shards = "ng/{domain}/%Y%m%d/%H%M.log.gz"
timezone = "+08:00"

[output]
root = "out"
path = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz"
format = "raw"
timezone = "+08:00"
"#,
    )
    .unwrap();
}

/// Published files under `out` (relative path → bytes), `_` names excluded, sorted.
fn published(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with('_') {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn manifest(root: &Path) -> serde_json::Value {
    let dir = root.join("_manifests/parts");
    let file = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap()
}

#[test]
fn a_big_partition_becomes_parts_whose_concatenation_is_the_unsplit_file() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let job = dir.path().join("job.toml");
    let job = job.to_str().unwrap();
    let out = dir.path().join("out");

    filex(&["run", job, "--task-size", "256K"]);
    let whole = published(&out);
    let names: Vec<&str> = whole.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [BIG, SMALL]);
    let unsplit_big = gunzip(&whole[0].1);
    let unsplit_small = gunzip(&whole[1].1);
    assert!(
        whole[0].1.len() as u64 > 3 * LIMIT,
        "the corpus must give several parts: {} bytes",
        whole[0].1.len()
    );

    // Into another root: a re-run into the same one would leave the unsplit file of the
    // first run beside the parts (stale outputs are not removed yet).
    let set = format!("output.max_file_size={LIMIT}");
    let root = "output.root=parted";
    let out = dir.path().join("parted");
    filex(&[
        "run",
        job,
        "--task-size",
        "256K",
        "--set",
        &set,
        "--set",
        root,
    ]);
    let parts = published(&out);
    let (big, small): (Vec<_>, Vec<_>) = parts.iter().partition(|(n, _)| n.starts_with("a."));
    assert!(big.len() >= 3, "{} parts", big.len());
    for (i, (name, bytes)) in big.iter().enumerate() {
        assert_eq!(
            name,
            &format!(
                "a.example.com/20261105/a.example.com_2026110500.log.part-{:05}.gz",
                i + 1
            )
        );
        assert!(bytes.len() as u64 <= LIMIT, "{name}: {} bytes", bytes.len());
        let lines = gunzip(bytes);
        assert_eq!(lines.last(), Some(&b'\n'), "{name} ends inside a line");
    }
    let cat: Vec<u8> = big.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    assert_eq!(
        gunzip(&cat),
        unsplit_big,
        "parts concatenated ≠ the unsplit partition"
    );
    assert_eq!(small.len(), 1);
    assert_eq!(small[0].0, SMALL);
    assert_eq!(gunzip(&small[0].1), unsplit_small);

    let m = manifest(&out);
    let entries = m["partitions"].as_array().unwrap();
    assert_eq!(entries.len(), big.len() + 1);
    let mut lines = 0;
    for (n, (name, bytes)) in big.iter().enumerate() {
        let e = entries
            .iter()
            .find(|e| e["path"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in the manifest"));
        assert_eq!(e["partition"], BIG);
        assert_eq!(e["part"], n as u64 + 1);
        assert_eq!(e["bytes"], bytes.len() as u64);
        assert_eq!(e["sha256"], hex::encode(Sha256::digest(bytes)));
        let got = gunzip(bytes).iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(e["lines"], got);
        lines += got;
    }
    assert_eq!(lines, 72_000);
    let e = entries.iter().find(|e| e["path"] == SMALL).unwrap();
    assert!(
        e.get("partition").is_none() && e.get("part").is_none(),
        "{e}"
    );

    // Worker processes publish the same bytes as threads.
    filex(&[
        "run",
        job,
        "--task-size",
        "256K",
        "--set",
        &set,
        "--set",
        root,
        "--workers",
        "2",
    ]);
    assert_eq!(published(&out), parts);
}
