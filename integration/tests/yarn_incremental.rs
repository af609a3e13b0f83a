//! Incremental re-fusion through `filex submit` on the mini cluster (`scripts/cluster.sh
//! start`), and through `filex run` (embedded) reading the same HDFS shards, with shards on HDFS and output on `hdfs://` and on `s3://` (the local S3 server:
//! `scripts/s3-server.sh start`, `eval "$(scripts/s3-server.sh env)"`).
//!
//! A window is submitted; late shards arrive for one hour and a shard is re-delivered with
//! other bytes; the window is submitted again. Checked: the second application recomputes
//! some partitions and keeps the others (their objects not written again: same HDFS
//! modification time, same file under the S3 server's data directory), and every partition
//! and the rejects file equal, byte for byte, a full `filex run` over the same inputs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use filex_integration::cli::{self, text, unique, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::local_tree;
use filex_integration::webhdfs::{json_field, WebHdfs};

const MANIFEST: &str = "_manifests/demo-hourly/20261104T160000Z-20261104T190000Z.json";

/// Runs filex with the cluster's configuration and `env`; fails the test unless it succeeds.
/// `filex …` that must succeed.
fn filex(args: &[&str], conf: &Path, env: &[(&str, &str)]) -> Output {
    let out = cli::filex(args, conf, env);
    assert!(out.status.success(), "filex {args:?}: {}", text(&out));
    out
}

/// The corpus: three hours of `filex gen` shards, here and on HDFS.
struct Corpus {
    dir: tempfile::TempDir,
    hdfs_root: String,
}

impl Corpus {
    fn new(conf: &Path, webhdfs: &WebHdfs) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().display().to_string();
        filex(
            &[
                "gen", "--out", &out, "--seed", "21", "--hours", "3", "--rate", "3", "--traps",
            ],
            conf,
            &[],
        );
        let c = Corpus {
            dir,
            hdfs_root: format!("/filex-it/{}", unique("incremental")),
        };
        for (rel, bytes) in local_tree(&c.shards()) {
            webhdfs
                .create(&format!("{}/shards/{rel}", c.hdfs_root), &bytes, true)
                .unwrap();
        }
        c
    }
    fn shards(&self) -> PathBuf {
        self.dir.path().join("shards")
    }
    /// The generated job with its shards on HDFS and `root` as its output.
    fn job(&self, root: &str, name: &str) -> String {
        let job = fs::read_to_string(self.dir.path().join("job.toml")).unwrap();
        let job = job
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{}/shards/", self.hdfs_root),
            )
            .replace("root = \"output\"", &format!("root = \"{root}\""));
        let p = self.dir.path().join(name);
        fs::write(&p, job).unwrap();
        p.display().to_string()
    }
    /// Late upyun shards for the window's last hour (another seed), one shard of that hour
    /// re-delivered shorter, and a shard of the first hour delivered twice (a copy under
    /// another name); written here and on HDFS. Returns how many new and changed shards.
    fn late_data(&self, conf: &Path, webhdfs: &WebHdfs) -> usize {
        let late = self.dir.path().join("late");
        let out = late.display().to_string();
        filex(
            &[
                "gen",
                "--out",
                &out,
                "--seed",
                "22",
                "--start",
                "2026-11-05T02:00:00+08:00",
                "--hours",
                "1",
                "--rate",
                "2",
                "--platforms",
                "upyun",
            ],
            conf,
            &[],
        );
        let mut changed: Vec<(String, Vec<u8>)> = local_tree(&late.join("shards"))
            .into_iter()
            .map(|(rel, bytes)| {
                let p = Path::new(&rel);
                let name = format!("late-{}", p.file_name().unwrap().to_string_lossy());
                let rel = p.with_file_name(name).display().to_string();
                (rel, bytes)
            })
            .collect();
        // A last-hour upyun shard re-delivered with only its first 20 lines.
        let (victim, _) = local_tree(&self.shards())
            .into_iter()
            .find(|(rel, _)| rel.starts_with("upyun/20261105/0230/"))
            .expect("an upyun shard at 02:30");
        let path = self.shards().join(&victim);
        let short = Command::new("sh")
            .arg("-c")
            .arg("zcat \"$1\" | head -n 20 | gzip -c")
            .arg("sh")
            .arg(&path)
            .output()
            .unwrap();
        assert!(short.status.success() && !short.stdout.is_empty());
        // An upyun shard of the first hour delivered again under another name (sorting after
        // it, so the first delivery stays the one read).
        let (original, bytes) = local_tree(&self.shards())
            .into_iter()
            .find(|(rel, _)| rel.starts_with("upyun/20261105/0010/"))
            .expect("an upyun shard at 00:10");
        let p = Path::new(&original);
        let name = format!("zz-again-{}", p.file_name().unwrap().to_string_lossy());
        changed.push((p.with_file_name(name).display().to_string(), bytes));
        changed.push((victim, short.stdout));
        for (rel, bytes) in &changed {
            let p = self.shards().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, bytes).unwrap();
            webhdfs
                .create(&format!("{}/shards/{rel}", self.hdfs_root), bytes, true)
                .unwrap();
        }
        changed.len()
    }
    /// A full `filex run` of the local shards into a fresh directory: partitions and rejects.
    fn full_run(&self, conf: &Path, name: &str) -> BTreeMap<String, Vec<u8>> {
        let root = self.dir.path().join(name);
        let job = fs::read_to_string(self.dir.path().join("job.toml"))
            .unwrap()
            .replace(
                "root = \"output\"",
                &format!("root = \"{}\"", root.display()),
            );
        let p = self.dir.path().join(format!("{name}.toml"));
        fs::write(&p, job).unwrap();
        filex(&["run", p.to_str().unwrap(), "--no-progress"], conf, &[]);
        let mut files = local_tree(&root);
        files.retain(|k, _| !k.starts_with("_manifests") && k != "_SUCCESS");
        files
    }
}

/// The output under test: how to submit to it and read it back.
trait Target {
    fn root(&self) -> String;
    fn env(&self) -> Vec<(&str, String)>;
    fn sets(&self) -> Vec<String>;
    fn read(&self, rel: &str) -> Vec<u8>;
    /// A stamp that changes when the object is written again.
    fn stamp(&self, rel: &str) -> String;
}

/// How the job runs: `filex submit` on the mini cluster, or `filex run` (embedded, reading
/// the same HDFS shards).
#[derive(Clone, Copy)]
enum Mode {
    Submit,
    Embedded,
}

fn fuse(conf: &Path, job: &str, out: &dyn Target, mode: Mode) -> serde_json::Value {
    let sets = out.sets();
    let mut args = match mode {
        Mode::Submit => vec![
            "submit",
            job,
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ],
        Mode::Embedded => vec!["run", job, "--no-progress", "--threads", "2"],
    };
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let env = out.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    filex(&args, conf, &env);
    serde_json::from_slice(&out.read(MANIFEST)).unwrap()
}

/// Partition path → recomputed reasons (empty: kept).
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

fn rerun_equals_full_run(out: &dyn Target, mode: Mode) {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs);
    let job = corpus.job(&out.root(), "job-cluster.toml");

    let first = fuse(&cluster.conf_dir, &job, out, mode);
    assert!(reasons(&first)
        .values()
        .all(|r| r == &["no_previous_manifest"]));
    let paths: Vec<String> = reasons(&first).into_keys().collect();
    let before: BTreeMap<String, String> =
        paths.iter().map(|p| (p.clone(), out.stamp(p))).collect();

    let changed = corpus.late_data(&cluster.conf_dir, &webhdfs);
    let second = fuse(&cluster.conf_dir, &job, out, mode);
    let r = reasons(&second);
    let inc = &second["incremental"];
    assert_eq!(inc["previous_run_id"], first["run_id"]);
    assert_eq!(inc["shards_changed"], 1);
    assert_eq!(inc["shards_new"].as_u64().unwrap() as usize, changed - 1);
    let kept: Vec<&String> = r
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
    let recomputed: Vec<&String> = r
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert!(!kept.is_empty() && !recomputed.is_empty(), "{r:?}");
    assert!(
        (inc["shards_read"].as_u64().unwrap() as usize)
            < second["shards"].as_array().unwrap().len()
    );
    // The copy is told apart (by the map tasks; on YARN its task ran again without it) and
    // adds no line: the first hour's partitions the copy would have doubled are kept.
    let dups = second["duplicate_shards"].as_array().unwrap();
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(dups[0]["url"].as_str().unwrap().contains("/0010/zz-again-"));
    assert!(!dups[0]["duplicate_of"]
        .as_str()
        .unwrap()
        .contains("zz-again-"));
    assert!(first["duplicate_shards"].as_array().unwrap().is_empty());
    let first_hour: Vec<&String> = r.keys().filter(|p| p.ends_with("00.log.gz")).collect();
    assert!(!first_hour.is_empty());
    for p in first_hour {
        assert!(r[p].is_empty(), "{p} recomputed for {:?}", r[p]);
    }
    for p in &kept {
        assert_eq!(out.stamp(p), before[*p], "kept {p} was written again");
    }
    for p in &recomputed {
        if let Some(b) = before.get(*p) {
            assert_ne!(&out.stamp(p), b, "recomputed {p} was not written");
        }
    }

    // Byte for byte what a full run over the same inputs publishes; the rejects name their
    // shards by URL (hdfs:// here, file:// there), so those are compared below the corpus.
    let want = corpus.full_run(&cluster.conf_dir, "full");
    assert_eq!(want.len(), r.len() + 1, "partitions and the rejects file");
    let rejects = second["rejects"]["path"].as_str().unwrap();
    for (rel, bytes) in &want {
        if rel == rejects {
            assert_eq!(
                shard_relative(&out.read(rel)),
                shard_relative(bytes),
                "the rejects differ from a full run's"
            );
        } else {
            assert!(&out.read(rel) == bytes, "{rel} differs from a full run's");
        }
    }
    assert_eq!(
        second["counters"]["rejected"],
        rejected_lines(&want, rejects)
    );
}

/// The rejects file's lines (gzip'd TSV) with each shard URL cut to its path below `shards/`.
fn shard_relative(gz: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.gz");
    fs::write(&p, gz).unwrap();
    let out = Command::new("gzip").arg("-dc").arg(&p).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.splitn(3, '\t').collect();
            if let Some(url) = f.get_mut(1) {
                *url = url.rsplit_once("/shards/").map_or(*url, |(_, rest)| rest);
            }
            f.join("\t")
        })
        .collect()
}

/// How many lines the full run rejected (lines of its rejects file).
fn rejected_lines(want: &BTreeMap<String, Vec<u8>>, rejects: &str) -> serde_json::Value {
    serde_json::Value::from(shard_relative(&want[rejects]).len() as u64)
}

struct Hdfs {
    webhdfs: WebHdfs,
    root: String,
}

impl Target for Hdfs {
    fn root(&self) -> String {
        format!("hdfs://{}", self.root)
    }
    fn env(&self) -> Vec<(&str, String)> {
        Vec::new()
    }
    fn sets(&self) -> Vec<String> {
        Vec::new()
    }
    fn read(&self, rel: &str) -> Vec<u8> {
        self.webhdfs
            .open(&format!("{}/{rel}", self.root))
            .unwrap_or_else(|e| panic!("{rel} missing on HDFS: {e}"))
    }
    fn stamp(&self, rel: &str) -> String {
        let status = self
            .webhdfs
            .file_status(&format!("{}/{rel}", self.root))
            .unwrap();
        json_field(&status, "modificationTime").unwrap().to_string()
    }
}

fn hdfs_rerun(mode: Mode) {
    let cluster = require_cluster();
    let out = Hdfs {
        webhdfs: WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap(),
        root: format!("/filex-it/{}/out", unique("incremental-out")),
    };
    rerun_equals_full_run(&out, mode);
    let _ = out.webhdfs.delete(&out.root, true);
}

#[test]
fn submit_rerun_to_hdfs_recomputes_only_what_changed() {
    hdfs_rerun(Mode::Submit);
}

#[test]
fn embedded_rerun_to_hdfs_recomputes_only_what_changed() {
    hdfs_rerun(Mode::Embedded);
}

struct S3 {
    bucket: String,
    prefix: String,
    data_dir: PathBuf,
    endpoint: String,
    key_id: String,
    secret: String,
    region: String,
}

impl Target for S3 {
    fn root(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
    fn env(&self) -> Vec<(&str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", self.region.clone()),
        ]
    }
    fn sets(&self) -> Vec<String> {
        vec![format!("output.store.endpoint={}", self.endpoint)]
    }
    fn read(&self, rel: &str) -> Vec<u8> {
        let p = self
            .data_dir
            .join(&self.bucket)
            .join(&self.prefix)
            .join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("{} missing: {e}", p.display()))
    }
    fn stamp(&self, rel: &str) -> String {
        let p = self
            .data_dir
            .join(&self.bucket)
            .join(&self.prefix)
            .join(rel);
        let m = fs::metadata(&p).unwrap();
        format!("{:?}", m.modified().unwrap())
    }
}

fn s3_rerun(mode: Mode) {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: scripts/s3-server.sh start && eval \"$(scripts/s3-server.sh env)\"")
        })
    };
    let out = S3 {
        bucket: get("FILEX_S3_BUCKET"),
        prefix: unique("incremental"),
        data_dir: PathBuf::from(get("FILEX_S3_DATA_DIR")),
        endpoint: get("FILEX_S3_ENDPOINT"),
        key_id: get("FILEX_S3_ACCESS_KEY_ID"),
        secret: get("FILEX_S3_SECRET_ACCESS_KEY"),
        region: get("FILEX_S3_REGION"),
    };
    rerun_equals_full_run(&out, mode);
}

#[test]
fn submit_rerun_to_s3_recomputes_only_what_changed() {
    s3_rerun(Mode::Submit);
}

#[test]
fn embedded_rerun_to_s3_recomputes_only_what_changed() {
    s3_rerun(Mode::Embedded);
}
