//! filex against the Kerberized mini cluster (`FILEX_CLUSTER_SECURE=1 scripts/cluster.sh start`
//! with its own `FILEX_CLUSTER_DIR`, named to these tests by `FILEX_SECURE_CLUSTER_DIR`; without
//! that variable the secure tests say so and pass, scripts/test.sh sets it): GSSAPI to the
//! ResourceManager with a keytab and with a `kinit` ticket cache, every `hadoop.rpc.protection`
//! level, the errors for no ticket and for a principal mismatch; and `scripts/cluster.sh fs` on
//! both clusters.

use std::process::Command;

use filex_integration::cli::filex_bin;
use filex_integration::cluster::{require_cluster, Cluster};
use filex_integration::secure::{
    assert_ok, cluster_fs, container_stderrs, filex, kinit_cache, one_error_line, secure, text,
};

#[test]
fn nodes_with_keytab_and_no_ticket_cache() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ccache = dir.path().join("none");
    let keytab = env.keytab.display().to_string();
    let out = filex(
        &cluster,
        &env,
        &ccache,
        "warn",
        &[
            "yarn",
            "nodes",
            "--principal",
            &env.principal,
            "--keytab",
            &keytab,
        ],
    );
    assert_ok(&out, "filex yarn nodes --principal --keytab");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Total Nodes:3\n"), "{stdout}");
    assert_eq!(stdout.matches(" RUNNING ").count(), 3, "{stdout}");
    assert!(
        !ccache.exists(),
        "a keytab login must not write the ticket cache"
    );
}

#[test]
fn apps_with_a_kinit_ticket_cache() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit_cache(&env, dir.path());
    let out = filex(
        &cluster,
        &env,
        &ccache,
        "warn",
        &["yarn", "apps", "--all", "--json"],
    );
    assert_ok(&out, "filex yarn apps --all --json with a kinit cache");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v.is_array(), "{v}");
}

#[test]
fn every_protection_level_is_negotiated() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keytab = env.keytab.display().to_string();
    for level in ["authentication", "integrity", "privacy"] {
        let protection = format!("hadoop.rpc.protection={level}");
        let out = filex(
            &cluster,
            &env,
            &dir.path().join("none"),
            "info,yarn=debug",
            &[
                "yarn",
                "nodes",
                "-D",
                &protection,
                "--principal",
                &env.principal,
                "--keytab",
                &keytab,
            ],
        );
        assert_ok(&out, &format!("filex yarn nodes with {level}"));
        let log = text(&out.stderr);
        assert!(
            log.contains(&format!("protection=\"{level}\"")),
            "{level}: no negotiated layer in the log: {log}"
        );
        assert!(text(&out.stdout).starts_with("Total Nodes:3\n"));
    }
}

#[test]
fn no_ticket_names_the_fix() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = filex(
        &cluster,
        &env,
        &dir.path().join("none"),
        "warn",
        &["yarn", "nodes"],
    );
    let line = one_error_line(&out, "filex yarn nodes without a ticket");
    assert!(
        line.contains("no Kerberos ticket") && line.contains("kinit") && line.contains("--keytab"),
        "{line}"
    );
}

#[test]
fn a_principal_mismatch_is_refused() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keytab = env.keytab.display().to_string();
    let wrong = format!("yarn.resourcemanager.principal=rm/_HOST@{}", env.realm);
    let out = filex(
        &cluster,
        &env,
        &dir.path().join("none"),
        "warn",
        &[
            "yarn",
            "nodes",
            "-D",
            &wrong,
            "--principal",
            &env.principal,
            "--keytab",
            &keytab,
        ],
    );
    let line = one_error_line(&out, "filex yarn nodes with the wrong RM principal");
    assert!(
        line.contains("the server's Kerberos principal is hdfs/localhost")
            && line.contains(&format!(
                "yarn.resourcemanager.principal expects rm/localhost@{}",
                env.realm
            )),
        "{line}"
    );
}

#[test]
fn a_keytab_without_the_principal_is_refused() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // other.keytab holds no key of filex@REALM.
    let keytab = env.other_keytab.display().to_string();
    let out = filex(
        &cluster,
        &env,
        &dir.path().join("none"),
        "warn",
        &[
            "yarn",
            "nodes",
            "--principal",
            &env.principal,
            "--keytab",
            &keytab,
        ],
    );
    let line = one_error_line(&out, "filex yarn nodes with another user's keytab");
    assert!(
        line.contains(&format!(
            "cannot get Kerberos credentials for {}",
            env.principal
        )) && line.contains(&keytab),
        "{line}"
    );
}

/// put, ls, get and rm of one file through Hadoop's shell; returns the `-ls` line.
fn fs_round_trip(cluster: &Cluster, hdfs_dir: &str) -> String {
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("in.txt");
    std::fs::write(&src, "one\ntwo\n").unwrap();
    let src_s = src.display().to_string();
    let file = format!("{hdfs_dir}/in.txt");
    assert_ok(
        &cluster_fs(&cluster.dir, &["-mkdir", "-p", hdfs_dir]),
        "fs -mkdir",
    );
    assert_ok(
        &cluster_fs(&cluster.dir, &["-put", &src_s, &file]),
        "fs -put",
    );
    let ls = cluster_fs(&cluster.dir, &["-ls", hdfs_dir]);
    assert_ok(&ls, "fs -ls");
    let back = local.path().join("back.txt");
    assert_ok(
        &cluster_fs(&cluster.dir, &["-get", &file, &back.display().to_string()]),
        "fs -get",
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "one\ntwo\n");
    assert_ok(
        &cluster_fs(&cluster.dir, &["-rm", "-r", "-skipTrash", hdfs_dir]),
        "fs -rm",
    );
    let listing = text(&ls.stdout);
    listing
        .lines()
        .find(|l| l.ends_with(&file))
        .unwrap_or_else(|| panic!("{file} not listed: {listing}"))
        .to_string()
}

#[test]
fn cluster_fs_on_the_plain_cluster() {
    let cluster = require_cluster();
    let dir = format!("/tmp/fs-shell-{}", std::process::id());
    let line = fs_round_trip(&cluster, &dir);
    assert!(line.starts_with("-rw-"), "{line}");
}

#[test]
fn cluster_fs_on_the_secure_cluster_runs_as_the_submitter() {
    let Some((cluster, _)) = secure() else { return };
    let dir = format!("/user/filex/fs-shell-{}", std::process::id());
    let line = fs_round_trip(&cluster, &dir);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(2..4), Some(&["filex", "filex"][..]), "{line}");
}

#[test]
fn plan_and_run_on_secure_hdfs_with_a_ticket_cache() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let ccache = kinit_cache(&env, local.path());
    let shard_dir = local.path().join("shards/img.example.com/20261105");
    std::fs::create_dir_all(&shard_dir).unwrap();
    let lines: String = (1..=3)
        .map(|i| {
            format!(
                "198.51.100.{i} - - [05/Nov/2026:00:00:0{i} +0000] \"GET /a/{i} HTTP/1.1\" 200 12 \"-\" \"t\"\n"
            )
        })
        .collect();
    std::fs::write(shard_dir.join("0000.log"), &lines).unwrap();
    let base = format!("/user/filex/secure-run-{}", std::process::id());
    assert_ok(
        &cluster_fs(&cluster.dir, &["-mkdir", "-p", &base]),
        "fs -mkdir",
    );
    let shards = local.path().join("shards").display().to_string();
    assert_ok(
        &cluster_fs(&cluster.dir, &["-put", &shards, &base]),
        "fs -put",
    );
    let job = local.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "secure"
[window]
start = "2026-11-05T00:00:00+00:00"
end = "2026-11-05T01:00:00+00:00"
[[source]]
name = "nginx"
format = "nginx"
shards = "hdfs://{base}/shards/{{domain}}/%Y%m%d/%H%M.log"
timezone = "+00:00"
[output]
root = "hdfs://{base}/out"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log"
format = "json"
timezone = "+00:00"
"#
        ),
    )
    .unwrap();
    let job_s = job.display().to_string();

    // The plan lists secure HDFS and asks the NameNode for block locations over Kerberos.
    let plan = filex(
        &cluster,
        &env,
        &ccache,
        "warn,yarn=debug",
        &["plan", &job_s],
    );
    assert_ok(&plan, "filex plan on secure HDFS");
    let log = text(&plan.stderr);
    assert!(
        log.contains(&format!(
            "GSSAPI security layer negotiated target={}",
            env.service_principal
        )),
        "the block-location client did not use Kerberos: {log}"
    );
    let stdout = text(&plan.stdout);
    let map = stdout
        .lines()
        .find(|l| {
            let t = l.trim_start();
            t.starts_with("map ") && !t.starts_with("map tasks")
        })
        .unwrap_or_else(|| panic!("no map task: {stdout}"));
    assert!(map.contains(" hosts "), "no preferred hosts: {map}");

    // The run reads and writes secure HDFS (data transfer with SASL and block tokens).
    let run = filex(
        &cluster,
        &env,
        &ccache,
        "warn",
        &["run", &job_s, "--no-progress"],
    );
    assert_ok(&run, "filex run on secure HDFS");
    let out = format!("{base}/out/img.example.com/20261105/img.example.com_2026110500.log");
    let cat = cluster_fs(&cluster.dir, &["-text", &out]);
    assert_ok(&cat, "fs -text the output (gzip)");
    let got = text(&cat.stdout);
    assert_eq!(got.lines().count(), 3, "{got}");
    for i in 1..=3 {
        assert!(got.contains(&format!("/a/{i}")), "{got}");
    }
    assert_ok(
        &cluster_fs(&cluster.dir, &["-rm", "-r", "-skipTrash", &base]),
        "fs -rm",
    );
}

/// A request of about 160 KB (1500 tags in the getApplications filter) goes through under
/// integrity and privacy. It is more than the RM's offered 64 KiB, so the client wraps it in
/// pieces (gss_wrap_size_limit); the RM would also take one oversized wrap, so this checks
/// that large wrapped traffic works, not the piece size.
#[test]
fn a_large_request_passes_under_integrity_and_privacy() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit_cache(&env, dir.path());
    let tags: Vec<String> = (0..1500)
        .map(|i| format!("t{i:05}{}", "x".repeat(100)))
        .collect();
    for level in ["integrity", "privacy"] {
        let protection = format!("hadoop.rpc.protection={level}");
        let mut args = vec!["yarn", "apps", "--json", "-D", &protection];
        for t in &tags {
            args.extend(["--tag", t.as_str()]);
        }
        let out = filex(&cluster, &env, &ccache, "warn", &args);
        assert_ok(
            &out,
            &format!("filex yarn apps with 1500 tags under {level}"),
        );
        assert_eq!(text(&out.stdout).trim(), "[]");
    }
}

/// `filex submit --principal --keytab` with no ticket cache: the client gets HDFS and RM
/// delegation tokens, the NodeManagers localize with them, the AM and the workers read and
/// write secure HDFS with them alone (the workers get no AMRMToken), and the output is the
/// bytes `filex run` writes from the same shards on local files.
///
/// Also the test of the harness's classpath site files: without them the NodeManagers'
/// in-process localizer reads the staged files without SASL and the DataNodes refuse it.
#[test]
fn submit_with_keytab_runs_on_delegation_tokens() {
    let Some((cluster, env)) = secure() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let shard_dir = local.path().join("shards/img.example.com/20261105");
    std::fs::create_dir_all(&shard_dir).unwrap();
    let lines: String = (1..=5)
        .map(|i| {
            format!(
                "198.51.100.{i} - - [05/Nov/2026:00:0{i}:00 +0000] \"GET /t/{i} HTTP/1.1\" 200 12 \"-\" \"t\"\n"
            )
        })
        .collect();
    std::fs::write(shard_dir.join("0000.log"), &lines).unwrap();
    let base = format!("/user/filex/tokens-submit-{}", std::process::id());
    assert_ok(
        &cluster_fs(&cluster.dir, &["-mkdir", "-p", &base]),
        "fs -mkdir",
    );
    let shards = local.path().join("shards").display().to_string();
    assert_ok(
        &cluster_fs(&cluster.dir, &["-put", &shards, &base]),
        "fs -put",
    );
    let job_text = |shards: &str, out: &str| {
        format!(
            r#"name = "tokens"
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
    };
    let job = local.path().join("job.toml");
    std::fs::write(
        &job,
        job_text(
            &format!("hdfs://{base}/shards"),
            &format!("hdfs://{base}/out"),
        ),
    )
    .unwrap();
    let keytab = env.keytab.display().to_string();
    let ccache = local.path().join("none");
    let out = filex(
        &cluster,
        &env,
        &ccache,
        "info",
        &[
            "submit",
            &job.display().to_string(),
            "--force-new",
            "--principal",
            &env.principal,
            "--keytab",
            &keytab,
            // On a worker container, which must read and write with the tokens alone (this
            // small job would otherwise run in the AM, uber mode).
            "-D",
            "filex.uber.max-bytes=0",
        ],
    );
    assert_ok(&out, "filex submit --principal --keytab");
    let stdout = text(&out.stdout);
    assert!(
        !ccache.exists(),
        "a keytab login must not write the ticket cache"
    );
    assert!(
        stdout.contains("Delegation tokens: HDFS_DELEGATION_TOKEN@")
            && stdout.contains("RM_DELEGATION_TOKEN@"),
        "{stdout}"
    );
    assert!(stdout.contains("FINISHED SUCCEEDED"), "{stdout}");
    let app = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Submitted application "))
        .expect("application id")
        .trim()
        .to_string();

    // The AM is container 1; every other container is a worker. Each logs the kinds and
    // services of its tokens, never their bytes.
    let logs = container_stderrs(&cluster.dir, &app);
    let workers: Vec<_> = logs
        .iter()
        .filter(|(c, _)| !c.ends_with("_000001"))
        .collect();
    assert!(
        !workers.is_empty(),
        "no worker container logs for {app}: {logs:?}"
    );
    for (c, log) in &workers {
        let line = log
            .lines()
            .find(|l| l.contains("handed credentials"))
            .unwrap_or_else(|| panic!("{c}: no credentials line: {log}"));
        assert!(line.contains("HDFS_DELEGATION_TOKEN@"), "{c}: {line}");
        assert!(!line.contains("YARN_AM_RM_TOKEN"), "{c}: {line}");
    }

    // The same job on local files, in this process: the same bytes.
    let local_out = local.path().join("out");
    let local_job = local.path().join("local.toml");
    std::fs::write(
        &local_job,
        job_text(&shards, &local_out.display().to_string()),
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
}
