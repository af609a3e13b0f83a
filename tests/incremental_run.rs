//! Incremental re-fusion end to end, through the binary on `file://`: a re-run of a window
//! after late shards, a changed shard, a vanished shard, a deleted file or a changed setting
//! recomputes only what it must, leaves the other files untouched (same inode, same mtime),
//! and publishes exactly what a fresh full run over the same inputs publishes.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::write::GzEncoder;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MANIFEST: &str = "_manifests/t/20261104T160000Z-20261104T190000Z.json";
const A: &str = "a.example.com";
const B: &str = "b.example.com";

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

fn gz(lines: &[String]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

/// An nginx line at `secs` after 2026-11-05T00:00:00+08:00.
fn line(secs: u32, tag: &str) -> String {
    format!(
        "203.0.113.{} - - [05/{}/2026:{:02}:{:02}:{:02} +0800] \"GET /{tag}.jpg HTTP/1.1\" 200 {} \"-\" \"curl/8\"",
        secs % 250,
        MONTHS[10],
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        1000 + secs
    )
}

/// Shards of two domains, one per 5-minute slot over the three hours of the window (plus one
/// slot after it), each with a line outside the window and a garbage line (a reject).
struct Corpus {
    dir: tempfile::TempDir,
}

impl Corpus {
    fn new() -> Corpus {
        let c = Corpus {
            dir: tempfile::tempdir().unwrap(),
        };
        for domain in [A, B] {
            for slot in (0..=36).map(|i| i * 300) {
                let mut lines: Vec<String> = (0..30u32)
                    .map(|k| line(slot + 299 - k * 9, &format!("{domain}-{slot}-{k}")))
                    .collect();
                lines.push("garbage \u{1} not a log line".into());
                c.shard(domain, slot, "part-0", &lines);
            }
        }
        c
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn shard_path(&self, domain: &str, slot: u32, name: &str) -> PathBuf {
        let (h, m) = (slot / 3600, (slot / 60) % 60);
        self.root()
            .join(format!("ng/{domain}/20261105/{h:02}{m:02}/{name}.log.gz"))
    }
    fn shard(&self, domain: &str, slot: u32, name: &str, lines: &[String]) {
        let p = self.shard_path(domain, slot, name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, gz(lines)).unwrap();
    }
    fn job(&self) -> String {
        let text = r#"
name = "t"
[window]
start = "2026-11-05T00:00:00+08:00"
end = "2026-11-05T03:00:00+08:00"
slack = "5m"

[[source]]
name = "edge"
format = "nginx"
shards = "ng/{domain}/%Y%m%d/%H%M/*.log.gz"
timezone = "+08:00"

[output]
root = "out"
path = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz"
format = "raw"
timezone = "+08:00"
"#;
        let p = self.root().join("job.toml");
        fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    fn out(&self) -> PathBuf {
        self.root().join("out")
    }
    /// A fresh full run of the same inputs into `name`, for comparison.
    fn fresh(&self, name: &str) -> PathBuf {
        let root = self.root().join(name);
        let _ = fs::remove_dir_all(&root);
        let set = format!("output.root={}", root.display());
        filex(&["run", &self.job(), "--set", &set]);
        root
    }
}

fn partition(domain: &str, hour: u32) -> String {
    format!("{domain}/20261105/{domain}_202611050{hour}.log.gz")
}

fn manifest(root: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(root.join(MANIFEST)).unwrap()).unwrap()
}

/// Every file under `root` but the manifests (relative path → bytes): partitions, rejects.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with("_manifests") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// (inode, mtime in ns) of each partition file.
fn stamps(root: &Path) -> BTreeMap<String, (u64, i64)> {
    files(root)
        .into_keys()
        .filter(|k| !k.starts_with('_'))
        .map(|k| {
            let m = fs::metadata(root.join(&k)).unwrap();
            let stamp = (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec());
            (k, stamp)
        })
        .collect()
}

/// Partition path → its `recomputed` reasons (empty: kept).
fn reasons(m: &serde_json::Value) -> BTreeMap<String, Vec<String>> {
    m["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let r = p["recomputed"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (p["path"].as_str().unwrap().to_string(), r)
        })
        .collect()
}

/// What must agree with a fresh full run: output files, and in the manifest the partitions
/// (path, lines, bytes, SHA-256, inputs), counters, per-source figures, the shard table,
/// skipped shards and the rejects file.
fn assert_same_as_full(root: &Path, full: &Path) {
    let (mine, theirs) = (files(root), files(full));
    let differ: Vec<&String> = mine
        .keys()
        .chain(theirs.keys())
        .filter(|k| mine.get(*k) != theirs.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "published bytes differ from a full run: {differ:?}"
    );
    let (m, f) = (manifest(root), manifest(full));
    let strip = |m: &serde_json::Value| -> Vec<serde_json::Value> {
        m["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                serde_json::json!([p["path"], p["lines"], p["bytes"], p["sha256"], p["inputs"]])
            })
            .collect()
    };
    assert_eq!(strip(&m), strip(&f));
    for k in [
        "counters",
        "sources",
        "shards",
        "skipped_shards",
        "rejects",
        "settings_digest",
    ] {
        assert_eq!(m[k], f[k], "manifest {k} differs from a full run's");
    }
}

#[test]
fn a_rerun_recomputes_only_what_changed_and_equals_a_full_run() {
    let c = Corpus::new();
    let job = c.job();
    filex(&["run", &job]);
    let first = manifest(&c.out());
    assert!(reasons(&first)
        .values()
        .all(|r| r == &["no_previous_manifest"]));
    assert_eq!(first["partitions"].as_array().unwrap().len(), 6);
    let before = stamps(&c.out());

    // Late shards for a.example.com's 01:00 hour; b.example.com's 02:30 shard re-delivered
    // with other lines (another size).
    for (slot, name) in [(3900, "late-1"), (4500, "late-2")] {
        let lines: Vec<String> = (0..5).map(|k| line(slot + k * 10, name)).collect();
        c.shard(A, slot, name, &lines);
    }
    let changed: Vec<String> = (0..12).map(|k| line(9000 + k * 20, "changed")).collect();
    c.shard(B, 9000, "part-0", &changed);

    filex(&["run", &job]);
    let m = manifest(&c.out());
    let want: BTreeMap<String, Vec<String>> = [
        (partition(A, 0), vec![]),
        (partition(A, 1), vec!["new_shard".to_string()]),
        (partition(A, 2), vec![]),
        (partition(B, 0), vec![]),
        (partition(B, 1), vec![]),
        (partition(B, 2), vec!["changed_shard".to_string()]),
    ]
    .into_iter()
    .collect();
    assert_eq!(reasons(&m), want);
    let inc = &m["incremental"];
    assert_eq!(inc["previous_run_id"], first["run_id"]);
    assert_eq!(inc["partitions_kept"], 4);
    assert_eq!(inc["partitions_recomputed"], 2);
    assert_eq!(inc["shards_new"], 2);
    assert_eq!(inc["shards_changed"], 1);
    // The two dirty hours' shards (12 + 2 late, 12 with the changed one), the neighbours
    // whose lines spill into them, and the shards of the same size and domain as a shard
    // read (so that a copy of an unread shard is told apart: `on_duplicate_shard`; this
    // corpus's lines all have one length, so its shards' sizes collide often); fewer than
    // the 74 + 2 a full run reads.
    let read = inc["shards_read"].as_u64().unwrap();
    assert!((26..=60).contains(&read), "shards read: {read}");
    // Kept files were neither rewritten nor replaced.
    let after = stamps(&c.out());
    for (path, r) in &want {
        if r.is_empty() {
            assert_eq!(after[path], before[path], "{path} was rewritten");
        } else {
            assert_ne!(after[path], before[path], "{path} was not recomputed");
        }
    }
    assert_same_as_full(&c.out(), &c.fresh("full-1"));

    // Nothing changed since: nothing is read, every file is kept.
    filex(&["run", &job]);
    let m = manifest(&c.out());
    assert_eq!(m["incremental"]["shards_read"], 0);
    assert!(reasons(&m).values().all(Vec::is_empty));
    assert_eq!(stamps(&c.out()), after);

    // --full recomputes everything, with the same bytes.
    filex(&["run", &job, "--full"]);
    let m = manifest(&c.out());
    assert!(reasons(&m).values().all(|r| r == &["full_requested"]));
    assert_same_as_full(&c.out(), &c.fresh("full-1"));
}

#[test]
fn vanished_shards_missing_files_and_changed_settings_force_recomputation() {
    let c = Corpus::new();
    let job = c.job();
    filex(&["run", &job]);

    // b.example.com's 01:15 shard is withdrawn; a.example.com's 00:00 file is deleted.
    fs::remove_file(c.shard_path(B, 4500, "part-0")).unwrap();
    fs::remove_file(c.out().join(partition(A, 0))).unwrap();
    filex(&["run", &job]);
    let m = manifest(&c.out());
    let r = reasons(&m);
    assert_eq!(r[&partition(A, 0)], ["missing_output"]);
    assert_eq!(r[&partition(B, 1)], ["vanished_shard"]);
    assert_eq!(r.values().filter(|r| r.is_empty()).count(), 4);
    assert!(m["incremental"]["shards_vanished"][0]
        .as_str()
        .unwrap()
        .ends_with("b.example.com/20261105/0115/part-0.log.gz"));
    assert!(m["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("is gone: recomputing it")));
    assert_same_as_full(&c.out(), &c.fresh("full-2"));

    // A setting that changes bytes: everything is recomputed.
    let out = filex(&["run", &job, "--set", "output.gzip_level=9"]);
    let m = manifest(&c.out());
    assert!(
        reasons(&m).values().all(|r| r == &["settings_changed"]),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One that does not (the done-flag): nothing is.
    filex(&[
        "run",
        &job,
        "--set",
        "output.gzip_level=9",
        "--set",
        "output.success_marker=false",
    ]);
    assert!(reasons(&manifest(&c.out())).values().all(Vec::is_empty));

    // An unreadable previous manifest: a warning naming it, and a full recomputation.
    fs::write(c.out().join(MANIFEST), b"{ not json").unwrap();
    let out = filex(&["run", &job]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("previous manifest")
            && err.contains(MANIFEST)
            && err.contains("not a manifest"),
        "{err}"
    );
    let m = manifest(&c.out());
    assert!(reasons(&m)
        .values()
        .all(|r| r == &["previous_manifest_unusable"]));
    assert_same_as_full(&c.out(), &c.fresh("full-3"));
}

#[test]
fn files_a_rerun_no_longer_publishes_are_removed() {
    let c = Corpus::new();
    let job = c.job();
    filex(&["run", &job]);
    let gone = partition(B, 2);
    assert!(c.out().join(&gone).is_file());

    // Every shard of b.example.com's 02:00 hour is withdrawn: the partition has no line left.
    for slot in (24..=35).map(|i| i * 300) {
        fs::remove_file(c.shard_path(B, slot, "part-0")).unwrap();
    }
    for full in [false, true] {
        let mut args = vec!["run", job.as_str()];
        if full {
            // --full removes them too (here: nothing left to remove).
            args.push("--full");
        }
        filex(&args);
        assert!(
            !c.out().join(&gone).exists(),
            "{gone} outlived its shards (full: {full})"
        );
        let m = manifest(&c.out());
        let removed: Vec<&str> = m["removed"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(removed, if full { vec![] } else { vec![gone.as_str()] });
        assert!(m["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["path"] != gone.as_str()));
        assert_same_as_full(&c.out(), &c.fresh("full-4"));
    }
}
