//! End to end on HDFS: a generated multi-vendor corpus uploaded to HDFS, fused by `filex run`
//! with `hdfs://` sources, an `hdfs://` scratch and an `hdfs://` output root, must give the
//! same bytes as the same job on `file://`; the manifest is published last and valid; staging
//! and scratch are gone afterwards; a second run replaces the outputs in place.
//!
//! Needs the test cluster (`scripts/cluster.sh start`) and a built binary (`cargo build`, or
//! `FILEX_BIN`).

#[path = "hdfs_support/mod.rs"]
mod support;

use filex_integration::require_cluster;
use filex_integration::webhdfs::json_field;

use support::*;

/// The `shards = "…"` templates of a generated job file, in source order.
fn shard_templates(job_toml: &str) -> Vec<String> {
    job_toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("shards = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect()
}

/// Every `"sha256": "<hex>"` value of a manifest, sorted.
fn sha256s(manifest: &str) -> Vec<String> {
    let mut out: Vec<String> = manifest
        .match_indices("\"sha256\"")
        .filter_map(|(i, _)| json_field(&manifest[i..], "sha256"))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

#[test]
fn hdfs_run_matches_the_local_run_byte_for_byte() {
    let cluster = require_cluster();
    let fs = webhdfs(&cluster);
    let local = LocalDir::new("run");
    let corpus = local.path().join("corpus");
    let corpus_s = corpus.to_string_lossy().into_owned();
    filex_ok(&["gen", "--out", &corpus_s, "--seed", "7"], &[]);
    let job = corpus.join("job.toml");
    let job_s = job.to_string_lossy().into_owned();
    let templates = shard_templates(&std::fs::read_to_string(&job).expect("job.toml"));
    assert!(templates.len() >= 3, "gen wrote {templates:?}");

    // The reference: the same job on the local file system.
    let local_out = local.path().join("out-local");
    let local_out_s = local_out.to_string_lossy().into_owned();
    let stdout = filex_ok(
        &[
            "run",
            &job_s,
            "--no-progress",
            "--threads",
            "2",
            "--set",
            &format!("output.root={local_out_s}"),
        ],
        &[],
    );
    assert!(manifest_url(&stdout).starts_with("file://"));
    let want_files = local_files(&local_out);
    let want_data: Vec<String> = want_files
        .iter()
        .filter(|f| !f.starts_with("_manifests/"))
        .cloned()
        .collect();
    assert!(want_data.len() >= 4, "local run wrote {want_files:?}");

    // Upload the shards; run with every source, the scratch and the output on HDFS.
    let base = unique_hdfs_dir("run");
    let uploaded = upload_tree(&fs, &corpus.join("shards"), &format!("{base}/shards"));
    assert!(uploaded > 100, "{uploaded} shards uploaded");
    let mut args: Vec<String> = vec![
        "run".into(),
        job_s.clone(),
        "--no-progress".into(),
        "--threads".into(),
        "2".into(),
    ];
    for (i, t) in templates.iter().enumerate() {
        let tail = t.strip_prefix("shards/").expect("templates under shards/");
        args.push("--set".into());
        args.push(format!("source.{i}.shards=hdfs://{base}/shards/{tail}"));
    }
    args.push("--set".into());
    args.push(format!("scratch=hdfs://{base}/scratch"));
    args.push("--set".into());
    args.push(format!("output.root=hdfs://{base}/out"));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();

    for attempt in 1..=2 {
        let stdout = filex_ok(&args_ref, &[]);

        // The manifest is the last line, on HDFS, under the output root, and describes the
        // same partitions with the same digests as the local run.
        let url = manifest_url(&stdout);
        assert!(url.starts_with("hdfs://"), "manifest URL {url}");
        let manifest_path = hdfs_path(&url);
        assert!(
            manifest_path.starts_with(&format!("{base}/out/_manifests/")),
            "manifest at {manifest_path}"
        );
        let manifest = String::from_utf8(fs.open(&manifest_path).expect("read manifest"))
            .expect("manifest is UTF-8");
        let local_manifest = std::fs::read_to_string(
            local_out.join(
                want_files
                    .iter()
                    .find(|f| f.starts_with("_manifests/"))
                    .expect("local manifest"),
            ),
        )
        .expect("read local manifest");
        assert!(manifest.trim_end().ends_with('}'), "manifest: {manifest}");
        assert_eq!(json_field(&manifest, "job"), Some("demo-hourly"));
        let root = json_field(&manifest, "output_root").expect("output_root");
        assert!(
            root.starts_with("hdfs://") && root.contains(&format!("{base}/out")),
            "output_root {root}"
        );
        assert_eq!(
            sha256s(&manifest),
            sha256s(&local_manifest),
            "partition digests differ from the local run"
        );

        // Exactly the local run's files, byte for byte; no staging left behind.
        let got_files = hdfs_files(&fs, &format!("{base}/out"));
        let got_data: Vec<String> = got_files
            .iter()
            .filter(|f| !f.starts_with("_manifests/"))
            .cloned()
            .collect();
        assert_eq!(
            got_data, want_data,
            "attempt {attempt}: output file sets differ"
        );
        assert!(
            got_files.iter().all(|f| !f.starts_with("_temporary")),
            "staging left behind: {got_files:?}"
        );
        for rel in &want_data {
            let want = std::fs::read(local_out.join(rel)).expect("read local output");
            let got = fs
                .open(&format!("{base}/out/{rel}"))
                .unwrap_or_else(|e| panic!("read back {rel}: {e}"));
            assert_eq!(got.len(), want.len(), "attempt {attempt}: {rel} length");
            assert!(
                got == want,
                "attempt {attempt}: {rel} differs from the local run"
            );
        }

        // The run's private scratch directory was removed.
        let scratch = hdfs_files_if_any(&fs, &format!("{base}/scratch"));
        assert!(scratch.is_empty(), "scratch left behind: {scratch:?}");

        // The done-flag (the job's path starts with {domain}: in the output root), empty,
        // written after the manifest.
        let flag = fs
            .file_status(&format!("{base}/out/_SUCCESS"))
            .unwrap_or_else(|e| panic!("attempt {attempt}: no _SUCCESS: {e}"));
        assert_eq!(json_field(&flag, "length"), Some("0"), "{flag}");
        let manifest_status = fs.file_status(&manifest_path).expect("manifest status");
        let mtime = |status: &str| -> u64 {
            json_field(status, "modificationTime")
                .and_then(|v| v.parse().ok())
                .expect("modificationTime")
        };
        assert!(
            mtime(&flag) >= mtime(&manifest_status),
            "the done-flag comes after the manifest"
        );
    }

    // A re-run whose commit fails half-way (the last partition's name is taken by a
    // non-empty directory) has taken the done-flag down before replacing any file.
    let last = want_data
        .iter()
        .filter(|f| !f.starts_with('_'))
        .max()
        .expect("a partition");
    assert!(fs
        .delete(&format!("{base}/out/{last}"), false)
        .expect("delete"));
    assert!(fs
        .mkdirs(&format!("{base}/out/{last}/in-the-way"))
        .expect("mkdirs"));
    let (failed, _) = filex(&args_ref, &[]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "the commit fails: {}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(
        fs.file_status(&format!("{base}/out/_SUCCESS")).is_err(),
        "a stale done-flag after a failed commit"
    );

    fs.delete(&base, true).expect("clean up");
}
