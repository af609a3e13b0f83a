//! The exit codes of every `filex` command, one meaning each. The README's table and the
//! schedulers (`integration/airflow`, `scripts/oozie`) read them; a test keeps the README equal
//! to [`CODES`]. 99 is never used: Airflow reads it as "skipped".

/// Success (for `submit`: the application FINISHED with SUCCEEDED).
pub const SUCCESS: u8 = 0;
/// The job or the command failed.
pub const FAILED: u8 = 1;
/// Usage, job-file or configuration error.
pub const USAGE: u8 = 2;
/// The application was killed.
pub const KILLED: u8 = 3;
/// The ResourceManager cannot be reached.
pub const UNREACHABLE: u8 = 4;
/// The application asked about does not exist.
pub const NOT_FOUND: u8 = 5;

/// Every code with its meaning, as the README's table shows it.
pub const CODES: &[(u8, &str)] = &[
    (SUCCESS, "success; for `submit`, the application FINISHED with SUCCEEDED"),
    (
        FAILED,
        "the job failed (corrupt shard, storage error, a task failing all its attempts…); nothing was published",
    ),
    (
        USAGE,
        "usage, job-file or configuration error (bad flag, `--set`, `-D`, a local path in cluster mode)",
    ),
    (
        KILLED,
        "the application was killed (`filex kill`, a signal to `filex submit`, YARN, Oozie)",
    ),
    (
        UNREACHABLE,
        "the ResourceManager cannot be reached (or stopped answering)",
    ),
    (
        NOT_FOUND,
        "`status`, `kill`: the application does not exist",
    ),
];

/// The README's table of exit codes, as generated from [`CODES`].
pub fn markdown_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in CODES {
        out.push_str(&format!("| `{code}` | {meaning} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's exit-code table differs from src/exit.rs; it should read:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn codes_are_distinct_and_never_99() {
        for (i, (code, _)) in CODES.iter().enumerate() {
            assert_ne!(*code, 99);
            assert!(CODES[i + 1..].iter().all(|(c, _)| c != code), "{code}");
        }
    }
}
