//! Helpers of the tests against the Kerberized mini cluster (`FILEX_CLUSTER_SECURE=1
//! scripts/cluster.sh start` with its own `FILEX_CLUSTER_DIR`, named to the tests by
//! `FILEX_SECURE_CLUSTER_DIR`): the cluster and its Kerberos facts, `filex` with a given
//! ticket cache, `kinit -kt` into a private cache, Hadoop's shell as either user, and the
//! containers' logs of an application.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::filex_bin;
use crate::cluster::{project_root, secure_cluster, Cluster, SecureEnv, SECURE_CLUSTER_DIR_ENV};

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The secure cluster, or `None` (and a note) when the secure tests are not asked for.
pub fn secure() -> Option<(Cluster, SecureEnv)> {
    let Some(cluster) = secure_cluster() else {
        eprintln!("{SECURE_CLUSTER_DIR_ENV} unset: secure-cluster test not run");
        return None;
    };
    let env = cluster.env.secure.clone().expect("secure facts");
    Some((cluster, env))
}

/// `filex ARGS` against the secure cluster, not yet run: the cluster's conf, its krb5.conf,
/// the ticket cache `ccache` (which may not exist), no token file, log filter `log`.
pub fn filex_command(
    cluster: &Cluster,
    env: &SecureEnv,
    ccache: &Path,
    log: &str,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(filex_bin());
    cmd.args(args)
        .env("HADOOP_CONF_DIR", &cluster.conf_dir)
        .env("YARN_CONF_DIR", &cluster.conf_dir)
        .env("KRB5_CONFIG", &env.krb5_config)
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .env_remove("HADOOP_TOKEN_FILE_LOCATION")
        .env("FILEX_LOG", log);
    cmd
}

/// [`filex_command`], run to its end.
pub fn filex(
    cluster: &Cluster,
    env: &SecureEnv,
    ccache: &Path,
    log: &str,
    args: &[&str],
) -> Output {
    filex_command(cluster, env, ccache, log, args)
        .output()
        .expect("run filex")
}

/// Panics with `what`, stdout and stderr unless `out` exited 0.
pub fn assert_ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The one error line of a failed command (exit non-zero, one line on stderr).
pub fn one_error_line(out: &Output, what: &str) -> String {
    assert_ne!(
        out.status.code(),
        Some(0),
        "{what} succeeded: {}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got {err:?}"
    );
    lines[0].to_string()
}

/// `scripts/cluster.sh fs ARGS` against the cluster in `dir` (as the submitter on a secure
/// cluster).
pub fn cluster_fs(dir: &Path, args: &[&str]) -> Output {
    cluster_fs_as(dir, "submitter", args)
}

/// `scripts/cluster.sh fs ARGS` as `user` (`submitter` or `other`, the secure cluster's
/// second user).
pub fn cluster_fs_as(dir: &Path, user: &str, args: &[&str]) -> Output {
    Command::new(project_root().join("scripts/cluster.sh"))
        .arg("fs")
        .args(args)
        .env("FILEX_CLUSTER_DIR", dir)
        .env("FILEX_CLUSTER_FS_USER", user)
        .output()
        .expect("run scripts/cluster.sh fs")
}

/// A `kinit -kt` cache of the submitter in `dir` (`dir/cc`).
pub fn kinit_cache(env: &SecureEnv, dir: &Path) -> PathBuf {
    kinit_cache_for(env, dir, &[])
}

/// As [`kinit_cache`], with more `kinit` options (e.g. `-l 5s`).
pub fn kinit_cache_for(env: &SecureEnv, dir: &Path, options: &[&str]) -> PathBuf {
    let ccache = dir.join("cc");
    let kinit = Command::new("kinit")
        .args(options)
        .args(["-c", &format!("FILE:{}", ccache.display()), "-kt"])
        .arg(&env.keytab)
        .arg(&env.principal)
        .env("KRB5_CONFIG", &env.krb5_config)
        .output()
        .expect("run kinit (Debian: apt-get install krb5-user; scripts/test.sh installs it)");
    assert_ok(&kinit, "kinit -kt");
    ccache
}

/// Every container `stderr` of application `app` under the cluster's work directory, as
/// `(container id, text)`, sorted.
/// (NodeManager log directories: `…logDir…/<application>/<container>/<file>`.)
pub fn container_stderrs(dir: &Path, app: &str) -> Vec<(String, String)> {
    container_logs(dir, app)
        .into_iter()
        .filter(|(_, name, _)| name == "stderr")
        .map(|(c, _, bytes)| (c, text(&bytes)))
        .collect()
}

/// Every file of application `app`'s container log directories (`stdout`, `stderr`, …)
/// under the cluster's work directory, as `(container id, file name, bytes)`, sorted.
pub fn container_logs(dir: &Path, app: &str) -> Vec<(String, String, Vec<u8>)> {
    let containers = app.trim_start_matches("application_");
    let mut out = Vec::new();
    for path in files_under(&dir.join("work")) {
        let s = path.to_string_lossy();
        // <log dir>/application_<id>/container_<id>/<file>
        let Some(container) = path.parent().and_then(|c| c.file_name()) else {
            continue;
        };
        let container = container.to_string_lossy().into_owned();
        let in_log_dir = path
            .parent()
            .and_then(Path::parent)
            .and_then(|a| a.file_name())
            .is_some_and(|a| a.to_string_lossy() == app);
        if in_log_dir && container.contains(containers) && s.contains("logDir") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((container, name, std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

/// Every regular file under `dir` (symbolic links are not followed).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out
}
