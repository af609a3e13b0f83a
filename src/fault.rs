//! Fault injection for the tests of retries and kills, compiled only with the
//! `fault-injection` cargo feature: a normal build neither reads nor forwards these variables.
//! A worker about to run an attempt listed in `FILEX_FAULT_EXIT_AT` exits as a killed
//! container does; one listed in `FILEX_FAULT_STALL_AT` sleeps ten minutes first. A list is
//! `kind:task:attempt` entries, comma separated: `map:1:0,reduce:0:0`.

use std::time::Duration;

use crate::task::Task;

/// Exit (code 137, as a killed container) when about to run one of the listed attempts.
pub const EXIT_AT_ENV: &str = "FILEX_FAULT_EXIT_AT";
/// Sleep ten minutes before running one of the listed attempts.
pub const STALL_AT_ENV: &str = "FILEX_FAULT_STALL_AT";
/// The variables of this module; they travel client → AM → worker containers.
pub const ENV_VARS: [&str; 2] = [EXIT_AT_ENV, STALL_AT_ENV];
/// The exit status of a container killed by SIGKILL.
const EXIT_CODE: i32 = 137;
const STALL: Duration = Duration::from_secs(600);

/// A malformed entry in one of the variables.
#[derive(Debug, thiserror::Error)]
#[error("{var}: `{entry}` is not `map|reduce:<task id>:<attempt>`")]
pub struct FaultError {
    var: &'static str,
    entry: String,
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
}

impl Faults {
    /// Reads [`ENV_VARS`]; unset means no fault.
    pub fn from_env() -> Result<Faults, FaultError> {
        let read = |var| parse_list(var, &std::env::var(var).unwrap_or_default());
        Ok(Faults {
            exit_at: read(EXIT_AT_ENV)?,
            stall_at: read(STALL_AT_ENV)?,
        })
    }

    /// Called by a worker about to run `attempt` of `task`: exits or stalls if it is listed.
    pub fn before(&self, task: &Task, attempt: u32) {
        let key = AttemptKey::of(task, attempt);
        if self.exit_at.contains(&key) {
            tracing::warn!(task = %task.describe(), attempt, "fault injection: exiting");
            std::process::exit(EXIT_CODE);
        }
        if self.stall_at.contains(&key) {
            tracing::warn!(task = %task.describe(), attempt, "fault injection: stalling");
            std::thread::sleep(STALL);
        }
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
    fn a_task_attempt_has_its_key() {
        let map = Task::Map(crate::plan::MapTask {
            id: 3,
            shards: Vec::new(),
            bytes: 0,
            preferred_hosts: Vec::new(),
        });
        assert_eq!(AttemptKey::of(&map, 1), key(Kind::Map, 3, 1));
        assert_eq!(AttemptKey::parse("map:3:1"), Some(AttemptKey::of(&map, 1)));
    }
}
