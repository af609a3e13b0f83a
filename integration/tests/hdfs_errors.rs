//! HDFS failures are quick and clear: an unreachable NameNode fails `filex run`/`plan` within
//! seconds, naming its address, with a non-zero exit; a directory the user may not read is a
//! "permission denied" naming the path; a missing input directory is an empty slot, not an
//! error; `hdfs:///` without `fs.defaultFS` says so, and `-D fs.defaultFS=…` or `--conf-dir`
//! supply it.
//!
//! Needs the test cluster (`scripts/cluster.sh start`) and a built binary (`cargo build`, or
//! `FILEX_BIN`).

#[path = "hdfs_support/mod.rs"]
mod support;

use std::time::Duration;

use filex_integration::require_cluster;

use support::*;

/// The promise: an unreachable NameNode fails the run well within this.
const FAIL_FAST: Duration = Duration::from_secs(30);

fn write_job(dir: &std::path::Path, shards: &str, out_root: &str) -> String {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "errors"
[window]
start = "2026-11-05T00:00:00+00:00"
end = "2026-11-05T01:00:00+00:00"

[[source]]
name = "nginx"
format = "nginx"
shards = "{shards}"

[output]
root = "{out_root}"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log.gz"
"#
        ),
    )
    .expect("write job");
    job.to_string_lossy().into_owned()
}

#[test]
fn unreachable_namenode_fails_fast_naming_the_address() {
    // No cluster needed: nothing listens on the discard port.
    let local = LocalDir::new("unreachable");
    let out = local.path().join("out").to_string_lossy().into_owned();
    let job = write_job(
        local.path(),
        "hdfs://127.0.0.1:9/x/{domain}/%Y%m%d/%H%M.log.gz",
        &out,
    );
    for args in [
        vec!["run", job.as_str(), "--no-progress"],
        vec!["plan", job.as_str()],
    ] {
        let (output, took) = filex(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(took < FAIL_FAST, "{args:?} took {took:?}: {stderr}");
        assert!(
            stderr.contains("cannot reach NameNode 127.0.0.1:9"),
            "{args:?}: message does not name the NameNode: {stderr}"
        );
        assert!(
            stderr.contains("hdfs://127.0.0.1:9/x"),
            "{args:?}: message does not name the location: {stderr}"
        );
    }
    assert!(
        !local.path().join("out").exists(),
        "a failed run published output"
    );
}

#[test]
fn unreachable_output_namenode_fails_fast() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let base = unique_hdfs_dir("errors-out");
    fs.create(
        &format!("{base}/img.example.com/20261105/0000.log.gz"),
        &gzip_stored(b"198.51.100.1 - - [05/Nov/2026:00:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua\"\n"),
        false,
    )
    .expect("upload shard");
    let local = LocalDir::new("unreachable-out");
    let job = write_job(
        local.path(),
        &format!("hdfs://{base}/{{domain}}/%Y%m%d/%H%M.log.gz"),
        "hdfs://127.0.0.1:9/out",
    );
    let (output, took) = filex(&["run", &job, "--no-progress"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "run succeeded: {stderr}");
    assert!(took < FAIL_FAST, "took {took:?}: {stderr}");
    assert!(
        stderr.contains("cannot reach NameNode 127.0.0.1:9"),
        "message does not name the NameNode: {stderr}"
    );
    fs.delete(&base, true).expect("clean up");
}

#[test]
fn unreadable_directory_is_permission_denied_and_missing_one_is_empty() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let base = unique_hdfs_dir("errors-perm");
    let private = format!("{base}/private");
    // The base belongs to the test user and is open (so the other user can create and later
    // remove its directory); the directory inside belongs to another user and is closed.
    assert!(fs.mkdirs(&base).expect("MKDIRS base"));
    assert_eq!(
        webhdfs_put(&cluster, &base, "SETPERMISSION", "&permission=777", &user()),
        200
    );
    assert_eq!(
        webhdfs_put(&cluster, &private, "MKDIRS", "", "filex-owner"),
        200
    );
    assert_eq!(
        webhdfs_put(
            &cluster,
            &private,
            "SETPERMISSION",
            "&permission=700",
            "filex-owner"
        ),
        200
    );
    let local = LocalDir::new("perm");
    let out = local.path().join("out").to_string_lossy().into_owned();

    let job = write_job(
        local.path(),
        &format!("hdfs://{private}/{{domain}}/%Y%m%d/%H%M.log.gz"),
        &out,
    );
    let (output, took) = filex(&["plan", &job], &[("HADOOP_USER_NAME", "filex-stranger")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "plan succeeded: {stderr}");
    assert!(took < FAIL_FAST, "took {took:?}");
    assert!(
        stderr.contains("permission denied") && stderr.contains(&private),
        "unclear message: {stderr}"
    );

    // A source directory that does not exist has no shards; that is not an error.
    let job = write_job(
        local.path(),
        &format!("hdfs://{base}/absent/{{domain}}/%Y%m%d/%H%M.log.gz"),
        &out,
    );
    let plan = filex_ok(&["plan", &job], &[]);
    assert!(plan.contains("map tasks: 0"), "{plan}");

    let owner = filex_integration::webhdfs::WebHdfs::new(&cluster.env.webhdfs, "filex-owner")
        .expect("WebHDFS URL");
    owner.delete(&private, true).expect("clean up (owner)");
    fs.delete(&base, true).expect("clean up");
}

#[test]
fn plan_takes_the_default_fs_from_d_and_conf_dir() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let base = unique_hdfs_dir("errors-defaultfs");
    fs.create(
        &format!("{base}/img.example.com/20261105/0000.log.gz"),
        &gzip_stored(b"198.51.100.1 - - [05/Nov/2026:00:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua\"\n"),
        false,
    )
    .expect("upload shard");
    let local = LocalDir::new("defaultfs");
    let empty_conf = local.path().join("empty-conf");
    std::fs::create_dir_all(&empty_conf).expect("create empty conf dir");
    let empty_conf = empty_conf.to_string_lossy().into_owned();
    let out = local.path().join("out").to_string_lossy().into_owned();
    let job = write_job(
        local.path(),
        &format!("hdfs://{base}/{{domain}}/%Y%m%d/%H%M.log.gz"),
        &out,
    );
    let no_site_files = [("HADOOP_CONF_DIR", empty_conf.as_str())];

    // Without fs.defaultFS, `hdfs:///` is a clear error.
    let (output, took) = filex(&["plan", &job], &no_site_files);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "plan succeeded: {stderr}");
    assert!(took < FAIL_FAST, "took {took:?}");
    assert!(stderr.contains("fs.defaultFS"), "unclear message: {stderr}");

    // `-D fs.defaultFS=…` reaches the HDFS client and the block locations.
    let define = format!("fs.defaultFS={}", cluster.env.namenode);
    let conf_dir = filex_integration::conf_dir().to_string_lossy().into_owned();
    for args in [
        vec!["plan", job.as_str(), "-D", define.as_str()],
        vec!["plan", job.as_str(), "--conf-dir", conf_dir.as_str()],
    ] {
        let plan = filex_ok(&args, &no_site_files);
        assert!(plan.contains("map tasks: 1 (1 shards"), "{args:?}: {plan}");
        let map = plan
            .lines()
            .find(|l| l.trim_start().starts_with("map "))
            .unwrap_or_else(|| panic!("{args:?}: no map task line: {plan}"));
        assert!(
            !map.ends_with("hosts -"),
            "{args:?}: no block locations: {plan}"
        );
    }
    fs.delete(&base, true).expect("clean up");
}
