//! The `filex` binary as the tests run it: where it is, whether it has the test hooks, and
//! one run of it against a cluster's configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::project_root;

/// `$FILEX_BIN`, else `<project>/target/debug/filex`.
pub fn filex_bin() -> PathBuf {
    std::env::var_os("FILEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/debug/filex"))
}

/// Fails the test unless [`filex_bin`] has the test hooks (`FILEX_FAULT_*`) compiled in.
pub fn require_fault_injection() {
    let out = Command::new(filex_bin())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("run {} --version: {e}", filex_bin().display()));
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.contains("+fault-injection"),
        "{} ({}) lacks the test hooks this test needs: build it with \
         cargo build --bin filex --features fault-injection",
        filex_bin().display(),
        version.trim()
    );
}

/// The user the tests run as (`$USER`, else root), who owns `/user/<user>` on HDFS.
pub fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// `prefix` made unique for this moment and process: for HDFS roots, buckets' prefixes.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// A finished command's exit status, stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `filex args…` with `conf` as `HADOOP_CONF_DIR` and `YARN_CONF_DIR`, warnings only on
/// stderr, and `env` set; waits for it.
pub fn filex(args: &[&str], conf: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(filex_bin());
    cmd.args(args)
        .env("HADOOP_CONF_DIR", conf)
        .env("YARN_CONF_DIR", conf)
        .env("FILEX_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("run {}: {e}", filex_bin().display()))
}

/// The id of `Submitted application <id>` in a `filex submit`'s stdout.
pub fn app_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Submitted application "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no application id in: {stdout}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_is_read_from_the_submitted_line() {
        let out = "Executable x\nSubmitted application application_1_0002\nStaged 3 bytes\n";
        assert_eq!(app_id(out), "application_1_0002");
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique("a"), unique("a"));
        assert!(unique("yarn").starts_with("yarn-"));
    }
}
