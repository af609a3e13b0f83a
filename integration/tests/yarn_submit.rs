//! `filex submit` on the mini cluster (needs `scripts/cluster.sh start`): the same job as
//! `filex run`, as a YARN application with an application master and worker containers.
//! Output must be byte-identical to the embedded run; the executable is uploaded once and
//! localized once per NodeManager; a killed client kills its application;
//! a worker process dying mid-task is retried; a stopped worker is timed out, its container
//! given back and its task re-run; a broken source fails with a clear message.
//! The dying and stalling workers need a binary built with `--features fault-injection`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filex_integration::cli::{app_id, filex, filex_bin, require_fault_injection, unique, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::upload_tree;
use filex_integration::http;
use filex_integration::procs::{am_pid, signal, worker_pids};
use filex_integration::webhdfs::WebHdfs;

/// Generates a corpus, uploads its shards to HDFS under `/filex-it/<id>/shards`, and writes
/// `job-hdfs.toml` reading them and writing to `/filex-it/<id>/out`.
struct Corpus {
    dir: tempfile::TempDir,
    hdfs_root: String,
}

impl Corpus {
    fn new(conf: &Path, webhdfs: &WebHdfs, rate: &str) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let out = filex(
            &[
                "gen",
                "--out",
                dir.path().to_str().unwrap(),
                "--seed",
                "11",
                "--hours",
                "1",
                "--rate",
                rate,
                "--traps",
            ],
            conf,
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hdfs_root = format!("/filex-it/{}", unique("yarn"));
        upload_tree(
            webhdfs,
            &dir.path().join("shards"),
            &format!("{hdfs_root}/shards"),
        );
        let job = fs::read_to_string(dir.path().join("job.toml")).unwrap();
        let hdfs_job = job
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{hdfs_root}/shards/"),
            )
            .replace(
                "root = \"output\"",
                &format!("root = \"hdfs://{hdfs_root}/out\""),
            );
        assert_ne!(
            job, hdfs_job,
            "the generated job names its shards and output as expected"
        );
        fs::write(dir.path().join("job-hdfs.toml"), hdfs_job).unwrap();
        Corpus { dir, hdfs_root }
    }
    fn local_job(&self) -> String {
        self.dir.path().join("job.toml").display().to_string()
    }
    fn hdfs_job(&self) -> String {
        self.dir.path().join("job-hdfs.toml").display().to_string()
    }
}

fn manifest_partitions(manifest: &serde_like::Json) -> Vec<(String, u64)> {
    manifest.partitions()
}

/// A tiny reader of the manifest's partition list (the integration crate is std only).
mod serde_like {
    pub struct Json(pub String);
    impl Json {
        /// `(path, bytes)` of every partition.
        pub fn partitions(&self) -> Vec<(String, u64)> {
            let mut out = Vec::new();
            let mut rest = self.0.as_str();
            while let Some(i) = rest.find("\"path\": \"") {
                rest = &rest[i + 9..];
                let end = rest.find('"').unwrap();
                let path = rest[..end].to_string();
                let b = rest.find("\"bytes\": ").unwrap();
                let digits: String = rest[b + 9..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                out.push((path, digits.parse().unwrap()));
                if path_is_rejects(&out) {
                    out.pop();
                }
            }
            out
        }
    }
    fn path_is_rejects(v: &[(String, u64)]) -> bool {
        v.last().is_some_and(|(p, _)| p.starts_with("_rejects"))
    }
}

/// Runs the local job with `filex run`; returns its partitions (path, bytes).
fn local_partitions(corpus: &Corpus, conf: &Path) -> Vec<(String, u64)> {
    let local = filex(&["run", &corpus.local_job()], conf, &[]);
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let local_stdout = String::from_utf8_lossy(&local.stdout).to_string();
    let manifest_path = local_stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("manifest: file://"))
        .unwrap()
        .to_string();
    let local_manifest = serde_like::Json(fs::read_to_string(&manifest_path).unwrap());
    let partitions = manifest_partitions(&local_manifest);
    assert!(!partitions.is_empty());
    partitions
}

/// The bytes of every partition under the corpus's HDFS output root.
fn hdfs_partitions(webhdfs: &WebHdfs, corpus: &Corpus, paths: &[(String, u64)]) -> Vec<Vec<u8>> {
    paths
        .iter()
        .map(|(path, _)| {
            webhdfs
                .open(&format!("{}/out/{path}", corpus.hdfs_root))
                .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"))
        })
        .collect()
}

fn app_state(rm_web: &str, id: &str) -> String {
    let r = http::request("GET", &format!("{rm_web}/ws/v1/cluster/apps/{id}"), None).unwrap();
    let text = r.text();
    filex_integration::webhdfs::json_field(&text, "state")
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

#[test]
fn submit_matches_run_byte_for_byte() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "20");

    let partitions = local_partitions(&corpus, &cluster.conf_dir);

    let started = Instant::now();
    let out = filex(
        &[
            "submit",
            &corpus.hdfs_job(),
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ],
        &cluster.conf_dir,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "submit failed after {:?}: {stdout}\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    let id = app_id(&stdout);
    assert_eq!(app_state(&cluster.env.rm_webapp, &id), "FINISHED");
    for (path, bytes) in &partitions {
        let remote = webhdfs
            .open(&format!("{}/out/{path}", corpus.hdfs_root))
            .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"));
        let local = fs::read(corpus.dir.path().join("output").join(path)).unwrap();
        assert_eq!(remote.len() as u64, *bytes);
        assert!(
            remote == local,
            "{path} differs between filex run and filex submit"
        );
    }
    // The staging directory is gone.
    let staging = format!("/user/{}/.filexStaging/{id}", user());
    assert!(
        webhdfs.file_status(&staging).is_err(),
        "staging {staging} left behind"
    );
}

#[test]
fn a_dying_worker_is_retried_and_the_output_is_identical() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "10");
    let clean = filex(
        &[
            "submit",
            &corpus.hdfs_job(),
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ],
        &cluster.conf_dir,
        &[],
    );
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    let paths = local_partitions(&corpus, &cluster.conf_dir);
    let want = hdfs_partitions(&webhdfs, &corpus, &paths);
    let crashed = filex(
        &[
            "submit",
            &corpus.hdfs_job(),
            "--force-new",
            // Every map task runs again (a re-run would keep the unchanged partitions).
            "--full",
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
            // On workers, not in the AM (uber mode): the hook kills a worker process.
            "-D",
            "filex.uber.max-bytes=0",
        ],
        &cluster.conf_dir,
        &[("FILEX_FAULT_EXIT_AT", "map:0:0")],
    );
    let stdout = String::from_utf8_lossy(&crashed.stdout).to_string();
    assert!(
        crashed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&crashed.stderr)
    );
    assert!(
        hdfs_partitions(&webhdfs, &corpus, &paths) == want,
        "the output after a worker died differs from the clean run"
    );
}

#[test]
fn a_stopped_worker_is_timed_out_and_its_task_rerun() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "10");
    let paths = local_partitions(&corpus, &cluster.conf_dir);
    let started = Instant::now();
    let mut child = Command::new(filex_bin())
        .args(["submit", &corpus.hdfs_job(), "--force-new"])
        .args([
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ])
        .args(["-D", "filex.task.timeout=5000"])
        // Worker containers to stop, not a job run in the AM (uber mode).
        .args(["-D", "filex.uber.max-bytes=0"])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("FILEX_LOG", "warn")
        // The first attempt of map 0 would sleep ten minutes: the run cannot end in time
        // unless that attempt is given up.
        .env("FILEX_FAULT_STALL_AT", "map:0:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let id = loop {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(l) = text
            .lines()
            .find(|l| l.starts_with("Submitted application "))
        {
            if text.contains("Submitted application application_") && l.len() > 30 {
                break l["Submitted application ".len()..].trim().to_string();
            }
        }
        assert!(n > 0, "no application id: {text}");
    };
    // SIGSTOP every worker once they have connected and taken tasks.
    let deadline = Instant::now() + Duration::from_secs(120);
    let stopped = loop {
        let pids = worker_pids(&id);
        if !pids.is_empty() {
            std::thread::sleep(Duration::from_secs(3));
            let pids = worker_pids(&id);
            signal("-STOP", &pids);
            break pids;
        }
        assert!(Instant::now() < deadline, "no worker of {id} started");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let text = format!("{}{rest}", String::from_utf8_lossy(&seen));
    // Leave nothing stopped behind, whatever happened.
    signal("-CONT", &stopped);
    assert!(status.success(), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "took {:?}: the stalled attempt was waited for",
        started.elapsed()
    );
    for (path, bytes) in &paths {
        let remote = webhdfs
            .open(&format!("{}/out/{path}", corpus.hdfs_root))
            .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"));
        let local = fs::read(corpus.dir.path().join("output").join(path)).unwrap();
        assert_eq!(remote.len() as u64, *bytes);
        assert!(remote == local, "{path} differs from the clean run");
    }
    // The stopped workers' containers were killed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stopped
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(
            Instant::now() < deadline,
            "stopped workers {stopped:?} still exist"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Starts `filex submit` of `job` with reduce 0's first attempt stalled, returns the child
/// and the application id once printed.
fn submit_stalled_at_reduce(conf: &Path, job: &str) -> (std::process::Child, String) {
    let mut child = Command::new(filex_bin())
        .args(["submit", job, "--force-new", "-D", "filex.workers.max=2"])
        // Two workers: one stalls in reduce 0, the other stages the other partitions.
        .args(["-D", "filex.workers.min=2"])
        .args(["-D", "filex.worker.memory-mb=512"])
        .args(["-D", "filex.uber.max-bytes=0"])
        .env("HADOOP_CONF_DIR", conf)
        .env("FILEX_LOG", "warn")
        .env("FILEX_FAULT_STALL_AT", "reduce:0:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let id = loop {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(line) = text
            .split_inclusive('\n')
            .find(|l| l.starts_with("Submitted application ") && l.ends_with('\n'))
        {
            break line["Submitted application ".len()..].trim().to_string();
        }
        assert!(n > 0, "no application id: {text}");
    };
    child.stdout = Some(stdout);
    (child, id)
}

/// Waits until `path` exists on HDFS.
fn wait_for(webhdfs: &WebHdfs, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while webhdfs.file_status(path).is_err() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_killed_run_leaves_nothing_and_its_rerun_matches_a_clean_run() {
    require_fault_injection();
    let cluster = require_cluster();
    let conf = &cluster.conf_dir;
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(conf, &webhdfs, "10");
    let paths = local_partitions(&corpus, conf);
    let out_root = format!("{}/out", corpus.hdfs_root);
    let staging_of = |id: &str| format!("/user/{}/.filexStaging/{id}", user());

    // 1. `filex kill` while reduces stage their output, the client following: it exits 3
    //    and nothing of the application is left.
    let (mut child, id) = submit_stalled_at_reduce(conf, &corpus.hdfs_job());
    wait_for(&webhdfs, &format!("{out_root}/_temporary/{id}/_attempts"));
    let kill = filex(&["kill", &id], conf, &[]);
    assert!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3), "{rest}");
    assert!(rest.contains(&format!("Removed what {id} left")), "{rest}");
    assert!(
        webhdfs
            .file_status(&format!("{out_root}/_temporary/{id}"))
            .is_err(),
        "_temporary/{id} left behind"
    );
    assert!(
        webhdfs.file_status(&staging_of(&id)).is_err(),
        "staging of {id} left"
    );

    // 2. A client that dies with its application (SIGKILL, then `filex kill`), and a zombie
    //    that wrote after the AM was gone: the next run of the window removes it all.
    let (mut child, dead) = submit_stalled_at_reduce(conf, &corpus.hdfs_job());
    wait_for(&webhdfs, &format!("{out_root}/_temporary/{dead}/_attempts"));
    child.kill().unwrap();
    child.wait().unwrap();
    let kill = filex(&["kill", &dead], conf, &[]);
    assert!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    assert_eq!(app_state(&cluster.env.rm_webapp, &dead), "KILLED");
    let zombie = format!("{out_root}/_temporary/{dead}/_attempts/r00000.0/late.log.gz");
    webhdfs
        .create(&zombie, b"written by a zombie", true)
        .unwrap();
    let rerun = filex(&["submit", &corpus.hdfs_job()], conf, &[]);
    let stdout = String::from_utf8_lossy(&rerun.stdout).to_string();
    assert!(rerun.status.success(), "{stdout}");
    assert!(
        webhdfs
            .file_status(&format!("{out_root}/_temporary"))
            .is_err(),
        "_temporary left under the output root after the re-run"
    );
    assert!(
        webhdfs.file_status(&staging_of(&dead)).is_err(),
        "staging of {dead} left"
    );
    for (path, bytes) in &paths {
        let remote = webhdfs
            .open(&format!("{out_root}/{path}"))
            .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"));
        let local = fs::read(corpus.dir.path().join("output").join(path)).unwrap();
        assert_eq!(remote.len() as u64, *bytes);
        assert!(remote == local, "{path} differs from the clean run");
    }
}

#[test]
fn a_second_am_attempt_runs_the_job_again_after_the_first_is_killed() {
    let cluster = require_cluster();
    let conf = &cluster.conf_dir;
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(conf, &webhdfs, "10");
    let paths = local_partitions(&corpus, conf);
    let mut child = Command::new(filex_bin())
        .args([
            "submit",
            &corpus.hdfs_job(),
            "--force-new",
            "-D",
            "filex.workers.max=2",
        ])
        .args(["-D", "filex.worker.memory-mb=512"])
        .env("HADOOP_CONF_DIR", conf)
        .env("FILEX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let id = loop {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(line) = text
            .split_inclusive('\n')
            .find(|l| l.starts_with("Submitted application ") && l.ends_with('\n'))
        {
            break line["Submitted application ".len()..].trim().to_string();
        }
        assert!(n > 0, "no application id: {text}");
    };
    // SIGKILL the first attempt's AM as soon as it runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if let Some(pid) = am_pid(&id, 1) {
            break pid;
        }
        assert!(Instant::now() < deadline, "no AM of {id} started");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let text = format!("{}{rest}", String::from_utf8_lossy(&seen));
    assert!(status.success(), "{text}");
    assert!(text.contains("YARN started AM attempt 2"), "{text}");
    for (path, bytes) in &paths {
        let remote = webhdfs
            .open(&format!("{}/out/{path}", corpus.hdfs_root))
            .unwrap_or_else(|e| panic!("{path} missing on HDFS: {e}"));
        let local = fs::read(corpus.dir.path().join("output").join(path)).unwrap();
        assert_eq!(remote.len() as u64, *bytes);
        assert!(remote == local, "{path} differs from the clean run");
    }
    assert!(
        webhdfs
            .file_status(&format!("{}/out/_temporary", corpus.hdfs_root))
            .is_err(),
        "_temporary left under the output root"
    );
}

#[test]
fn sigterm_to_the_client_kills_the_application() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "10");
    let mut child = Command::new(filex_bin())
        .args(["submit", &corpus.hdfs_job(), "--force-new"])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("FILEX_LOG", "warn")
        // The first map task stalls, so the application is still running when killed.
        .env("FILEX_FAULT_STALL_AT", "map:0:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the id, then until the RM has the application.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(l) = text
            .lines()
            .find(|l| l.starts_with("Submitted application ") && text.contains('\n'))
        {
            break l
                .trim_start_matches("Submitted application ")
                .trim()
                .to_string();
        }
        assert!(
            n > 0 && Instant::now() < deadline,
            "no application id: {text}"
        );
    };
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "exit code 3 after a kill");
    assert_eq!(app_state(&cluster.env.rm_webapp, &id), "KILLED");
    // No container of the application is left running.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http::request(
            "GET",
            &format!("{}/ws/v1/cluster/apps/{id}", cluster.env.rm_webapp),
            None,
        )
        .unwrap();
        let text = r.text();
        let running: i64 = filex_integration::webhdfs::json_field(&text, "runningContainers")
            .and_then(|v| v.trim_matches('"').parse().ok())
            .unwrap_or(0);
        if running <= 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{running} containers still running after the kill"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_unreachable_source_fails_with_a_clear_message() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "5");
    let out = filex(
        &[
            "submit",
            &corpus.hdfs_job(),
            "--force-new",
            "--set",
            "source.0.shards=hdfs://127.0.0.1:9/nowhere/%Y%m%d/%H%M/*.gz",
        ],
        &cluster.conf_dir,
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("127.0.0.1:9"),
        "the diagnostics name the address: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("yarn logs -applicationId {}", app_id(&stdout))),
        "a failed submit says where the containers' logs are: {stderr}"
    );
}

/// The `"key": number` values inside the JSON array `"array": [ … ]` of `doc` (std only: the
/// status document is pretty-printed by serde_json, one key per line).
fn numbers_in(doc: &str, array: &str, key: &str) -> Vec<u64> {
    let Some(start) = doc.find(&format!("\"{array}\": [")) else {
        return Vec::new();
    };
    let section = &doc[start..];
    let section = &section[..section.find("\n  ]").unwrap_or(section.len())];
    section
        .match_indices(&format!("\"{key}\": "))
        .filter_map(|(i, m)| {
            let digits: String = section[i + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn the_status_page_shows_workers_and_failures_and_the_tracking_link_outlives_the_am() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "20");
    // The worker running the first attempt of map task 0 dies (exit 137): a failed attempt
    // with a reason, a retry, and a worker row that counts it.
    let mut child = Command::new(filex_bin())
        .args(["submit", &corpus.hdfs_job(), "--force-new"])
        .args([
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
            // Worker rows to show, whatever the size of the corpus (no uber mode).
            "-D",
            "filex.uber.max-bytes=0",
        ])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("FILEX_LOG", "warn")
        .env("FILEX_FAULT_EXIT_AT", "map:0:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    // While it runs: the AM's status address from the RM (its RPC port is the status port).
    let deadline = Instant::now() + Duration::from_secs(240);
    let (mut out, mut doc, mut html) = (String::new(), String::new(), String::new());
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the application did not end: {out}"
        );
        std::thread::sleep(Duration::from_millis(250));
        while let Ok(line) = lines.try_recv() {
            out.push_str(&line);
            out.push('\n');
        }
        if !out.contains("Submitted application ") {
            continue;
        }
        let id = app_id(&out);
        let Ok(app) = http::request(
            "GET",
            &format!("{}/ws/v1/cluster/apps/{id}", cluster.env.rm_webapp),
            None,
        ) else {
            continue;
        };
        let app = app.text();
        let addr = filex_integration::webhdfs::json_field(&app, "amRPCAddress").unwrap_or("");
        if !addr.contains(':') || addr.starts_with("N/A") {
            continue;
        }
        if let Ok(r) = http::request("GET", &format!("http://{addr}/status"), None) {
            if r.status == 200 && r.text().contains("\"containers\"") {
                doc = r.text();
            }
        }
        if doc.contains("container_") {
            if let Ok(r) = http::request("GET", &format!("http://{addr}/"), None) {
                if r.status == 200 {
                    html = r.text();
                }
            }
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    out.extend(lines.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "submit failed: {out}");
    let id = app_id(&out);
    assert!(
        doc.contains(&id),
        "the status document is this application's: {doc}"
    );

    // The last document seen: one row per worker container, with its node, what it did and
    // a link to its logs on its NodeManager; the failed attempt with its reason.
    let logs = "/node/containerlogs/container_";
    assert!(doc.contains("\"container_id\": \"container_"), "{doc}");
    assert!(
        doc.contains(logs) && doc.contains(&format!("/{}\"", user())),
        "{doc}"
    );
    assert!(
        numbers_in(&doc, "containers", "tasks_done")
            .iter()
            .sum::<u64>()
            > 0,
        "no worker has done a task: {doc}"
    );
    assert!(
        numbers_in(&doc, "containers", "task_failures").contains(&1),
        "the dying worker's failure is not counted: {doc}"
    );
    assert!(doc.contains("\"task\": \"map task 0\""), "{doc}");
    assert!(doc.contains(" UTC\""), "readable times: {doc}");
    // The page shows the same, as a table with links.
    assert!(
        html.contains("<th>container</th>") && html.contains(logs),
        "{html}"
    );
    assert!(
        html.contains("map task 0") && html.contains(" UTC"),
        "{html}"
    );
    // The log link works on the NodeManager.
    let link_at = doc.find("\"logs_url\": \"").unwrap() + "\"logs_url\": \"".len();
    let link = &doc[link_at..link_at + doc[link_at..].find('"').unwrap()];
    let nm = http::request("GET", link, None).unwrap();
    assert_eq!(nm.status, 200, "{link}: {}", nm.text());

    // After the AM has gone, the application's tracking link (the RM's web proxy) leads to
    // the RM's application page, not to the AM's dead address.
    let proxy = http::request(
        "GET",
        &format!("{}/proxy/{id}/", cluster.env.rm_webapp),
        None,
    )
    .unwrap();
    let location = proxy.header("location").unwrap_or_default().to_string();
    assert!(
        (300..400).contains(&proxy.status) && location.ends_with(&format!("/cluster/app/{id}")),
        "the tracking link goes to {} {location}",
        proxy.status
    );
}

/// The copies of `binary` that the NodeManagers keep in their public caches
/// (`<local dir>/filecache/<n>/filex`), as (local dir, copy).
fn public_copies(binary: &[u8]) -> BTreeSet<(PathBuf, PathBuf)> {
    fn children(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
    let mut out = BTreeSet::new();
    let test_data = filex_integration::cluster::cluster_dir().join("work/test-data/filex");
    for yarn in children(&test_data) {
        for local in children(&yarn) {
            let is_local_dir = local
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("filex-localDir-nm-"));
            if !is_local_dir {
                continue;
            }
            for entry in children(&local.join("filecache")) {
                let copy = entry.join("filex");
                let same = fs::metadata(&copy).is_ok_and(|m| m.len() == binary.len() as u64)
                    && fs::read(&copy).is_ok_and(|b| b == binary);
                if same {
                    out.insert((local.clone(), copy));
                }
            }
        }
    }
    out
}

/// The HDFS path and the rest of `filex submit`'s `Executable <url>: …` line.
fn executable_line(stdout: &str, namenode: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Executable "))
        .unwrap_or_else(|| panic!("no Executable line in: {stdout}"));
    let (url, rest) = line.split_once(": ").unwrap();
    let path = url
        .strip_prefix(namenode.trim_end_matches('/'))
        .unwrap_or_else(|| panic!("{url} is not on {namenode}"));
    (path.to_string(), rest.to_string())
}

#[test]
fn the_executable_is_uploaded_once_and_kept_by_each_node_manager() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs, "5");
    // A cluster-wide cache directory: created by WebHDFS with the NameNode's umask (755).
    let lib_dir = format!("{}/apps/filex/lib", corpus.hdfs_root);
    assert!(webhdfs.mkdirs(&lib_dir).unwrap());
    let binary = fs::read(filex_bin()).unwrap();
    let before = public_copies(&binary);
    let lib_setting = format!("filex.yarn.lib-dir={lib_dir}");
    let submit = || {
        let out = filex(
            &[
                "submit",
                &corpus.hdfs_job(),
                "--force-new",
                "-D",
                &lib_setting,
                "-D",
                "filex.workers.max=2",
                "-D",
                "filex.worker.memory-mb=512",
            ],
            &cluster.conf_dir,
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let modified = |path: &str| {
        filex_integration::webhdfs::json_field(
            &webhdfs.file_status(path).unwrap(),
            "modificationTime",
        )
        .unwrap()
        .to_string()
    };

    let first = submit();
    let (path, said) = executable_line(&first, &cluster.env.namenode);
    assert!(path.starts_with(&format!("{lib_dir}/")), "{path}");
    assert!(path.ends_with("/filex"), "{path}");
    assert_eq!(said, format!("uploaded {} bytes (PUBLIC)", binary.len()));
    assert!(
        webhdfs.open(&path).unwrap() == binary,
        "{path} is not the executable"
    );
    let uploaded_at = modified(&path);

    let second = submit();
    let (again, said) = executable_line(&second, &cluster.env.namenode);
    assert_eq!(again, path);
    assert_eq!(said, "cached, not uploaded (PUBLIC)");
    assert_eq!(modified(&path), uploaded_at, "{path} was written again");
    // Only the digest directory's one file: the temporary name is gone.
    let listing = webhdfs
        .list_status(path.trim_end_matches("/filex"))
        .unwrap();
    assert_eq!(listing.matches("\"pathSuffix\"").count(), 1, "{listing}");

    // YARN localized it as PUBLIC: into the NodeManagers' shared file cache, at most one copy
    // on each, however many containers of the two applications ran there.
    let new: Vec<_> = public_copies(&binary)
        .difference(&before)
        .cloned()
        .collect();
    assert!(
        !new.is_empty(),
        "no NodeManager has the executable in its public cache"
    );
    let nodes: BTreeSet<_> = new.iter().map(|(local, _)| local).collect();
    assert_eq!(
        nodes.len(),
        new.len(),
        "two public copies on one NodeManager: {new:?}"
    );
}
