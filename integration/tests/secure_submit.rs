//! `filex submit` on the Kerberized mini cluster (named by `FILEX_SECURE_CLUSTER_DIR`; without
//! it these tests say so and pass, scripts/test.sh sets it):
//!
//! * with a private `kinit -kt` ticket cache and no keytab, a job of `filex gen`'s corpus runs
//!   on worker containers that have no Kerberos credentials (their ticket cache holds no
//!   ticket, no client keytab) and read and write secure HDFS on delegation tokens alone; its
//!   output is the bytes `filex run` writes from the same shards on local files;
//! * the errors, each one line naming the fix with a non-zero exit, before YARN gives out an
//!   application id (so nothing is staged or submitted): no ticket, a principal the keytab
//!   lacks, a principal the KDC does not know, an expired ticket, a staging root that
//!   belongs to another user;
//! * with `--principal/--keytab`, neither the keytab's keys nor the delegation tokens'
//!   identifiers and passwords (in bytes, hex or base64) are in the containers' argv and
//!   environment, the NodeManagers' launch scripts, the container logs, the staged spec and
//!   configuration (as the NodeManagers localized them), the AM's status page, or
//!   `filex submit`'s output — while the search does find the tokens in the workers'
//!   credential files, where they belong.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use filex_integration::cli::{filex_bin, unique};
use filex_integration::cluster::Cluster;
use filex_integration::http;
use filex_integration::secrets::{container_processes, env_var, is_token_file, keytab_keys, leaks};
use filex_integration::secure::{
    assert_ok, cluster_fs, cluster_fs_as, files_under, filex, filex_command, kinit_cache,
    kinit_cache_for, one_error_line, secure, text,
};
use filex_integration::webhdfs::json_field;

/// Longest a submission may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(600);
/// `filex`'s exit code for a usage or configuration error.
const USAGE: i32 = 2;

/// Every file under `dir` (relative path → bytes), without the run manifests (they hold
/// times and application ids).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
            (!rel.starts_with("_manifests")).then(|| (rel, std::fs::read(&p).unwrap_or_default()))
        })
        .collect()
}

/// A `filex gen` corpus with its shards on secure HDFS under `base` (the submitter's), the
/// job reading them there and writing to `base/out`, and the reference output of `filex run`
/// on the local shards.
struct Corpus {
    cluster_dir: PathBuf,
    local: tempfile::TempDir,
    base: String,
    job: PathBuf,
    want: BTreeMap<String, Vec<u8>>,
}

impl Corpus {
    fn new(cluster: &Cluster, name: &str) -> Corpus {
        let local = tempfile::tempdir().unwrap();
        let corpus = local.path().join("corpus");
        let gen = Command::new(filex_bin())
            .args(["gen", "--out"])
            .arg(&corpus)
            .args(["--seed", "13", "--hours", "1", "--rate", "10"])
            .output()
            .unwrap();
        assert_ok(&gen, "filex gen");
        let run = Command::new(filex_bin())
            .arg("run")
            .arg(corpus.join("job.toml"))
            .arg("--no-progress")
            .env_remove("HADOOP_CONF_DIR")
            .output()
            .unwrap();
        assert_ok(&run, "filex run on local files");
        let want = tree(&corpus.join("output"));
        assert!(!want.is_empty(), "filex run wrote nothing");

        let base = format!("/user/filex/{}", unique(name));
        assert_ok(
            &cluster_fs(&cluster.dir, &["-mkdir", "-p", &base]),
            "fs -mkdir",
        );
        let shards = corpus.join("shards").display().to_string();
        assert_ok(
            &cluster_fs(&cluster.dir, &["-put", &shards, &base]),
            "fs -put the shards",
        );
        let job_text = std::fs::read_to_string(corpus.join("job.toml")).unwrap();
        let on_hdfs = job_text
            .replace(
                "shards = \"shards/",
                &format!("shards = \"hdfs://{base}/shards/"),
            )
            .replace(
                "root = \"output\"",
                &format!("root = \"hdfs://{base}/out\""),
            );
        assert!(
            on_hdfs.contains("hdfs://") && !on_hdfs.contains("root = \"output\""),
            "{on_hdfs}"
        );
        let job = local.path().join("job-hdfs.toml");
        std::fs::write(&job, on_hdfs).unwrap();
        Corpus {
            cluster_dir: cluster.dir.clone(),
            local,
            base,
            job,
            want,
        }
    }

    /// The job's output on HDFS, fetched with Hadoop's shell, equals `filex run`'s.
    fn assert_output_matches(&self, cluster: &Cluster) {
        let got_dir = self.local.path().join("got");
        assert_ok(
            &cluster_fs(
                &cluster.dir,
                &[
                    "-get",
                    &format!("{}/out", self.base),
                    &got_dir.display().to_string(),
                ],
            ),
            "fs -get the output",
        );
        let got = tree(&got_dir);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            self.want.keys().collect::<Vec<_>>(),
            "output files"
        );
        for (name, bytes) in &self.want {
            assert!(
                &got[name] == bytes,
                "{name} differs between filex run and filex submit"
            );
        }
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        let _ = cluster_fs(
            &self.cluster_dir,
            &["-rm", "-r", "-f", "-skipTrash", &self.base],
        );
    }
}

/// A container process seen while the application ran.
#[derive(Debug, Clone)]
struct Seen {
    role: String,
    container: String,
    uid: String,
    argv: Vec<u8>,
    environ: Vec<u8>,
}

/// What was seen of one `filex submit` while it ran.
struct Watched {
    out: Output,
    app: String,
    /// Container processes of this application, by pid.
    processes: BTreeMap<u32, Seen>,
    /// The AM's `/status` and `/` pages, each distinct one once.
    pages: Vec<Vec<u8>>,
}

/// Runs `cmd` (a `filex submit`) to its end, sampling every 100 ms the `filex am` and
/// `filex worker` processes of its application (argv, environment, uid) and the AM's status
/// pages, at its address as the ResourceManager reports it.
fn watch(cluster: &Cluster, mut cmd: Command) -> Watched {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run filex submit");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let mut app: Option<String> = None;
    let mut all: BTreeMap<u32, Seen> = BTreeMap::new();
    let mut pages = Vec::new();
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            if let Some(id) = line.strip_prefix("Submitted application ") {
                app = Some(id.trim().to_string());
            }
        }
        for role in ["am", "worker"] {
            for (pid, argv, environ) in container_processes(role) {
                let container = env_var(&environ, "CONTAINER_ID").unwrap_or_default();
                let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next().map(str::to_string))
                    .unwrap_or_default();
                all.insert(
                    pid,
                    Seen {
                        role: role.to_string(),
                        container,
                        uid,
                        argv,
                        environ,
                    },
                );
            }
        }
        if let Some(id) = &app {
            let report = format!("{}/ws/v1/cluster/apps/{id}", cluster.env.rm_webapp);
            if let Ok(r) = http::request("GET", &report, None) {
                let body = r.text();
                if let Some(addr) = json_field(&body, "amRPCAddress")
                    .map(|a| a.trim_matches('"'))
                    .filter(|a| a.contains(':') && !a.starts_with("N/A"))
                {
                    for page in ["status", ""] {
                        if let Ok(r) = http::request("GET", &format!("http://{addr}/{page}"), None)
                        {
                            if r.status == 200 && !pages.contains(&r.body) {
                                pages.push(r.body);
                            }
                        }
                    }
                }
            }
        }
        match child.try_wait().unwrap() {
            Some(s) => break s,
            None if started.elapsed() > DEADLINE => {
                let _ = child.kill();
                panic!("filex submit did not finish within {DEADLINE:?}");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let out = Output {
        status,
        stdout: reader.join().unwrap().into_bytes(),
        stderr: err_reader.join().unwrap(),
    };
    assert_ok(&out, "filex submit");
    let app = app.expect("an application id");
    let key = app.trim_start_matches("application_").to_string();
    let processes = all
        .into_iter()
        .filter(|(_, s)| s.container.contains(&format!("_{key}_")))
        .collect();
    Watched {
        out,
        app,
        processes,
        pages,
    }
}

/// Files of application `app` in the NodeManagers' local directories (launch scripts,
/// credentials, localized files), which the harness keeps after the application ends
/// (`yarn.nodemanager.delete.debug-delay-sec`).
fn local_files(cluster: &Cluster, app: &str) -> Vec<PathBuf> {
    files_under(&cluster.dir.join("work"))
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("localDir") && s.contains(app)
        })
        .collect()
}

/// The submit arguments of a small job on workers (not in the AM: uber mode off) under a
/// name no other application has.
fn submit_args<'a>(job: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "submit",
        job,
        "--force-new",
        "--name",
        name,
        "-D",
        "filex.uber.max-bytes=0",
        "-D",
        "filex.workers.max=2",
        "-D",
        "filex.worker.memory-mb=512",
    ]
}

#[test]
fn submit_with_a_kinit_cache_runs_workers_on_tokens_alone() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let corpus = Corpus::new(&cluster, "kinit-submit");
    let ccache = kinit_cache(&env, corpus.local.path());
    let job = corpus.job.display().to_string();
    let name = unique("filex kinit");
    let watched = watch(
        &cluster,
        filex_command(&cluster, &env, &ccache, "info", &submit_args(&job, &name)),
    );
    let stdout = text(&watched.out.stdout);
    assert!(
        stdout.contains("Delegation tokens: HDFS_DELEGATION_TOKEN@")
            && stdout.contains("RM_DELEGATION_TOKEN@"),
        "{stdout}"
    );
    assert!(stdout.contains("FINISHED SUCCEEDED"), "{stdout}");
    corpus.assert_output_matches(&cluster);

    // The workers: no ticket in the cache they would use, no client keytab, not the
    // client's cache; their credentials are delegation tokens (and no AMRMToken).
    let workers: Vec<(&u32, &Seen)> = watched
        .processes
        .iter()
        .filter(|(_, s)| s.role == "worker")
        .collect();
    assert!(
        !workers.is_empty(),
        "no worker process of {} was seen: {:?}",
        watched.app,
        watched
            .processes
            .values()
            .map(|s| &s.container)
            .collect::<Vec<_>>()
    );
    let client_cache = format!("FILE:{}", ccache.display());
    for (pid, seen) in &workers {
        let cache = env_var(&seen.environ, "KRB5CCNAME")
            .unwrap_or_else(|| format!("FILE:/tmp/krb5cc_{}", seen.uid));
        assert_ne!(cache, client_cache, "worker {pid} has the client's cache");
        assert_eq!(
            env_var(&seen.environ, "KRB5_CLIENT_KTNAME"),
            None,
            "worker {pid} has a client keytab"
        );
        let klist = Command::new("klist")
            .args(["-s", "-c", &cache])
            .env("KRB5_CONFIG", &env.krb5_config)
            .output()
            .expect("run klist");
        assert_ne!(
            klist.status.code(),
            Some(0),
            "worker {pid} ({}) could use a Kerberos ticket in {cache}: this test proves nothing \
             while one is there",
            seen.container
        );
    }
    let logs = filex_integration::secure::container_stderrs(&cluster.dir, &watched.app);
    let worker_logs: Vec<_> = logs
        .iter()
        .filter(|(c, _)| !c.ends_with("_000001"))
        .collect();
    assert!(!worker_logs.is_empty(), "no worker logs: {logs:?}");
    for (c, log) in worker_logs {
        let line = log
            .lines()
            .find(|l| l.contains("handed credentials"))
            .unwrap_or_else(|| panic!("{c}: no credentials line: {log}"));
        assert!(line.contains("HDFS_DELEGATION_TOKEN@"), "{c}: {line}");
        assert!(!line.contains("YARN_AM_RM_TOKEN"), "{c}: {line}");
    }
    // The client's cache still holds its ticket: submit used it and left it alone.
    let klist = Command::new("klist")
        .args(["-s", "-c", &client_cache])
        .output()
        .unwrap();
    assert_eq!(
        klist.status.code(),
        Some(0),
        "the client's cache lost its ticket"
    );
    println!(
        "{}: {} worker processes seen, each with no usable ticket ({})",
        watched.app,
        workers.len(),
        workers
            .iter()
            .map(|(_, s)| env_var(&s.environ, "KRB5CCNAME")
                .unwrap_or_else(|| format!("unset, uid {}", s.uid)))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// Asserts that a failed submit stopped before YARN gave out an application id (so nothing
/// was staged) and that the ResourceManager knows no application called `name`.
fn assert_nothing_submitted(cluster: &Cluster, out: &Output, name: &str) {
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("Submitted application"),
        "an application id was asked for: {stdout}"
    );
    let apps = http::request(
        "GET",
        &format!("{}/ws/v1/cluster/apps", cluster.env.rm_webapp),
        None,
    )
    .expect("the RM's REST API");
    assert_eq!(apps.status, 200);
    assert!(
        !apps.text().contains(name),
        "the ResourceManager knows an application {name}"
    );
}

/// A small job file under `dir` on secure HDFS paths of `user` (which need not exist: the
/// failures come first).
fn small_job(dir: &Path, user: &str) -> String {
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "secure-errors"
[window]
start = "2026-11-05T00:00:00+00:00"
end = "2026-11-05T01:00:00+00:00"
[[source]]
name = "nginx"
format = "nginx"
shards = "hdfs:///user/{user}/none/{{domain}}/%Y%m%d/%H%M.log"
timezone = "+00:00"
[output]
root = "hdfs:///user/{user}/none-out"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log"
format = "json"
timezone = "+00:00"
"#
        ),
    )
    .unwrap();
    job.display().to_string()
}

#[test]
fn submit_without_a_ticket_names_kinit_and_keytab() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = small_job(dir.path(), "filex");
    let name = unique("filex no-ticket");
    let out = filex(
        &cluster,
        &env,
        &dir.path().join("none"),
        "warn",
        &submit_args(&job, &name),
    );
    let line = one_error_line(&out, "filex submit without a ticket");
    assert!(
        line.contains("no Kerberos ticket") && line.contains("kinit") && line.contains("--keytab"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(USAGE), "{line}");
    assert_nothing_submitted(&cluster, &out, &name);
}

#[test]
fn submit_with_a_principal_the_keytab_lacks_names_the_keytab() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = small_job(dir.path(), "filex");
    let name = unique("filex wrong-keytab");
    // other.keytab holds no key of filex@REALM.
    let keytab = env.other_keytab.display().to_string();
    let mut args = submit_args(&job, &name);
    args.extend(["--principal", &env.principal, "--keytab", &keytab]);
    let out = filex(&cluster, &env, &dir.path().join("none"), "warn", &args);
    let line = one_error_line(&out, "filex submit with another user's keytab");
    assert!(
        line.contains(&format!(
            "cannot get Kerberos credentials for {} from keytab {keytab}",
            env.principal
        )) && line.contains("klist -kt"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(USAGE), "{line}");
    assert_nothing_submitted(&cluster, &out, &name);
}

/// A keytab of `principal` with a key from a password, written by MIT's `ktutil`.
fn ktutil_keytab(dir: &Path, principal: &str) -> PathBuf {
    let keytab = dir.join("ghost.keytab");
    let mut child = Command::new("ktutil")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ktutil (Debian: apt-get install krb5-user)");
    use std::io::Write;
    write!(
        child.stdin.take().unwrap(),
        "addent -password -p {principal} -k 1 -e aes128-cts-hmac-sha1-96\nnot-a-secret\nwkt {}\nquit\n",
        keytab.display()
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out, "ktutil");
    assert!(
        keytab.is_file(),
        "ktutil wrote no keytab: {}",
        text(&out.stderr)
    );
    keytab
}

#[test]
fn submit_as_a_principal_the_kdc_does_not_know_names_it() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let job = small_job(dir.path(), "ghost");
    let ghost = format!("ghost@{}", env.realm);
    let keytab = ktutil_keytab(dir.path(), &ghost);
    let keytab_s = keytab.display().to_string();
    let name = unique("filex ghost");
    let mut args = submit_args(&job, &name);
    args.extend(["--principal", &ghost, "--keytab", &keytab_s]);
    let out = filex(&cluster, &env, &dir.path().join("none"), "warn", &args);
    let line = one_error_line(&out, "filex submit as a principal the KDC does not know");
    assert!(
        line.contains(&format!("cannot get Kerberos credentials for {ghost}"))
            && line.contains("not found in Kerberos database"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(USAGE), "{line}");
    assert_nothing_submitted(&cluster, &out, &name);
}

#[test]
fn submit_with_an_expired_ticket_names_kinit() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit_cache_for(&env, dir.path(), &["-l", "5s"]);
    let cache = format!("FILE:{}", ccache.display());
    // klist -s: whether the cache holds a ticket that has not expired.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new("klist")
        .args(["-s", "-c", &cache])
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "the 5 s ticket did not expire");
        std::thread::sleep(Duration::from_millis(500));
    }
    let job = small_job(dir.path(), "filex");
    let name = unique("filex expired");
    let out = filex(&cluster, &env, &ccache, "warn", &submit_args(&job, &name));
    let line = one_error_line(&out, "filex submit with an expired ticket");
    assert!(
        line.contains("expired") && line.contains("kinit") && line.contains("--keytab"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(USAGE), "{line}");
    assert_nothing_submitted(&cluster, &out, &name);
}

/// `/user/other/.filexStaging` made by the submitter `filex` (so belonging to filex) for as
/// long as it lives: `other` opens its home for the moment of the `mkdir`.
struct ForeignStagingRoot {
    dir: PathBuf,
    path: String,
}

impl ForeignStagingRoot {
    fn new(cluster: &Cluster) -> ForeignStagingRoot {
        let path = "/user/other/.filexStaging".to_string();
        let as_other = |args: &[&str], what: &str| {
            assert_ok(&cluster_fs_as(&cluster.dir, "other", args), what)
        };
        as_other(&["-chmod", "777", "/user/other"], "other: fs -chmod 777");
        let made = cluster_fs(&cluster.dir, &["-mkdir", "-p", &path]);
        as_other(&["-chmod", "755", "/user/other"], "other: fs -chmod 755");
        assert_ok(&made, "filex: fs -mkdir in other's home");
        ForeignStagingRoot {
            dir: cluster.dir.clone(),
            path,
        }
    }

    /// What `fs -ls -d` and `fs -ls` say of it: (its line, its entries).
    fn listing(&self) -> (String, String) {
        let d = cluster_fs(&self.dir, &["-ls", "-d", &self.path]);
        assert_ok(&d, "fs -ls -d");
        let l = cluster_fs(&self.dir, &["-ls", &self.path]);
        assert_ok(&l, "fs -ls");
        (text(&d.stdout), text(&l.stdout))
    }
}

impl Drop for ForeignStagingRoot {
    fn drop(&mut self) {
        // The owner of the parent may remove an empty directory of someone else.
        let out = cluster_fs_as(&self.dir, "other", &["-rm", "-r", "-skipTrash", &self.path]);
        if !out.status.success() {
            eprintln!("could not remove {}: {}", self.path, text(&out.stderr));
        }
    }
}

#[test]
fn submit_refuses_a_staging_root_of_another_user() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    // The submitter here is `other`, whose staging root `filex` made: the tests of the user
    // `filex` (and anyone else's on this cluster) keep their own staging root.
    let foreign = ForeignStagingRoot::new(&cluster);
    let (line, entries) = foreign.listing();
    assert!(line.contains(" filex "), "{line}");
    assert!(entries.trim().is_empty(), "{entries}");

    let dir = tempfile::tempdir().unwrap();
    let job = small_job(dir.path(), "other");
    let name = unique("filex foreign-staging");
    let keytab = env.other_keytab.display().to_string();
    let mut args = submit_args(&job, &name);
    args.extend(["--principal", &env.other_principal, "--keytab", &keytab]);
    let out = filex(&cluster, &env, &dir.path().join("none"), "warn", &args);
    let err = one_error_line(&out, "filex submit with another user's staging root");
    assert!(
        err.contains(&format!(
            "staging directory {}{} belongs to filex, not to the submitter other",
            cluster.env.namenode, foreign.path
        )) && err.contains("remove it, or give it to other with mode 700"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(USAGE), "{err}");
    assert_nothing_submitted(&cluster, &out, &name);
    let (after, entries) = foreign.listing();
    assert_eq!(after, line, "the staging root was changed");
    assert!(entries.trim().is_empty(), "written into: {entries}");
}

/// The tokens of an application's AM container credentials (kind, identifier, password),
/// read from the NodeManager's copy (`nmPrivate/<app>/<container>/<container>.tokens`; the
/// container's own `container_tokens` goes with its working directory).
fn am_tokens(files: &[PathBuf], app: &str) -> Vec<yarn::Token> {
    // container_[e<epoch>_]<cluster timestamp>_<sequence>_<attempt>_<container>
    let path = files
        .iter()
        .find(|p| {
            is_token_file(p)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with("_01_000001.tokens"))
        })
        .unwrap_or_else(|| panic!("no credentials file of the AM of {app}: {files:#?}"));
    let creds = yarn::Credentials::read_file(path).expect("the AM's credentials");
    creds.tokens.into_iter().map(|(_, t)| t).collect()
}

/// The tokens of the workers' container credentials (the NodeManagers' copies), each once.
fn worker_tokens(files: &[PathBuf]) -> Vec<yarn::Token> {
    let mut out: Vec<yarn::Token> = Vec::new();
    for p in files
        .iter()
        .filter(|p| is_token_file(p) && !p.to_string_lossy().contains("_000001"))
    {
        let creds = yarn::Credentials::read_file(p).expect("a worker's credentials");
        for (_, t) in creds.tokens {
            if !out.iter().any(|o| o.password == t.password) {
                out.push(t);
            }
        }
    }
    out
}

#[test]
fn submit_keeps_keytab_and_tokens_out_of_argv_env_logs_spec_and_status() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let corpus = Corpus::new(&cluster, "secret-submit");
    let job = corpus.job.display().to_string();
    let name = unique("filex secrets");
    let keytab = env.keytab.display().to_string();
    let mut args = submit_args(&job, &name);
    args.extend(["--principal", &env.principal, "--keytab", &keytab]);
    let ccache = corpus.local.path().join("none");
    let watched = watch(
        &cluster,
        filex_command(&cluster, &env, &ccache, "info", &args),
    );
    corpus.assert_output_matches(&cluster);
    let app = &watched.app;

    // The secrets: every key of the keytab (and the file itself), every token's identifier
    // and password.
    let keytab_bytes = std::fs::read(&env.keytab).unwrap();
    let mut secrets: Vec<(String, Vec<u8>)> = keytab_keys(&keytab_bytes)
        .into_iter()
        .enumerate()
        .map(|(i, k)| (format!("keytab key {i}"), k))
        .collect();
    assert!(!secrets.is_empty(), "no key read from {keytab}");
    secrets.push(("the keytab file".into(), keytab_bytes));
    let files = local_files(&cluster, app);
    let tokens = am_tokens(&files, app);
    for kind in ["HDFS_DELEGATION_TOKEN", "RM_DELEGATION_TOKEN"] {
        assert!(
            tokens.iter().any(|t| t.kind == kind),
            "no {kind} in the AM's credentials"
        );
    }
    // With --keytab the AM gets HDFS tokens of its own and hands those to the workers: they
    // are secrets too.
    let worker_tokens = worker_tokens(&files);
    assert!(
        worker_tokens
            .iter()
            .any(|t| t.kind == "HDFS_DELEGATION_TOKEN"),
        "no HDFS_DELEGATION_TOKEN in the workers' credentials"
    );
    for t in tokens.iter().chain(&worker_tokens) {
        secrets.push((format!("{} identifier", t.kind), t.identifier.clone()));
        secrets.push((format!("{} password", t.kind), t.password.clone()));
    }

    // The places they must not be.
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("filex submit's stdout".into(), watched.out.stdout.clone()),
        ("filex submit's stderr".into(), watched.out.stderr.clone()),
    ];
    assert!(
        watched.processes.values().any(|s| s.role == "am")
            && watched.processes.values().any(|s| s.role == "worker"),
        "the AM and a worker must be seen in /proc: {:?}",
        watched
            .processes
            .values()
            .map(|s| &s.container)
            .collect::<Vec<_>>()
    );
    for (pid, s) in &watched.processes {
        places.push((format!("{} {pid} argv", s.role), s.argv.clone()));
        places.push((format!("{} {pid} environment", s.role), s.environ.clone()));
    }
    let named = |n: &str| {
        files
            .iter()
            .filter(|p| p.file_name().is_some_and(|f| f == n))
            .cloned()
            .collect::<Vec<_>>()
    };
    let scripts = named("launch_container.sh");
    let specs = named("filex-app.json");
    let confs: Vec<PathBuf> = named("core-site.xml")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("filecache"))
        .collect();
    for (what, list) in [
        ("launch scripts", &scripts),
        ("localized specs", &specs),
        ("localized core-site.xml", &confs),
    ] {
        assert!(!list.is_empty(), "no {what} of {app}");
    }
    for p in scripts.iter().chain(&specs).chain(&confs) {
        places.push((p.display().to_string(), std::fs::read(p).unwrap()));
    }
    let logs = filex_integration::secure::container_logs(&cluster.dir, app);
    assert!(
        logs.iter()
            .any(|(c, n, _)| c.ends_with("_000001") && n == "stderr"),
        "no AM log of {app}"
    );
    for (c, n, bytes) in &logs {
        places.push((format!("{c}/{n}"), bytes.clone()));
    }
    assert!(
        !watched.pages.is_empty(),
        "the AM's status page could not be read while it ran"
    );
    for (i, page) in watched.pages.iter().enumerate() {
        places.push((format!("status page {i}"), page.clone()));
    }
    let found = leaks(&secrets, &places);
    assert!(
        found.is_empty(),
        "secrets where they must not be: {found:#?}"
    );

    // The search finds them where they belong: the HDFS token in the workers' credentials.
    let token_files: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|p| is_token_file(p) && !p.to_string_lossy().contains("_000001"))
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let hdfs: Vec<(String, Vec<u8>)> = worker_tokens
        .iter()
        .filter(|t| t.kind == "HDFS_DELEGATION_TOKEN")
        .map(|t| {
            (
                "HDFS_DELEGATION_TOKEN password".to_string(),
                t.password.clone(),
            )
        })
        .take(1)
        .collect();
    let held = leaks(&hdfs, &token_files);
    assert!(
        !held.is_empty(),
        "the HDFS token is in no worker credential file: the search or the hand-off is broken"
    );
    println!(
        "{app}: {} secrets (keytab keys, token identifiers and passwords) looked for in {} \
         places ({} processes, {} launch scripts, {} specs, {} confs, {} log files, {} status \
         pages); found, as they should be, in {} worker credential files",
        secrets.len(),
        places.len(),
        watched.processes.len(),
        scripts.len(),
        specs.len(),
        confs.len(),
        logs.len(),
        watched.pages.len(),
        held.len()
    );
}
