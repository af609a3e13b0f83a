//! filex against the Kerberized mini cluster (`FILEX_CLUSTER_SECURE=1 scripts/cluster.sh start`
//! with its own `FILEX_CLUSTER_DIR`, named to these tests by `FILEX_SECURE_CLUSTER_DIR`; without
//! that variable the secure tests say so and pass, scripts/test.sh sets it): GSSAPI to the
//! ResourceManager with a keytab and with a `kinit` ticket cache, every `hadoop.rpc.protection`
//! level, the errors for no ticket and for a principal mismatch; and `scripts/cluster.sh fs` on
//! both clusters.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use filex_integration::cluster::{
    project_root, require_cluster, secure_cluster, Cluster, SecureEnv, SECURE_CLUSTER_DIR_ENV,
};

fn filex_bin() -> PathBuf {
    std::env::var_os("FILEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/debug/filex"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The secure cluster, or `None` (and a note) when the secure tests are not asked for.
fn secure() -> Option<(Cluster, SecureEnv)> {
    let Some(cluster) = secure_cluster() else {
        eprintln!("{SECURE_CLUSTER_DIR_ENV} unset: secure-cluster test not run");
        return None;
    };
    let env = cluster.env.secure.clone().expect("secure facts");
    Some((cluster, env))
}

/// `filex ARGS` against the secure cluster with the ticket cache `ccache` (which may not
/// exist) and log filter `log`.
fn filex(cluster: &Cluster, env: &SecureEnv, ccache: &Path, log: &str, args: &[&str]) -> Output {
    Command::new(filex_bin())
        .args(args)
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("YARN_CONF_DIR", &cluster.conf_dir)
        .env("KRB5_CONFIG", &env.krb5_config)
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .env_remove("HADOOP_TOKEN_FILE_LOCATION")
        .env("FILEX_LOG", log)
        .output()
        .expect("run filex")
}

fn assert_ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The one error line of a failed command (exit non-zero, one line on stderr).
fn one_error_line(out: &Output, what: &str) -> String {
    assert_ne!(out.status.code(), Some(0), "{what} succeeded");
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got {err:?}"
    );
    lines[0].to_string()
}

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
    let ccache = dir.path().join("cc");
    let kinit = Command::new("kinit")
        .args(["-c", &format!("FILE:{}", ccache.display()), "-kt"])
        .arg(&env.keytab)
        .arg(&env.principal)
        .env("KRB5_CONFIG", &env.krb5_config)
        .output()
        .expect("run kinit (Debian: apt-get install krb5-user; scripts/test.sh installs it)");
    assert_ok(&kinit, "kinit -kt");
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

/// `scripts/cluster.sh fs ARGS` against the cluster in `dir`.
fn cluster_fs(dir: &Path, args: &[&str]) -> Output {
    Command::new(project_root().join("scripts/cluster.sh"))
        .arg("fs")
        .args(args)
        .env("FILEX_CLUSTER_DIR", dir)
        .output()
        .expect("run scripts/cluster.sh fs")
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
