//! `filex status --json`, `filex yarn apps --json` and `filex yarn nodes --json` against the
//! mini cluster (needs `scripts/cluster.sh start`): the documents scripts and the Airflow
//! trigger parse, with the keys of the README's contract, for a real application followed
//! from ACCEPTED to its end.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use filex_integration::cli::filex_bin;
use filex_integration::cluster::require_cluster;
use serde_json::Value;

fn filex(args: &[&str], conf: &Path) -> Output {
    Command::new(filex_bin())
        .args(args)
        .env("HADOOP_CONF_DIR", conf)
        .env("YARN_CONF_DIR", conf)
        .env("FILEX_LOG", "warn")
        .output()
        .expect("run filex")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `args`, expects exit 0 and one JSON document on stdout.
fn json(args: &[&str], conf: &Path) -> Value {
    let out = filex(args, conf);
    assert_eq!(
        out.status.code(),
        Some(0),
        "filex {}: {}\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "filex {}: not JSON ({e}): {}",
            args.join(" "),
            text(&out.stdout)
        )
    })
}

const APP_KEYS: &[&str] = &[
    "application_id",
    "name",
    "user",
    "queue",
    "application_type",
    "state",
    "final_status",
    "progress",
    "tracking_url",
    "diagnostics",
    "start_time_ms",
    "finish_time_ms",
    "tags",
];

fn assert_app_shape(v: &Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for k in APP_KEYS {
        assert!(obj.contains_key(*k), "no {k} in {v}");
    }
    for k in [
        "application_id",
        "name",
        "user",
        "queue",
        "application_type",
        "state",
    ] {
        assert!(v[k].is_string(), "{k} is not a string: {v}");
    }
    for k in ["final_status", "tracking_url", "diagnostics"] {
        assert!(v[k].is_string(), "{k} is not a string: {v}");
    }
    let p = v["progress"].as_f64().expect("progress is a number");
    assert!((0.0..=1.0).contains(&p), "{v}");
    assert!(
        v["start_time_ms"].is_i64() && v["finish_time_ms"].is_i64(),
        "{v}"
    );
    assert!(
        v["tags"]
            .as_array()
            .is_some_and(|t| t.iter().all(Value::is_string)),
        "{v}"
    );
}

#[test]
fn status_apps_and_nodes_as_json() {
    let cluster = require_cluster();
    let conf = cluster.conf_dir.as_path();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("json-probe-{nanos:x}");
    // An application that the RM accepts and that fails quickly: its one source is on a
    // NameNode address nothing listens on.
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "{name}"
[window]
start = "2026-11-05T00:00:00Z"
end = "2026-11-05T01:00:00Z"
[[source]]
name = "upyun"
format = "upyun"
shards = "hdfs://127.0.0.1:9/nowhere/%Y%m%d/%H%M/*.gz"
[output]
root = "hdfs:///filex-it/{name}/out"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log.gz"
"#
        ),
    )
    .unwrap();
    let out = filex(
        &["submit", job.to_str().unwrap(), "--detach", "--force-new"],
        conf,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Submitted application "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no application id in: {stdout}"));

    let deadline = Instant::now() + Duration::from_secs(180);
    let report = loop {
        let v = json(&["status", &id, "--json"], conf);
        assert_app_shape(&v);
        assert_eq!(v["application_id"], id.as_str());
        let state = v["state"].as_str().unwrap().to_string();
        assert!(
            [
                "NEW",
                "NEW_SAVING",
                "SUBMITTED",
                "ACCEPTED",
                "RUNNING",
                "FINISHED",
                "FAILED",
                "KILLED"
            ]
            .contains(&state.as_str()),
            "{v}"
        );
        if ["FINISHED", "FAILED", "KILLED"].contains(&state.as_str()) {
            break v;
        }
        assert_eq!(v["final_status"], "UNDEFINED", "{v}");
        assert_eq!(v["finish_time_ms"], 0, "{v}");
        assert!(Instant::now() < deadline, "{id} still {state}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(report["application_type"], "FILEX", "{report}");
    // FINISHED when the AM unregisters with FAILED, FAILED if it died first.
    assert!(
        ["FINISHED", "FAILED"].contains(&report["state"].as_str().unwrap()),
        "{report}"
    );
    assert_eq!(report["final_status"], "FAILED", "{report}");
    assert!(report["start_time_ms"].as_i64().unwrap() > 0, "{report}");
    assert!(
        report["finish_time_ms"].as_i64().unwrap() >= report["start_time_ms"].as_i64().unwrap(),
        "{report}"
    );
    assert!(
        report["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from(format!("filex-job:{name}"))),
        "{report}"
    );
    assert!(
        report["diagnostics"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{report}"
    );

    // The list holds the same object.
    let apps = json(
        &["yarn", "apps", "--all", "--type", "FILEX", "--json"],
        conf,
    );
    let apps = apps.as_array().expect("an array");
    let listed = apps
        .iter()
        .find(|a| a["application_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in yarn apps --all"));
    assert_app_shape(listed);
    assert_eq!(listed, &report);

    let nodes = json(&["yarn", "nodes", "--json"], conf);
    let nodes = nodes.as_array().expect("an array");
    assert!(!nodes.is_empty());
    for n in nodes {
        assert_eq!(n["state"], "RUNNING", "{n}");
        assert!(
            n["node_id"].as_str().is_some_and(|s| s.contains(':')),
            "{n}"
        );
        assert!(n["memory_capacity_mb"].as_i64().unwrap() > 0, "{n}");
        assert!(n["vcores_capacity"].as_i64().unwrap() > 0, "{n}");
        assert!(n["memory_used_mb"].as_i64().unwrap() >= 0, "{n}");
        for k in ["http_address", "rack"] {
            assert!(n[k].is_string(), "{n}");
        }
        assert!(n["containers"].is_i64() && n["vcores_used"].is_i64(), "{n}");
    }

    // An id the RM does not know: exit 5, nothing on stdout.
    let out = filex(
        &["status", "application_1000000000000_9999", "--json"],
        conf,
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
