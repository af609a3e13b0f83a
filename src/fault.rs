//! Fault injection for the tests of retries and kills, compiled only with the
//! `fault-injection` cargo feature: a normal build neither reads nor forwards these variables.
//! A worker about to run an attempt listed in `FILEX_FAULT_EXIT_AT` exits as a killed
//! container does. Wherever an attempt runs (a thread of `filex run`, a worker, the
//! application master in uber mode), one listed in `FILEX_FAULT_STALL_AT` sleeps ten minutes
//! first, and one listed in `FILEX_FAULT_FAIL_AT` fails with an error, as a task whose input
//! could not be read does, while the process goes on. A list is `kind:task:attempt` entries,
//! comma separated: `map:1:0,reduce:0:0`.
//! One listed in `FILEX_FAULT_DELAY_AT` sleeps `FILEX_FAULT_DELAY_MS` (30 s) first, then runs.
//! `FILEX_FAULT_COMMIT_EXIT_AFTER=k` makes the process that commits a run (`filex run`, the
//! application master) exit the same way after `k` steps of its commit (`crate::commit`).

use std::sync::OnceLock;
use std::time::Duration;

use crate::task::Task;

/// Exit (code 137, as a killed container) when about to run one of the listed attempts.
pub const EXIT_AT_ENV: &str = "FILEX_FAULT_EXIT_AT";
/// Sleep ten minutes before running one of the listed attempts (wherever it runs).
pub const STALL_AT_ENV: &str = "FILEX_FAULT_STALL_AT";
/// Fail (with [`injected_failure`]'s error) when about to run one of the listed attempts.
pub const FAIL_AT_ENV: &str = "FILEX_FAULT_FAIL_AT";
/// Exit (code 137, as a SIGKILLed process) after this many steps of the run's own commit:
/// `0` right after its intent is written, `k` after `k` steps (the publications and
/// removals in the intent's order, then the manifest as one more step, then the
/// done-flag). Only a commit this process decided counts: finishing an earlier run's
/// unfinished commit (a roll-forward, also by a new attempt of the same application) never
/// exits, so the next run or AM attempt gets through.
pub const COMMIT_EXIT_AFTER_ENV: &str = "FILEX_FAULT_COMMIT_EXIT_AFTER";
/// Sleep [`DELAY_MS_ENV`] before running one of the listed attempts (wherever it runs), then
/// run it: a slow task, for tests of what must last (delegation tokens).
pub const DELAY_AT_ENV: &str = "FILEX_FAULT_DELAY_AT";
/// How long [`DELAY_AT_ENV`] sleeps, ms (default [`DEFAULT_DELAY`]).
pub const DELAY_MS_ENV: &str = "FILEX_FAULT_DELAY_MS";
/// The variables of this module; they travel client → AM → worker containers.
pub const ENV_VARS: [&str; 6] = [
    EXIT_AT_ENV,
    STALL_AT_ENV,
    FAIL_AT_ENV,
    COMMIT_EXIT_AFTER_ENV,
    DELAY_AT_ENV,
    DELAY_MS_ENV,
];
const DEFAULT_DELAY: Duration = Duration::from_secs(30);
/// The exit status of a container killed by SIGKILL.
const EXIT_CODE: i32 = 137;
const STALL: Duration = Duration::from_secs(600);

/// The form of an entry of [`EXIT_AT_ENV`] and [`STALL_AT_ENV`].
const ATTEMPT_FORM: &str = "`map|reduce:<task id>:<attempt>`";

/// A malformed entry in one of the variables.
#[derive(Debug, thiserror::Error)]
#[error("{var}: `{entry}` is not {expected}")]
pub struct FaultError {
    var: &'static str,
    entry: String,
    expected: &'static str,
}

/// [`COMMIT_EXIT_AFTER_ENV`]: the number of commit steps this process makes before it
/// exits, `None` when unset.
pub fn commit_exit_after() -> Result<Option<u32>, FaultError> {
    let Ok(text) = std::env::var(COMMIT_EXIT_AFTER_ENV) else {
        return Ok(None);
    };
    parse_steps(&text)
}

fn parse_steps(text: &str) -> Result<Option<u32>, FaultError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| FaultError {
        var: COMMIT_EXIT_AFTER_ENV,
        entry: text.to_string(),
        expected: "a number of commit steps",
    })
}

/// Called by a commit after `done` of its steps: exits when that is the number
/// [`COMMIT_EXIT_AFTER_ENV`] asked for.
pub fn after_commit_step(exit_after: Option<u32>, done: u32) {
    if exit_after == Some(done) {
        tracing::warn!(
            steps = done,
            "fault injection: exiting in the middle of the commit"
        );
        std::process::exit(EXIT_CODE);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Reduce,
}

/// One attempt of one task, as the variables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AttemptKey {
    kind: Kind,
    id: u32,
    attempt: u32,
}

impl AttemptKey {
    fn of(task: &Task, attempt: u32) -> AttemptKey {
        let (kind, id) = match task {
            Task::Map(t) => (Kind::Map, t.id),
            Task::Reduce(t) => (Kind::Reduce, t.id),
        };
        AttemptKey { kind, id, attempt }
    }

    fn parse(entry: &str) -> Option<AttemptKey> {
        let mut parts = entry.split(':');
        let kind = match parts.next()? {
            "map" => Kind::Map,
            "reduce" => Kind::Reduce,
            _ => return None,
        };
        let id = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some(AttemptKey { kind, id, attempt })
    }
}

/// The faults this process injects, read once from the environment.
#[derive(Debug, Default)]
pub struct Faults {
    exit_at: Vec<AttemptKey>,
    stall_at: Vec<AttemptKey>,
    fail_at: Vec<AttemptKey>,
    delay_at: Vec<AttemptKey>,
    delay: Duration,
}

impl Faults {
    /// Reads [`ENV_VARS`]; unset means no fault.
    pub fn from_env() -> Result<Faults, FaultError> {
        let read = |var| parse_list(var, &std::env::var(var).unwrap_or_default());
        Ok(Faults {
            exit_at: read(EXIT_AT_ENV)?,
            stall_at: read(STALL_AT_ENV)?,
            fail_at: read(FAIL_AT_ENV)?,
            delay_at: read(DELAY_AT_ENV)?,
            delay: match std::env::var(DELAY_MS_ENV) {
                Ok(ms) if !ms.trim().is_empty() => {
                    Duration::from_millis(ms.trim().parse().map_err(|_| FaultError {
                        var: DELAY_MS_ENV,
                        entry: ms.clone(),
                        expected: "a number of milliseconds",
                    })?)
                }
                _ => DEFAULT_DELAY,
            },
        })
    }

    /// Called by a worker process about to run `attempt` of `task`: exits if it is listed in
    /// [`EXIT_AT_ENV`]. Only workers die so: in the application master a dying process
    /// would be the AM's, a different failure.
    pub fn before(&self, task: &Task, attempt: u32) {
        if self.exit_at.contains(&AttemptKey::of(task, attempt)) {
            tracing::warn!(task = %task.describe(), attempt, "fault injection: exiting");
            std::process::exit(EXIT_CODE);
        }
    }

    /// Stalls if `attempt` of `task` is listed in [`STALL_AT_ENV`]; then says why it is to
    /// fail, if it is listed in [`FAIL_AT_ENV`].
    fn attempt(&self, task: &Task, attempt: u32) -> Option<String> {
        let key = AttemptKey::of(task, attempt);
        if self.stall_at.contains(&key) {
            tracing::warn!(task = %task.describe(), attempt, "fault injection: stalling");
            std::thread::sleep(STALL);
        }
        if self.delay_at.contains(&key) {
            tracing::warn!(task = %task.describe(), attempt, delay_ms = self.delay.as_millis() as u64, "fault injection: delaying");
            std::thread::sleep(self.delay);
        }
        self.fail_at.contains(&key).then(|| {
            tracing::warn!(task = %task.describe(), attempt, "fault injection: failing the attempt");
            format!("{FAIL_AT_ENV} lists attempt {attempt} of {}", task.describe())
        })
    }
}

/// Called wherever an attempt runs (a thread of `filex run`, a worker, the application
/// master in uber mode), as it starts: stalls for [`STALL_AT_ENV`], and returns why the
/// attempt fails for [`FAIL_AT_ENV`]. The variables are read once per process; a malformed
/// one fails every attempt with its parse error, so that no test runs without the fault it
/// asked for.
pub fn injected_failure(task: &Task, attempt: u32) -> Option<String> {
    static FAULTS: OnceLock<Result<Faults, String>> = OnceLock::new();
    match FAULTS.get_or_init(|| Faults::from_env().map_err(|e| e.to_string())) {
        Ok(faults) => faults.attempt(task, attempt),
        Err(e) => Some(e.clone()),
    }
}

fn parse_list(var: &'static str, text: &str) -> Result<Vec<AttemptKey>, FaultError> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            AttemptKey::parse(entry).ok_or_else(|| FaultError {
                var,
                entry: entry.to_string(),
                expected: ATTEMPT_FORM,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: Kind, id: u32, attempt: u32) -> AttemptKey {
        AttemptKey { kind, id, attempt }
    }

    #[test]
    fn lists_parse_into_attempts() {
        assert_eq!(
            parse_list(EXIT_AT_ENV, "map:1:0, reduce:0:2,").unwrap(),
            [key(Kind::Map, 1, 0), key(Kind::Reduce, 0, 2)]
        );
        assert!(parse_list(EXIT_AT_ENV, "").unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_named() {
        for bad in [
            "map task 1#0",
            "map:1",
            "map:1:0:0",
            "shuffle:1:0",
            "map:-1:0",
        ] {
            let err = parse_list(STALL_AT_ENV, &format!("map:0:0,{bad}")).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("FILEX_FAULT_STALL_AT: `{bad}` is not `map|reduce:<task id>:<attempt>`")
            );
        }
    }

    #[test]
    fn commit_steps_parse_and_name_the_variable() {
        assert_eq!(parse_steps("3").unwrap(), Some(3));
        assert_eq!(parse_steps(" 0 ").unwrap(), Some(0));
        assert_eq!(parse_steps("").unwrap(), None);
        let err = parse_steps("two").unwrap_err();
        assert_eq!(
            err.to_string(),
            "FILEX_FAULT_COMMIT_EXIT_AFTER: `two` is not a number of commit steps"
        );
    }

    #[test]
    fn a_task_attempt_has_its_key() {
        let map = Task::Map(crate::plan::MapTask {
            id: 3,
            shards: Vec::new(),
            bytes: 0,
            preferred_hosts: Vec::new(),
            duplicates: Vec::new(),
        });
        assert_eq!(AttemptKey::of(&map, 1), key(Kind::Map, 3, 1));
        assert_eq!(AttemptKey::parse("map:3:1"), Some(AttemptKey::of(&map, 1)));
    }

    #[test]
    fn a_listed_attempt_fails_and_its_retry_runs() {
        let map = Task::Map(crate::plan::MapTask {
            id: 0,
            shards: Vec::new(),
            bytes: 0,
            preferred_hosts: Vec::new(),
            duplicates: Vec::new(),
        });
        let faults = Faults {
            fail_at: parse_list(FAIL_AT_ENV, "map:0:0").unwrap(),
            ..Faults::default()
        };
        assert_eq!(
            faults.attempt(&map, 0).as_deref(),
            Some("FILEX_FAULT_FAIL_AT lists attempt 0 of map task 0")
        );
        assert_eq!(faults.attempt(&map, 1), None);
    }
}
