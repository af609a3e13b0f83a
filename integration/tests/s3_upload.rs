//! `filex run` into `s3://` against a real S3-compatible server on 127.0.0.1 (s3s-fs, started
//! by `scripts/s3-server.sh start`; `eval "$(scripts/s3-server.sh env)"` gives the tests its
//! address, credentials and data directory). Each test fails, never skips, when the server
//! is not there.
//!
//! What is checked: the uploaded objects equal the `file://` output byte for byte and the
//! manifest comes last; through a fault-injecting proxy (resets, 500, SlowDown, stalls,
//! damaged bodies) retries still end in byte-identical objects; a permanently failing upload
//! ends the job non-zero with no object and no open multipart upload left; wrong
//! credentials and a missing bucket fail at once with a clear message; peak memory stays
//! bounded while uploading an object several times larger than part size × concurrency.
//!
//! s3s-fs keeps objects as files `<data>/<bucket>/<key>` and open multipart uploads as
//! `<data>/.upload-<id>.json` (+ `.upload_id-<id>.part-<n>`), so the tests read both straight
//! from its data directory: an oracle independent of filex's own S3 client.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use filex_integration::s3_proxy::{find, Fault, Plan, Proxy, ReqInfo};

const START_HINT: &str =
    "start the test S3 server first: scripts/s3-server.sh start && eval \"$(scripts/s3-server.sh env)\"";
/// A filex run that takes longer than this is killed and the test fails.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

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
    let env = S3Env {
        endpoint: get("FILEX_S3_ENDPOINT"),
        bucket: get("FILEX_S3_BUCKET"),
        data_dir: PathBuf::from(get("FILEX_S3_DATA_DIR")),
        key_id: get("FILEX_S3_ACCESS_KEY_ID"),
        secret: get("FILEX_S3_SECRET_ACCESS_KEY"),
        region: get("FILEX_S3_REGION"),
    };
    let addr = env.endpoint.trim_start_matches("http://");
    TcpStream::connect(addr).unwrap_or_else(|e| {
        panic!(
            "S3 server {} not reachable ({e}): {START_HINT}",
            env.endpoint
        )
    });
    env
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn filex_bin() -> PathBuf {
    let bin = std::env::var_os("FILEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/debug/filex"));
    assert!(
        bin.exists(),
        "{} missing: cargo build --bin filex (or set FILEX_BIN)",
        bin.display()
    );
    bin
}

fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos}", std::process::id())
}

/// A synthetic corpus written by `filex gen`.
struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    fn gen(label: &str, extra: &[&str]) -> Corpus {
        let dir = std::env::temp_dir().join(unique(&format!("filex-s3-{label}")));
        let mut args = vec!["gen", "--out"];
        let d = dir.to_string_lossy().into_owned();
        args.push(&d);
        args.extend_from_slice(&["--seed", "3"]);
        args.extend_from_slice(extra);
        let out = Command::new(filex_bin())
            .args(&args)
            .env("FILEX_LOG", "warn")
            .output()
            .expect("run filex gen");
        assert!(out.status.success(), "filex gen: {}", text(&out));
        Corpus { dir }
    }
    fn job(&self) -> PathBuf {
        self.dir.join("job.toml")
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `filex run job --set …` with the S3 test credentials in the environment; returns
/// the output and the child's peak RSS in KiB (VmHWM, polled).
fn run_filex(
    job: &Path,
    sets: &[String],
    s3: &S3Env,
    creds: Option<(&str, &str)>,
) -> (Output, u64) {
    run_filex_args(job, &[], sets, s3, creds)
}

/// As [`run_filex`], with extra `filex run` arguments.
fn run_filex_args(
    job: &Path,
    args: &[&str],
    sets: &[String],
    s3: &S3Env,
    creds: Option<(&str, &str)>,
) -> (Output, u64) {
    run_filex_env(job, args, sets, s3, creds, &[])
}

/// As [`run_filex_args`], with extra environment variables.
fn run_filex_env(
    job: &Path,
    args: &[&str],
    sets: &[String],
    s3: &S3Env,
    creds: Option<(&str, &str)>,
    envs: &[(&str, &str)],
) -> (Output, u64) {
    run_filex_watched(job, args, sets, s3, creds, envs, &mut |_| {})
}

/// As [`run_filex_env`], calling `watch` with the child's pid at every poll while it runs.
fn run_filex_watched(
    job: &Path,
    args: &[&str],
    sets: &[String],
    s3: &S3Env,
    creds: Option<(&str, &str)>,
    envs: &[(&str, &str)],
    watch: &mut dyn FnMut(u32),
) -> (Output, u64) {
    let mut cmd = Command::new(filex_bin());
    cmd.arg("run").arg(job).arg("--no-progress").args(args);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    let (id, secret) = creds.unwrap_or((&s3.key_id, &s3.secret));
    cmd.env("FILEX_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", &s3.region)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        // The test's own copy of the secret is not filex's business.
        .env_remove("FILEX_S3_SECRET_ACCESS_KEY")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn filex run");
    let pid = child.id();
    // Drain the pipes in threads so a chatty child cannot block.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        watch(pid);
        match child.try_wait().expect("wait filex") {
            Some(s) => break s,
            None if started.elapsed() > RUN_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("filex run did not finish within {RUN_DEADLINE:?}");
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    };
    (out, peak_kib)
}

fn s3_sets(s3: &S3Env, endpoint: &str, prefix: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("output.root=s3://{}/{prefix}", s3.bucket),
        format!("output.store.endpoint={endpoint}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Every file under `dir` (relative path → bytes), skipping `skip` top-level names.
fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    fs::read(&p).unwrap_or_default(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out.retain(|k, _| !skip.iter().any(|s| k.starts_with(s)));
    out
}

/// Open multipart uploads on the server (s3s-fs keeps one `.upload-<id>.json` each).
fn open_uploads(s3: &S3Env) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&s3.data_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".upload"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn local_output(
    corpus: &Corpus,
    label: &str,
    args: &[&str],
    extra: &[&str],
) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let out_dir = corpus.dir.join(format!("local-{label}"));
    let mut sets = vec![format!("output.root={}", out_dir.display())];
    sets.extend(extra.iter().map(|s| s.to_string()));
    let mut cmd = Command::new(filex_bin());
    cmd.arg("run")
        .arg(corpus.job())
        .arg("--no-progress")
        .args(args);
    for s in &sets {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.env("FILEX_LOG", "warn").output().expect("run filex");
    assert!(out.status.success(), "local run: {}", text(&out));
    let files = tree(&out_dir, &["_manifests", "_temporary"]);
    assert!(!files.is_empty(), "local run wrote nothing");
    (out_dir, files)
}

fn assert_same_objects(
    s3: &S3Env,
    prefix: &str,
    want: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let root = s3.data_dir.join(&s3.bucket).join(prefix);
    let got = tree(&root, &["_manifests"]);
    let want_names: Vec<&String> = want.keys().collect();
    let got_names: Vec<&String> = got.keys().collect();
    assert_eq!(
        got_names, want_names,
        "object names under s3://{}/{prefix}",
        s3.bucket
    );
    for (name, bytes) in want {
        let g = &got[name];
        assert!(
            g == bytes,
            "{name}: {} bytes uploaded, {} bytes in the file:// output, contents differ",
            g.len(),
            bytes.len()
        );
    }
    got
}

/// The manifest exists and no object was modified after it.
fn assert_manifest_last(s3: &S3Env, prefix: &str) {
    let root = s3.data_dir.join(&s3.bucket).join(prefix);
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).expect("mtime");
    let manifests: Vec<PathBuf> = tree(&root.join("_manifests"), &[])
        .keys()
        .map(|k| root.join("_manifests").join(k))
        .collect();
    assert_eq!(manifests.len(), 1, "one manifest: {manifests:?}");
    let m_time = mtime(&manifests[0]);
    // The done-flag alone comes after it (the gen job's path starts with {domain}: the
    // flag is in the output root).
    let flag = root.join("_SUCCESS");
    assert_eq!(fs::read(&flag).expect("the done-flag _SUCCESS"), b"");
    assert!(
        mtime(&flag) >= m_time,
        "the done-flag comes after the manifest"
    );
    let others = tree(&root, &["_manifests", "_SUCCESS"]);
    for name in others.keys() {
        assert!(
            mtime(&root.join(name)) <= m_time,
            "{name} was written after the manifest"
        );
    }
    let manifest = fs::read_to_string(&manifests[0]).expect("manifest text");
    for (name, bytes) in &others {
        if name.starts_with("_rejects") {
            continue;
        }
        let sha = sha256_hex(bytes);
        assert!(
            manifest.contains(&sha),
            "manifest lacks the SHA-256 of {name}"
        );
    }
}

// ---- a tiny SHA-256 (std only), to check the manifest's digests -------------------------

fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                chunk[4 * i],
                chunk[4 * i + 1],
                chunk[4 * i + 2],
                chunk[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

// ---- the tests --------------------------------------------------------------------------

#[test]
fn s3_output_equals_file_output_and_manifest_comes_last() {
    let s3 = s3env();
    let corpus = Corpus::gen("equal", &[]);
    let (_, want) = local_output(&corpus, "equal", &[], &[]);
    let prefix = unique("equal");
    let before = open_uploads(&s3);
    let sets = s3_sets(
        &s3,
        &s3.endpoint,
        &prefix,
        &["output.store.verify=read-back", "output.store.part_size=5M"],
    );
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(out.status.success(), "s3 run: {}", text(&out));
    assert_same_objects(&s3, &prefix, &want);
    assert_manifest_last(&s3, &prefix);
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");
    // A rerun of the same window writes the same keys with the same bytes, here with
    // strictly sequential parts (`--full`: a re-run would keep every unchanged partition).
    let mut sets = sets;
    sets.push("output.store.sequential=true".into());
    let (out, _) = run_filex_args(&corpus.job(), &["--full"], &sets, &s3, None);
    assert!(out.status.success(), "s3 rerun: {}", text(&out));
    assert_same_objects(&s3, &prefix, &want);
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");
}

#[test]
fn s3_worker_processes_stage_and_the_driver_commits() {
    // Reduce tasks run in worker processes (`--workers 2`): each stages its multipart
    // uploads there, the driver process completes them. The endpoint comes from
    // AWS_ENDPOINT_URL, as users of the AWS tools set it.
    let s3 = s3env();
    let corpus = Corpus::gen("workers", &[]);
    let (_, want) = local_output(&corpus, "workers", &[], &[]);
    let prefix = unique("workers");
    let before = open_uploads(&s3);
    let sets = vec![format!("output.root=s3://{}/{prefix}", s3.bucket)];
    let (out, _) = run_filex_env(
        &corpus.job(),
        &["--workers", "2"],
        &sets,
        &s3,
        None,
        &[("AWS_ENDPOINT_URL", s3.endpoint.as_str())],
    );
    assert!(
        out.status.success(),
        "run with worker processes: {}",
        text(&out)
    );
    assert_same_objects(&s3, &prefix, &want);
    assert_manifest_last(&s3, &prefix);
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");
}

/// A process seen while it ran: its argv and environment as `/proc` shows them.
struct SeenProcess {
    pid: u32,
    cmdline: Vec<u8>,
    environ: Vec<u8>,
}

/// The live children of `parent` (from `/proc/<pid>/stat`'s ppid field).
fn children_of(parent: u32) -> Vec<SeenProcess> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let (Ok(cmdline), Ok(environ)) = (
            fs::read(format!("/proc/{pid}/cmdline")),
            fs::read(format!("/proc/{pid}/environ")),
        ) else {
            continue;
        };
        out.push(SeenProcess {
            pid,
            cmdline,
            environ,
        });
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[test]
fn s3_worker_processes_get_the_credentials_in_a_file_not_argv_or_environment() {
    // `filex run --workers 2` with the credentials in its environment: the worker processes
    // write the same objects, with the credentials handed in a mode-600 credentials file
    // named on their command line; neither their argv nor their environment holds the
    // secret, and the file is gone after the run.
    let s3 = s3env();
    let corpus = Corpus::gen("handed", &[]);
    let (_, want) = local_output(&corpus, "handed", &[], &[]);
    let prefix = unique("handed");
    let before = open_uploads(&s3);
    let sets = vec![format!("output.root=s3a://{}/{prefix}", s3.bucket)];
    let secret = s3.secret.as_bytes().to_vec();
    let mut workers: BTreeMap<u32, SeenProcess> = BTreeMap::new();
    let mut credential_files: BTreeMap<PathBuf, u32> = BTreeMap::new();
    let (out, _) = run_filex_watched(
        &corpus.job(),
        &["--workers", "2"],
        &sets,
        &s3,
        None,
        &[("AWS_ENDPOINT_URL", s3.endpoint.as_str())],
        &mut |pid| {
            for p in children_of(pid) {
                let args: Vec<&[u8]> = p.cmdline.split(|b| *b == 0).collect();
                if args.get(1) != Some(&&b"worker"[..]) {
                    continue;
                }
                if let Some(i) = args.iter().position(|a| *a == b"--credentials-file") {
                    if let Some(f) = args.get(i + 1) {
                        let f = PathBuf::from(String::from_utf8_lossy(f).into_owned());
                        if let Ok(m) = fs::metadata(&f) {
                            use std::os::unix::fs::PermissionsExt;
                            credential_files.insert(f, m.permissions().mode() & 0o777);
                        }
                    }
                }
                workers.insert(p.pid, p);
            }
        },
    );
    assert!(
        out.status.success(),
        "run with worker processes: {}",
        text(&out)
    );
    assert_same_objects(&s3, &prefix, &want);
    assert_manifest_last(&s3, &prefix);
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");

    assert!(
        !workers.is_empty(),
        "no worker process of filex run --workers 2 was seen in /proc"
    );
    for (pid, w) in &workers {
        assert!(
            !contains(&w.cmdline, &secret),
            "worker {pid}'s argv holds the secret"
        );
        assert!(
            !contains(&w.environ, &secret),
            "worker {pid}'s environment holds the secret"
        );
        assert!(
            !contains(&w.environ, b"AWS_SECRET_ACCESS_KEY="),
            "worker {pid} inherited AWS_SECRET_ACCESS_KEY"
        );
    }
    assert!(
        !credential_files.is_empty(),
        "the workers' command lines name no --credentials-file"
    );
    for (file, mode) in &credential_files {
        assert_eq!(*mode, 0o600, "{} has mode {mode:o}", file.display());
        assert!(
            !file.exists(),
            "{} left behind after the run",
            file.display()
        );
    }
    assert!(!contains(&out.stdout, &secret), "stdout holds the secret");
    assert!(!contains(&out.stderr, &secret), "stderr holds the secret");
    println!(
        "checked {} worker processes (argv and environment in /proc) and credentials files {:?}",
        workers.len(),
        credential_files.keys().collect::<Vec<_>>()
    );
}

#[test]
fn s3_retries_through_faults_end_in_identical_objects() {
    let s3 = s3env();
    let corpus = Corpus::gen("faults", &[]);
    let (_, want) = local_output(&corpus, "faults", &[], &[]);
    let prefix = unique("faults");
    // Requests are counted per kind (create, part, complete, put, head, get…); every third
    // of each kind gets a fault, the fault kinds in turn. A retry counts anew, so no request
    // is hit twice in a row. The preflight listing passes.
    let counts: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let plan: Arc<Plan> = Arc::new(move |r: &ReqInfo<'_>| {
        let kind = format!(
            "{} {}",
            r.method,
            if r.target.contains("partNumber=") {
                "part"
            } else if r.target.contains("uploads=") {
                "create"
            } else if r.target.contains("uploadId=") {
                "complete"
            } else {
                "object"
            }
        );
        let n = {
            let Ok(mut c) = counts.lock() else {
                return Fault::Pass;
            };
            let e = c.entry(kind).or_insert(0);
            *e += 1;
            *e
        };
        if r.index == 0 || n % 3 != 1 {
            return Fault::Pass;
        }
        let rotation: &[Fault] = if r.method == "PUT" && r.body_len > 0 {
            &[
                Fault::Corrupt,
                Fault::Reset,
                Fault::Stall,
                Fault::Error500,
                Fault::SlowDown,
            ]
        } else {
            &[Fault::Reset, Fault::Error500, Fault::SlowDown, Fault::Stall]
        };
        rotation[(n / 3) % rotation.len()]
    });
    let proxy = Proxy::start(&s3.endpoint, plan);
    let before = open_uploads(&s3);
    let sets = s3_sets(
        &s3,
        &proxy.endpoint(),
        &prefix,
        &[
            "output.store.timeout_secs=2",
            "output.store.max_attempts=8",
            "output.store.concurrency=2",
        ],
    );
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    let faults = proxy.faults();
    assert!(
        out.status.success(),
        "run through faults: {}\nfaults: {faults:?}",
        text(&out)
    );
    for kind in [
        Fault::Reset,
        Fault::Error500,
        Fault::SlowDown,
        Fault::Stall,
        Fault::Corrupt,
    ] {
        assert!(
            faults.iter().any(|(_, f)| *f == kind),
            "no {kind:?} was injected: {faults:?}"
        );
    }
    assert!(
        faults.iter().any(|(r, _)| r.contains("partNumber=")),
        "no UploadPart was faulted: {faults:?}"
    );
    assert_same_objects(&s3, &prefix, &want);
    assert_manifest_last(&s3, &prefix);
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");
    eprintln!("{} faults injected, all retried", faults.len());
}

#[test]
fn s3_permanent_failure_leaves_no_object_and_no_open_upload() {
    let s3 = s3env();
    let corpus = Corpus::gen("fail", &[]);
    let prefix = unique("fail");
    // Every UploadPart after the first fails with 500, forever.
    let seen = Arc::new(AtomicUsize::new(0));
    let plan: Arc<Plan> = Arc::new(move |r: &ReqInfo<'_>| {
        if r.method == "PUT"
            && r.target.contains("partNumber=")
            && seen.fetch_add(1, Ordering::SeqCst) > 0
        {
            Fault::Error500
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&s3.endpoint, plan);
    let before = open_uploads(&s3);
    let sets = s3_sets(
        &s3,
        &proxy.endpoint(),
        &prefix,
        &["output.store.max_attempts=3"],
    );
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(!out.status.success(), "the job succeeded: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("s3://{}/{prefix}/", s3.bucket)),
        "error names no key: {err}"
    );
    assert!(err.contains("InternalError"), "error names no cause: {err}");
    let left = tree(&s3.data_dir.join(&s3.bucket).join(&prefix), &[]);
    assert!(
        left.is_empty(),
        "objects visible after a failed job: {:?}",
        left.keys()
    );
    assert_eq!(open_uploads(&s3), before, "multipart uploads left open");
    assert!(
        proxy.faults().len() >= 3,
        "the failing part was not retried: {:?}",
        proxy.faults()
    );
}

#[test]
fn s3_a_rerun_takes_the_done_flag_down_before_it_commits() {
    let s3 = s3env();
    let corpus = Corpus::gen("flag", &[]);
    let prefix = unique("flag");
    let flag = s3.data_dir.join(&s3.bucket).join(&prefix).join("_SUCCESS");
    let sets = s3_sets(&s3, &s3.endpoint, &prefix, &[]);
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(out.status.success(), "first run: {}", text(&out));
    assert_manifest_last(&s3, &prefix);

    // The re-run's every CompleteMultipartUpload fails: its commit fails, after the
    // DeleteObject of the flag.
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = requests.clone();
    let plan: Arc<Plan> = Arc::new(move |r: &ReqInfo<'_>| {
        if let Ok(mut v) = seen.lock() {
            v.push(format!("{} {}", r.method, r.target));
        }
        if r.method == "POST" && r.target.contains("uploadId=") {
            Fault::Error500
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&s3.endpoint, plan);
    let failing = s3_sets(
        &s3,
        &proxy.endpoint(),
        &prefix,
        &["output.store.max_attempts=2"],
    );
    let (out, _) = run_filex_args(&corpus.job(), &["--full"], &failing, &s3, None);
    assert!(
        !out.status.success(),
        "the re-run succeeded: {}",
        text(&out)
    );
    assert!(!flag.exists(), "a stale done-flag after a failed commit");
    let requests = requests.lock().map(|v| v.clone()).unwrap_or_default();
    let delete = requests
        .iter()
        .position(|r| r.starts_with("DELETE ") && r.contains("/_SUCCESS"))
        .unwrap_or_else(|| panic!("no DeleteObject of the flag in {requests:?}"));
    let complete = requests
        .iter()
        .position(|r| r.starts_with("POST ") && r.contains("uploadId="))
        .unwrap_or_else(|| panic!("no CompleteMultipartUpload in {requests:?}"));
    assert!(
        delete < complete,
        "the flag went after the commit began: {requests:?}"
    );
    drop(proxy);

    // A good re-run flags the window complete again.
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(out.status.success(), "third run: {}", text(&out));
    assert_manifest_last(&s3, &prefix);
}

#[test]
fn s3_bad_credentials_and_missing_bucket_fail_at_once() {
    let s3 = s3env();
    let corpus = Corpus::gen("creds", &["--hours", "1"]);
    let prefix = unique("creds");
    let sets = s3_sets(&s3, &s3.endpoint, &prefix, &[]);

    let t = Instant::now();
    let (out, _) = run_filex(
        &corpus.job(),
        &sets,
        &s3,
        Some((&s3.key_id, "not-the-secret")),
    );
    assert!(
        !out.status.success(),
        "wrong secret accepted: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(err.contains(&s3.bucket), "{err}");
    assert!(
        !err.contains("not-the-secret"),
        "the secret was printed: {err}"
    );

    let (out, _) = run_filex(&corpus.job(), &sets, &s3, Some(("NOSUCHKEYID", "x")));
    assert!(
        !out.status.success(),
        "unknown key id accepted: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("InvalidAccessKeyId") || err.contains("NotSignedUp"),
        "{err}"
    );
    assert!(
        err.contains("NOSUCHKEYID"),
        "the key id is not named: {err}"
    );

    let mut sets = sets.clone();
    sets[0] = format!("output.root=s3://no-such-bucket-{}/x", std::process::id());
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(
        !out.status.success(),
        "missing bucket accepted: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NoSuchBucket") && err.contains("no-such-bucket-"),
        "{err}"
    );
    // No retries with backoff for permanent errors: three runs well under the backoff sum.
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );

    let mut sets = s3_sets(&s3, &s3.endpoint, &prefix, &[]);
    sets[0] = format!("output.root=oss://{}/x", s3.bucket);
    let (out, _) = run_filex(&corpus.job(), &sets, &s3, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("oss://") && err.contains("s3://"), "{err}");
}

#[test]
fn s3_memory_stays_bounded_for_an_object_larger_than_the_part_buffers() {
    let s3 = s3env();
    // One domain, one hour, many lines, stored (gzip level 1) so the object is large.
    let corpus = Corpus::gen(
        "memory",
        &[
            "--hours",
            "1",
            "--domains",
            "big.example.com",
            "--rate",
            "60",
        ],
    );
    let part: u64 = 5 << 20;
    let concurrency: u64 = 2;
    let common = ["output.gzip_level=1"];
    // A small sort budget, so the process's own peak does not hide the upload buffers.
    let memory = ["--memory", "40M"];
    let (local_dir, want) = local_output(&corpus, "memory", &memory, &common);
    let biggest = want.values().map(|v| v.len() as u64).max().unwrap_or(0);
    let buffers = part * (concurrency + 1);
    assert!(
        biggest >= 2 * buffers,
        "test corpus too small: largest object {biggest} bytes, part buffers {buffers}"
    );
    // Peak RSS of the same job into file:// (same binary, same memory budget).
    let mut local_sets = vec![format!("output.root={}-again", local_dir.display())];
    local_sets.extend(common.iter().map(|s| s.to_string()));
    let (out, local_peak) = run_filex_args(&corpus.job(), &memory, &local_sets, &s3, None);
    assert!(out.status.success(), "local run: {}", text(&out));

    let prefix = unique("memory");
    let mut extra = vec![
        "output.store.part_size=5M".to_string(),
        format!("output.store.concurrency={concurrency}"),
    ];
    extra.extend(common.iter().map(|s| s.to_string()));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // Through the proxy: the 2nd part is damaged on the way, the 4th reset, so retries of
    // full-size parts of a multi-part object are exercised too.
    let parts = AtomicUsize::new(0);
    let plan: Arc<Plan> = Arc::new(move |r: &ReqInfo<'_>| {
        if !(r.method == "PUT" && r.target.contains("partNumber=")) {
            return Fault::Pass;
        }
        match parts.fetch_add(1, Ordering::SeqCst) {
            1 => Fault::Corrupt,
            3 => Fault::Reset,
            _ => Fault::Pass,
        }
    });
    let proxy = Proxy::start(&s3.endpoint, plan);
    let sets = s3_sets(&s3, &proxy.endpoint(), &prefix, &extra);
    let (out, s3_peak) = run_filex_args(&corpus.job(), &memory, &sets, &s3, None);
    assert!(out.status.success(), "s3 run: {}", text(&out));
    assert_eq!(proxy.faults().len(), 2, "{:?}", proxy.faults());
    assert_same_objects(&s3, &prefix, &want);
    let over_kib = s3_peak.saturating_sub(local_peak);
    eprintln!(
        "largest object {} MiB; peak RSS file:// {} MiB, s3:// {} MiB (+{} MiB); part buffers {} MiB",
        biggest >> 20,
        local_peak >> 10,
        s3_peak >> 10,
        over_kib >> 10,
        buffers >> 20
    );
    // Bounded by the part buffers plus a constant (TLS/HTTP client, threads), far below
    // the object's size.
    assert!(
        over_kib * 1024 < buffers + (12 << 20),
        "s3:// peak RSS exceeds file:// by {over_kib} KiB, more than the part buffers ({buffers} bytes) + 12 MiB"
    );
    assert!(
        over_kib * 1024 < biggest,
        "peak RSS grew by the object's size ({biggest} bytes)"
    );
}
