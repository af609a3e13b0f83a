//! A shard spanning several HDFS blocks (the mini cluster's block size is 16 MiB; the shard
//! is about 40 MiB): `filex plan` names the DataNode hosts that hold its blocks as the map
//! task's preferred hosts, and `filex run` reads it across block boundaries (through scratch
//! and output on HDFS) to the same bytes as a run on the local copy.
//!
//! Needs the test cluster (`scripts/cluster.sh start`) and a built binary (`cargo build`, or
//! `FILEX_BIN`).

#[path = "hdfs_support/mod.rs"]
mod support;

use std::collections::BTreeSet;

use filex_integration::require_cluster;
use filex_integration::webhdfs::json_field;

use support::*;

/// Block size configured by the harness.
const BLOCK_SIZE: usize = 16 << 20;
/// Size of the shard: two full blocks and a partial third.
const SHARD_BYTES: usize = 40 << 20;
/// Memory budget of the runs: small enough that the shard is sorted in several runs, so
/// that scratch on HDFS is written, read by range and merged.
const RUN_MEMORY: &str = "64M";

/// nginx combined lines in the slot 2026-11-05 00:00–00:05 UTC, a little out of order, about
/// `bytes` long in all.
fn nginx_lines(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 512);
    let mut i: u64 = 0;
    while out.len() < bytes {
        // Seconds run forward through the slot with every 7th line a few seconds early.
        let mut sec = (i * 300 / 220_000) % 300;
        if i % 7 == 3 {
            sec = sec.saturating_sub(4);
        }
        let line = format!(
            "198.51.100.{} - - [05/Nov/2026:00:{:02}:{:02} +0000] \"GET /assets/{}/img-{}.jpg?w={} HTTP/1.1\" {} {} \"https://www.example.com/page/{}\" \"Mozilla/5.0 (X11; Linux x86_64) test-agent/{}\"\n",
            i % 250,
            sec / 60,
            sec % 60,
            i % 97,
            i,
            100 + i % 900,
            if i.is_multiple_of(31) { 404 } else { 200 },
            1000 + (i * 7919) % 90_000,
            i % 13,
            i % 5,
        );
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out
}

fn job_toml(shards: &str, out_root: &str, scratch: Option<&str>) -> String {
    let scratch = scratch
        .map(|s| format!("scratch = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"name = "locality"
{scratch}
[window]
start = "2026-11-05T00:00:00+00:00"
end = "2026-11-05T01:00:00+00:00"

[[source]]
name = "nginx"
format = "nginx"
shards = "{shards}"
timezone = "+00:00"

[output]
root = "{out_root}"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log.gz"
format = "json"
timezone = "+00:00"
"#
    )
}

/// Hosts named by `GETFILEBLOCKLOCATIONS`, and the number of blocks.
fn block_hosts(cluster: &filex_integration::Cluster, path: &str) -> (BTreeSet<String>, usize) {
    let (status, body) = webhdfs_get(cluster, path, "GETFILEBLOCKLOCATIONS");
    assert_eq!(status, 200, "{body}");
    let blocks = json_array_objects(&body, "BlockLocation");
    let mut hosts = BTreeSet::new();
    for b in &blocks {
        let at = b.find("\"hosts\"").expect("hosts");
        let list = &b[at..];
        let list = &list[list.find('[').expect("[") + 1..list.find(']').expect("]")];
        for h in list.split(',') {
            let h = h.trim().trim_matches('"');
            if !h.is_empty() {
                hosts.insert(h.to_string());
            }
        }
    }
    (hosts, blocks.len())
}

#[test]
fn multi_block_shard_is_placed_on_its_datanodes_and_read_whole() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let local = LocalDir::new("locality");
    let base = unique_hdfs_dir("locality");

    let gz = gzip_stored(&nginx_lines(SHARD_BYTES - 4096));
    assert!(gz.len() > 2 * BLOCK_SIZE, "shard is {} bytes", gz.len());
    let rel = "img.example.com/20261105/0000.log.gz";
    std::fs::create_dir_all(local.path().join("shards/img.example.com/20261105")).unwrap();
    std::fs::write(local.path().join("shards").join(rel), &gz).unwrap();
    let shard_path = format!("{base}/shards/{rel}");
    fs.create(&shard_path, &gz, false).expect("upload shard");
    let status = fs.file_status(&shard_path).expect("stat shard");
    assert_eq!(
        json_field(&status, "length"),
        Some(gz.len().to_string().as_str())
    );

    let (want_hosts, blocks) = block_hosts(&cluster, &shard_path);
    assert_eq!(blocks, gz.len().div_ceil(BLOCK_SIZE), "blocks of the shard");
    assert!(!want_hosts.is_empty());

    // The plan names exactly the hosts holding the blocks.
    let template = format!("hdfs://{base}/shards/{{domain}}/%Y%m%d/%H%M.log.gz");
    let hdfs_job = local.path().join("hdfs-job.toml");
    std::fs::write(
        &hdfs_job,
        job_toml(
            &template,
            &format!("hdfs://{base}/out"),
            Some(&format!("hdfs://{base}/scratch")),
        ),
    )
    .unwrap();
    let hdfs_job_s = hdfs_job.to_string_lossy().into_owned();
    let plan = filex_ok(&["plan", &hdfs_job_s], &[]);
    let task_lines: Vec<&str> = plan
        .lines()
        .filter(|l| l.trim_start().starts_with("map ") && l.contains(" hosts "))
        .collect();
    assert_eq!(task_lines.len(), 1, "one map task expected:\n{plan}");
    let hosts: BTreeSet<String> = task_lines[0]
        .rsplit(" hosts ")
        .next()
        .unwrap_or_default()
        .trim()
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(hosts, want_hosts, "plan:\n{plan}");
    assert!(
        task_lines[0].contains(&format!(" {} bytes", gz.len())),
        "{}",
        task_lines[0]
    );

    // Reading across block boundaries gives the same output as the local copy.
    let local_job = local.path().join("local-job.toml");
    std::fs::write(
        &local_job,
        job_toml(
            "shards/{domain}/%Y%m%d/%H%M.log.gz",
            &local.path().join("out").to_string_lossy(),
            None,
        ),
    )
    .unwrap();
    filex_ok(
        &[
            "run",
            &local_job.to_string_lossy(),
            "--no-progress",
            "--memory",
            RUN_MEMORY,
        ],
        &[],
    );
    let stdout = filex_ok(
        &["run", &hdfs_job_s, "--no-progress", "--memory", RUN_MEMORY],
        &[],
    );
    let manifest = String::from_utf8(fs.open(&hdfs_path(&manifest_url(&stdout))).unwrap()).unwrap();
    assert_eq!(json_field(&manifest, "rejected"), Some("0"), "{manifest}");

    let want: Vec<String> = local_files(&local.path().join("out"))
        .into_iter()
        .filter(|f| !f.starts_with("_manifests/"))
        .collect();
    let got: Vec<String> = hdfs_files(&fs, &format!("{base}/out"))
        .into_iter()
        .filter(|f| !f.starts_with("_manifests/"))
        .collect();
    assert_eq!(got, want);
    assert!(want.iter().any(|f| f.starts_with("img.example.com/")));
    for rel in &want {
        let w = std::fs::read(local.path().join("out").join(rel)).unwrap();
        let g = fs.open(&format!("{base}/out/{rel}")).unwrap();
        assert!(g == w, "{rel} differs ({} vs {} bytes)", g.len(), w.len());
    }

    fs.delete(&base, true).expect("clean up");
}
