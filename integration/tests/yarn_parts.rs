//! Numbered parts (`output.max_file_size`) through `filex submit` on the mini cluster
//! (`scripts/cluster.sh start`), to `hdfs://` and to the local S3 server
//! (`scripts/s3-server.sh start`): the same part files with the same bytes, and the same
//! manifest entries, as `filex run` of the same job. (That parts are valid gzip files whose
//! concatenation is the unsplit partition is checked on the embedded run,
//! `tests/numbered_parts.rs`.)

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use filex_integration::cli::{filex_bin, unique, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::{local_tree, upload_tree};
use filex_integration::webhdfs::WebHdfs;

const LIMIT: &str = "output.max_file_size=1M";
const LIMIT_BYTES: usize = 1 << 20;

fn filex(conf: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(filex_bin());
    cmd.args(args)
        .env("HADOOP_CONF_DIR", conf)
        .env("YARN_CONF_DIR", conf)
        .env("FILEX_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("FILEX_S3_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run filex");
    assert!(
        out.status.success(),
        "filex {args:?}: status {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `(path, partition, part, lines, bytes, sha256)` of every manifest entry, sorted.
fn entries(manifest: &[u8]) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut v: Vec<String> = m["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {}",
                e["path"], e["partition"], e["part"], e["lines"], e["bytes"], e["sha256"]
            )
        })
        .collect();
    v.sort();
    v
}

/// A generated one-hour corpus whose busiest partitions pass 1 MiB of gzip, and the output
/// of `filex run` with the limit: (corpus dir, published files, the manifest's relative
/// path).
fn reference(conf: &Path) -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    filex(
        conf,
        &[
            "gen",
            "--out",
            out,
            "--hours",
            "1",
            "--rate",
            "20",
            "--seed",
            "7",
            "--platforms",
            "nginx,upyun",
        ],
    );
    let job = dir.path().join("job.toml");
    filex(
        conf,
        &[
            "run",
            job.to_str().unwrap(),
            "--no-progress",
            "--set",
            LIMIT,
        ],
    );
    let files = local_tree(&dir.path().join("output"));
    let manifest = files
        .keys()
        .find(|k| k.starts_with("_manifests/"))
        .expect("a manifest")
        .clone();
    let parts: Vec<&String> = files.keys().filter(|k| k.contains(".part-")).collect();
    assert!(
        parts.iter().any(|k| k.contains(".part-00002.")),
        "the corpus must give a partition of several parts: {:?}",
        files.keys().collect::<Vec<_>>()
    );
    for (k, v) in &files {
        assert!(v.len() <= LIMIT_BYTES, "{k}: {} bytes", v.len());
    }
    (dir, files, manifest)
}

/// The corpus's job reading its shards from HDFS and writing to `root`.
fn cluster_job(corpus: &Path, hdfs_shards: &str, root: &str) -> PathBuf {
    let job = fs::read_to_string(corpus.join("job.toml")).unwrap();
    let changed = job
        .replace(
            "shards = \"shards/",
            &format!("shards = \"hdfs://{hdfs_shards}/"),
        )
        .replace("root = \"output\"", &format!("root = \"{root}\""));
    assert_ne!(job, changed);
    let p = corpus.join(format!("job-{}.toml", unique("c")));
    fs::write(&p, changed).unwrap();
    p
}

fn submit(conf: &Path, job: &Path) {
    filex(
        conf,
        &[
            "submit",
            job.to_str().unwrap(),
            "--set",
            LIMIT,
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ],
    );
}

#[test]
fn submit_to_hdfs_writes_the_parts_filex_run_writes() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let (corpus, want, manifest) = reference(&cluster.conf_dir);
    let root = format!("/filex-it/{}", unique("parts"));
    upload_tree(
        &webhdfs,
        &corpus.path().join("shards"),
        &format!("{root}/shards"),
    );
    let job = cluster_job(
        corpus.path(),
        &format!("{root}/shards"),
        &format!("hdfs://{root}/out"),
    );
    submit(&cluster.conf_dir, &job);

    for (path, bytes) in &want {
        if path.starts_with("_manifests/") || path == "_SUCCESS" {
            continue;
        }
        let got = webhdfs
            .open(&format!("{root}/out/{path}"))
            .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"));
        assert!(&got == bytes, "{path} differs between filex run and submit");
    }
    let got = webhdfs.open(&format!("{root}/out/{manifest}")).unwrap();
    assert_eq!(entries(&got), entries(&want[&manifest]));
    // No stray parts: the listing of the busiest partition's directory holds exactly the
    // files filex run wrote there.
    let (dir, _) = want
        .keys()
        .find(|k| k.contains(".part-00002."))
        .and_then(|k| k.rsplit_once('/'))
        .unwrap();
    let listing = webhdfs.list_status(&format!("{root}/out/{dir}")).unwrap();
    let listed = listing.matches("\"pathSuffix\"").count();
    let local = want
        .keys()
        .filter(|k| k.rsplit_once('/').map(|(d, _)| d) == Some(dir));
    assert_eq!(listed, local.count(), "{listing}");
}

/// The local S3 server: bucket, data directory, and a copy of the cluster's site files in
/// `dir` with its endpoint and credentials as S3A per-bucket keys.
fn s3_conf(cluster_conf: &Path, dir: &Path) -> (String, PathBuf, PathBuf) {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: scripts/s3-server.sh start && eval \"$(scripts/s3-server.sh env)\"")
        })
    };
    let (bucket, endpoint) = (get("FILEX_S3_BUCKET"), get("FILEX_S3_ENDPOINT"));
    let conf = dir.join("conf");
    fs::create_dir_all(&conf).unwrap();
    for e in fs::read_dir(cluster_conf).unwrap().flatten() {
        if e.path().is_file() {
            fs::copy(e.path(), conf.join(e.file_name())).unwrap();
        }
    }
    let core = conf.join("core-site.xml");
    let xml = fs::read_to_string(&core).unwrap();
    let props = [
        (
            "endpoint",
            endpoint.trim_start_matches("http://").to_string(),
        ),
        ("connection.ssl.enabled", "false".into()),
        ("endpoint.region", get("FILEX_S3_REGION")),
        ("access.key", get("FILEX_S3_ACCESS_KEY_ID")),
        ("secret.key", get("FILEX_S3_SECRET_ACCESS_KEY")),
    ];
    let extra: String = props
        .iter()
        .map(|(k, v)| {
            format!(
                "<property><name>fs.s3a.bucket.{bucket}.{k}</name><value>{v}</value></property>\n"
            )
        })
        .collect();
    let at = xml.rfind("</configuration>").unwrap();
    fs::write(&core, format!("{}{extra}{}", &xml[..at], &xml[at..])).unwrap();
    (bucket, PathBuf::from(get("FILEX_S3_DATA_DIR")), conf)
}

/// The objects under `s3://bucket/prefix` equal `want` (the manifests by their entries).
fn assert_same_objects(
    data_dir: &Path,
    bucket: &str,
    prefix: &str,
    want: &BTreeMap<String, Vec<u8>>,
    manifest: &str,
) {
    let mut got = local_tree(&data_dir.join(bucket).join(prefix));
    let got_manifest = got.remove(manifest).unwrap_or_else(|| {
        panic!(
            "no {manifest} under s3://{bucket}/{prefix}: {:?}",
            got.keys().collect::<Vec<_>>()
        )
    });
    let mut want = want.clone();
    let want_manifest = want.remove(manifest).unwrap();
    assert_eq!(entries(&got_manifest), entries(&want_manifest));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "object names under s3://{bucket}/{prefix}"
    );
    for (k, v) in &want {
        assert!(&got[k] == v, "{k} differs from the file:// output");
    }
}

#[test]
fn submit_to_s3_writes_the_parts_filex_run_writes() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let (corpus, want, manifest) = reference(&cluster.conf_dir);
    let (bucket, data_dir, conf) = s3_conf(&cluster.conf_dir, corpus.path());
    let root = format!("/filex-it/{}", unique("parts-s3"));
    upload_tree(
        &webhdfs,
        &corpus.path().join("shards"),
        &format!("{root}/shards"),
    );
    let prefix = unique("parts");
    let job = cluster_job(
        corpus.path(),
        &format!("{root}/shards"),
        &format!("s3a://{bucket}/{prefix}"),
    );
    submit(&conf, &job);
    assert_same_objects(&data_dir, &bucket, &prefix, &want, &manifest);
}

#[test]
fn run_to_s3_writes_the_parts_run_to_file_writes() {
    let cluster = require_cluster();
    let (corpus, want, manifest) = reference(&cluster.conf_dir);
    let (bucket, data_dir, conf) = s3_conf(&cluster.conf_dir, corpus.path());
    let job = corpus.path().join("job.toml");
    for workers in ["0", "2"] {
        let prefix = unique("parts-run");
        let root = format!("output.root=s3a://{bucket}/{prefix}");
        filex(
            &conf,
            &[
                "run",
                job.to_str().unwrap(),
                "--no-progress",
                "--set",
                LIMIT,
                "--set",
                &root,
                "--workers",
                workers,
            ],
        );
        assert_same_objects(&data_dir, &bucket, &prefix, &want, &manifest);
    }
}
