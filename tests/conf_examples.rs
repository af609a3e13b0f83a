//! The examples in `conf/` stay valid: every job file loads and validates (an unknown key, a
//! bad template or a renamed format fails here), the quick start fuses what `filex gen`
//! writes with the counts the generator expects, the custom regex example reads the line it
//! documents, and the HA sample configuration names two NameNodes and two ResourceManagers.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use flate2::write::GzEncoder;

mod common;
use common::filex;

/// The job files `conf/` must offer (the README and `conf/README.md` name them).
const EXPECTED_JOBS: [&str; 4] = [
    "quickstart.toml",
    "custom-regex.toml",
    "hdfs-to-s3-hourly.toml",
    "hdfs-to-hdfs-daily.toml",
];

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

/// Every `*.toml` under `dir`, at any depth, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn json(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The manifest named by the last stdout line of `filex run`.
fn manifest_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let path = last
        .strip_prefix("manifest: file://")
        .unwrap_or_else(|| panic!("last stdout line is not the manifest: {stdout}"));
    json(Path::new(path))
}

/// Copies the example `name` into `dir`, as a user would before running it.
fn copy_example(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    fs::copy(conf_dir().join(name), &to).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    to
}

#[test]
fn every_job_in_conf_loads_and_validates() {
    let files = toml_files(&conf_dir());
    for name in EXPECTED_JOBS {
        assert!(
            files
                .iter()
                .any(|f| f.file_name().is_some_and(|n| n == name)),
            "conf/{name} is missing (found {files:?})"
        );
    }
    for file in &files {
        if let Err(e) = filex::job::Job::load(file, &[]) {
            panic!("{}: {e}", file.display());
        }
    }
}

#[test]
fn the_quick_start_fuses_what_gen_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 temp dir");
    filex(&["gen", "--out", d, "--traps", "--threads", "2"]);
    let job = copy_example("quickstart.toml", dir.path());
    let out = filex(&["run", job.to_str().expect("utf-8"), "--threads", "2"]);

    let m = manifest_of(&out);
    assert_eq!(m["job"], "quickstart");
    let truth = json(&dir.path().join("_gen.json"));
    for key in ["lines_in", "lines_out", "rejected", "out_of_window"] {
        assert_eq!(
            m["counters"][key], truth["totals"][key],
            "{key}: the quick start must read every generated shard"
        );
    }
    let parts = m["partitions"].as_array().expect("partitions");
    assert!(!parts.is_empty());
    for p in parts {
        let path = dir
            .path()
            .join("output")
            .join(p["path"].as_str().expect("path"));
        assert!(path.is_file(), "{} not written", path.display());
    }
}

#[test]
fn the_custom_regex_example_reads_the_line_it_documents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = copy_example("custom-regex.toml", dir.path());
    let text = fs::read_to_string(&job).expect("read job");
    let sample = text
        .lines()
        .find_map(|l| l.trim_start_matches(['#', ' ']).strip_prefix("sample: "))
        .expect("custom-regex.toml documents a `sample:` line");

    let shard = dir.path().join("edge-logs/20261105/0010.log.gz");
    fs::create_dir_all(shard.parent().expect("parent")).expect("mkdir");
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    writeln!(gz, "{sample}\nnot a log line").expect("gzip");
    fs::write(&shard, gz.finish().expect("gzip")).expect("write shard");

    let out = filex(&["run", job.to_str().expect("utf-8")]);
    let m = manifest_of(&out);
    assert_eq!(m["counters"]["lines_out"], 1, "{m}");
    assert_eq!(m["counters"]["rejected"], 1, "{m}");
    let part = m["partitions"][0]["path"].as_str().expect("one partition");
    let bytes = fs::read(dir.path().join("output").join(part)).expect("read output");
    let mut line = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
        &mut line,
    )
    .expect("gunzip");
    let rec: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json line");
    assert_eq!(rec["time"], "2026-11-05T00:10:00.000+08:00");
    assert_eq!(rec["host"], "img.example.com");
    assert_eq!(rec["uri"], "/a.jpg?w=200");
    assert_eq!(rec["status"], 200);
    assert_eq!(rec["request_time_ms"], 12);
    assert_eq!(rec["cache"], "HIT");
}

#[test]
fn the_ha_sample_names_two_namenodes_and_two_resourcemanagers() {
    let dir = conf_dir().join("hadoop/ha");
    let conf = yarn::Config::load(Some(dir.as_path())).expect("load conf/hadoop/ha");
    assert_eq!(
        conf.namenode_addresses(None).expect("namenodes"),
        ["nn1.acme.internal:8020", "nn2.acme.internal:8020"]
    );
    assert_eq!(
        conf.rm_addresses().expect("RMs"),
        ["rm1.acme.internal:8032", "rm2.acme.internal:8032"]
    );
    assert_eq!(
        conf.scheduler_addresses().expect("schedulers"),
        ["rm1.acme.internal:8030", "rm2.acme.internal:8030"]
    );
    assert!(!conf.security_enabled());
}
