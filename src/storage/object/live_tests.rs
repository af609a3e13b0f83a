//! The upload markers against a real S3-compatible server: s3s-fs, started by
//! `scripts/s3-server.sh start` (`eval "$(scripts/s3-server.sh env)"` gives its address,
//! credentials and data directory). Ignored by a plain `cargo test`, which has no server;
//! run with `cargo test -p filex --lib object:: -- --include-ignored` once it is up: then
//! each test fails, never skips, when the server is not there.
//!
//! The oracle is s3s-fs's data directory, not filex's client: objects are files
//! `<data>/<bucket>/<key>`, an open multipart upload is `<data>/.upload-<id>.json`.
//! A process killed outright is an [`S3Output`] dropped without `abort` (nothing in it
//! aborts on drop); the clean-up after it is a fresh store opened for the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::client::S3Client;
use super::config::{ByteSize, Provided, ResolvedConfig, MIN_PART_SIZE};
use super::multipart::Handle;
use super::{ObjectStoreOptions, S3Output};
use crate::storage::{OutputStore, Published, StagedObject};

const HINT: &str = "start the test S3 server first: scripts/s3-server.sh start && \
                    eval \"$(scripts/s3-server.sh env)\"";

fn env(k: &str) -> String {
    std::env::var(k)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{k} is not set: {HINT}"))
}

/// A prefix of the test's own.
fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("markers-{label}-{}-{nanos}", std::process::id())
}

/// The test server's output at `prefix`, opened for run `run`, with parts of the smallest
/// size S3 allows (5 MiB).
fn output(prefix: &str, run: &str) -> S3Output {
    let opts = ObjectStoreOptions {
        endpoint: Some(env("FILEX_S3_ENDPOINT")),
        region: Some(env("FILEX_S3_REGION")),
        part_size: Some(ByteSize::Bytes(MIN_PART_SIZE)),
        ..ObjectStoreOptions::default()
    };
    let vars = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some(env("FILEX_S3_ACCESS_KEY_ID")),
        "AWS_SECRET_ACCESS_KEY" => Some(env("FILEX_S3_SECRET_ACCESS_KEY")),
        _ => None,
    };
    let cfg = ResolvedConfig::resolve(&opts, &vars, &Provided::default(), Path::new("/"))
        .expect("the test server's configuration");
    let out = S3Output::new(
        S3Client::new(cfg, env("FILEX_S3_BUCKET")),
        prefix.to_string(),
        run,
    );
    out.preflight()
        .unwrap_or_else(|e| panic!("the test S3 server does not answer ({e}): {HINT}"));
    out
}

fn data_dir() -> PathBuf {
    PathBuf::from(env("FILEX_S3_DATA_DIR"))
}

/// Whether s3s-fs holds the upload `id` open.
fn is_open(id: &str) -> bool {
    data_dir().join(format!(".upload-{id}.json")).exists()
}

/// The objects below `prefix` (relative paths), as s3s-fs stores them.
fn objects(prefix: &str) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let base = data_dir().join(env("FILEX_S3_BUCKET")).join(prefix);
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

/// The markers of run `run` below `prefix`, by upload id.
fn markers(prefix: &str, run: &str) -> Vec<String> {
    let dir = format!("_temporary/{run}/_uploads/");
    objects(prefix)
        .into_iter()
        .filter_map(|o| o.strip_prefix(&dir).map(str::to_string))
        .collect()
}

fn stage(out: &S3Output, rel: &str, bytes: &[u8]) -> StagedObject {
    let mut w = out.stage(rel).expect("stage");
    w.write_all(bytes).expect("write");
    w.finish().expect("finish")
}

fn upload_id(obj: &StagedObject) -> String {
    let h: Handle = serde_json::from_str(&obj.handle).expect("an S3 handle");
    h.upload_id
}

#[test]
#[ignore = "needs the test S3 server (scripts/s3-server.sh)"]
fn the_clean_up_of_a_dead_run_aborts_its_uploads_and_no_other_runs() {
    let prefix = unique("dead");
    // The dead run: two staged objects, then the process is gone (no abort).
    let dead = output(&prefix, "app_dead");
    let a = stage(&dead, "a/00.log.gz", b"first partition");
    let b = stage(&dead, "b/01.log.gz", b"second partition");
    drop(dead);
    // A run still going on under the same prefix.
    let live = output(&prefix, "app_live");
    let c = stage(&live, "c/02.log.gz", b"a live run's partition");
    let (ia, ib, ic) = (upload_id(&a), upload_id(&b), upload_id(&c));
    assert!(is_open(&ia) && is_open(&ib) && is_open(&ic));
    let mut want = vec![ia.clone(), ib.clone()];
    want.sort();
    assert_eq!(markers(&prefix, "app_dead"), want);
    assert_eq!(markers(&prefix, "app_live"), vec![ic.clone()]);

    // The clean-up after the dead run: a store opened for it, which never opened an upload,
    // sees the markers, and then none.
    let cleanup = output(&prefix, "app_dead");
    assert!(
        cleanup.staged_left().expect("look"),
        "the dead run's markers"
    );
    cleanup.abort().expect("abort the dead run");
    assert!(!cleanup.staged_left().expect("look again"));
    assert!(!is_open(&ia), "the dead run's upload {ia} is still open");
    assert!(!is_open(&ib), "the dead run's upload {ib} is still open");
    assert_eq!(markers(&prefix, "app_dead"), Vec::<String>::new());
    assert!(is_open(&ic), "the live run's upload was aborted");
    assert_eq!(markers(&prefix, "app_live"), vec![ic.clone()]);
    // Twice is fine: nothing is left to do.
    output(&prefix, "app_dead").abort().expect("abort again");

    // The live run ends badly: its own abort removes its upload and marker.
    live.abort().expect("abort the live run");
    assert!(!is_open(&ic));
    assert_eq!(
        objects(&prefix),
        Vec::<String>::new(),
        "left below {prefix}"
    );
}

#[test]
#[ignore = "needs the test S3 server (scripts/s3-server.sh)"]
fn a_published_uploads_marker_goes_with_its_publication_and_a_later_sweep_keeps_the_object() {
    let prefix = unique("published");
    let dead = output(&prefix, "app_1");
    let obj = stage(&dead, "a/00.log.gz", b"published by the next run");
    drop(dead);
    assert_eq!(markers(&prefix, "app_1"), vec![upload_id(&obj)]);
    // The next run finishes the dead run's commit: it publishes the dead run's upload.
    let next = output(&prefix, "app_2");
    assert_eq!(next.publish(&obj).expect("publish"), Published::Now);
    assert_eq!(markers(&prefix, "app_1"), Vec::<String>::new());
    // Published again (a roll-forward cut short after this step): done before, no marker.
    assert_eq!(
        next.publish(&obj).expect("publish again"),
        Published::Already
    );
    // The dead run's staging goes: the object stays, whole.
    output(&prefix, "app_1").abort().expect("abort");
    assert_eq!(objects(&prefix), vec!["a/00.log.gz".to_string()]);
    assert_eq!(
        next.read("a/00.log.gz").expect("read").as_deref(),
        Some(&b"published by the next run"[..])
    );
    next.remove("a/00.log.gz").expect("remove");
}

#[test]
#[ignore = "needs the test S3 server (scripts/s3-server.sh)"]
fn a_dropped_writer_and_a_discard_take_their_markers_with_their_uploads() {
    let prefix = unique("dropped");
    let out = output(&prefix, "app_1");
    // A writer dropped after its first part went out (5 MiB parts): a failed task.
    let mut w = out.stage("a/00.log.gz").expect("stage");
    w.write_all(&vec![7u8; MIN_PART_SIZE as usize + 10])
        .expect("write");
    assert_eq!(
        markers(&prefix, "app_1").len(),
        1,
        "a marker per open upload"
    );
    let id = markers(&prefix, "app_1").remove(0);
    assert!(is_open(&id));
    drop(w);
    assert!(!is_open(&id));
    assert_eq!(markers(&prefix, "app_1"), Vec::<String>::new());
    // A superseded attempt's staged object, discarded.
    let obj = stage(&out, "b/01.log.gz", b"superseded");
    let id = upload_id(&obj);
    out.discard(&obj).expect("discard");
    assert!(!is_open(&id));
    assert_eq!(
        objects(&prefix),
        Vec::<String>::new(),
        "left below {prefix}"
    );
}

#[test]
#[ignore = "needs the test S3 server (scripts/s3-server.sh)"]
fn check_staged_tells_an_open_upload_from_a_gone_one() {
    let prefix = unique("check");
    let worker = output(&prefix, "app_1");
    let obj = stage(&worker, "a/00.log.gz", b"staged by a worker");
    drop(worker);
    // A recovering AM of the same application.
    let am = output(&prefix, "app_1");
    assert_eq!(am.check_staged(&obj), Ok(()));
    // Its parts must be the handle's.
    let mut h: Handle = serde_json::from_str(&obj.handle).expect("handle");
    let mut extra = h.parts[0].clone();
    extra.number = 2;
    h.parts.push(extra);
    let wrong = StagedObject {
        handle: serde_json::to_string(&h).expect("handle"),
        ..obj.clone()
    };
    let e = am.check_staged(&wrong).unwrap_err();
    assert!(
        e.contains("holds parts [1], not the [1, 2] uploaded"),
        "{e}"
    );
    am.abort().expect("abort");
    let e = am.check_staged(&obj).unwrap_err();
    assert!(
        e.contains(&format!("multipart upload {} of s3://", upload_id(&obj)))
            && e.ends_with("is gone"),
        "{e}"
    );
    assert_eq!(
        objects(&prefix),
        Vec::<String>::new(),
        "left below {prefix}"
    );
}
