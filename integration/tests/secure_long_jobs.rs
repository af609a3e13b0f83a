//! A job that outlives its delegation tokens, on a Kerberized mini cluster whose tokens renew
//! every 30 s and live 5 min at most (`FILEX_CLUSTER_SECURE=1 FILEX_CLUSTER_SHORT_TOKENS=1
//! scripts/cluster.sh start` with its own `FILEX_CLUSTER_DIR`, named to this test by
//! `FILEX_SHORT_TOKENS_CLUSTER_DIR`; without that variable the test says so and passes,
//! scripts/test.sh sets it).
//!
//! `filex submit --keytab` ships the keytab to the AM (mode 600 in the staging directory,
//! never in the spec); the AM gets delegation tokens of its own, which nobody renews, and
//! new ones every 22.5 s (75 % of 30 s). One worker runs the map tasks in turn: the second
//! waits 70 s first (`FILEX_FAULT_DELAY_AT`), and its worker, whose HDFS clients were
//! dropped with each new generation, connects to the NameNode anew with what its token file
//! then holds, long after the first generation expired. The third kills that worker
//! (`FILEX_FAULT_EXIT_AT`): its replacement starts with the tokens of the day in its
//! container credentials. The output must be the bytes `filex run` writes from the same
//! shards on local files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filex_integration::cli::filex_bin;
use filex_integration::cluster::{short_tokens_cluster, SecureEnv, SHORT_TOKENS_CLUSTER_DIR_ENV};
use filex_integration::secure::{assert_ok, cluster_fs, container_stderrs, files_under, text};

/// The harness's renew interval with short tokens (Kerberos.java).
const RENEW_INTERVAL: Duration = Duration::from_secs(30);
/// How long the second map task waits before it runs.
const DELAY_MS: u64 = 70_000;

fn job_text(shards: &str, out: &str) -> String {
    format!(
        r#"name = "long-tokens"
[window]
start = "2026-11-05T00:00:00+00:00"
end = "2026-11-05T01:00:00+00:00"
[[source]]
name = "nginx"
format = "nginx"
shards = "{shards}/{{domain}}/%Y%m%d/%H%M.log"
timezone = "+00:00"
[output]
root = "{out}"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log"
format = "json"
timezone = "+00:00"
"#
    )
}

/// Three shards of five lines each under `dir/shards`.
fn write_shards(dir: &Path) -> PathBuf {
    let shard_dir = dir.join("shards/img.example.com/20261105");
    std::fs::create_dir_all(&shard_dir).unwrap();
    for (n, minute) in ["00", "10", "20"].iter().enumerate() {
        let lines: String = (1..=5)
            .map(|i| {
                format!(
                    "198.51.100.{i} - - [05/Nov/2026:00:{minute}:0{i} +0000] \"GET /s{n}/{i} HTTP/1.1\" 200 12 \"-\" \"t\"\n"
                )
            })
            .collect();
        std::fs::write(shard_dir.join(format!("00{minute}.log")), lines).unwrap();
    }
    dir.join("shards")
}

/// The `generation=N` values of the lines of `log` that contain `what`.
fn generations(log: &str, what: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            let rest = &l[l.find("generation=")? + "generation=".len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_job_outlives_its_tokens_with_the_shipped_keytab() {
    let Some(cluster) = short_tokens_cluster() else {
        eprintln!("{SHORT_TOKENS_CLUSTER_DIR_ENV} unset: short-token test not run");
        return;
    };
    let env: SecureEnv = cluster.env.secure.clone().expect("secure facts");
    let local = tempfile::tempdir().unwrap();
    let shards = write_shards(local.path());
    let base = format!("/user/filex/long-tokens-{}", std::process::id());
    assert_ok(
        &cluster_fs(&cluster.dir, &["-mkdir", "-p", &base]),
        "fs -mkdir",
    );
    assert_ok(
        &cluster_fs(
            &cluster.dir,
            &["-put", &shards.display().to_string(), &base],
        ),
        "fs -put",
    );
    let job = local.path().join("job.toml");
    std::fs::write(
        &job,
        job_text(
            &format!("hdfs://{base}/shards"),
            &format!("hdfs://{base}/out"),
        ),
    )
    .unwrap();

    let started = Instant::now();
    let mut child = Command::new(filex_bin())
        .args(["submit", &job.display().to_string(), "--force-new"])
        .args(["--principal", &env.principal, "--keytab"])
        .arg(&env.keytab)
        .args(["-D", "filex.uber.max-bytes=0"])
        .args(["-D", "filex.workers.min=1", "-D", "filex.workers.max=1"])
        // One map task per shard.
        .args(["-D", "filex.task.input-bytes=1"])
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("YARN_CONF_DIR", &cluster.conf_dir)
        .env("KRB5_CONFIG", &env.krb5_config)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}", local.path().join("none").display()),
        )
        .env_remove("HADOOP_TOKEN_FILE_LOCATION")
        .env("FILEX_LOG", "info")
        .env("FILEX_FAULT_DELAY_AT", "map:1:0")
        .env("FILEX_FAULT_DELAY_MS", DELAY_MS.to_string())
        .env("FILEX_FAULT_EXIT_AT", "map:2:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run filex submit");
    let stderr = {
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        })
    };
    // Read stdout up to the line saying what was staged; the job then runs for a minute.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut staging = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if let Some(dir) = line
            .strip_prefix("Staged ")
            .and_then(|l| l.split_once(" bytes in "))
        {
            staging = Some(dir.1.trim().to_string());
            break;
        }
    }
    let staging = staging.unwrap_or_else(|| panic!("no staging line: {stdout}"));
    assert!(
        stdout.contains(&format!(
            "Keytab of {} staged for the application master (mode 600)",
            env.principal
        )),
        "{stdout}"
    );

    // While the job runs: the keytab is in the private staging directory, mode 600, and the
    // spec names it without holding it.
    let ls = cluster_fs(&cluster.dir, &["-ls", &staging]);
    assert_ok(&ls, "fs -ls the staging directory");
    let listing = text(&ls.stdout);
    let keytab_line = listing
        .lines()
        .find(|l| l.ends_with("/filex-am.keytab"))
        .unwrap_or_else(|| panic!("no keytab in {staging}: {listing}"));
    let fields: Vec<&str> = keytab_line.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"-rw-------"), "{keytab_line}");
    assert_eq!(
        fields.get(2..4),
        Some(&["filex", "filex"][..]),
        "{keytab_line}"
    );
    let keytab_bytes = std::fs::read(&env.keytab).unwrap();
    assert_eq!(
        fields.get(4).and_then(|s| s.parse::<usize>().ok()),
        Some(keytab_bytes.len()),
        "{keytab_line}"
    );
    let spec = cluster_fs(
        &cluster.dir,
        &["-cat", &format!("{staging}/filex-app.json")],
    );
    assert_ok(&spec, "fs -cat the spec");
    let spec: serde_json::Value = serde_json::from_slice(&spec.stdout).expect("spec JSON");
    assert_eq!(
        spec["keytab"],
        serde_json::json!({"principal": env.principal, "file": "filex-am.keytab"}),
        "{spec}"
    );
    let spec_text = spec.to_string();
    let keytab_hex: String = keytab_bytes[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !spec_text.contains(&keytab_hex),
        "the spec holds keytab bytes"
    );
    let worker_files: Vec<&str> = spec["worker_files"]
        .as_array()
        .expect("worker_files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        !worker_files.contains(&"filex-am.keytab"),
        "workers must not get the keytab: {worker_files:?}"
    );

    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    let took = started.elapsed();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "filex submit: {stdout}\n{stderr}");
    assert!(stdout.contains("FINISHED SUCCEEDED"), "{stdout}");
    assert!(
        took > 2 * RENEW_INTERVAL,
        "the job must outlive two renew intervals, took {took:?}"
    );
    let app = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Submitted application "))
        .expect("application id")
        .trim()
        .to_string();

    // The AM got a generation every 22.5 s, the workers took them, and the AM cancelled its
    // tokens at the end.
    let logs = container_stderrs(&cluster.dir, &app);
    let (_, am_log) = logs
        .iter()
        .find(|(c, _)| c.ends_with("_000001"))
        .unwrap_or_else(|| panic!("no AM log for {app}: {logs:?}"));
    let fetched = generations(am_log, "got delegation tokens with the keytab");
    assert!(
        fetched.len() >= 3 && fetched.windows(2).all(|w| w[1] == w[0] + 1),
        "the AM should have got 3 or more generations: {fetched:?}\n{am_log}"
    );
    let cancelled = am_log
        .lines()
        .find(|l| l.contains("delegation tokens of the AM cancelled"))
        .unwrap_or_else(|| panic!("no cancel line: {am_log}"));
    assert!(
        cancelled.contains(&format!("cancelled={}", fetched.len()))
            && cancelled.contains(&format!("of={}", fetched.len())),
        "every generation is cancelled (one NameNode): {cancelled}"
    );
    let workers: Vec<_> = logs
        .iter()
        .filter(|(c, _)| !c.ends_with("_000001"))
        .collect();
    assert!(
        workers.len() >= 2,
        "a first worker and its replacement: {logs:?}"
    );
    let switched: Vec<u64> = workers
        .iter()
        .flat_map(|(_, log)| generations(log, "switched to new delegation tokens"))
        .collect();
    assert!(
        switched.iter().any(|&g| g >= 3),
        "a running worker should have taken generation 3 or later: {switched:?}\n{workers:?}"
    );
    for (c, log) in &workers {
        assert!(
            !log.contains("cannot take the new delegation tokens"),
            "{c}: {log}"
        );
    }

    // Once the application has ended its tokens are cancelled, or expire unrenewed within a
    // renew interval: a client that still holds them (a worker's token file) gets one line
    // that says so and names the fix.
    let token_file = files_under(&cluster.dir.join("work"))
        .into_iter()
        .find(|p| {
            let s = p.to_string_lossy();
            s.contains("nmPrivate") && s.contains(&app) && s.ends_with("_000002.tokens")
        })
        .unwrap_or_else(|| panic!("no token file of {app}'s first worker"));
    let plan_job = local.path().join("plan.toml");
    std::fs::write(
        &plan_job,
        job_text(&format!("hdfs://{base}/shards"), "/tmp/unused"),
    )
    .unwrap();
    let refused = Instant::now();
    let line = loop {
        let plan = Command::new(filex_bin())
            .args(["plan", &plan_job.display().to_string()])
            .env("HADOOP_CONF_DIR", &cluster.conf_dir)
            .env("KRB5_CONFIG", &env.krb5_config)
            .env("KRB5CCNAME", "FILE:/nonexistent/filex-no-ticket")
            .env("HADOOP_TOKEN_FILE_LOCATION", &token_file)
            .env("FILEX_LOG", "warn")
            .output()
            .expect("run filex plan");
        if plan.status.success() {
            assert!(
                refused.elapsed() < 2 * RENEW_INTERVAL,
                "the ended application's tokens still work after {:?}",
                refused.elapsed()
            );
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let err = text(&plan.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one error line: {err}");
        break lines[0].to_string();
    };
    assert!(
        line.contains("the NameNode refused the delegation token")
            && line.contains("expired or was cancelled")
            && line.contains("--keytab"),
        "{line}"
    );

    // The same job on local files, in this process: the same bytes.
    let local_out = local.path().join("out");
    let local_job = local.path().join("local.toml");
    std::fs::write(
        &local_job,
        job_text(
            &shards.display().to_string(),
            &local_out.display().to_string(),
        ),
    )
    .unwrap();
    let run = Command::new(filex_bin())
        .args(["run", &local_job.display().to_string(), "--no-progress"])
        .env_remove("HADOOP_CONF_DIR")
        .output()
        .expect("run filex run");
    assert_ok(&run, "filex run on local files");
    let rel = "img.example.com/20261105/img.example.com_2026110500.log";
    let want = std::fs::read(local_out.join(rel)).unwrap();
    let got_file = local.path().join("got.log");
    assert_ok(
        &cluster_fs(
            &cluster.dir,
            &[
                "-get",
                &format!("{base}/out/{rel}"),
                &got_file.display().to_string(),
            ],
        ),
        "fs -get the output",
    );
    assert_eq!(
        std::fs::read(&got_file).unwrap(),
        want,
        "cluster output differs"
    );
    assert_ok(
        &cluster_fs(&cluster.dir, &["-rm", "-r", "-skipTrash", &base]),
        "fs -rm",
    );
    eprintln!("job with the shipped keytab: {took:?}");
}
