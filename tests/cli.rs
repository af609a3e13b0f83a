//! The binary's command-line surface, as scripts and schedulers meet it: what its logs look
//! like when stderr is not a terminal, `filex validate`, the shell completions and the man
//! page, and `filex --version`.

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

fn conf_jobs() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut jobs: Vec<_> = std::fs::read_dir(&dir)
        .expect("conf/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    jobs.sort();
    jobs
}

#[test]
fn the_conf_examples_validate() {
    let jobs = conf_jobs();
    assert!(jobs.len() >= 4, "{jobs:?}");
    for job in jobs {
        let out = filex(&["validate", job.to_str().expect("utf-8")]);
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains(": OK: job '"), "{stdout}");
    }
}

#[test]
fn validate_names_every_problem_on_its_own_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        r#"name = "three-problems"
[window]
start = "2026-11-05T00:00:00+08:00"
end = "2026-11-05T03:00:00+08:00"
[[source]]
name = "edge"
format = { regex = '(?P<host>\S+) \[(?P<time>[^\]]+', time_layout = "%d/%b/%Y:%H:%M:%S %z" }
shards = "hdfs://nn:8020/logs/%Y%m%d/%H%M/*.gz"
[output]
root = "s3://bucket/fused"
path = "{domain}/%Y%m%d/{domain}_%Y%m%d%H.log.gz"
gzip_level = 12
[output.store]
part_size = "1M"
"#,
    )
    .expect("write job");
    let job = job.to_str().expect("utf-8");
    let out = filex_status(&["validate", job], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    for (line, key) in lines.iter().zip([
        "source[0].format",
        "output.gzip_level",
        "output.store.part_size",
    ]) {
        assert!(line.starts_with(&format!("{job}: ")), "{line}");
        assert!(line.contains(key), "{line} does not name {key}");
    }
    // --set fixes them, and nothing was contacted (nn:8020 and the bucket do not exist).
    let out = filex(&[
        "validate",
        job,
        "--set",
        r"source.0.format.regex=(?P<host>\S+) \[(?P<time>[^\]]+)\]",
        "--set",
        "output.gzip_level=9",
        "--set",
        "output.store.part_size=8M",
    ]);
    assert!(text(&out.stdout).contains("OK: job 'three-problems'"));
    // A file that does not parse is one problem.
    std::fs::write(dir.path().join("bad.toml"), "name = \n").expect("write");
    let out = filex_status(
        &[
            "validate",
            dir.path().join("bad.toml").to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn completions_and_the_man_page_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = filex(&["completions", shell]);
        let script = text(&out.stdout);
        for sub in ["submit", "validate", "status", "completions"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let bash = dir.path().join("filex.bash");
    std::fs::write(&bash, filex(&["completions", "bash"]).stdout).expect("write");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&bash)
        .output()
        .expect("run bash -n");
    assert!(check.status.success(), "{}", text(&check.stderr));

    let man = text(&filex(&["man"]).stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH filex"),
        "{}",
        &man[..man.len().min(200)]
    );
    assert!(man.contains(".TH filex"), "no title");
    for sub in ["submit", "validate", "status", "completions"] {
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let version = text(&filex(&["--version"]).stdout);
    let rest = version
        .strip_prefix(&format!("filex {}", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version:?}"));
    let rest = rest.trim_end_matches('\n');
    let rest = rest.strip_suffix(" +fault-injection").unwrap_or(rest);
    let head = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    match head {
        // Tests run from a checkout: the commit is there, possibly marked dirty.
        Some(head) => {
            let inner = rest
                .strip_prefix(" (")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no commit in {version:?}"));
            assert_eq!(inner.trim_end_matches("-dirty"), head, "{version:?}");
        }
        None => assert_eq!(rest, "", "{version:?}"),
    }
}

#[test]
fn viewfs_locations_the_mount_table_cannot_serve_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = corpus(dir.path());
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    let conf_s = conf.to_str().expect("utf-8");
    // Nothing listens on port 1: each refusal must come before any NameNode is asked.
    let table = [
        "-D",
        "fs.viewfs.mounttable.t.link./out=hdfs://127.0.0.1:1/fused",
        "-D",
        "fs.viewfs.mounttable.t.link./out/big=hdfs://127.0.0.1:1/big",
    ];
    let refused = |extra: &[&str], root: &str| -> String {
        let root = format!("output.root={root}");
        let mut args = vec!["run", job.as_str(), "--set", root.as_str()];
        args.extend_from_slice(&table);
        args.extend_from_slice(extra);
        let out = filex_status(&args, &[("HADOOP_CONF_DIR", conf_s)]);
        assert!(!out.status.success(), "filex {args:?} must fail");
        text(&out.stderr)
    };

    let spread = refused(&[], "viewfs://t/out");
    assert!(
        spread.contains("viewfs://t/out")
            && spread.contains("must lie within one mount link")
            && spread.contains("/out/big → hdfs://127.0.0.1:1/big"),
        "a root with links below it: {spread}"
    );
    let unmounted = refused(&[], "viewfs://t/elsewhere");
    assert!(
        unmounted.contains("no link of mount table 't' covers /elsewhere")
            && unmounted.contains("no linkFallback (links: /out, /out/big)"),
        "a path below no link: {unmounted}"
    );
    let no_table = refused(&[], "viewfs://nope/out");
    assert!(
        no_table.contains("no mount table 'nope'"),
        "an unknown table: {no_table}"
    );
    let plain = refused(&["-D", "fs.defaultFS=viewfs://t"], "hdfs:///out");
    assert!(
        plain.contains("write viewfs:///"),
        "hdfs:/// on a viewfs default file system: {plain}"
    );
}
