//! The binary's command-line surface, as scripts and schedulers meet it: what its logs look
//! like when stderr is not a terminal.

use std::path::Path;

mod common;
use common::{filex, filex_env, filex_status};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small corpus from `filex gen`, and its job file.
fn corpus(dir: &Path) -> String {
    let d = dir.to_str().expect("utf-8 temp dir");
    filex(&[
        "gen",
        "--out",
        d,
        "--hours",
        "1",
        "--rate",
        "0.2",
        "--threads",
        "2",
    ]);
    dir.join("job.toml").to_str().expect("utf-8").to_string()
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = corpus(dir.path());
    let out = filex_env(
        &["run", &job, "--threads", "2"],
        &[("FILEX_LOG", "info"), ("FILEX_LOG_FORMAT", "text")],
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("planned"), "the run logs at info: {stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "escape codes in captured logs: {stderr:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = corpus(dir.path());
    for (args, env) in [
        (vec!["--log-format", "json", "run", &job], vec![]),
        (vec!["run", &job], vec![("FILEX_LOG_FORMAT", "json")]),
    ] {
        let mut env = env;
        env.push(("FILEX_LOG", "info"));
        let out = filex_env(&args, &env);
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "no log lines");
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
            assert!(v.is_object(), "{line}");
            assert!(
                v["level"].is_string() && v["timestamp"].is_string(),
                "{line}"
            );
        }
        assert!(
            lines.iter().any(|l| l.contains("\"message\":\"planned\"")),
            "{stderr}"
        );
    }
    let bad = filex_status(&["--log-format", "xml", "formats"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
}
