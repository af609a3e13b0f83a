//! Helpers shared by the binary's end-to-end tests.

use std::process::{Command, Output};

/// Runs the filex binary with `args` (logs at warn) and asserts that it succeeded, showing
/// its stdout and stderr when it did not.
pub fn filex(args: &[&str]) -> Output {
    filex_env(args, &[])
}

/// As [`filex`], with extra environment variables (`FILEX_LOG=info` overrides the default).
pub fn filex_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = filex_status(args, env);
    assert!(
        out.status.success(),
        "filex {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the filex binary with `args` and `env` (logs at warn unless `env` says otherwise),
/// whatever its exit status.
pub fn filex_status(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_filex"));
    cmd.args(args).env("FILEX_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start filex: {e}"))
}
