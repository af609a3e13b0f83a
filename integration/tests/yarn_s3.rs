//! `filex submit` to an object store on the mini cluster (`scripts/cluster.sh start`) and the
//! local S3 server (`scripts/s3-server.sh start`; `eval "$(scripts/s3-server.sh env)"`): the
//! credentials come from Hadoop's per-bucket S3A keys in a site file, are resolved by the
//! client and travel only in the containers' credentials.
//!
//! What is checked: the objects equal `filex run`'s `file://` output byte for byte; the
//! secret is found in the containers' token files and nowhere else — not in filex's output,
//! the staged files (read over WebHDFS while the application runs), the AM's status page,
//! the argv and environment of the AM and worker processes (`/proc`), nor anywhere under the
//! cluster's directory (NodeManager local and log dirs with the launch scripts and container
//! logs, the DataNode block files, the NameNode's metadata, the daemons' logs), searched with
//! `grep` after the run.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use filex_integration::cli::{filex_bin, text, unique, user};
use filex_integration::cluster::require_cluster;
use filex_integration::files::{local_tree, upload_tree};
use filex_integration::http;
use filex_integration::secrets::{container_processes, contains, is_token_file};
use filex_integration::secure::files_under;
use filex_integration::webhdfs::WebHdfs;

const START_HINT: &str =
    "start the test S3 server first: scripts/s3-server.sh start && eval \"$(scripts/s3-server.sh env)\"";
/// Longest a submission may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(600);

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

/// A `filex` command with no AWS credentials in reach but the ones it is given: no `AWS_*`
/// variables and a `HOME` without `~/.aws`.
fn filex(conf: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(filex_bin());
    cmd.env("HADOOP_CONF_DIR", conf)
        .env("YARN_CONF_DIR", conf)
        .env("HOME", home)
        .env("FILEX_LOG", "info");
    for (k, _) in std::env::vars() {
        // The test's own copy of the secret (FILEX_S3_*) is not filex's business either.
        if k.starts_with("AWS_") || k.starts_with("FILEX_S3_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A copy of the cluster's conf directory whose `core-site.xml` also holds `props`.
fn conf_with(cluster_conf: &Path, dir: &Path, props: &[(String, String)]) -> PathBuf {
    let conf = dir.join("conf");
    fs::create_dir_all(&conf).unwrap();
    for e in fs::read_dir(cluster_conf).unwrap().flatten() {
        if e.path().is_file() {
            fs::copy(e.path(), conf.join(e.file_name())).unwrap();
        }
    }
    let core = conf.join("core-site.xml");
    let xml = fs::read_to_string(&core).unwrap();
    let mut extra = String::new();
    for (k, v) in props {
        extra.push_str(&format!(
            "<property><name>{k}</name><value>{v}</value></property>\n"
        ));
    }
    let at = xml.rfind("</configuration>").expect("a site file");
    fs::write(&core, format!("{}{extra}{}", &xml[..at], &xml[at..])).unwrap();
    conf
}

/// The `pathSuffix` values of a WebHDFS `LISTSTATUS` answer.
fn listed_names(json: &str) -> Vec<String> {
    json.split("\"pathSuffix\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').nth(1).map(str::to_string))
        .collect()
}

/// Files under `dirs` holding the bytes of `pattern_file` (`grep -rlF`, `-a` for binary
/// files); the pattern goes through a file, not argv.
fn grep_files(pattern_file: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let out = Command::new("grep")
        .args(["-rlFa", "-f"])
        .arg(pattern_file)
        .args(dirs)
        .output()
        .expect("run grep");
    // 0: found, 1: not found, 2: an error (unreadable files are reported, not fatal).
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1) || !out.stdout.is_empty(),
        "grep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

#[test]
fn submit_to_s3_matches_run_and_the_secret_is_only_in_token_files() {
    let cluster = require_cluster();
    let s3 = s3env();
    let webhdfs = WebHdfs::new(&cluster.env.webhdfs, &user()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let secret = s3.secret.as_bytes().to_vec();
    let pattern = work.path().join("pattern");
    fs::write(&pattern, &secret).unwrap();

    // The corpus, its shards on HDFS, and the reference output of `filex run`.
    let corpus = work.path().join("corpus");
    let gen = filex(&cluster.conf_dir, &home)
        .args(["gen", "--out"])
        .arg(&corpus)
        .args(["--seed", "13", "--hours", "1", "--rate", "10"])
        .output()
        .unwrap();
    assert!(gen.status.success(), "filex gen: {}", text(&gen));
    let local = filex(&cluster.conf_dir, &home)
        .arg("run")
        .arg(corpus.join("job.toml"))
        .arg("--no-progress")
        .output()
        .unwrap();
    assert!(local.status.success(), "filex run: {}", text(&local));
    let mut want = local_tree(&corpus.join("output"));
    want.retain(|k, _| !k.starts_with("_manifests"));
    assert!(!want.is_empty(), "filex run wrote nothing");

    let hdfs_root = format!("/filex-it/{}", unique("s3submit"));
    upload_tree(
        &webhdfs,
        &corpus.join("shards"),
        &format!("{hdfs_root}/shards"),
    );
    let prefix = unique("submit");
    let job = fs::read_to_string(corpus.join("job.toml")).unwrap();
    let s3_job = job
        .replace(
            "shards = \"shards/",
            &format!("shards = \"hdfs://{hdfs_root}/shards/"),
        )
        // The s3a:// spelling, as Hadoop users write it.
        .replace(
            "root = \"output\"",
            &format!("root = \"s3a://{}/{prefix}\"", s3.bucket),
        );
    assert_ne!(job, s3_job);
    assert!(
        !s3_job.contains("[output.store]"),
        "the endpoint and keys come from the site file"
    );
    let job_path = work.path().join("job-s3.toml");
    fs::write(&job_path, &s3_job).unwrap();

    // Endpoint, region and credentials as a Hadoop user sets them for S3A: per bucket.
    let b = &s3.bucket;
    let endpoint = s3.endpoint.trim_start_matches("http://").to_string();
    let conf = conf_with(
        &cluster.conf_dir,
        work.path(),
        &[
            (format!("fs.s3a.bucket.{b}.endpoint"), endpoint),
            (
                format!("fs.s3a.bucket.{b}.connection.ssl.enabled"),
                "false".into(),
            ),
            (
                format!("fs.s3a.bucket.{b}.endpoint.region"),
                s3.region.clone(),
            ),
            (format!("fs.s3a.bucket.{b}.access.key"), s3.key_id.clone()),
            (format!("fs.s3a.bucket.{b}.secret.key"), s3.secret.clone()),
        ],
    );

    let mut child = filex(&conf, &home)
        .arg("submit")
        .arg(&job_path)
        .args([
            "-D",
            "filex.workers.max=2",
            "-D",
            "filex.worker.memory-mb=512",
            // Worker containers, which get the credentials from the AM (no uber mode).
            "-D",
            "filex.uber.max-bytes=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut v);
        v
    });

    // While it runs: the staged files, the status page, the containers' argv and environment.
    let started = Instant::now();
    let mut app_id = None;
    let mut tracking = None;
    let mut staged: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut status_pages = Vec::new();
    let mut processes: BTreeMap<u32, (String, Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            if let Some(id) = line.strip_prefix("Submitted application ") {
                app_id = Some(id.trim().to_string());
            }
            if let Some((_, url)) = line.split_once("tracking URL: ") {
                tracking = Some(url.trim().to_string());
            }
        }
        if let Some(id) = &app_id {
            let dir = format!("/user/{}/.filexStaging/{id}", user());
            if let Ok(list) = webhdfs.list_status(&dir) {
                for name in listed_names(&list) {
                    // The executable is the one we run; everything else is read.
                    if name == "filex" || staged.contains_key(&name) {
                        continue;
                    }
                    if let Ok(bytes) = webhdfs.open(&format!("{dir}/{name}")) {
                        staged.insert(name, bytes);
                    }
                }
            }
        }
        if let Some(id) = &app_id {
            // The AM's own address (its status server), as the RM reports it.
            let app = format!("{}/ws/v1/cluster/apps/{id}", cluster.env.rm_webapp);
            if let Ok(r) = http::request("GET", &app, None) {
                let text = r.text();
                if let Some(addr) = filex_integration::webhdfs::json_field(&text, "amRPCAddress")
                    .map(|a| a.trim_matches('"'))
                    .filter(|a| a.contains(':') && !a.starts_with("N/A"))
                {
                    tracking = Some(format!("http://{addr}/"));
                }
            }
        }
        if let Some(url) = &tracking {
            for page in ["status", ""] {
                let u = format!("{}/{page}", url.trim_end_matches('/'));
                if let Ok(r) = http::request("GET", &u, None) {
                    if r.status == 200 {
                        status_pages.push(r.body);
                    }
                }
            }
        }
        for role in ["am", "worker"] {
            for (pid, cmdline, environ) in container_processes(role) {
                processes.insert(pid, (role.to_string(), cmdline, environ));
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
    assert!(out.status.success(), "filex submit: {}", text(&out));
    let app_id = app_id.expect("an application id");

    // Byte-identical objects.
    let got = {
        let mut t = local_tree(&s3.data_dir.join(&s3.bucket).join(&prefix));
        t.retain(|k, _| !k.starts_with("_manifests"));
        t
    };
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "object names under s3://{b}/{prefix}"
    );
    for (name, bytes) in &want {
        assert!(
            &got[name] == bytes,
            "{name} differs between filex run and filex submit"
        );
    }

    // The secret, where it must not be.
    assert!(!contains(&out.stdout, &secret), "filex submit's stdout");
    assert!(!contains(&out.stderr, &secret), "filex submit's stderr");
    for name in ["core-site.xml", "filex-app.json"] {
        assert!(
            staged.contains_key(name),
            "the staged {name} could not be read while the application ran (saw {:?})",
            staged.keys().collect::<Vec<_>>()
        );
    }
    for (name, bytes) in &staged {
        assert!(
            !contains(bytes, &secret),
            "the staged {name} holds the secret"
        );
    }
    for key in ["access.key", "secret.key"] {
        let name = format!("<name>fs.s3a.bucket.{b}.{key}</name>");
        assert!(
            !contains(&staged["core-site.xml"], name.as_bytes()),
            "the staged core-site.xml holds {name}"
        );
    }
    let region = format!("<name>fs.s3a.bucket.{b}.endpoint.region</name>");
    assert!(
        contains(&staged["core-site.xml"], region.as_bytes()),
        "the staged core-site.xml keeps the S3A keys that are not secret"
    );
    assert!(
        !status_pages.is_empty(),
        "the AM's status page could not be read while it ran ({tracking:?})"
    );
    for page in &status_pages {
        assert!(
            !contains(page, &secret),
            "the AM's status page holds the secret"
        );
    }
    assert!(
        processes.values().any(|(role, _, _)| role == "am"),
        "the AM process was not seen in /proc"
    );
    for (pid, (role, cmdline, environ)) in &processes {
        assert!(!contains(cmdline, &secret), "{role} {pid}: argv");
        assert!(!contains(environ, &secret), "{role} {pid}: environment");
    }

    // Everywhere under the cluster's directory: only the containers' token files.
    let searched: Vec<PathBuf> = vec![cluster.dir.clone()];
    let found = grep_files(&pattern, &searched);
    let (tokens, elsewhere): (Vec<&PathBuf>, Vec<&PathBuf>) =
        found.iter().partition(|p| is_token_file(p));
    assert!(
        elsewhere.is_empty(),
        "the secret is outside the token files: {elsewhere:#?}"
    );
    let ours: Vec<&&PathBuf> = tokens
        .iter()
        .filter(|p| {
            p.to_string_lossy()
                .contains(&app_id.replacen("application_", "", 1))
        })
        .collect();
    assert!(
        !ours.is_empty(),
        "the secret is in no token file of {app_id}: the search or the hand-off is broken"
    );
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in files_under(&cluster.dir) {
        let key = classify(&cluster.dir, &e);
        *kinds.entry(key).or_default() += 1;
    }
    println!(
        "searched with grep -rlFa: {} ({} files by area: {kinds:?}); staged files read while \
         running: {:?}; status pages: {}; container processes: {:?}; token files holding the \
         secret: {ours:#?}",
        searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        kinds.values().sum::<usize>(),
        staged.keys().collect::<Vec<_>>(),
        status_pages.len(),
        processes
            .iter()
            .map(|(pid, (role, _, _))| format!("{role} {pid}"))
            .collect::<Vec<_>>()
    );
}

/// A label for where `file` lies in the cluster directory, for the report.
fn classify(base: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(base).unwrap_or(file).to_string_lossy();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if rel.contains("localDir") {
        if name == "launch_container.sh" {
            "nm launch scripts".into()
        } else if is_token_file(file) {
            "nm token files".into()
        } else {
            "nm local dirs".into()
        }
    } else if rel.contains("logDir") {
        "nm log dirs".into()
    } else if rel.contains("dfs/data") {
        if name.starts_with("blk_") && !name.ends_with(".meta") {
            "datanode blocks".into()
        } else {
            "datanode other".into()
        }
    } else if rel.contains("dfs/name") {
        "namenode".into()
    } else {
        "other (conf, daemon logs, tmp)".into()
    }
}
