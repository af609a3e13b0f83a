//! Uber mode on the mini cluster (needs `scripts/cluster.sh start`): a job of at most
//! `filex.uber.max-bytes` of input runs its tasks in the application master's container and
//! no worker container is ever launched (no container of the application but the AM's has a
//! log directory on any NodeManager); its output is byte for byte `filex run`'s; a job above
//! the threshold, or with `filex.uber.max-bytes=0`, runs on worker containers with the same
//! bytes; a task attempt that fails in the AM is retried in a worker container, and the run
//! succeeds with the same bytes. The failing attempt needs a binary built with
//! `--features fault-injection` (`FILEX_FAULT_FAIL_AT`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filex_integration::cli::{
    app_id, filex, filex_bin, require_fault_injection, text, unique, user,
};
use filex_integration::cluster::{require_cluster, Cluster};
use filex_integration::files::local_tree;
use filex_integration::http;
use filex_integration::webhdfs::{json_field, WebHdfs};

/// A generated one-hour corpus, its shards on HDFS under `/filex-it/uber-…/shards`, and
/// what `filex run` writes from the local copy (manifests and rejects aside).
struct Corpus {
    dir: tempfile::TempDir,
    hdfs_root: String,
    /// Compressed bytes of the shards.
    bytes: u64,
    want: BTreeMap<String, Vec<u8>>,
}

impl Corpus {
    fn new(cluster: &Cluster, webhdfs: &WebHdfs, rate: &str) -> Corpus {
        let conf = &cluster.conf_dir;
        let dir = tempfile::tempdir().unwrap();
        let gen = filex(
            &[
                "gen",
                "--out",
                dir.path().to_str().unwrap(),
                "--seed",
                "17",
                "--hours",
                "1",
                "--rate",
                rate,
                "--traps",
            ],
            conf,
            &[],
        );
        assert!(gen.status.success(), "{}", text(&gen));
        let hdfs_root = format!("/filex-it/{}", unique("uber"));
        let shards = local_tree(&dir.path().join("shards"));
        let mut bytes = 0;
        for (rel, data) in &shards {
            webhdfs
                .create(&format!("{hdfs_root}/shards/{rel}"), data, true)
                .unwrap();
            bytes += data.len() as u64;
        }
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
            "the generated job names its shards and output"
        );
        fs::write(dir.path().join("job-hdfs.toml"), hdfs_job).unwrap();
        let run = filex(
            &["run", dir.path().join("job.toml").to_str().unwrap()],
            conf,
            &[],
        );
        assert!(run.status.success(), "{}", text(&run));
        let mut want = local_tree(&dir.path().join("output"));
        // The manifests and the rejects name the shards as read: local paths here.
        want.retain(|k, _| !k.starts_with("_manifests") && !k.starts_with("_rejects"));
        assert!(want.len() > 2, "filex run wrote {:?}", want.keys());
        Corpus {
            dir,
            hdfs_root,
            bytes,
            want,
        }
    }

    fn hdfs_job(&self) -> String {
        self.dir.path().join("job-hdfs.toml").display().to_string()
    }

    /// Fails unless the output on HDFS is, file by file, what `filex run` wrote.
    fn assert_output_is_filex_runs(&self, webhdfs: &WebHdfs, what: &str) {
        for (rel, bytes) in &self.want {
            let got = webhdfs
                .open(&format!("{}/out/{rel}", self.hdfs_root))
                .unwrap_or_else(|e| panic!("{what}: {rel} missing on HDFS: {e}"));
            assert!(&got == bytes, "{what}: {rel} differs from filex run's");
        }
    }
}

/// `filex submit` of `corpus` with 2 workers at most (the parallelism of `filex run` here),
/// `--full --force-new` (every partition recomputed, whatever ran before) and `defines`.
fn submit(cluster: &Cluster, corpus: &Corpus, defines: &[&str], env: &[(&str, &str)]) -> String {
    let job = corpus.hdfs_job();
    let mut args = vec![
        "submit",
        job.as_str(),
        "--full",
        "--force-new",
        "-D",
        "filex.workers.max=2",
        "-D",
        "filex.worker.memory-mb=512",
    ];
    for d in defines {
        args.extend(["-D", d]);
    }
    let out = filex(&args, &cluster.conf_dir, env);
    assert!(out.status.success(), "filex submit: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The line of the final diagnostics that says where the tasks ran.
fn mode(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("mode: "))
        .unwrap_or_else(|| panic!("no mode in the diagnostics: {stdout}"))
        .to_string()
}

/// The containers of application `id` that ever ran on a NodeManager of the cluster: the
/// names of their log directories (`container_<ts>_<app>_<attempt>_<n>`), which every
/// launched container has, whatever became of it.
fn launched_containers(cluster: &Cluster, id: &str) -> Vec<String> {
    fn walk(dir: &Path, app: &str, depth: u32, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if name.starts_with("container_") && name.contains(app) {
                out.push(name);
            } else if depth < 8 {
                walk(&e.path(), app, depth + 1, out);
            }
        }
    }
    let app = format!("{}_", id.trim_start_matches("application_"));
    let mut out = Vec::new();
    walk(&cluster.dir.join("work"), &app, 0, &mut out);
    out.sort();
    out.dedup();
    out
}

/// Container names of the AM (the first container of an attempt) and of workers.
fn split_am(containers: &[String]) -> (Vec<String>, Vec<String>) {
    containers
        .iter()
        .cloned()
        .partition(|c| c.ends_with("_000001"))
}

#[test]
fn a_small_job_runs_in_the_am_without_worker_containers_and_writes_filex_runs_bytes() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster, &webhdfs, "5");
    assert!(
        corpus.bytes < 16 << 20,
        "the corpus ({} bytes) is under the default threshold",
        corpus.bytes
    );
    let out = submit(&cluster, &corpus, &[], &[]);
    let id = app_id(&out);
    assert_eq!(
        mode(&out),
        "uber mode: tasks ran in the application master, no worker container"
    );
    assert!(
        out.contains("Application master: 512 MiB, 1 vcores; a job of at most 16777216 bytes of input runs in it (uber mode"),
        "submit says how the AM is sized: {out}"
    );
    corpus.assert_output_is_filex_runs(&webhdfs, "uber mode");
    let containers = launched_containers(&cluster, &id);
    let (am, workers) = split_am(&containers);
    assert_eq!(am.len(), 1, "one AM container: {containers:?}");
    assert!(
        workers.is_empty(),
        "worker containers were launched: {workers:?}"
    );
}

#[test]
fn a_job_above_the_threshold_runs_on_workers_with_the_same_bytes() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster, &webhdfs, "5");
    assert!(corpus.bytes > 2 << 20, "{} bytes", corpus.bytes);
    let out = submit(&cluster, &corpus, &["filex.uber.max-bytes=1m"], &[]);
    let id = app_id(&out);
    let mode = mode(&out);
    assert!(
        mode.starts_with("workers: tasks ran on ") && !mode.contains(" 0 worker"),
        "{mode}"
    );
    corpus.assert_output_is_filex_runs(&webhdfs, "above the threshold");
    let containers = launched_containers(&cluster, &id);
    let (_, workers) = split_am(&containers);
    assert!(!workers.is_empty(), "no worker container: {containers:?}");
}

#[test]
fn a_threshold_of_zero_turns_uber_mode_off() {
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster, &webhdfs, "3");
    let out = submit(&cluster, &corpus, &["filex.uber.max-bytes=0"], &[]);
    let id = app_id(&out);
    assert!(mode(&out).starts_with("workers: "), "{out}");
    assert!(
        out.contains("Application master: 512 MiB, 1 vcores\n"),
        "no uber sizing: {out}"
    );
    corpus.assert_output_is_filex_runs(&webhdfs, "uber mode off");
    let (_, workers) = split_am(&launched_containers(&cluster, &id));
    assert!(!workers.is_empty(), "no worker container");
}

#[test]
fn a_task_that_fails_in_the_am_is_retried_in_a_worker_container() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster, &webhdfs, "5");
    // Map tasks of 1 MiB: several, so that the others' runs are held in the AM's memory when
    // map 0's first attempt fails there, and must reach the workers through scratch.
    let mut child = Command::new(filex_bin())
        .args(["submit", &corpus.hdfs_job(), "--full", "--force-new"])
        .args([
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
        ])
        .args(["-D", "filex.task.input-bytes=1m"])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("FILEX_LOG", "warn")
        .env("FILEX_FAULT_FAIL_AT", "map:0:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    // While it runs (the retry waits for a worker container): the status page.
    let deadline = Instant::now() + Duration::from_secs(240);
    let (mut out, mut doc) = (String::new(), String::new());
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the application did not end: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
        out.extend(lines.try_iter().map(|l| l + "\n"));
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
        let addr = json_field(&app, "amRPCAddress")
            .unwrap_or("")
            .trim_matches('"');
        if !addr.contains(':') || addr.starts_with("N/A") {
            continue;
        }
        if let Ok(r) = http::request("GET", &format!("http://{addr}/status"), None) {
            if r.status == 200 && r.text().contains("application master (uber)") {
                doc = r.text();
            }
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    out.extend(lines.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "submit failed: {out}");
    let id = app_id(&out);
    assert!(
        mode(&out).starts_with("uber mode, then workers: tasks ran in the application master until an attempt failed there, then on "),
        "{out}"
    );
    corpus.assert_output_is_filex_runs(&webhdfs, "after a failed attempt in the AM");
    let (_, workers) = split_am(&launched_containers(&cluster, &id));
    assert!(!workers.is_empty(), "the retry ran in no worker container");
    // The status page named the failed attempt, where it ran and why.
    assert!(doc.contains("\"uber\": true"), "{doc}");
    assert!(doc.contains("\"task\": \"map task 0\""), "{doc}");
    assert!(
        doc.contains("\"worker\": \"application master (uber)\""),
        "{doc}"
    );
    assert!(
        doc.contains("fault injection: FILEX_FAULT_FAIL_AT lists attempt 0 of map task 0"),
        "{doc}"
    );
}
