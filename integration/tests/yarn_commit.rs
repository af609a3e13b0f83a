//! The crash-safe commit on the mini cluster, HDFS output: an application master that dies in
//! the middle of its commit (`FILEX_FAULT_COMMIT_EXIT_AFTER`, a test hook of builds with the
//! `fault-injection` feature) leaves a commit record that the application's second AM
//! attempt, or the next `filex submit` of the window, finishes first; the output is then
//! byte-identical to a clean run's, with no `_temporary` and no record left.

use std::fs;
use std::path::{Path, PathBuf};

use filex_integration::cli::{app_id, filex, require_fault_injection, text, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::{local_tree, upload_tree};
use filex_integration::webhdfs::WebHdfs;

/// Where the job writes: HDFS under the corpus's root, or the test S3 server (`s3a://` with
/// the keys in a copy of the cluster's site files, as `yarn_s3.rs` does), whose objects are
/// files under its data directory.
enum Target {
    Hdfs,
    S3 { data: PathBuf, conf: PathBuf },
}

/// A generated corpus on HDFS, its job writing to the target, and the reference: the same
/// job run locally (`filex run`), its files (relative path → bytes, `_` names aside) and the
/// path of its commit record relative to the root.
struct Corpus {
    dir: tempfile::TempDir,
    hdfs_root: String,
    target: Target,
    reference: Vec<(String, Vec<u8>)>,
    record: String,
}

fn local_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with('_') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn env(k: &str) -> String {
    std::env::var(k)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            panic!("{k} is not set: start the test S3 server (scripts/s3-server.sh start, then eval \"$(scripts/s3-server.sh env)\")")
        })
}

impl Corpus {
    fn new(conf: &Path, webhdfs: &WebHdfs, s3: bool) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let gen = filex(
            &[
                "gen", "--out", d, "--seed", "13", "--hours", "1", "--rate", "10", "--traps",
            ],
            conf,
            &[],
        );
        assert!(gen.status.success(), "{}", text(&gen));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let hdfs_root = format!("/filex-it/commit-{nanos:x}");
        upload_tree(
            webhdfs,
            &dir.path().join("shards"),
            &format!("{hdfs_root}/shards"),
        );
        let (root, target) = if s3 {
            let bucket = env("FILEX_S3_BUCKET");
            let prefix = format!("commit-{nanos:x}");
            let endpoint = env("FILEX_S3_ENDPOINT")
                .trim_start_matches("http://")
                .to_string();
            let b = &bucket;
            let props = [
                (format!("fs.s3a.bucket.{b}.endpoint"), endpoint),
                (
                    format!("fs.s3a.bucket.{b}.connection.ssl.enabled"),
                    "false".into(),
                ),
                (
                    format!("fs.s3a.bucket.{b}.endpoint.region"),
                    env("FILEX_S3_REGION"),
                ),
                (
                    format!("fs.s3a.bucket.{b}.access.key"),
                    env("FILEX_S3_ACCESS_KEY_ID"),
                ),
                (
                    format!("fs.s3a.bucket.{b}.secret.key"),
                    env("FILEX_S3_SECRET_ACCESS_KEY"),
                ),
            ];
            let target = Target::S3 {
                data: PathBuf::from(env("FILEX_S3_DATA_DIR"))
                    .join(b)
                    .join(&prefix),
                conf: conf_with(conf, dir.path(), &props),
            };
            (format!("s3a://{b}/{prefix}"), target)
        } else {
            (format!("hdfs://{hdfs_root}/out"), Target::Hdfs)
        };
        let job = fs::read_to_string(dir.path().join("job.toml")).unwrap();
        let remote_job = job
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{hdfs_root}/shards/"),
            )
            .replace("root = \"output\"", &format!("root = \"{root}\""));
        assert_ne!(job, remote_job);
        fs::write(dir.path().join("job-remote.toml"), remote_job).unwrap();
        let local = filex(&["run", &format!("{d}/job.toml")], conf, &[]);
        assert!(local.status.success(), "{}", text(&local));
        let stdout = String::from_utf8_lossy(&local.stdout).to_string();
        let manifest = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("manifest: file://"))
            .unwrap()
            .to_string();
        let out_dir = dir.path().join("output");
        let manifest_rel = Path::new(&manifest)
            .strip_prefix(&out_dir)
            .unwrap()
            .display()
            .to_string();
        let record = manifest_rel.replace(".json", ".commit");
        let reference = local_files(&out_dir);
        assert!(reference.len() > 2, "a corpus with several partitions");
        Corpus {
            dir,
            hdfs_root,
            target,
            reference,
            record,
        }
    }

    fn job(&self) -> String {
        self.dir
            .path()
            .join("job-remote.toml")
            .display()
            .to_string()
    }

    /// The site files the commands use (with the S3A keys for an S3 target).
    fn conf<'a>(&'a self, cluster_conf: &'a Path) -> &'a Path {
        match &self.target {
            Target::Hdfs => cluster_conf,
            Target::S3 { conf, .. } => conf,
        }
    }

    fn out(&self) -> String {
        format!("{}/out", self.hdfs_root)
    }

    /// The object or file `rel` below the output root, if there is one.
    fn read(&self, webhdfs: &WebHdfs, rel: &str) -> Option<Vec<u8>> {
        match &self.target {
            Target::Hdfs => webhdfs.open(&format!("{}/{rel}", self.out())).ok(),
            Target::S3 { data, .. } => fs::read(data.join(rel)).ok(),
        }
    }

    /// Asserts that the output holds exactly the reference's partitions, byte for byte, the
    /// manifest, and no `_temporary` nor commit record.
    fn assert_like_a_clean_run(&self, webhdfs: &WebHdfs) {
        for (rel, bytes) in &self.reference {
            let remote = self
                .read(webhdfs, rel)
                .unwrap_or_else(|| panic!("{rel} missing"));
            assert!(&remote == bytes, "{rel} differs from the clean run");
        }
        let manifest = self.record.replace(".commit", ".json");
        assert!(self.read(webhdfs, &manifest).is_some(), "no manifest");
        assert!(
            self.read(webhdfs, &self.record).is_none(),
            "the commit record is left"
        );
        let temporary = match &self.target {
            Target::Hdfs => webhdfs
                .file_status(&format!("{}/_temporary", self.out()))
                .is_ok(),
            // Objects only: s3s-fs keeps the empty directories of deleted keys.
            Target::S3 { data, .. } => !local_tree(&data.join("_temporary")).is_empty(),
        };
        assert!(!temporary, "_temporary left under the output root");
    }
}

/// A copy of the cluster's conf directory whose `core-site.xml` also holds `props`.
fn conf_with(cluster_conf: &Path, dir: &Path, props: &[(String, String)]) -> PathBuf {
    let conf = dir.join("conf");
    fs::create_dir_all(&conf).unwrap();
    for e in fs::read_dir(cluster_conf).unwrap().flatten() {
        if e.path().is_file() {
            fs::copy(e.path(), conf.join(e.file_name())).unwrap();
        }
    }
    let core = conf.join("core-site.xml");
    let xml = fs::read_to_string(&core).unwrap();
    let extra: String = props
        .iter()
        .map(|(k, v)| format!("<property><name>{k}</name><value>{v}</value></property>\n"))
        .collect();
    let at = xml.rfind("</configuration>").expect("a site file");
    fs::write(&core, format!("{}{extra}{}", &xml[..at], &xml[at..])).unwrap();
    conf
}

/// The upload ids a commit record names (each in a staged object's handle).
fn upload_ids(record: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(record);
    text.split("upload_id\\\":\\\"")
        .skip(1)
        .map(|rest| rest.split('\\').next().unwrap().to_string())
        .collect()
}

const SMALL_FLEET: [&str; 4] = [
    "-D",
    "filex.workers.max=2",
    "-D",
    "filex.worker.memory-mb=512",
];

#[test]
fn an_am_dying_in_its_commit_is_finished_by_the_second_attempt() {
    require_fault_injection();
    let cluster = require_cluster();
    let conf = &cluster.conf_dir;
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(conf, &webhdfs, false);
    // The first attempt exits after 2 steps (the done-flag down, one partition renamed); the
    // second, with the same hook, finishes that commit (a roll-forward never exits).
    let job = corpus.job();
    let mut args = vec!["submit", job.as_str()];
    args.extend(SMALL_FLEET);
    let out = filex(&args, conf, &[("FILEX_FAULT_COMMIT_EXIT_AFTER", "2")]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("YARN started AM attempt 2"), "{t}");
    corpus.assert_like_a_clean_run(&webhdfs);
    let id = app_id(&t);
    let manifest = corpus.record.replace(".commit", ".json");
    let manifest = String::from_utf8(corpus.read(&webhdfs, &manifest).unwrap()).unwrap();
    assert!(
        manifest.contains(&format!("\"run_id\": \"{id}\"")),
        "the manifest is the first attempt's commit: {manifest}"
    );
}

/// An application that dies after 3 steps of its commit (with one AM attempt); then the
/// next `filex submit` of the window.
fn next_submit_finishes_the_commit(s3: bool) {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, s3);
    let conf = corpus.conf(&cluster.conf_dir);
    let job = corpus.job();
    let mut args = vec!["submit", job.as_str(), "-D", "filex.am.max-attempts=1"];
    args.extend(SMALL_FLEET);
    let died = filex(&args, conf, &[("FILEX_FAULT_COMMIT_EXIT_AFTER", "3")]);
    let t = text(&died);
    assert_eq!(died.status.code(), Some(1), "{t}");
    let dead = app_id(&t);
    // filex submit's cleanup keeps what the record publishes.
    assert!(t.contains("its unfinished commit publishes"), "{t}");
    let record = corpus
        .read(&webhdfs, &corpus.record)
        .expect("the commit record stays");
    match &corpus.target {
        Target::Hdfs => assert!(webhdfs
            .file_status(&format!("{}/_temporary/{dead}", corpus.out()))
            .is_ok()),
        Target::S3 { .. } => assert!(!upload_ids(&record).is_empty()),
    }
    let mut args = vec!["submit", job.as_str()];
    args.extend(SMALL_FLEET);
    let next = filex(&args, conf, &[]);
    let t = text(&next);
    assert!(next.status.success(), "{t}");
    assert_ne!(app_id(&t), dead);
    corpus.assert_like_a_clean_run(&webhdfs);
    if s3 {
        // Every upload the record named is completed, none left open (s3s-fs keeps an
        // open upload as `.upload-<id>.json` in its data directory).
        let data = PathBuf::from(env("FILEX_S3_DATA_DIR"));
        for id in upload_ids(&record) {
            let open = fs::read_dir(&data)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(&id));
            assert!(!open, "upload {id} left open");
        }
    }
}

#[test]
fn the_next_submit_finishes_the_commit_of_an_application_that_died_in_it() {
    next_submit_finishes_the_commit(false);
}

#[test]
fn the_next_submit_finishes_an_s3_commit_of_an_application_that_died_in_it() {
    next_submit_finishes_the_commit(true);
}
