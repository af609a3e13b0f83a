//! AM recovery on the mini cluster (needs `scripts/cluster.sh start` and a binary built with
//! `--features fault-injection`): the application master is SIGKILLed while maps run and
//! while reduces run; YARN starts a second AM attempt, which reads the journal the first one
//! wrote, keeps the tasks it finished and runs the rest. The application succeeds, its output
//! is byte-identical to `filex run`'s, the manifest counts the recovered tasks, `filex submit`
//! says it, and nothing is left under `_temporary` or in the staging directory.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filex_integration::cli::{filex, filex_bin, require_fault_injection, unique, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::upload_tree;
use filex_integration::procs::am_pid;
use filex_integration::webhdfs::WebHdfs;

/// A generated corpus on HDFS, its job files, and the partitions `filex run` wrote from it.
struct Corpus {
    dir: tempfile::TempDir,
    hdfs_root: String,
    /// Path and bytes of every partition of the clean, embedded run.
    partitions: Vec<(String, Vec<u8>)>,
}

impl Corpus {
    fn new(conf: &Path, webhdfs: &WebHdfs) -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let out = filex(
            &[
                "gen", "--out", d, "--seed", "13", "--hours", "1", "--rate", "10", "--traps",
            ],
            conf,
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hdfs_root = format!("/filex-it/{}", unique("recovery"));
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
        assert_ne!(job, hdfs_job);
        fs::write(dir.path().join("job-hdfs.toml"), hdfs_job).unwrap();
        let run = filex(
            &["run", &dir.path().join("job.toml").display().to_string()],
            conf,
            &[],
        );
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut partitions = Vec::new();
        collect(&dir.path().join("output"), "", &mut partitions);
        assert!(partitions.len() >= 2, "the corpus has several partitions");
        Corpus {
            dir,
            hdfs_root,
            partitions,
        }
    }

    fn hdfs_job(&self) -> String {
        self.dir.path().join("job-hdfs.toml").display().to_string()
    }
}

/// The partition files (`*.log*`) under `dir`, by relative path.
fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if name.starts_with('_') {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            collect(&e.path(), &r, out);
        } else {
            out.push((r, fs::read(e.path()).unwrap()));
        }
    }
}

/// Submits the corpus's job with `stall` (`FILEX_FAULT_STALL_AT`), waits until the first AM
/// attempt journaled a task whose entry name starts with `journaled`, SIGKILLs that AM and
/// follows the application to its end. Returns the id and everything `filex submit` printed.
fn kill_am_after(
    conf: &Path,
    webhdfs: &WebHdfs,
    corpus: &Corpus,
    stall: &str,
    journaled: &str,
) -> (String, String, bool) {
    let mut child = Command::new(filex_bin())
        .args(["submit", &corpus.hdfs_job(), "--force-new"])
        .args(["-D", "filex.workers.max=2", "-D", "filex.workers.min=2"])
        // Tasks on workers, journaled by the AM: not uber mode, which this small job would get.
        .args(["-D", "filex.uber.max-bytes=0"])
        .args(["-D", "filex.worker.memory-mb=512"])
        // Several map tasks, so that some finish before the AM dies.
        .args(["-D", "filex.task.input-bytes=20000"])
        .env("HADOOP_CONF_DIR", conf)
        .env("FILEX_LOG", "warn")
        .env("FILEX_FAULT_STALL_AT", stall)
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
    let journal = format!("/user/{}/.filexStaging/{id}/journal", user());
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let listing = webhdfs.list_status(&journal).unwrap_or_default();
        if listing.contains(&format!("\"pathSuffix\":\"{journaled}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing like {journaled} journaled in {journal}: {listing}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = am_pid(&id, 1).expect("the first AM attempt runs on this machine");
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let ok = child.wait().unwrap().success();
    (id, format!("{}{rest}", String::from_utf8_lossy(&seen)), ok)
}

/// Checks what a recovered run must show: success, the second attempt's recovery said by
/// `filex submit` and counted in the manifest, the clean run's bytes, nothing left.
fn assert_recovered(webhdfs: &WebHdfs, corpus: &Corpus, id: &str, text: &str, ok: bool) -> u64 {
    assert!(ok, "{text}");
    assert!(text.contains("YARN started AM attempt 2"), "{text}");
    assert!(text.contains("AM attempt 2 started; recovering"), "{text}");
    let manifest_url = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("manifest: hdfs://"))
        .unwrap_or_else(|| panic!("no manifest in: {text}"));
    let path = &manifest_url[manifest_url.find('/').unwrap()..];
    let manifest = String::from_utf8(webhdfs.open(path).unwrap()).unwrap();
    let recovered: u64 = manifest
        .split("\"tasks_recovered\": ")
        .nth(1)
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(recovered > 0, "no task recovered: {manifest}");
    for (rel, bytes) in &corpus.partitions {
        let remote = webhdfs
            .open(&format!("{}/out/{rel}", corpus.hdfs_root))
            .unwrap_or_else(|e| panic!("{rel} missing on HDFS: {e}"));
        assert!(&remote == bytes, "{rel} differs from the clean run");
    }
    assert!(
        webhdfs
            .file_status(&format!("{}/out/_temporary", corpus.hdfs_root))
            .is_err(),
        "_temporary left under the output root"
    );
    let staging = format!("/user/{}/.filexStaging/{id}", user());
    assert!(
        webhdfs.file_status(&staging).is_err(),
        "staging {staging} left"
    );
    recovered
}

#[test]
fn an_am_killed_during_maps_is_recovered_by_the_second_attempt() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs);
    // Map 1's first attempt stalls, so the maps cannot all finish before the kill, which
    // comes once one of maps 20–29 was journaled.
    let (id, text, ok) = kill_am_after(&cluster.conf_dir, &webhdfs, &corpus, "map:1:0", "map-0002");
    let recovered = assert_recovered(&webhdfs, &corpus, &id, &text, ok);
    eprintln!("{id}: {recovered} tasks recovered\n{text}");
}

#[test]
fn an_am_killed_during_reduces_is_recovered_by_the_second_attempt() {
    require_fault_injection();
    let cluster = require_cluster();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let corpus = Corpus::new(&cluster.conf_dir, &webhdfs);
    // Reduce 0's first attempt stalls; the AM dies once another reduce was journaled.
    let (id, text, ok) = kill_am_after(
        &cluster.conf_dir,
        &webhdfs,
        &corpus,
        "reduce:0:0",
        "reduce-",
    );
    let recovered = assert_recovered(&webhdfs, &corpus, &id, &text, ok);
    eprintln!("{id}: {recovered} tasks recovered\n{text}");
}
