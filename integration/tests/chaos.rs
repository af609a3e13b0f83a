//! The chaos suite (issue 13) on the mini cluster (`scripts/cluster.sh start`) and the local
//! S3 server (`scripts/s3-server.sh start`): one small job (about 300,000 lines) submitted
//! undisturbed once, then again under each fault, each case at least twice with different,
//! seeded timings — the AM SIGKILLed during maps, reduces and the commit; three worker
//! processes SIGKILLed in one run; a SIGSTOPped worker; `filex kill` then a re-run; a burst
//! of object-store faults (the [`s3_proxy`](filex_integration::s3_proxy)) during the commit.
//!
//! Every run must end SUCCEEDED (the killed run KILLED, and its re-run SUCCEEDED) with output
//! byte-identical to the clean run's, and leave no `_temporary`, no staging directory, no
//! open multipart upload (read from s3s-fs's data directory, which has no
//! ListMultipartUploads), no application the ResourceManager still runs (`filex yarn apps`)
//! and no AM or worker process. The fused lines are compared as multisets with the clean
//! run's (lost and duplicated lines both counted), and each case prints a row of the table
//! `case, runs, faults injected, lines lost, lines duplicated, time over a clean run`
//! (`--nocapture`; `scripts/chaos.sh` collects the rows).
//!
//! Knobs: `FILEX_CHAOS_RUNS` (runs per case, default 2), `FILEX_CHAOS_SEED` (the timings'
//! seed, default from the clock; printed), `FILEX_CHAOS_TABLE` (a file the rows are appended
//! to). The binary needs no test hooks: every fault comes from outside the processes.

mod hdfs_support;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use filex_integration::procs::{am_pid, signal, worker_pids};
use filex_integration::s3_proxy::{Fault, Plan, Proxy, ReqInfo};
use filex_integration::webhdfs::{json_field, WebHdfs};
use filex_integration::{http, require_cluster, Cluster};
use hdfs_support::{filex_bin, hdfs_files_if_any, unique_hdfs_dir, upload_tree, LocalDir};

/// Longest one submission may take.
const RUN_LIMIT: Duration = Duration::from_secs(420);
/// The settings of every submission: a fleet of two or three workers, so a fault hits one
/// worker while another goes on (never uber mode, which would run this small job in the AM).
const COMMON: &[&str] = &[
    "-D",
    "filex.uber.max-bytes=0",
    "-D",
    "filex.workers.min=2",
    "-D",
    "filex.workers.max=3",
    "-D",
    "filex.worker.memory-mb=512",
];
const START_HINT: &str =
    "start the test S3 server first: scripts/s3-server.sh start && eval \"$(scripts/s3-server.sh env)\"";

/// The user the applications run as, as the other YARN tests do (the mini cluster's
/// `/user` belongs to the process's user; `filex submit` stages under `/user/<user>`).
fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// WebHDFS as [`user`].
fn webhdfs(cluster: &Cluster) -> WebHdfs {
    WebHdfs::new(&cluster.env.webhdfs, &user()).expect("FILEX_WEBHDFS is a URL")
}

// ---- knobs and a seeded generator of timings ---------------------------------------------

fn runs_per_case() -> usize {
    std::env::var("FILEX_CHAOS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(2)
}

fn base_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("FILEX_CHAOS_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("chaos: FILEX_CHAOS_SEED={seed}");
        seed
    })
}

/// splitmix64: the timings of run `run` of `case`, from the base seed.
struct Rng(u64);

impl Rng {
    fn for_run(case: &str, run: usize) -> Rng {
        let mut h = base_seed() ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for b in case.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        Rng(h)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---- the corpus, the clean run, and the table ----------------------------------------------

/// The job every case runs, and what its undisturbed run wrote.
struct Baseline {
    /// The job file's text (shards on HDFS); [`Baseline::job_file`] writes it.
    job_text: String,
    base: String,
    /// Every file of the clean run below the output root but the manifests: relative path →
    /// bytes.
    files: BTreeMap<String, Vec<u8>>,
    /// The fused lines of the clean run, with their counts.
    lines: HashMap<Vec<u8>, i64>,
    line_count: u64,
    took: Duration,
}

impl Baseline {
    /// Writes the job into `dir` (a case's own, removed when it ends); returns its path.
    fn job_file(&self, dir: &LocalDir) -> PathBuf {
        let job = dir.path().join("job.toml");
        fs::write(&job, &self.job_text).expect("write the job");
        job
    }
}

/// The corpus is generated, uploaded and run undisturbed once per test process; its local
/// copy is removed once uploaded.
fn baseline() -> &'static Baseline {
    static BASE: OnceLock<Baseline> = OnceLock::new();
    BASE.get_or_init(|| {
        let cluster = require_cluster();
        let fs_ = webhdfs(&cluster);
        let local = LocalDir::new("chaos");
        let gen = Command::new(filex_bin())
            .args(["gen", "--out"])
            .arg(local.path())
            .args(["--seed", "29", "--hours", "2", "--rate", "7", "--traps"])
            .args(["--domains", "img.example.com,www.example.com,api.example.net,cdn.example.org,static.example.com"])
            .env("FILEX_LOG", "warn")
            .output()
            .expect("run filex gen");
        assert!(gen.status.success(), "filex gen: {}", text_of(&gen.stderr));
        let base = unique_hdfs_dir("chaos");
        upload_tree(&fs_, &local.path().join("shards"), &format!("{base}/shards"));
        let job_text = fs::read_to_string(local.path().join("job.toml")).expect("job.toml");
        let hdfs_job = job_text
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{base}/shards/"),
            )
            .replace(
                "root = \"output\"",
                &format!("root = \"hdfs://{base}/unused\""),
            );
        assert_ne!(job_text, hdfs_job, "the generated job names shards and output as expected");
        let job = local.path().join("job-hdfs.toml");
        fs::write(&job, &hdfs_job).expect("write the job");

        let root = format!("{base}/clean");
        let run = Submission::start(&cluster, &job, &format!("hdfs://{root}"), &[], &[]);
        let run = run.wait_with(|_| {});
        assert!(run.status.success(), "the clean run failed: {}", run.text());
        let files = hdfs_output(&fs_, &root);
        assert!(
            files.keys().any(|k| k.ends_with(".gz") && !k.starts_with("_rejects")),
            "the clean run wrote no partition: {:?}",
            files.keys()
        );
        let mut lines = HashMap::new();
        let line_count = count_lines(&files, &mut lines, 1);
        eprintln!(
            "chaos: clean run {} in {:.1} s: {} files, {line_count} fused lines",
            run.id,
            run.took.as_secs_f64(),
            files.len()
        );
        Baseline {
            job_text: hdfs_job,
            base,
            files,
            lines,
            line_count,
            took: run.took,
        }
    })
}

/// One row of the table.
struct Row {
    case: &'static str,
    runs: usize,
    faults: usize,
    lost: i64,
    duplicated: i64,
    /// Mean time of a run of the case minus the clean run's.
    over_clean: f64,
}

fn report(row: Row) {
    static ROWS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let line = format!(
        "| {:<22} | {:>4} | {:>6} | {:>10} | {:>16} | {:>+9.1} s |",
        row.case, row.runs, row.faults, row.lost, row.duplicated, row.over_clean
    );
    let mut rows = ROWS.lock().unwrap_or_else(|e| e.into_inner());
    rows.push(line.clone());
    let head = "| case                   | runs | faults | lines lost | lines duplicated | over clean  |\n\
                |------------------------|------|--------|------------|------------------|-------------|";
    eprintln!(
        "chaos table (clean run {:.1} s, {} lines):\n{head}\n{}",
        baseline().took.as_secs_f64(),
        baseline().line_count,
        rows.join("\n")
    );
    if let Some(path) = std::env::var_os("FILEX_CHAOS_TABLE") {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
    }
}

// ---- one submission, followed while it runs ------------------------------------------------

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `filex submit` of the baseline job into `root`, its stdout read line by line.
struct Submission {
    child: Child,
    out: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
    err: Option<thread::JoinHandle<Vec<u8>>>,
    started: Instant,
    rm_web: String,
}

/// How a submission ended.
struct Ended {
    id: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ended {
    fn text(&self) -> String {
        format!(
            "{} ended {:?} after {:.1} s\nstdout:\n{}\nstderr:\n{}",
            self.id,
            self.status.code(),
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

impl Submission {
    fn start(
        cluster: &Cluster,
        job: &Path,
        root: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Submission {
        Self::start_in(cluster, &cluster.conf_dir, job, root, extra, env)
    }

    fn start_in(
        cluster: &Cluster,
        conf: &Path,
        job: &Path,
        root: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Submission {
        let mut cmd = Command::new(filex_bin());
        cmd.arg("submit")
            .arg(job)
            .args(["--set", &format!("output.root={root}")])
            .args(COMMON)
            .args(extra)
            .env("HADOOP_CONF_DIR", conf)
            .env("YARN_CONF_DIR", conf)
            .env_remove("HADOOP_HOME")
            .env("HADOOP_USER_NAME", user())
            .env("FILEX_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // No credentials but the ones a case gives (the S3 keys come in a site file).
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("FILEX_S3_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("spawn filex submit");
        let out = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = out.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let err = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            v
        });
        Submission {
            child,
            out,
            reader: Some(reader),
            err: Some(err),
            started: Instant::now(),
            rm_web: cluster.env.rm_webapp.clone(),
        }
    }

    fn stdout(&self) -> String {
        self.out.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The application id, once `filex submit` printed it.
    fn id(&self) -> Option<String> {
        self.stdout()
            .split_inclusive('\n')
            .find_map(|l| l.strip_prefix("Submitted application "))
            .filter(|l| l.ends_with('\n'))
            .map(|s| s.trim().to_string())
    }

    /// Calls `watch` every 20 ms until the client exits (killing it after [`RUN_LIMIT`]).
    fn wait_with(mut self, mut watch: impl FnMut(&Watch<'_>)) -> Ended {
        let mut am_addr = None;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for filex submit") {
                break s;
            }
            if self.started.elapsed() > RUN_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "filex submit did not end within {RUN_LIMIT:?}: {}",
                    self.stdout()
                );
            }
            if let Some(id) = self.id() {
                let w = Watch {
                    id: &id,
                    rm_web: &self.rm_web,
                    started: self.started,
                    am_addr: std::cell::RefCell::new(am_addr.take()),
                };
                watch(&w);
                am_addr = w.am_addr.into_inner();
            }
            thread::sleep(Duration::from_millis(20));
        };
        let took = self.started.elapsed();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self
            .err
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stdout = self.stdout();
        let id = self
            .id()
            .unwrap_or_else(|| panic!("no application id: {stdout}\n{}", text_of(&stderr)));
        Ended {
            id,
            status,
            stdout,
            stderr: text_of(&stderr),
            took,
        }
    }
}

/// What a case sees of its running application.
struct Watch<'a> {
    id: &'a str,
    rm_web: &'a str,
    started: Instant,
    /// The status address of the AM attempt last asked, kept between polls.
    am_addr: std::cell::RefCell<Option<String>>,
}

impl Watch<'_> {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The AM's `/status` document: its phase and task counts; `None` while no AM answers.
    fn status(&self) -> Option<serde_json::Value> {
        let cached = self.am_addr.borrow().clone();
        let addr = match cached {
            Some(a) => a,
            None => {
                let r = http::request(
                    "GET",
                    &format!("{}/ws/v1/cluster/apps/{}", self.rm_web, self.id),
                    None,
                )
                .ok()?;
                let text = r.text();
                let addr = json_field(&text, "amRPCAddress")?
                    .trim_matches('"')
                    .to_string();
                if !addr.contains(':') || addr.starts_with("N/A") {
                    return None;
                }
                addr
            }
        };
        match http::request("GET", &format!("http://{addr}/status"), None) {
            Ok(r) if r.status == 200 => {
                *self.am_addr.borrow_mut() = Some(addr);
                serde_json::from_str(&r.text()).ok()
            }
            _ => {
                *self.am_addr.borrow_mut() = None;
                None
            }
        }
    }

    /// The phase of the AM's first attempt (`plan`, `map`, `reduce`, `commit`), with its
    /// tasks done and total; `None` once that attempt has gone.
    fn first_attempt_phase(&self) -> Option<(String, u64, u64)> {
        am_pid(self.id, 1)?;
        let doc = self.status()?;
        Some((
            doc["phase"].as_str()?.to_string(),
            doc["tasks_done"].as_u64()?,
            doc["tasks_total"].as_u64()?,
        ))
    }
}

// ---- what every run must leave ------------------------------------------------------------

/// Every file below `root` on HDFS but the manifests, with its bytes.
fn hdfs_output(fs_: &WebHdfs, root: &str) -> BTreeMap<String, Vec<u8>> {
    hdfs_files_if_any(fs_, root)
        .into_iter()
        .filter(|rel| !rel.starts_with("_manifests/"))
        .map(|rel| {
            let bytes = fs_
                .open(&format!("{root}/{rel}"))
                .unwrap_or_else(|e| panic!("read {root}/{rel}: {e}"));
            (rel, bytes)
        })
        .collect()
}

/// Adds `sign` × each fused line of `files` (the gzip'd partitions, not the rejects) to
/// `lines`; returns how many lines it read.
fn count_lines(
    files: &BTreeMap<String, Vec<u8>>,
    lines: &mut HashMap<Vec<u8>, i64>,
    sign: i64,
) -> u64 {
    let mut n = 0;
    for (rel, bytes) in files {
        if !rel.ends_with(".gz") || rel.starts_with('_') {
            continue;
        }
        for line in gunzip(rel, bytes).split(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            *lines.entry(line.to_vec()).or_insert(0) += sign;
            n += 1;
        }
    }
    n
}

/// `gzip -dc` of `bytes` (every member), by the system's gzip.
fn gunzip(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip -dc");
    let mut stdin = child.stdin.take().expect("gzip stdin");
    let data = bytes.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("gzip output");
    let _ = feeder.join();
    assert!(out.status.success(), "{name} is not valid gzip");
    out.stdout
}

/// Lines lost and lines duplicated in `files` against the clean run.
fn line_diff(files: &BTreeMap<String, Vec<u8>>) -> (i64, i64) {
    let mut lines = baseline().lines.clone();
    count_lines(files, &mut lines, -1);
    let lost = lines.values().filter(|v| **v > 0).sum();
    let duplicated = -lines.values().filter(|v| **v < 0).sum::<i64>();
    (lost, duplicated)
}

/// Asserts that `files` (below an output root, manifests left out) are the clean run's,
/// byte for byte; returns the lines lost and duplicated.
fn assert_identical(case: &str, files: &BTreeMap<String, Vec<u8>>) -> (i64, i64) {
    let (lost, duplicated) = line_diff(files);
    let want: Vec<&String> = baseline().files.keys().collect();
    let got: Vec<&String> = files.keys().collect();
    assert_eq!(got, want, "{case}: the files differ from the clean run's");
    for (rel, bytes) in &baseline().files {
        assert!(
            &files[rel] == bytes,
            "{case}: {rel} differs from the clean run ({} bytes, clean {}); lines lost {lost}, duplicated {duplicated}",
            files[rel].len(),
            bytes.len()
        );
    }
    assert_eq!((lost, duplicated), (0, 0), "{case}: lines lost, duplicated");
    (lost, duplicated)
}

/// Asserts that nothing of application `id` runs any more: the ResourceManager lists it
/// among no running applications (`filex yarn apps`) and has no container of it, and no AM
/// or worker process of it is left on this machine (waits up to 60 s for them to go).
fn assert_nothing_running(cluster: &Cluster, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let apps = Command::new(filex_bin())
            .args(["yarn", "apps", "--json"])
            .env("HADOOP_CONF_DIR", &cluster.conf_dir)
            .env("YARN_CONF_DIR", &cluster.conf_dir)
            .env("FILEX_LOG", "warn")
            .output()
            .expect("run filex yarn apps");
        assert!(
            apps.status.success(),
            "filex yarn apps: {}",
            text_of(&apps.stderr)
        );
        let listed: serde_json::Value =
            serde_json::from_slice(&apps.stdout).expect("filex yarn apps --json is JSON");
        let running_app = listed
            .as_array()
            .is_some_and(|a| a.iter().any(|app| app["application_id"] == id));
        let report = http::request(
            "GET",
            &format!("{}/ws/v1/cluster/apps/{id}", cluster.env.rm_webapp),
            None,
        )
        .map(|r| r.text())
        .unwrap_or_default();
        let containers: i64 = json_field(&report, "runningContainers")
            .and_then(|v| v.trim_matches('"').parse().ok())
            .unwrap_or(0);
        let workers = worker_pids(id);
        let ams: Vec<u32> = (1..=4).filter(|a| am_pid(id, *a).is_some()).collect();
        if !running_app && containers <= 0 && workers.is_empty() && ams.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} still runs: listed by filex yarn apps {running_app}, {containers} containers, \
             worker pids {workers:?}, AM attempts {ams:?}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// Asserts that no `_temporary` is under the HDFS output `root` and no staging directory of
/// `ids` is left.
fn assert_no_leftovers(fs_: &WebHdfs, root: &str, ids: &[&str]) {
    let temporary = format!("{root}/_temporary");
    assert!(
        fs_.file_status(&temporary).is_err(),
        "{temporary} left behind: {:?}",
        hdfs_files_if_any(fs_, &temporary)
    );
    for id in ids {
        let staging = format!("/user/{}/.filexStaging/{id}", user());
        assert!(
            fs_.file_status(&staging).is_err(),
            "staging {staging} left behind"
        );
    }
}

/// The application's final status as the ResourceManager reports it (`filex status --json`).
fn final_status(cluster: &Cluster, id: &str) -> String {
    let out = Command::new(filex_bin())
        .args(["status", id, "--json"])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("YARN_CONF_DIR", &cluster.conf_dir)
        .env("FILEX_LOG", "warn")
        .output()
        .expect("run filex status");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("filex status {id} --json: {e}: {}", text_of(&out.stdout)));
    doc["final_status"].as_str().unwrap_or_default().to_string()
}

/// The checks of a run into the HDFS output `root` that must end SUCCEEDED; returns the
/// lines lost and duplicated.
fn verify_succeeded(
    case: &str,
    cluster: &Cluster,
    fs_: &WebHdfs,
    run: &Ended,
    root: &str,
) -> (i64, i64) {
    assert!(run.status.success(), "{case}: {}", run.text());
    assert_eq!(
        final_status(cluster, &run.id),
        "SUCCEEDED",
        "{case}: {}",
        run.text()
    );
    assert_nothing_running(cluster, &run.id);
    assert_no_leftovers(fs_, root, &[&run.id]);
    let diff = assert_identical(case, &hdfs_output(fs_, root));
    let _ = fs_.delete(root, true);
    diff
}

/// Sums runs into a row.
#[derive(Default)]
struct Tally {
    runs: usize,
    faults: usize,
    lost: i64,
    duplicated: i64,
    took: Duration,
}

impl Tally {
    fn add(&mut self, faults: usize, (lost, duplicated): (i64, i64), took: Duration) {
        self.runs += 1;
        self.faults += faults;
        self.lost += lost;
        self.duplicated += duplicated;
        self.took += took;
    }
    fn row(self, case: &'static str) -> Row {
        let mean = self.took.as_secs_f64() / self.runs.max(1) as f64;
        Row {
            case,
            runs: self.runs,
            faults: self.faults,
            lost: self.lost,
            duplicated: self.duplicated,
            over_clean: mean - baseline().took.as_secs_f64(),
        }
    }
}

fn run_root(case: &str, run: usize) -> String {
    format!("{}/{case}-{run}-{}", baseline().base, std::process::id())
}

// ---- the cases ----------------------------------------------------------------------------

/// Within the commit, where a kill of the AM lands: the commit of this job takes tens of
/// milliseconds (the renames, the manifest, the done-flag), less than one poll of the status
/// page, so the moments are found by watching the output root once the phase is seen.
#[derive(Debug, Clone, Copy)]
enum InCommit {
    /// As soon as a first file is published (the renames under way).
    FirstPublished,
    /// A seeded delay of 0–30 ms after the phase is first seen (mostly before any rename).
    Seen(Duration),
    /// As soon as the manifest is there (the done-flag not yet, or just).
    ManifestWritten,
}

impl InCommit {
    fn for_run(run: usize, rng: &mut Rng) -> InCommit {
        match run % 3 {
            0 => InCommit::FirstPublished,
            1 => InCommit::Seen(Duration::from_millis(rng.range(0, 30))),
            _ => InCommit::ManifestWritten,
        }
    }

    /// Waits (spinning on WebHDFS, for at most 3 s) until the moment has come in `root`.
    fn wait(self, fs_: &WebHdfs, root: &str, seen: Instant) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let reached = || match self {
            InCommit::FirstPublished => fs_.list_status(root).is_ok_and(|listing| {
                hdfs_support::json_array_objects(&listing, "FileStatus")
                    .iter()
                    .any(|o| json_field(o, "pathSuffix").is_some_and(|n| !n.starts_with('_')))
            }),
            InCommit::Seen(delay) => seen.elapsed() >= delay,
            InCommit::ManifestWritten => fs_.file_status(&format!("{root}/_manifests")).is_ok(),
        };
        while !reached() && Instant::now() < deadline {
            if let InCommit::Seen(delay) = self {
                thread::sleep(delay.saturating_sub(seen.elapsed()));
            }
        }
    }
}

/// SIGKILLs the first AM attempt once its status page shows `phase` with a seeded share of
/// its tasks done and a seeded delay after that (for the commit, at an [`InCommit`] moment);
/// the second attempt must finish the job.
fn am_killed_in(case: &'static str, phase: &str) {
    let cluster = require_cluster();
    let fs_ = webhdfs(&cluster);
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        // The commit is one task: its moments are the InCommit ones.
        let in_commit = (phase == "commit").then(|| InCommit::for_run(run, &mut rng));
        let share = if in_commit.is_some() {
            0
        } else {
            rng.range(0, 60)
        };
        let delay = Duration::from_millis(if in_commit.is_some() {
            0
        } else {
            rng.range(0, 1500)
        });
        if let Some(moment) = in_commit {
            eprintln!("chaos: {case} run {run}: SIGKILL the AM in the commit at {moment:?}");
        } else {
            eprintln!("chaos: {case} run {run}: SIGKILL the AM in {phase} after {share}% of its tasks and {delay:?}");
        }
        let root = run_root(case, run);
        // The reduces of this small job last about 2 s: a seeded share and delay could
        // otherwise land the kill after the last one, on an AM that had already finished.
        let env = if phase == "reduce" {
            SLOW_LAST_REDUCES
        } else {
            &[]
        };
        let sub = Submission::start(&cluster, &job, &format!("hdfs://{root}"), &[], env);
        let mut killed_in = None;
        let ended = sub.wait_with(|w| {
            if killed_in.is_some() {
                return;
            }
            let seen = Instant::now();
            let Some((now, done, total)) = w.first_attempt_phase() else {
                return;
            };
            if now != phase || done * 100 < share * total {
                return;
            }
            // The delay runs from here, to the millisecond (not to the next poll).
            if let Some(pid) = am_pid(w.id, 1) {
                match in_commit {
                    Some(moment) => moment.wait(&fs_, &root, seen),
                    None => thread::sleep(delay.saturating_sub(seen.elapsed())),
                }
                signal("-KILL", &[pid]);
                // What the dead attempt had published (the next one starts seconds later;
                // an RPC in flight may still land, so the files are asked one by one).
                let published = base
                    .files
                    .keys()
                    .filter(|rel| fs_.file_status(&format!("{root}/{rel}")).is_ok())
                    .count();
                let manifest = fs_.file_status(&format!("{root}/_manifests")).is_ok();
                killed_in = Some(format!(
                    "{now} {done}/{total} at {:.1} s, {published} of {} files published, manifest {}",
                    w.elapsed().as_secs_f64(),
                    base.files.len(),
                    if manifest { "written" } else { "not written" }
                ));
            }
        });
        let Some(when) = killed_in else {
            panic!(
                "{case} run {run}: the AM was never seen in {phase}: {}",
                ended.text()
            );
        };
        eprintln!(
            "chaos: {case} run {run}: killed the AM in {when}; the run took {:.1} s{}",
            ended.took.as_secs_f64(),
            ended
                .stdout
                .lines()
                .filter(|l| l.contains("attempt") || l.contains(" FINISHED "))
                .map(|l| format!("\n  {l}"))
                .collect::<String>()
        );
        assert!(
            ended.stdout.contains("YARN started AM attempt 2"),
            "{case}: no second attempt: {}",
            ended.text()
        );
        let diff = verify_succeeded(case, &cluster, &fs_, &ended, &root);
        tally.add(1, diff, ended.took);
    }
    report(tally.row(case));
}

#[test]
fn chaos_am_killed_during_maps() {
    am_killed_in("am-kill-maps", "map");
}

#[test]
fn chaos_am_killed_during_reduces() {
    am_killed_in("am-kill-reduces", "reduce");
}

#[test]
fn chaos_am_killed_during_the_commit() {
    am_killed_in("am-kill-commit", "commit");
}

/// Three `filex worker` processes SIGKILLed at seeded moments of one run.
#[test]
fn chaos_three_workers_killed_in_one_run() {
    let case = "kill-3-workers";
    let cluster = require_cluster();
    let fs_ = webhdfs(&cluster);
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    // Within the first third of a clean run's time after the first worker starts: later
    // moments can fall after the end of a run that AM recovery and retries keep short.
    let span = (base.took.as_millis() as u64 / 3).max(2000);
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let mut moments: Vec<u64> = (0..3).map(|_| rng.range(0, span)).collect();
        moments.sort_unstable();
        let picks: Vec<u64> = (0..3).map(|_| rng.next()).collect();
        eprintln!("chaos: {case} run {run}: SIGKILL a worker at {moments:?} ms after the first worker runs");
        let root = run_root(case, run);
        let sub = Submission::start(&cluster, &job, &format!("hdfs://{root}"), &[], &[]);
        let mut first_worker: Option<Instant> = None;
        let mut killed: Vec<String> = Vec::new();
        let ended = sub.wait_with(|w| {
            let pids = worker_pids(w.id);
            let live: Vec<&String> = pids.iter().filter(|p| !killed.contains(p)).collect();
            if live.is_empty() || killed.len() == moments.len() {
                return;
            }
            let since = first_worker.get_or_insert_with(Instant::now).elapsed();
            if since < Duration::from_millis(moments[killed.len()]) {
                return;
            }
            let pid = live[(picks[killed.len()] % live.len() as u64) as usize].clone();
            signal("-KILL", std::slice::from_ref(&pid));
            eprintln!(
                "chaos: {case} run {run}: killed worker {pid} at {:.1} s",
                w.elapsed().as_secs_f64()
            );
            killed.push(pid);
        });
        assert_eq!(
            killed.len(),
            3,
            "{case} run {run}: only {killed:?} killed before the end: {}",
            ended.text()
        );
        let diff = verify_succeeded(case, &cluster, &fs_, &ended, &root);
        tally.add(killed.len(), diff, ended.took);
    }
    report(tally.row(case));
}

/// One worker SIGSTOPped at a seeded moment, with `filex.task.timeout` at 5 s: its task is
/// re-run elsewhere and its container killed.
#[test]
fn chaos_a_stopped_worker() {
    let case = "sigstop-worker";
    let cluster = require_cluster();
    let fs_ = webhdfs(&cluster);
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let after = Duration::from_millis(rng.range(0, 4000));
        let pick = rng.next();
        eprintln!(
            "chaos: {case} run {run}: SIGSTOP a worker {after:?} after the first worker runs"
        );
        let root = run_root(case, run);
        let sub = Submission::start(
            &cluster,
            &job,
            &format!("hdfs://{root}"),
            &["-D", "filex.task.timeout=5000"],
            &[],
        );
        let mut first_worker: Option<Instant> = None;
        let mut stopped: Option<String> = None;
        let ended = sub.wait_with(|w| {
            if stopped.is_some() {
                return;
            }
            let pids = worker_pids(w.id);
            if pids.is_empty() {
                return;
            }
            if first_worker.get_or_insert_with(Instant::now).elapsed() < after {
                return;
            }
            let pid = pids[(pick % pids.len() as u64) as usize].clone();
            signal("-STOP", std::slice::from_ref(&pid));
            eprintln!(
                "chaos: {case} run {run}: stopped worker {pid} at {:.1} s",
                w.elapsed().as_secs_f64()
            );
            stopped = Some(pid);
        });
        // Leave nothing stopped behind, whatever happened.
        let stopped = stopped
            .unwrap_or_else(|| panic!("{case} run {run}: no worker was stopped: {}", ended.text()));
        let alive = Path::new(&format!("/proc/{stopped}")).exists();
        signal("-CONT", std::slice::from_ref(&stopped));
        let diff = verify_succeeded(case, &cluster, &fs_, &ended, &root);
        assert!(
            !Path::new(&format!("/proc/{stopped}")).exists(),
            "{case}: the stopped worker {stopped} still exists (alive at the end: {alive})"
        );
        tally.add(1, diff, ended.took);
    }
    report(tally.row(case));
}

/// `filex kill` at a seeded moment: the client exits 3, the application ends KILLED and
/// leaves nothing; a re-run of the same output root then succeeds.
#[test]
fn chaos_filex_kill_then_a_rerun() {
    let case = "filex-kill-rerun";
    let cluster = require_cluster();
    let fs_ = webhdfs(&cluster);
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let after =
            Duration::from_millis(rng.range(0, (base.took.as_millis() as u64 / 3).max(2000)));
        eprintln!("chaos: {case} run {run}: filex kill {after:?} after the first worker runs");
        let root = run_root(case, run);
        let sub = Submission::start(&cluster, &job, &format!("hdfs://{root}"), &[], &[]);
        let mut first_worker: Option<Instant> = None;
        let mut kill: Option<thread::JoinHandle<std::process::Output>> = None;
        let conf = cluster.conf_dir.clone();
        let ended = sub.wait_with(|w| {
            if kill.is_some() {
                return;
            }
            if worker_pids(w.id).is_empty() && first_worker.is_none() {
                return;
            }
            if first_worker.get_or_insert_with(Instant::now).elapsed() < after {
                return;
            }
            eprintln!(
                "chaos: {case} run {run}: filex kill {} at {:.1} s",
                w.id,
                w.elapsed().as_secs_f64()
            );
            let (id, conf) = (w.id.to_string(), conf.clone());
            kill = Some(thread::spawn(move || {
                Command::new(filex_bin())
                    .args(["kill", &id])
                    .env("HADOOP_CONF_DIR", &conf)
                    .env("YARN_CONF_DIR", &conf)
                    .env("FILEX_LOG", "warn")
                    .output()
                    .expect("run filex kill")
            }));
        });
        let kill = kill
            .unwrap_or_else(|| {
                panic!(
                    "{case} run {run}: the run ended before the kill: {}",
                    ended.text()
                )
            })
            .join()
            .expect("filex kill thread");
        assert!(
            kill.status.success(),
            "filex kill: {}",
            text_of(&kill.stderr)
        );
        assert_eq!(
            ended.status.code(),
            Some(3),
            "{case}: the client after a kill: {}",
            ended.text()
        );
        assert_eq!(
            final_status(&cluster, &ended.id),
            "KILLED",
            "{}",
            ended.text()
        );
        assert_nothing_running(&cluster, &ended.id);
        assert_no_leftovers(&fs_, &root, &[&ended.id]);
        let rerun = Submission::start(&cluster, &job, &format!("hdfs://{root}"), &[], &[])
            .wait_with(|_| {});
        let diff = verify_succeeded(case, &cluster, &fs_, &rerun, &root);
        assert_no_leftovers(&fs_, &root, &[&ended.id, &rerun.id]);
        tally.add(1, diff, ended.took + rerun.took);
    }
    report(tally.row(case));
}

// ---- the object store: a burst of faults during the commit --------------------------------

struct S3Env {
    endpoint: String,
    bucket: String,
    data_dir: PathBuf,
    key_id: String,
    secret: String,
    region: String,
}

fn s3env() -> S3Env {
    let get = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("{k} is not set: {START_HINT}"))
    };
    S3Env {
        endpoint: get("FILEX_S3_ENDPOINT"),
        bucket: get("FILEX_S3_BUCKET"),
        data_dir: PathBuf::from(get("FILEX_S3_DATA_DIR")),
        key_id: get("FILEX_S3_ACCESS_KEY_ID"),
        secret: get("FILEX_S3_SECRET_ACCESS_KEY"),
        region: get("FILEX_S3_REGION"),
    }
}

/// A copy of the cluster's conf directory whose `core-site.xml` gives the bucket Hadoop's
/// per-bucket S3A endpoint (`endpoint`, plain HTTP), region and keys.
fn s3_conf(cluster: &Cluster, s3: &S3Env, endpoint: &str, dir: &Path) -> PathBuf {
    let conf = dir.join("conf");
    fs::create_dir_all(&conf).expect("conf dir");
    for e in fs::read_dir(&cluster.conf_dir)
        .expect("cluster conf")
        .flatten()
    {
        if e.path().is_file() {
            fs::copy(e.path(), conf.join(e.file_name())).expect("copy a site file");
        }
    }
    let b = &s3.bucket;
    let props = [
        (
            format!("fs.s3a.bucket.{b}.endpoint"),
            endpoint.trim_start_matches("http://").to_string(),
        ),
        (
            format!("fs.s3a.bucket.{b}.connection.ssl.enabled"),
            "false".to_string(),
        ),
        (
            format!("fs.s3a.bucket.{b}.endpoint.region"),
            s3.region.clone(),
        ),
        (format!("fs.s3a.bucket.{b}.access.key"), s3.key_id.clone()),
        (format!("fs.s3a.bucket.{b}.secret.key"), s3.secret.clone()),
    ];
    let core = conf.join("core-site.xml");
    let xml = fs::read_to_string(&core).expect("core-site.xml");
    let extra: String = props
        .iter()
        .map(|(k, v)| format!("<property><name>{k}</name><value>{v}</value></property>\n"))
        .collect();
    let at = xml.rfind("</configuration>").expect("a site file");
    fs::write(&core, format!("{}{extra}{}", &xml[..at], &xml[at..])).expect("write core-site.xml");
    // The file holds a secret: mode 600, as the brief for secrets wants.
    let _ = Command::new("chmod").arg("600").arg(&core).status();
    conf
}

/// Every object below `prefix` in the bucket but the manifests, with its bytes (s3s-fs keeps
/// `<data>/<bucket>/<key>`).
fn s3_output(s3: &S3Env, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let root = s3.data_dir.join(&s3.bucket).join(prefix);
    let rels = if root.is_dir() {
        hdfs_support::local_files(&root)
    } else {
        Vec::new()
    };
    rels.into_iter()
        .filter(|rel| !rel.starts_with("_manifests/"))
        .map(|rel| {
            let bytes = fs::read(root.join(&rel)).expect("read an object");
            (rel, bytes)
        })
        .collect()
}

/// URL-safe base64 without padding, decoded (s3s-fs names its metadata files so).
fn b64_url_decode(s: &str) -> Option<String> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The open multipart uploads of keys below `prefix`: s3s-fs keeps `.upload-<id>.json` per
/// open upload and `.bucket-<b64>.object-<b64 key>.upload-<id>.metadata.json` beside it.
fn open_uploads(s3: &S3Env, prefix: &str) -> Vec<String> {
    let names: Vec<String> = fs::read_dir(&s3.data_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut open = Vec::new();
    for name in &names {
        let Some(id) = name
            .strip_prefix(".upload-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let key = names.iter().find_map(|m| {
            let rest = m.strip_suffix(&format!(".upload-{id}.metadata.json"))?;
            let (_, key) = rest.split_once(".object-")?;
            b64_url_decode(key)
        });
        match key {
            Some(k) if k.starts_with(prefix) => open.push(format!("{k} ({id})")),
            Some(_) => {}
            // No metadata names the key: count it, so a leak is never missed.
            None => open.push(format!("unknown key ({id})")),
        }
    }
    open
}

/// A burst of object-store faults (resets, 500, SlowDown, stalls) starting at a seeded
/// CompleteMultipartUpload of the AM's commit; the store retries and the run succeeds.
#[test]
fn chaos_object_store_faults_during_the_commit() {
    let case = "s3-faults-commit";
    let cluster = require_cluster();
    let s3 = s3env();
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let skip = rng.range(0, 2) as usize;
        let burst = rng.range(3, 6) as usize;
        let first = rng.range(0, 3) as usize;
        eprintln!(
            "chaos: {case} run {run}: {burst} faults in a row from the {}th CompleteMultipartUpload on",
            skip + 1
        );
        let completes = Arc::new(AtomicUsize::new(0));
        let faulted = Arc::new(AtomicUsize::new(0));
        let (c, f) = (completes.clone(), faulted.clone());
        let plan: Arc<Plan> = Arc::new(move |r: &ReqInfo<'_>| {
            let is_complete = r.method == "POST" && r.target.contains("uploadId=");
            let seen = if is_complete {
                c.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                c.load(Ordering::SeqCst)
            };
            if seen <= skip {
                return Fault::Pass;
            }
            let n = f.fetch_add(1, Ordering::SeqCst);
            if n >= burst {
                return Fault::Pass;
            }
            [Fault::Reset, Fault::Error500, Fault::SlowDown, Fault::Stall][(first + n) % 4]
        });
        let proxy = Proxy::start(&s3.endpoint, plan);
        let work = LocalDir::new("chaos-s3");
        let conf = s3_conf(&cluster, &s3, &proxy.endpoint(), work.path());
        let prefix = format!(
            "chaos-{}-{run}-{}",
            std::process::id(),
            base_seed() % 100_000
        );
        let root = format!("s3a://{}/{prefix}", s3.bucket);
        let sub = Submission::start_in(
            &cluster,
            &conf,
            &job,
            &root,
            &[
                "--set",
                "output.store.max_attempts=8",
                "--set",
                "output.store.timeout_secs=2",
            ],
            // Only the site file's keys: none from the test's environment.
            &[],
        );
        let ended = sub.wait_with(|_| {});
        let faults = proxy.faults();
        drop(proxy);
        eprintln!("chaos: {case} run {run}: injected {faults:?}");
        assert!(
            ended.status.success(),
            "{case}: {}\nfaults: {faults:?}",
            ended.text()
        );
        assert!(
            !faults.is_empty(),
            "{case}: no fault was injected (no commit seen through the proxy)"
        );
        assert!(
            faults
                .iter()
                .any(|(r, _)| r.starts_with("POST ") && r.contains("uploadId=")),
            "{case}: no CompleteMultipartUpload was faulted: {faults:?}"
        );
        assert_eq!(final_status(&cluster, &ended.id), "SUCCEEDED");
        assert_nothing_running(&cluster, &ended.id);
        let staging = format!("/user/{}/.filexStaging/{}", user(), ended.id);
        assert!(
            webhdfs(&cluster).file_status(&staging).is_err(),
            "staging {staging} left"
        );
        let files = s3_output(&s3, &prefix);
        assert!(
            !files.keys().any(|k| k.starts_with("_temporary")),
            "{case}: _temporary objects left: {:?}",
            files.keys()
        );
        assert_eq!(
            open_uploads(&s3, &prefix),
            Vec::<String>::new(),
            "{case}: open multipart uploads"
        );
        let diff = assert_identical(case, &files);
        let _ = fs::remove_dir_all(s3.data_dir.join(&s3.bucket).join(&prefix));
        tally.add(faults.len(), diff, ended.took);
    }
    report(tally.row(case));
}

// ---- the object store: killed applications leave no open multipart upload -----------------

/// The S3 output of one run of a case: its own prefix in the test bucket, and a conf
/// directory whose site file gives the bucket the server's endpoint and keys (no proxy).
struct S3Root {
    prefix: String,
    root: String,
    conf: PathBuf,
    _work: LocalDir,
}

fn s3_root(cluster: &Cluster, s3: &S3Env, case: &str, run: usize) -> S3Root {
    let work = LocalDir::new("chaos-s3");
    let conf = s3_conf(cluster, s3, &s3.endpoint, work.path());
    let prefix = format!(
        "chaos-{case}-{}-{run}-{}",
        std::process::id(),
        base_seed() % 100_000
    );
    let root = format!("s3a://{}/{prefix}", s3.bucket);
    S3Root {
        prefix,
        root,
        conf,
        _work: work,
    }
}

/// The upload id in an [`open_uploads`] entry (`key (upload id)`).
fn upload_id_in(entry: &str) -> Option<&str> {
    entry
        .rsplit_once(" (")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
}

/// The parts the server holds for the open upload `entry` (as [`open_uploads`] names it:
/// `key (upload id)`).
fn upload_parts(s3: &S3Env, entry: &str) -> usize {
    let Some(id) = upload_id_in(entry) else {
        return 0;
    };
    let part = format!(".upload_id-{id}.part-");
    fs::read_dir(&s3.data_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&part))
                .count()
        })
        .unwrap_or(0)
}

/// Removes the open upload `entry` from the server's files (what a lifecycle rule's abort
/// does; the server runs on this machine).
fn forget_upload(s3: &S3Env, entry: &str) {
    let Some(id) = upload_id_in(entry) else {
        return;
    };
    let tag = format!("upload-{id}.");
    for e in fs::read_dir(&s3.data_dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().contains(&tag) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What may stay open after a kill: nothing, but for uploads holding no part. A process
/// killed between CreateMultipartUpload and the PutObject of its marker (the window the
/// marker module describes, which the bucket's `AbortIncompleteMultipartUpload` rule
/// closes) leaves one; any upload holding bytes must have been aborted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenUploads {
    None,
    EmptyOnesAfterAKill,
}

/// Asserts that below the S3 `prefix` no `_temporary` object (staged output, upload
/// markers) is left, no open multipart upload but what `allowed` allows, and no HDFS
/// staging directory of `ids`; `said` (what the client printed) goes into the messages.
fn assert_no_s3_leftovers(
    case: &str,
    cluster: &Cluster,
    s3: &S3Env,
    (prefix, allowed): (&str, OpenUploads),
    ids: &[&str],
    said: &str,
) {
    let temporary: Vec<String> = s3_output(s3, prefix)
        .into_keys()
        .filter(|k| k.starts_with("_temporary"))
        .collect();
    assert_eq!(
        temporary,
        Vec::<String>::new(),
        "{case}: _temporary objects left\n{said}"
    );
    let (empty, holding): (Vec<String>, Vec<String>) = open_uploads(s3, prefix)
        .into_iter()
        .partition(|u| upload_parts(s3, u) == 0);
    assert_eq!(
        holding,
        Vec::<String>::new(),
        "{case}: open multipart uploads holding parts\n{said}"
    );
    if allowed == OpenUploads::None {
        assert_eq!(
            empty,
            Vec::<String>::new(),
            "{case}: open multipart uploads\n{said}"
        );
    } else if !empty.is_empty() {
        eprintln!(
            "chaos: {case}: {} empty upload(s) a process killed before writing its marker \
             left open; removed as the bucket's lifecycle rule would: {empty:?}",
            empty.len()
        );
        for u in &empty {
            forget_upload(s3, u);
        }
    }
    let fs_ = webhdfs(cluster);
    for id in ids {
        let staging = format!("/user/{}/.filexStaging/{id}", user());
        assert!(
            fs_.file_status(&staging).is_err(),
            "{case}: staging {staging} left\n{said}"
        );
    }
}

/// The checks of a run into an S3 output that must end SUCCEEDED; returns the lines lost
/// and duplicated, and removes the output.
fn verify_s3_succeeded(
    case: &str,
    cluster: &Cluster,
    s3: &S3Env,
    run: &Ended,
    prefix: &str,
    ids: &[&str],
) -> (i64, i64) {
    assert!(run.status.success(), "{case}: {}", run.text());
    assert_eq!(
        final_status(cluster, &run.id),
        "SUCCEEDED",
        "{case}: {}",
        run.text()
    );
    assert_nothing_running(cluster, &run.id);
    assert_no_s3_leftovers(
        case,
        cluster,
        s3,
        (prefix, OpenUploads::None),
        ids,
        &run.text(),
    );
    let diff = assert_identical(case, &s3_output(s3, prefix));
    let _ = fs::remove_dir_all(s3.data_dir.join(&s3.bucket).join(prefix));
    diff
}

/// The open uploads and markers below `prefix` right now, for the case's log line.
fn s3_in_flight(s3: &S3Env, prefix: &str) -> String {
    let markers = s3_output(s3, prefix)
        .into_keys()
        .filter(|k| k.starts_with("_temporary/") && k.contains("/_uploads/"))
        .count();
    format!(
        "{} open multipart upload(s), {markers} marker(s)",
        open_uploads(s3, prefix).len()
    )
}

/// The last two reduce tasks of the first AM attempt wait 5 s before they run, so that the
/// reduces of the small chaos job last long enough for a kill to land in them (they take about
/// 1.5–2 s otherwise; a later attempt's retries, numbered apart, are not delayed).
const SLOW_LAST_REDUCES: &[(&str, &str)] = &[
    ("FILEX_FAULT_DELAY_AT", "reduce:8:0,reduce:9:0"),
    ("FILEX_FAULT_DELAY_MS", "5000"),
];

/// Waits until the first AM attempt of the watched run is in the reduces with a seeded
/// share of them done; true once it is.
fn in_reduces(w: &Watch<'_>, share: u64) -> bool {
    matches!(w.first_attempt_phase(), Some((phase, done, total)) if phase == "reduce" && done * 100 >= share * total)
}

/// The AM SIGKILLed during the reduces of a job writing to S3: the uploads its workers
/// opened (staged partitions, some journaled, some not) are adopted or aborted by the second
/// attempt; none stays open.
#[test]
fn chaos_am_killed_during_reduces_of_an_s3_job() {
    let case = "s3-am-kill-reduces";
    let cluster = require_cluster();
    let s3 = s3env();
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let share = rng.range(0, 60);
        let delay = Duration::from_millis(rng.range(0, 1500));
        eprintln!(
            "chaos: {case} run {run}: SIGKILL the AM in reduce after {share}% of its tasks and {delay:?}"
        );
        let out = s3_root(&cluster, &s3, case, run);
        let sub =
            Submission::start_in(&cluster, &out.conf, &job, &out.root, &[], SLOW_LAST_REDUCES);
        let mut killed_in = None;
        let ended = sub.wait_with(|w| {
            if killed_in.is_some() {
                return;
            }
            let seen = Instant::now();
            if !in_reduces(w, share) {
                return;
            }
            if let Some(pid) = am_pid(w.id, 1) {
                thread::sleep(delay.saturating_sub(seen.elapsed()));
                signal("-KILL", &[pid]);
                killed_in = Some(format!(
                    "reduce at {:.1} s with {}",
                    w.elapsed().as_secs_f64(),
                    s3_in_flight(&s3, &out.prefix)
                ));
            }
        });
        let when = killed_in.unwrap_or_else(|| {
            panic!(
                "{case} run {run}: the AM was never seen in the reduces: {}",
                ended.text()
            )
        });
        eprintln!(
            "chaos: {case} run {run}: killed the AM in {when}; the run took {:.1} s",
            ended.took.as_secs_f64()
        );
        assert!(
            ended.stdout.contains("YARN started AM attempt 2"),
            "{case}: no second attempt: {}",
            ended.text()
        );
        let diff = verify_s3_succeeded(case, &cluster, &s3, &ended, &out.prefix, &[&ended.id]);
        tally.add(1, diff, ended.took);
    }
    report(tally.row(case));
}

/// `filex kill` of a job writing to S3 during its reduces: the client exits 3, the
/// application ends KILLED and leaves no open upload (the AM's SIGTERM handler and `filex
/// submit`'s clean-up abort what its workers opened); a re-run of the same output root then
/// succeeds with the clean run's bytes.
#[test]
fn chaos_filex_kill_of_an_s3_job_during_reduces_then_a_rerun() {
    let case = "s3-kill-reduces-rerun";
    let cluster = require_cluster();
    let s3 = s3env();
    let base = baseline();
    let job_dir = LocalDir::new("chaos-job");
    let job = base.job_file(&job_dir);
    let mut tally = Tally::default();
    for run in 0..runs_per_case() {
        let mut rng = Rng::for_run(case, run);
        let share = rng.range(0, 60);
        let delay = Duration::from_millis(rng.range(0, 1500));
        eprintln!(
            "chaos: {case} run {run}: filex kill in reduce after {share}% of its tasks and {delay:?}"
        );
        let out = s3_root(&cluster, &s3, case, run);
        let sub =
            Submission::start_in(&cluster, &out.conf, &job, &out.root, &[], SLOW_LAST_REDUCES);
        let mut kill: Option<thread::JoinHandle<std::process::Output>> = None;
        let mut at_kill = String::new();
        let conf = out.conf.clone();
        let ended = sub.wait_with(|w| {
            if kill.is_some() {
                return;
            }
            let seen = Instant::now();
            if !in_reduces(w, share) {
                return;
            }
            thread::sleep(delay.saturating_sub(seen.elapsed()));
            at_kill = format!(
                "at {:.1} s with {}",
                w.elapsed().as_secs_f64(),
                s3_in_flight(&s3, &out.prefix)
            );
            let (id, conf) = (w.id.to_string(), conf.clone());
            kill = Some(thread::spawn(move || {
                Command::new(filex_bin())
                    .args(["kill", &id])
                    .env("HADOOP_CONF_DIR", &conf)
                    .env("YARN_CONF_DIR", &conf)
                    .env("FILEX_LOG", "warn")
                    .output()
                    .expect("run filex kill")
            }));
        });
        let kill = kill
            .unwrap_or_else(|| {
                panic!(
                    "{case} run {run}: the run ended before the kill: {}",
                    ended.text()
                )
            })
            .join()
            .expect("filex kill thread");
        eprintln!(
            "chaos: {case} run {run}: filex kill {} {at_kill}; the client ended after {:.1} s",
            ended.id,
            ended.took.as_secs_f64()
        );
        assert!(
            kill.status.success(),
            "filex kill: {}",
            text_of(&kill.stderr)
        );
        assert_eq!(
            ended.status.code(),
            Some(3),
            "{case}: the client after a kill: {}",
            ended.text()
        );
        assert_eq!(
            final_status(&cluster, &ended.id),
            "KILLED",
            "{}",
            ended.text()
        );
        assert_nothing_running(&cluster, &ended.id);
        assert_no_s3_leftovers(
            case,
            &cluster,
            &s3,
            (&out.prefix, OpenUploads::EmptyOnesAfterAKill),
            &[&ended.id],
            &ended.text(),
        );
        let rerun =
            Submission::start_in(&cluster, &out.conf, &job, &out.root, &[], &[]).wait_with(|_| {});
        let diff = verify_s3_succeeded(
            case,
            &cluster,
            &s3,
            &rerun,
            &out.prefix,
            &[&ended.id, &rerun.id],
        );
        tally.add(1, diff, ended.took + rerun.took);
    }
    report(tally.row(case));
}
