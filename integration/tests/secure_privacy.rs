//! filex against a privacy-only Kerberized mini cluster (`FILEX_CLUSTER_SECURE=1
//! FILEX_CLUSTER_PROTECTION=privacy scripts/cluster.sh start` in its own `FILEX_CLUSTER_DIR`,
//! named to these tests by `FILEX_PRIVACY_CLUSTER_DIR`; without it they say so and pass,
//! scripts/test.sh starts that cluster for this file alone). Its NameNode takes only
//! `hadoop.rpc.protection=privacy` and its DataNodes only `dfs.data.transfer.protection=privacy`
//! (with AES/CTR offered for block data). The tests: `filex plan` and `filex run` with
//! `--principal/--keytab` and no ticket cache, the negotiated NameNode protection read from
//! the debug log, block data read and written, the client settings without which that fails,
//! and the one-line errors of the `--principal/--keytab` flags.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use filex_integration::cli::filex_bin;
use filex_integration::cluster::{privacy_cluster, Cluster, SecureEnv, PRIVACY_CLUSTER_DIR_ENV};
use filex_integration::secure::{assert_ok, one_error_line, text};

/// The privacy-only cluster, or `None` (and a note) when its tests are not asked for.
fn privacy() -> Option<(Cluster, SecureEnv)> {
    let Some(cluster) = privacy_cluster() else {
        eprintln!("{PRIVACY_CLUSTER_DIR_ENV} unset: privacy-cluster test not run");
        return None;
    };
    let env = cluster.env.secure.clone().expect("secure facts");
    Some((cluster, env))
}

/// `filex ARGS` with the Hadoop configuration in `conf_dir`, no ticket cache (`KRB5CCNAME`
/// names a file in `scratch` that nothing creates) and log filter `log`.
fn filex(conf_dir: &Path, env: &SecureEnv, scratch: &Path, log: &str, args: &[&str]) -> Output {
    Command::new(filex_bin())
        .args(args)
        .env("HADOOP_CONF_DIR", conf_dir)
        .env("YARN_CONF_DIR", conf_dir)
        .env("KRB5_CONFIG", &env.krb5_config)
        .env(
            "KRB5CCNAME",
            format!("FILE:{}", scratch.join("no-ccache").display()),
        )
        .env_remove("HADOOP_TOKEN_FILE_LOCATION")
        .env("FILEX_LOG", log)
        .output()
        .expect("run filex")
}

/// `scripts/cluster.sh fs ARGS` against the cluster (as the submitter).
fn cluster_fs(cluster: &Cluster, args: &[&str]) -> Output {
    filex_integration::secure::cluster_fs(&cluster.dir, args)
}

/// The value of `key` in the site file `file` of `conf_dir` (one property per line, as the
/// harness writes them).
fn site_value(conf_dir: &Path, file: &str, key: &str) -> Option<String> {
    let xml = std::fs::read_to_string(conf_dir.join(file)).ok()?;
    let line = xml
        .lines()
        .find(|l| l.contains(&format!("<name>{key}</name>")))?;
    let v = line.split("<value>").nth(1)?.split("</value>").next()?;
    Some(v.to_string())
}

/// A copy of `conf_dir` in `into` without the properties `keys`: a client configured
/// differently from the cluster.
fn conf_without(conf_dir: &Path, into: &Path, keys: &[&str]) -> PathBuf {
    let out = into.join("conf-without");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(conf_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let xml = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = xml
                .lines()
                .filter(|l| {
                    !keys
                        .iter()
                        .any(|k| l.contains(&format!("<name>{k}</name>")))
                })
                .collect();
            std::fs::write(out.join(path.file_name().unwrap()), kept.join("\n")).unwrap();
        }
    }
    for k in keys {
        assert!(
            ["core-site.xml", "hdfs-site.xml"]
                .iter()
                .all(|f| site_value(&out, f, k).is_none()),
            "{k} still set"
        );
    }
    out
}

/// Three nginx lines uploaded under a fresh HDFS directory, and a job reading them and
/// writing one JSON hour file beside them. Returns (HDFS base directory, job file).
fn job_on_hdfs(cluster: &Cluster, local: &Path, name: &str) -> (String, String) {
    let shard_dir = local.join("shards/img.example.com/20261105");
    std::fs::create_dir_all(&shard_dir).unwrap();
    let lines: String = (1..=3)
        .map(|i| {
            format!(
                "198.51.100.{i} - - [05/Nov/2026:00:00:0{i} +0000] \"GET /p/{i} HTTP/1.1\" 200 12 \"-\" \"t\"\n"
            )
        })
        .collect();
    std::fs::write(shard_dir.join("0000.log"), &lines).unwrap();
    let base = format!("/user/filex/secmore-{name}-{}", std::process::id());
    assert_ok(&cluster_fs(cluster, &["-mkdir", "-p", &base]), "fs -mkdir");
    let shards = local.join("shards").display().to_string();
    assert_ok(&cluster_fs(cluster, &["-put", &shards, &base]), "fs -put");
    let job = local.join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "privacy"
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
    (base, job.display().to_string())
}

/// The output hour file of [`job_on_hdfs`] as Hadoop's shell reads it back (`None`: absent).
fn output_lines(cluster: &Cluster, base: &str) -> Option<String> {
    let out = format!("{base}/out/img.example.com/20261105/img.example.com_2026110500.log");
    let cat = cluster_fs(cluster, &["-text", &out]);
    (cat.status.code() == Some(0)).then(|| text(&cat.stdout))
}

fn remove(cluster: &Cluster, base: &str) {
    assert_ok(
        &cluster_fs(cluster, &["-rm", "-r", "-skipTrash", base]),
        "fs -rm",
    );
}

#[test]
fn the_cluster_takes_privacy_only() {
    let Some((cluster, _)) = privacy() else {
        return;
    };
    // Otherwise the tests below would prove nothing about privacy.
    let conf = &cluster.conf_dir;
    assert_eq!(
        site_value(conf, "core-site.xml", "hadoop.rpc.protection").as_deref(),
        Some("privacy")
    );
    assert_eq!(
        site_value(conf, "hdfs-site.xml", "dfs.data.transfer.protection").as_deref(),
        Some("privacy")
    );
    assert_eq!(
        site_value(
            conf,
            "hdfs-site.xml",
            "dfs.encrypt.data.transfer.cipher.suites"
        )
        .as_deref(),
        Some("AES/CTR/NoPadding")
    );
}

#[test]
fn plan_and_run_with_a_keytab_under_privacy() {
    let Some((cluster, env)) = privacy() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let (base, job) = job_on_hdfs(&cluster, local.path(), "keytab");
    let keytab = env.keytab.display().to_string();
    let login = ["--principal", env.principal.as_str(), "--keytab", &keytab];

    // The plan lists over our NameNode client: Kerberos from the keytab, privacy negotiated.
    let mut args = vec!["plan", job.as_str()];
    args.extend(login);
    let plan = filex(
        &cluster.conf_dir,
        &env,
        local.path(),
        "warn,yarn=debug",
        &args,
    );
    assert_ok(&plan, "filex plan --principal --keytab");
    let log = text(&plan.stderr);
    assert!(
        log.contains(&format!(
            "GSSAPI security layer negotiated target={} protection=\"privacy\"",
            env.service_principal
        )),
        "no privacy layer negotiated with the NameNode: {log}"
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

    // The run reads the shard's blocks and writes the output's over SASL privacy (hdfs-native
    // from the same keytab); AES/CTR is what the DataNodes pick for the block data.
    let mut args = vec!["run", job.as_str(), "--no-progress"];
    args.extend(login);
    let run = filex(
        &cluster.conf_dir,
        &env,
        local.path(),
        "warn,hdfs_native::security=debug",
        &args,
    );
    assert_ok(&run, "filex run --principal --keytab");
    // The DataNode's answer (not our offer) names the cipher.
    let log = text(&run.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("Data transfer encryptor response")
                && l.contains("cipher_option: [CipherOptionProto { suite: AesCtrNopadding")),
        "no AES/CTR cipher negotiated with a DataNode: {log}"
    );
    let got = output_lines(&cluster, &base).expect("the output hour file");
    assert_eq!(got.lines().count(), 3, "{got}");
    for i in 1..=3 {
        assert!(got.contains(&format!("/p/{i}")), "{got}");
    }
    assert!(
        !local.path().join("no-ccache").exists(),
        "a keytab login must not write a ticket cache"
    );
    remove(&cluster, &base);
}

#[test]
fn an_authentication_only_client_is_refused() {
    let Some((cluster, env)) = privacy() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let (base, job) = job_on_hdfs(&cluster, local.path(), "auth-only");
    let keytab = env.keytab.display().to_string();
    for cmd in ["plan", "run"] {
        let out = filex(
            &cluster.conf_dir,
            &env,
            local.path(),
            "warn",
            &[
                cmd,
                &job,
                "-D",
                "hadoop.rpc.protection=authentication",
                "--principal",
                &env.principal,
                "--keytab",
                &keytab,
            ],
        );
        let line = one_error_line(&out, &format!("filex {cmd} with authentication only"));
        assert!(
            line.contains("the server offers protection privacy")
                && line.contains("hadoop.rpc.protection here allows only authentication")
                && line.contains("-D hadoop.rpc.protection=privacy"),
            "{cmd}: {line}"
        );
    }
    assert_eq!(output_lines(&cluster, &base), None, "nothing was published");
    remove(&cluster, &base);
}

#[test]
fn block_data_needs_the_data_transfer_protection() {
    let Some((cluster, env)) = privacy() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let (base, job) = job_on_hdfs(&cluster, local.path(), "no-dtp");
    // Without the key the client skips the SASL handshake with the DataNodes, which take
    // only SASL with privacy: reading the shard fails (the listing, over RPC, still works).
    let conf = conf_without(
        &cluster.conf_dir,
        local.path(),
        &["dfs.data.transfer.protection"],
    );
    let keytab = env.keytab.display().to_string();
    let out = filex(
        &conf,
        &env,
        local.path(),
        "warn",
        &[
            "run",
            &job,
            "--no-progress",
            "--principal",
            &env.principal,
            "--keytab",
            &keytab,
        ],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "filex run without dfs.data.transfer.protection succeeded: {}",
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(err.contains("nothing was published"), "{err}");
    assert_eq!(output_lines(&cluster, &base), None, "nothing was published");
    remove(&cluster, &base);
}

#[test]
fn kerberos_flags_fail_in_one_line_naming_the_fix() {
    let Some((cluster, env)) = privacy() else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let job = local.path().join("job.toml");
    // Never read: the flags are checked first.
    std::fs::write(&job, "").unwrap();
    let job = job.display().to_string();
    let keytab = env.keytab.display().to_string();
    let other = env.other_keytab.display().to_string();
    let missing = local.path().join("missing.keytab").display().to_string();
    let run = |args: &[&str]| filex(&cluster.conf_dir, &env, local.path(), "warn", args);

    let line = one_error_line(&run(&["plan", &job, "--keytab", &keytab]), "--keytab alone");
    assert!(
        line.contains(&format!("--keytab {keytab} needs --principal")),
        "{line}"
    );

    let line = one_error_line(
        &run(&[
            "run",
            &job,
            "--principal",
            &env.principal,
            "--keytab",
            &missing,
        ]),
        "an unreadable keytab",
    );
    assert!(
        line.contains(&format!(
            "keytab {missing} for {} is not a readable file",
            env.principal
        )) && line.contains("--keytab"),
        "{line}"
    );

    // other.keytab holds no key of filex@REALM.
    let line = one_error_line(
        &run(&[
            "run",
            &job,
            "--principal",
            &env.principal,
            "--keytab",
            &other,
        ]),
        "a keytab without the principal",
    );
    assert!(
        line.contains(&format!(
            "cannot get Kerberos credentials for {} from keytab {other}",
            env.principal
        )) && line.contains(&format!("klist -kt {other}")),
        "{line}"
    );
}
