//! `filex run` end to end on local files, through the binary: counters, rejects, corrupt
//! shards, atomic publication, determinism, the spill path and re-runs.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn filex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_filex"))
        .args(args)
        .env("FILEX_LOG", "warn")
        .output()
        .expect("run filex")
}

fn gz(lines: &[String]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    MultiGzDecoder::new(fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// An nginx combined line at `secs` after 2026-11-05T00:00:00+08:00 (may exceed the day).
fn nginx_line(secs: u32, tag: &str) -> String {
    let day = 5 + secs / 86_400;
    let s = secs % 86_400;
    format!(
        "203.0.113.{} - - [{}/{}/2026:{:02}:{:02}:{:02} +0800] \"GET /{tag}.jpg HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11)\"",
        secs % 250,
        day,
        MONTHS[10],
        s / 3600,
        (s / 60) % 60,
        s % 60,
        1000 + secs
    )
}

struct Corpus {
    dir: tempfile::TempDir,
}

impl Corpus {
    fn new() -> Corpus {
        Corpus {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn shard(&self, domain: &str, slot: &str, bytes: &[u8]) {
        let p = self
            .path()
            .join(format!("ng/{domain}/20261105/{slot}.log.gz"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    fn job(&self, extra: &str) -> PathBuf {
        let text = format!(
            r#"
name = "t"
{extra}
[window]
start = "2026-11-05T00:00:00+08:00"
end = "2026-11-05T02:00:00+08:00"
slack = "5m"

[[source]]
name = "edge"
format = "nginx"
shards = "ng/{{domain}}/%Y%m%d/%H%M.log.gz"
timezone = "+08:00"

[output]
root = "out"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log.gz"
format = "raw"
timezone = "+08:00"
"#
        );
        let p = self.path().join("job.toml");
        fs::write(&p, text).unwrap();
        p
    }
    fn out(&self) -> PathBuf {
        self.path().join("out")
    }
}

fn manifest_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let url = last
        .strip_prefix("manifest: file://")
        .unwrap_or_else(|| panic!("last stdout line is not the manifest: {stdout}"));
    serde_json::from_str(&fs::read_to_string(url).unwrap()).unwrap()
}

/// Every published file (relative path → bytes), `_` names excluded.
fn published(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('_') {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A corpus of two domains over three hours of slots, lines out of order inside shards,
/// some lines outside the window and some garbage.
fn standard_corpus() -> (Corpus, Vec<(u32, String)>) {
    let c = Corpus::new();
    let mut expected = Vec::new();
    for (d, domain) in ["a.example.com", "b.example.com"].iter().enumerate() {
        // Slots 23:55 (previous day: in the slack) … 02:00 (after the end, in the slack).
        for slot in (0..=25).map(|i| i * 300) {
            let mut lines = Vec::new();
            for k in 0..40u32 {
                // Disorder: times go backwards inside the shard; some spill into the
                // neighbouring slots and outside the window.
                let secs = slot + 299 - (k * 7 + d as u32) % 300;
                let line = nginx_line(secs, &format!("{domain}-{slot}-{k}"));
                lines.push(line.clone());
                if secs < 7200 {
                    expected.push((secs, format!("{domain} {line}")));
                }
            }
            lines.push("garbage \u{1}\u{2} not a log line".to_string());
            let (h, m) = (slot / 3600, (slot / 60) % 60);
            c.shard(domain, &format!("{h:02}{m:02}"), &gz(&lines));
        }
        // A slot of the previous day in the slack (23:55 local).
        let late = vec![nginx_line(0, "early-but-in-window")];
        let p = c.path().join(format!("ng/{domain}/20261104/2355.log.gz"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, gz(&late)).unwrap();
        expected.push((0, format!("{domain} {}", late[0])));
    }
    (c, expected)
}

#[test]
fn fuses_counts_and_sorts() {
    let (c, expected) = standard_corpus();
    let job = c.job("");
    let out = filex(&["run", job.to_str().unwrap(), "--threads", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = manifest_of(&out);
    let counters = &m["counters"];
    let n = |k: &str| counters[k].as_u64().unwrap();
    assert_eq!(
        n("lines_in"),
        n("lines_out") + n("rejected") + n("out_of_window")
    );
    assert_eq!(n("lines_out"), expected.len() as u64);
    assert_eq!(n("rejected"), 2 * 25, "one garbage line per shard read");
    assert!(n("out_of_window") > 0);

    // Each hourly file holds exactly its lines, sorted by time (stable by shard, line).
    let parts = m["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "2 domains x 2 hours: {parts:?}");
    for p in parts {
        let path = c.out().join(p["path"].as_str().unwrap());
        let text = gunzip(&path);
        let domain = p["domain"].as_str().unwrap();
        let hour = if p["path"].as_str().unwrap().ends_with("00.log.gz") {
            0
        } else {
            1
        };
        let mut want: Vec<&(u32, String)> = expected
            .iter()
            .filter(|(s, l)| l.starts_with(&format!("{domain} ")) && s / 3600 == hour)
            .collect();
        want.sort_by_key(|(s, _)| *s);
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), want.len(), "{}", p["path"]);
        for (g, (_, w)) in got.iter().zip(&want) {
            assert_eq!(*g, &w[domain.len() + 1..]);
        }
        assert_eq!(p["lines"].as_u64().unwrap(), got.len() as u64);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(p["bytes"].as_u64().unwrap(), bytes.len() as u64);
    }

    // The rejects file keeps every rejected line with source, shard and line number.
    let rejects = c.out().join(m["rejects"]["path"].as_str().unwrap());
    let text = gunzip(&rejects);
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(5, '\t').collect()).collect();
    assert_eq!(rows.len() as u64, n("rejected"));
    for r in &rows {
        assert_eq!(r[0], "edge");
        assert!(
            r[1].starts_with("file://") && r[1].ends_with(".log.gz"),
            "{r:?}"
        );
        assert_eq!(r[2], "41", "the garbage line is the 41st of its shard");
        assert_eq!(r[4], "garbage \u{1}\u{2} not a log line");
    }
    // Nothing but partitions and `_` names under the root.
    assert!(!c.out().join("_temporary").exists());
}

#[test]
fn runs_are_deterministic_and_the_spill_path_agrees() {
    let (c, _) = standard_corpus();
    let job = c.job("");
    let job = job.to_str().unwrap();
    let a = filex(&["run", job, "--threads", "2"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let first = published(&c.out());
    // A tiny memory budget and tiny tasks force many spills and multi-pass merges (`--full`:
    // a re-run would otherwise keep every partition, its inputs being unchanged).
    let b = filex(&[
        "run",
        job,
        "--full",
        "--threads",
        "1",
        "--memory",
        "1M",
        "--task-size",
        "1K",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(published(&c.out()), first);
    let ma = manifest_of(&a);
    let mb = manifest_of(&b);
    assert_eq!(ma["partitions"], mb["partitions"]);
    assert_eq!(ma["counters"], mb["counters"]);
}

#[test]
fn a_corrupt_shard_fails_the_job_and_publishes_nothing() {
    let (c, _) = standard_corpus();
    let mut bad = gz(&[nginx_line(4000, "x")]);
    bad.truncate(bad.len() - 6);
    c.shard("a.example.com", "0105", &bad);
    let job = c.job("");
    let out = filex(&["run", job.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0105.log.gz"),
        "message names the shard: {err}"
    );
    assert!(published(&c.out()).is_empty(), "nothing published");
    assert!(!c.out().join("_manifests").exists());
    assert!(!c.out().join("_temporary").exists());
}

#[test]
fn corrupt_shards_can_be_skipped_and_are_listed() {
    let (c, _) = standard_corpus();
    c.shard("b.example.com", "0110", b"definitely not gzip\n");
    let job = c.job("on_corrupt_shard = \"skip\"");
    let out = filex(&["run", job.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = manifest_of(&out);
    let skipped = m["skipped_shards"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["url"]
        .as_str()
        .unwrap()
        .ends_with("b.example.com/20261105/0110.log.gz"));
    let c2 = &m["counters"];
    assert_eq!(
        c2["lines_in"].as_u64().unwrap(),
        c2["lines_out"].as_u64().unwrap()
            + c2["rejected"].as_u64().unwrap()
            + c2["out_of_window"].as_u64().unwrap()
    );
}

#[test]
fn a_rerun_of_the_window_replaces_its_output_exactly() {
    let (c, _) = standard_corpus();
    let job = c.job("");
    let job = job.to_str().unwrap();
    assert!(filex(&["run", job]).status.success());
    let first = published(&c.out());
    // Late data arrives for one slot; the rerun must include it, with no duplicates.
    c.shard("a.example.com", "0130", &gz(&[nginx_line(5400, "late")]));
    assert!(filex(&["run", job]).status.success());
    let second = published(&c.out());
    assert_eq!(first.len(), second.len());
    let total = |files: &[(String, Vec<u8>)]| -> usize {
        files
            .iter()
            .map(|(_, b)| {
                let mut s = String::new();
                MultiGzDecoder::new(&b[..]).read_to_string(&mut s).unwrap();
                s.lines().count()
            })
            .sum()
    };
    // The replaced shard had 40 lines of which some were in the window; now it has one.
    assert!(total(&second) < total(&first));
    assert!(filex(&["run", job]).status.success());
    assert_eq!(published(&c.out()), second, "same input, same bytes");
}

#[test]
fn job_file_errors_exit_2_and_name_the_key() {
    let c = Corpus::new();
    let job = c.job("");
    let out = filex(&["run", job.to_str().unwrap(), "--set", "window.slack=soon"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("window.slack") && err.contains("soon"),
        "{err}"
    );
    let out = filex(&["run", "/nonexistent/job.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/job.toml"));
}

#[test]
fn plan_lists_shards_without_reading_them() {
    let (c, _) = standard_corpus();
    let job = c.job("");
    let out = filex(&["plan", job.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let src = &plan["sources"][0];
    // Slots 23:55 (prev day) and 00:00 … 02:00: 26 slots x 2 domains.
    assert_eq!(src["shards"].as_u64().unwrap(), 2 * 26);
    assert_eq!(src["slots"].as_array().unwrap().len(), 26);
    let tasks = plan["map_tasks"].as_array().unwrap();
    let shards: usize = tasks
        .iter()
        .map(|t| t["shards"].as_array().unwrap().len())
        .sum();
    assert_eq!(shards, 52);
    assert!(!c.out().exists(), "plan writes nothing");
}

#[test]
fn worker_processes_give_the_same_bytes() {
    let (c, _) = standard_corpus();
    let job = c.job("");
    let job = job.to_str().unwrap();
    let threads = filex(&["run", job, "--task-size", "2K"]);
    assert!(
        threads.status.success(),
        "{}",
        String::from_utf8_lossy(&threads.stderr)
    );
    let want = published(&c.out());

    let procs = filex(&["run", job, "--full", "--task-size", "2K", "--workers", "2"]);
    assert!(
        procs.status.success(),
        "{}",
        String::from_utf8_lossy(&procs.stderr)
    );
    assert_eq!(published(&c.out()), want);
}

/// Worker processes dying at chosen task attempts, through the test hooks of `src/fault.rs`:
/// `cargo test -p filex --features fault-injection --test embedded_run`.
#[cfg(feature = "fault-injection")]
mod faults {
    use super::*;

    #[test]
    fn worker_processes_survive_a_crash() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let job = job.to_str().unwrap();
        let threads = filex(&["run", job, "--task-size", "2K"]);
        assert!(
            threads.status.success(),
            "{}",
            String::from_utf8_lossy(&threads.stderr)
        );
        let want = published(&c.out());

        // A worker process dies at the first attempt of a map and of a reduce task: both are
        // retried in other processes and the output is the same.
        let crashed = Command::new(env!("CARGO_BIN_EXE_filex"))
            .args(["run", job, "--full", "--task-size", "2K", "--workers", "2"])
            .env("FILEX_LOG", "warn")
            .env("FILEX_FAULT_EXIT_AT", "map:3:0,reduce:1:0")
            .output()
            .unwrap();
        assert!(
            crashed.status.success(),
            "{}",
            String::from_utf8_lossy(&crashed.stderr)
        );
        assert_eq!(published(&c.out()), want);
        assert_eq!(
            manifest_of(&crashed)["counters"],
            manifest_of(&threads)["counters"]
        );
    }

    /// The thread run's partitions and manifest counters, as the reference.
    fn reference(c: &Corpus, job: &str) -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
        let threads = filex(&["run", job, "--task-size", "2K"]);
        let counters = manifest_of(&threads)["counters"].clone();
        (published(&c.out()), counters)
    }

    /// `filex run --workers 2 --full` (a re-run of the reference's window that reads every
    /// shard again) with a 2 s task timeout and the first map attempt stalled.
    fn stalled_run(job: &str) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_filex"))
            .args(["run", job, "--task-size", "2K", "--workers", "2", "--full"])
            .args(["-D", "filex.task.timeout=2000"])
            .env("FILEX_LOG", "warn")
            .env("FILEX_FAULT_STALL_AT", "map:0:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_stalled_task_times_out_and_runs_elsewhere() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let job = job.to_str().unwrap();
        let (want, counters) = reference(&c, job);
        // Attempt 0 of map 0 sleeps ten minutes (a read that never returns): its heartbeats
        // carry no progress, so after 2 s it is re-run and its process killed.
        let started = std::time::Instant::now();
        let out = stalled_run(job).wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the stalled attempt was waited for"
        );
        assert!(err.contains("map task 0 made no progress for 2 s"), "{err}");
        assert_eq!(published(&c.out()), want);
        assert_eq!(manifest_of(&out)["counters"], counters);
    }

    #[test]
    fn stopped_worker_processes_are_killed_and_replaced() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let job = job.to_str().unwrap();
        let (want, counters) = reference(&c, job);
        let child = stalled_run(job);
        // Once both workers are connected (one of them holding map 0), SIGSTOP them: they
        // fall silent, are timed out, killed and replaced by new processes.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let pgrep = Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .unwrap();
        let workers: Vec<String> = String::from_utf8_lossy(&pgrep.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(workers.len(), 2, "worker processes: {workers:?}");
        for pid in &workers {
            assert!(Command::new("kill")
                .args(["-STOP", pid])
                .status()
                .unwrap()
                .success());
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        // The one holding map 0 is timed out; the other may be, or the run may end first
        // (its process is then killed with the cluster).
        assert!(err.contains("killing a timed-out worker process"), "{err}");
        assert_eq!(published(&c.out()), want);
        assert_eq!(manifest_of(&out)["counters"], counters);
        // The stopped processes are gone (killed, and reaped by the run).
        for pid in &workers {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "worker {pid} still exists"
            );
        }
    }

    /// What a manifest says of the window's files and lines: each partition's path, lines,
    /// bytes and SHA-256, and the counters.
    fn window_record(manifest: &serde_json::Value) -> serde_json::Value {
        let parts: Vec<serde_json::Value> = manifest["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| serde_json::json!([p["path"], p["lines"], p["bytes"], p["sha256"]]))
            .collect();
        serde_json::json!({"partitions": parts, "counters": manifest["counters"],
            "rejects": manifest["rejects"]})
    }

    /// Everything under `root` whose name starts with `_temporary` or ends `.commit`.
    fn commit_leftovers(root: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if name.starts_with("_temporary") || name.ends_with(".commit") {
                    found.push(p);
                } else if p.is_dir() {
                    dirs.push(p);
                }
            }
        }
        found
    }

    const RECORD: &str = "_manifests/t/20261104T160000Z-20261104T180000Z.commit";

    #[test]
    fn a_run_dying_in_its_commit_is_finished_by_the_next_run() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let job = job.to_str().unwrap();
        let clean = filex(&["run", job]);
        assert!(clean.status.success());
        let want = published(&c.out());
        let want_record = window_record(&manifest_of(&clean));
        let tmp = c.dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        // 8 steps: the done-flag down, 4 partitions and the rejects, the manifest, the
        // flag. Into an empty root and over the previous output (with the same bytes);
        // workers in processes or threads.
        for (k, workers, fresh) in [
            (0, "0", true),
            (3, "2", true),
            (6, "0", false),
            (7, "0", false),
        ] {
            if fresh {
                fs::remove_dir_all(c.out()).unwrap();
            }
            let died = Command::new(env!("CARGO_BIN_EXE_filex"))
                .args([
                    "run",
                    job,
                    "--full",
                    "--task-size",
                    "2K",
                    "--workers",
                    workers,
                ])
                .env("FILEX_LOG", "warn")
                .env("TMPDIR", &tmp)
                .env("FILEX_FAULT_COMMIT_EXIT_AFTER", k.to_string())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&died.stderr);
            assert_eq!(died.status.code(), Some(137), "k = {k}: {err}");
            assert!(err.contains("exiting in the middle of the commit"), "{err}");
            assert!(c.out().join(RECORD).is_file(), "k = {k}: the intent stays");
            if k < 6 {
                assert!(!c.out().join("_SUCCESS").exists(), "k = {k}: no done-flag");
            }
            // The dead process left its scratch (and its workers' credentials folder); the
            // next run removes them.
            let left = filex_dirs(&tmp);
            assert_eq!(left.len(), if workers == "0" { 1 } else { 2 }, "{left:?}");
            let rerun = Command::new(env!("CARGO_BIN_EXE_filex"))
                .args(["run", job])
                .env("FILEX_LOG", "warn")
                .env("TMPDIR", &tmp)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&rerun.stderr);
            assert!(rerun.status.success(), "k = {k}: {err}");
            assert_eq!(
                err.matches("finished the commit an earlier run of this window left unfinished")
                    .count(),
                1,
                "k = {k}: {err}"
            );
            assert_eq!(published(&c.out()), want, "k = {k}");
            assert_eq!(window_record(&manifest_of(&rerun)), want_record, "k = {k}");
            assert!(c.out().join("_SUCCESS").is_file());
            assert_eq!(commit_leftovers(&c.out()), Vec::<PathBuf>::new(), "k = {k}");
            assert_eq!(filex_dirs(&tmp), Vec::<PathBuf>::new(), "k = {k}");
        }
    }

    /// The `filex-*` entries of `tmp`.
    fn filex_dirs(tmp: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("filex-")
            })
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_damaged_commit_record_stops_the_next_run_naming_it() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let job = job.to_str().unwrap();
        let died = Command::new(env!("CARGO_BIN_EXE_filex"))
            .args(["run", job])
            .env("FILEX_LOG", "warn")
            .env("TMPDIR", c.dir.path())
            .env("FILEX_FAULT_COMMIT_EXIT_AFTER", "2")
            .output()
            .unwrap();
        assert_eq!(died.status.code(), Some(137));
        let record = c.out().join(RECORD);
        let text = fs::read(&record).unwrap();
        fs::write(&record, &text[..text.len() / 3]).unwrap();
        let before = published(&c.out());
        let out = filex(&["run", job]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&record.display().to_string()), "{err}");
        assert!(err.contains("records an unfinished commit"), "{err}");
        assert_eq!(published(&c.out()), before, "nothing touched");
        assert!(!c
            .out()
            .join("_manifests/t/20261104T160000Z-20261104T180000Z.json")
            .exists());
    }

    #[test]
    fn a_task_failing_every_attempt_fails_the_run_cleanly() {
        let (c, _) = standard_corpus();
        let job = c.job("");
        let out = Command::new(env!("CARGO_BIN_EXE_filex"))
            .args([
                "run",
                job.to_str().unwrap(),
                "--task-size",
                "2K",
                "--workers",
                "2",
            ])
            .env("FILEX_LOG", "warn")
            .env("FILEX_FAULT_EXIT_AT", "map:0:0,map:0:1,map:0:2,map:0:3")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("map task 0 failed 4 times"), "{err}");
        assert!(published(&c.out()).is_empty());
        assert!(!c.out().join("_manifests").exists());
    }
}

#[test]
fn a_shard_delivered_twice_is_read_once_unless_kept() {
    let (c, _) = standard_corpus();
    // A template with a glob after the slot, so a redelivery under another name matches.
    let job_with = |extra: &str| {
        let p = c.job(extra);
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, text.replace("%H%M.log.gz", "%H%M*.log.gz")).unwrap();
        p
    };
    let run = |job: &Path| {
        let out = filex(&["run", job.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (manifest_of(&out), published(&c.out()))
    };
    let counts = |m: &serde_json::Value| {
        let n = |k: &str| m["counters"][k].as_u64().unwrap();
        assert_eq!(
            n("lines_in"),
            n("lines_out") + n("rejected") + n("out_of_window")
        );
        (n("lines_in"), n("lines_out"), n("rejected"))
    };
    let job = job_with("");
    let (m0, without_copy) = run(&job);
    assert!(m0["duplicate_shards"].as_array().unwrap().is_empty());

    let dir = c.path().join("ng/a.example.com/20261105");
    fs::copy(dir.join("0100.log.gz"), dir.join("0100-redelivered.log.gz")).unwrap();
    let (m1, with_copy) = run(&job);
    assert_eq!(with_copy, without_copy, "the copy changes no output byte");
    assert_eq!(counts(&m1), counts(&m0));
    let dups = m1["duplicate_shards"].as_array().unwrap();
    assert_eq!(dups.len(), 1, "{dups:?}");
    // `0100-redelivered.log.gz` sorts before `0100.log.gz`: it is the copy read.
    let d = &dups[0];
    assert!(d["url"].as_str().unwrap().ends_with("/0100.log.gz"), "{d}");
    assert!(
        d["duplicate_of"]
            .as_str()
            .unwrap()
            .ends_with("/0100-redelivered.log.gz"),
        "{d}"
    );
    let size = fs::metadata(dir.join("0100.log.gz")).unwrap().len();
    assert_eq!(d["bytes"].as_u64().unwrap(), size);
    assert_eq!(m1["sources"][0]["shards"], m0["sources"][0]["shards"]);
    // The copy is in the shard table, marked, with no line counted.
    let copy = m1["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"] == d["url"])
        .unwrap();
    assert_eq!(copy["duplicate_of"], d["duplicate_of"]);
    assert_eq!(copy["counters"]["lines_in"], 0);
    // A full run (no previous manifest to reuse) tells the copy apart the same way.
    let out = filex(&["run", job.to_str().unwrap(), "--full"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m3 = manifest_of(&out);
    assert_eq!(published(&c.out()), without_copy);
    assert_eq!(counts(&m3), counts(&m0));
    assert_eq!(m3["duplicate_shards"], m1["duplicate_shards"]);

    // Kept: the shard's 40 lines (all in the window) and its garbage line count twice.
    let (m2, _) = run(&job_with("on_duplicate_shard = \"keep\""));
    assert!(m2["duplicate_shards"].as_array().unwrap().is_empty());
    let ((in0, out0, rej0), (in2, out2, rej2)) = (counts(&m0), counts(&m2));
    assert_eq!((in2, out2, rej2), (in0 + 41, out0 + 40, rej0 + 1));
}

#[test]
fn the_done_flag_is_published_last_and_taken_down_before_a_rerun_replaces_files() {
    let (c, _) = standard_corpus();
    let job = c.job("");
    let job = job.to_str().unwrap();
    let run = |sets: &[&str]| {
        let mut args = vec!["run", job];
        for s in sets {
            args.extend(["--set", s]);
        }
        filex(&args)
    };
    // The job's path starts with {domain} and its window is two hours: no directory holds
    // exactly the window, so the flag goes in the output root, after the manifest.
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flag = c.out().join("_SUCCESS");
    assert_eq!(
        fs::read(&flag).unwrap(),
        b"",
        "an empty _SUCCESS in the root"
    );
    let manifest = c
        .out()
        .join("_manifests/t/20261104T160000Z-20261104T180000Z.json");
    let mtime = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
    assert!(
        mtime(&flag) >= mtime(&manifest),
        "the flag comes after the manifest"
    );

    // A re-run whose commit fails half-way (the last partition's name is taken by a
    // directory) has taken the flag down before replacing the first file.
    let last = c
        .out()
        .join("b.example.com/20261105/b.example.com_2026110501.log.gz");
    fs::remove_file(&last).unwrap();
    fs::create_dir_all(last.join("in-the-way")).unwrap();
    let a_file = c
        .out()
        .join("a.example.com/20261105/a.example.com_2026110500.log.gz");
    let before = mtime(&a_file);
    let failed = filex(&["run", job, "--full"]);
    assert_eq!(failed.status.code(), Some(1), "the commit fails");
    assert!(mtime(&a_file) > before, "earlier partitions were replaced");
    assert!(!flag.exists(), "no stale done-flag after a failed commit");
    // Once the way is clear, the re-run flags the window complete again.
    fs::remove_dir_all(&last).unwrap();
    assert!(run(&[]).status.success());
    assert!(flag.exists() && last.is_file());

    // A path starting with the window's time fields, and a one-hour window: the flag goes
    // in the window's own directory (in the output zone, +08:00).
    fs::remove_file(&flag).unwrap();
    let hourly = [
        "output.path=%Y%m%d/%H/{domain}.log.gz",
        "window.end=2026-11-05T01:00:00+08:00",
    ];
    assert!(run(&hourly).status.success());
    assert!(c.out().join("20261105/00/a.example.com.log.gz").is_file());
    assert_eq!(fs::read(c.out().join("20261105/00/_SUCCESS")).unwrap(), b"");
    assert!(!flag.exists(), "not in the root");

    // Turned off: none written.
    fs::remove_file(c.out().join("20261105/00/_SUCCESS")).unwrap();
    let off = [hourly[0], hourly[1], "output.success_marker=false"];
    assert!(run(&off).status.success());
    assert!(!c.out().join("20261105/00/_SUCCESS").exists() && !flag.exists());
}
