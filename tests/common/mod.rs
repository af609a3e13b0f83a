//! Helpers shared by the binary's end-to-end tests.

use std::process::{Command, Output};

/// Runs the filex binary with `args` (logs at warn) and asserts that it succeeded, showing
/// its stdout and stderr when it did not.
pub fn filex(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_filex"))
        .args(args)
        .env("FILEX_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot start filex: {e}"));
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
