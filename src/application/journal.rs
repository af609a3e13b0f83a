//! The AM's journal: each task output the coordinator accepted, recorded on HDFS under the
//! application's staging directory (`<staging>/journal/`), so that when the application
//! master dies and YARN starts another attempt (`filex.am.max-attempts`), the new one keeps
//! the finished tasks instead of running them again — MapReduce's AM recovery, with the
//! accepted outputs themselves as the record.
//!
//! **One small file per accepted task, written once**: `map-00003.json`, `reduce-00002.json`
//! (see [`key`]), each written to a temporary name and renamed into place. A rename is atomic
//! on the NameNode, so an entry is either whole or absent, whatever moment the AM dies at.
//! An appended log would be one file, but the dead AM's lease on it outlives the AM (the new
//! attempt could only append after lease recovery), and a record torn by the crash would need
//! framing and checksums to be found; a task count's worth of tiny files (bounded by the plan,
//! removed with the staging directory) costs less than that.
//!
//! An entry holds the task as planned, the accepted attempt and its output (a map task's
//! sorted runs with their index and its rejects file; a reduce task's staged objects, whose
//! handles are the HDFS temp paths or the S3 upload ids). A new attempt plans again and, for
//! each task of a batch, keeps the entry's output only if [`decide`] says so: the entry is of
//! this format, was written for exactly this task (same shards, sizes and modification
//! times; for a reduce task, the same run segments), and its files are still there with their
//! sizes. Everything else runs again — with attempt numbers of its own
//! ([`crate::cluster::remote::schedule::ATTEMPTS_PER_AM_ATTEMPT`]), so that a zombie worker of
//! the dead attempt, which YARN is killing, can never write over what this attempt uses. The
//! files of rejected entries are removed; what the dead attempt's running tasks left goes
//! with the run's scratch and staging at the end.
//!
//! API for other parts of the AM: [`Journal::open`] (reads what earlier attempts wrote),
//! [`Journal::earlier_entries`], and the [`TaskJournal`] implementation the coordinator calls
//! ([`TaskJournal::recovered`] per batch, [`TaskJournal::record`] per accepted output); the
//! pure parts [`encode`], [`decode`], [`key`] and [`decide`].

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hdfs_native::WriteOptions;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::cluster::TaskJournal;
use crate::storage::hdfs::client::{HdfsFailure, NameNode};
use crate::storage::{OutputStore, Scratch};
use crate::task::{Task, TaskOutput};

/// The entry format; entries of another version are not used. (2: a reduce task merges a
/// list of partitions, and its entry journals all of them.)
pub const VERSION: u32 = 2;
/// The journal's directory under the staging directory.
pub const JOURNAL_DIR: &str = "journal";
const ENTRY_SUFFIX: &str = ".json";
const FILE_PERMISSION: u32 = 0o600;
const DIR_PERMISSION: u32 = 0o700;

/// One accepted task output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u32,
    /// The application master attempt (1, 2, …) that accepted it.
    pub am_attempt: u32,
    /// The task attempt whose output it is.
    pub attempt: u32,
    pub task: Task,
    pub output: TaskOutput,
}

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal entry {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("journal {url}: {failure}")]
    Hdfs {
        url: String,
        #[source]
        failure: HdfsFailure,
    },
}

/// The entry's name for `task`, without the suffix: `map-00003`, `reduce-00002`.
pub fn key(task: &Task) -> String {
    match task {
        Task::Map(m) => format!("map-{:05}", m.id),
        Task::Reduce(r) => format!("reduce-{:05}", r.id),
    }
}

/// The bytes of an entry (JSON, one line).
pub fn encode(entry: &Entry) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(entry).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Reads the entry `name` from its bytes.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Entry, JournalError> {
    let invalid = |message: String| JournalError::Invalid {
        name: name.to_string(),
        message,
    };
    let entry: Entry = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if entry.version != VERSION {
        return Err(invalid(format!(
            "format version {}, this filex writes {VERSION}",
            entry.version
        )));
    }
    Ok(entry)
}

/// What to do with a task of a batch a recovering AM is about to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Done: use the output an earlier attempt accepted.
    Keep(TaskOutput),
    /// Run it; `Some(reason)` when an entry was found but cannot be used.
    Run(Option<String>),
}

/// Decides on `task` given the `entry` journaled for its key, if any; `check` says whether
/// the files an output names are still there with their sizes.
pub fn decide(
    task: &Task,
    entry: Option<&Entry>,
    check: impl Fn(&TaskOutput) -> Result<(), String>,
) -> Decision {
    let Some(entry) = entry else {
        return Decision::Run(None);
    };
    if entry.task != *task {
        return Decision::Run(Some(
            "the task was planned differently (its input changed)".into(),
        ));
    }
    let matches = match (&entry.task, &entry.output) {
        (Task::Map(t), TaskOutput::Map(o)) => t.id == o.task,
        (Task::Reduce(t), TaskOutput::Reduce(o)) => {
            t.id == o.id && t.partitions.len() == o.partitions.len()
        }
        _ => false,
    };
    if !matches {
        return Decision::Run(Some("the output is not this task's".into()));
    }
    match check(&entry.output) {
        Ok(()) => Decision::Keep(entry.output.clone()),
        Err(why) => Decision::Run(Some(why)),
    }
}

/// Checks that the files `output` names are in `scratch` / staged in `store` as accepted.
pub fn check_files(
    output: &TaskOutput,
    scratch: &dyn Scratch,
    store: &dyn OutputStore,
) -> Result<(), String> {
    match output {
        TaskOutput::Map(m) => {
            for run in &m.runs {
                let size = scratch
                    .size(&run.name)
                    .map_err(|e| format!("sorted run {}: {e}", run.name))?;
                if size != run.index.file_bytes {
                    return Err(format!(
                        "sorted run {} has {size} bytes, {} were written",
                        run.name, run.index.file_bytes
                    ));
                }
            }
            if let Some(rejects) = &m.rejects {
                scratch
                    .size(rejects)
                    .map_err(|e| format!("rejects {rejects}: {e}"))?;
            }
            Ok(())
        }
        TaskOutput::Reduce(r) => r
            .published()
            .into_iter()
            .try_for_each(|s| store.check_staged(s)),
    }
}

/// Removes the files of an output that will not be used (a rejected entry's). Best effort.
fn discard_files(output: &TaskOutput, scratch: &dyn Scratch, store: &dyn OutputStore) {
    match output {
        TaskOutput::Map(m) => {
            for name in m.runs.iter().map(|r| &r.name).chain(m.rejects.as_ref()) {
                let _ = scratch.remove(name);
            }
        }
        TaskOutput::Reduce(r) => {
            for s in r.published() {
                let _ = store.discard(s);
            }
        }
    }
}

/// The journal of one application, opened by one AM attempt.
pub struct Journal {
    nn: Arc<NameNode>,
    /// The journal directory's path on `nn`.
    dir: String,
    am_attempt: u32,
    /// What earlier attempts journaled, by key; taken as batches claim them.
    earlier: Mutex<BTreeMap<String, Entry>>,
    /// Entries found when opened.
    found: usize,
    scratch: Arc<dyn Scratch>,
    output: Arc<dyn OutputStore>,
}

impl Journal {
    /// Opens the journal in `staging_dir` on `nn` for AM attempt `am_attempt`, reading what
    /// earlier attempts wrote (an unreadable entry is skipped: its task runs again). The
    /// outputs it names live in `scratch` and `output`.
    pub fn open(
        nn: Arc<NameNode>,
        staging_dir: &str,
        am_attempt: u32,
        scratch: Arc<dyn Scratch>,
        output: Arc<dyn OutputStore>,
    ) -> Result<Journal, JournalError> {
        let dir = format!("{}/{JOURNAL_DIR}", staging_dir.trim_end_matches('/'));
        let hdfs = |failure| JournalError::Hdfs {
            url: nn.url(&dir),
            failure,
        };
        nn.call(nn.client.mkdirs(&dir, DIR_PERMISSION, true))
            .map_err(hdfs)?;
        let mut earlier = BTreeMap::new();
        if am_attempt > 1 {
            let listing = nn.call(nn.client.list_status(&dir, false)).map_err(hdfs)?;
            for st in listing.into_iter().filter(|s| !s.isdir) {
                let name = st.path.rsplit('/').next().unwrap_or_default().to_string();
                let Some(k) = name.strip_suffix(ENTRY_SUFFIX) else {
                    continue; // a temporary name a dead attempt did not rename
                };
                let path = format!("{dir}/{name}");
                let read = nn.call(async {
                    let r = nn.client.read(&path).await?;
                    r.read_range(0, r.file_length()).await
                });
                match read
                    .map_err(|f| f.to_string())
                    .and_then(|b| decode(&name, &b).map_err(|e| e.to_string()))
                {
                    Ok(e) => {
                        earlier.insert(k.to_string(), e);
                    }
                    Err(e) => {
                        tracing::warn!(entry = %nn.url(&path), error = %e, "unusable journal entry")
                    }
                }
            }
        }
        let found = earlier.len();
        tracing::info!(journal = %nn.url(&dir), am_attempt, entries = found, "journal opened");
        Ok(Journal {
            nn,
            dir,
            am_attempt,
            earlier: Mutex::new(earlier),
            found,
            scratch,
            output,
        })
    }

    /// How many entries earlier attempts left (0 in the first attempt).
    pub fn earlier_entries(&self) -> usize {
        self.found
    }

    fn write(&self, name: &str, bytes: Vec<u8>) -> Result<(), HdfsFailure> {
        let nn = &self.nn;
        let tmp = format!("{}/.{name}.{}.tmp", self.dir, self.am_attempt);
        let path = format!("{}/{name}", self.dir);
        let opts = WriteOptions::default()
            .overwrite(true)
            .permission(FILE_PERMISSION);
        nn.call(async {
            let mut w = nn.client.create(&tmp, opts).await?;
            w.write_bytes(Bytes::from(bytes)).await?;
            w.close().await
        })?;
        nn.call(nn.client.rename(&tmp, &path, true))
    }
}

impl TaskJournal for Journal {
    fn recovered(&self, tasks: &[Task]) -> Vec<Option<TaskOutput>> {
        let mut earlier = self.earlier.lock();
        if earlier.is_empty() {
            return vec![None; tasks.len()];
        }
        let (scratch, output) = (self.scratch.as_ref(), self.output.as_ref());
        let mut kept = 0;
        let decided: Vec<Option<TaskOutput>> = tasks
            .iter()
            .map(|task| {
                let k = key(task);
                let entry = earlier.remove(&k);
                match decide(task, entry.as_ref(), |o| check_files(o, scratch, output)) {
                    Decision::Keep(o) => {
                        kept += 1;
                        Some(o)
                    }
                    Decision::Run(why) => {
                        if let (Some(why), Some(e)) = (why, &entry) {
                            tracing::warn!(entry = %k, reason = %why, "not recovering a journaled task");
                            discard_files(&e.output, scratch, output);
                        }
                        None
                    }
                }
            })
            .collect();
        tracing::info!(
            recovered = kept,
            tasks = tasks.len(),
            "recovered tasks an earlier application master finished"
        );
        decided
    }

    fn record(&self, task: &Task, attempt: u32, output: &TaskOutput) {
        let entry = Entry {
            version: VERSION,
            am_attempt: self.am_attempt,
            attempt,
            task: task.clone(),
            output: output.clone(),
        };
        let name = format!("{}{ENTRY_SUFFIX}", key(task));
        if let Err(e) = self.write(&name, encode(&entry)) {
            tracing::warn!(entry = %self.nn.url(&format!("{}/{name}", self.dir)), error = %e,
                "could not journal an accepted task; a later AM attempt would run it again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MapTask;
    use crate::storage::StagedObject;
    use crate::task::{MapOutput, MergedPartition, ReduceOutput, RunFile};

    fn map_task(id: u32, bytes: u64) -> Task {
        Task::Map(MapTask {
            id,
            shards: vec![],
            bytes,
            preferred_hosts: vec!["h1".into()],
            duplicates: vec![],
        })
    }

    fn map_output(task: u32, run: &str, file_bytes: u64) -> TaskOutput {
        TaskOutput::Map(MapOutput {
            task,
            runs: vec![RunFile {
                name: run.into(),
                index: crate::sort::RunIndex {
                    segments: vec![],
                    file_bytes,
                },
            }],
            partitions: vec![],
            counters: vec![],
            rejects: None,
            skipped: vec![],
            input_bytes: 7,
            shards: vec![],
        })
    }

    fn entry(task: Task, output: TaskOutput) -> Entry {
        Entry {
            version: VERSION,
            am_attempt: 1,
            attempt: 2,
            task,
            output,
        }
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_named() {
        let e = entry(
            map_task(3, 10),
            map_output(3, "m00003.2/spill-0000.run", 99),
        );
        let bytes = encode(&e);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(decode("map-00003.json", &bytes).unwrap(), e);
        // (bytes, what the error says)
        let other = encode(&Entry { version: 9, ..e });
        let cases: [(&[u8], &str); 3] = [
            (b"{\"version\":1", "map-00003.json"),
            (b"", "EOF"),
            (&other, "format version 9"),
        ];
        for (bytes, want) in cases {
            let err = decode("map-00003.json", bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        assert_eq!(key(&map_task(3, 0)), "map-00003");
    }

    #[test]
    fn recovery_decisions() {
        let task = map_task(3, 10);
        let good = entry(task.clone(), map_output(3, "m00003.0/spill-0000.run", 99));
        let ok = |_: &TaskOutput| Ok(());
        let missing = |_: &TaskOutput| Err("sorted run gone".to_string());
        let replanned = entry(map_task(3, 11), map_output(3, "r", 1));
        let foreign = entry(task.clone(), map_output(4, "r", 1));
        let reduce_out = TaskOutput::Reduce(ReduceOutput {
            id: 3,
            partitions: vec![MergedPartition {
                staged: StagedObject {
                    rel: "a/00.log.gz".into(),
                    bytes: 1,
                    sha256: String::new(),
                    handle: "h".into(),
                },
                lines: 1,
                line_bytes: 1,
                parts: vec![],
            }],
        });
        let wrong_kind = entry(task.clone(), reduce_out);
        // (entry, files present, keep?, reason contains)
        let cases: Vec<(Option<&Entry>, bool, bool, &str)> = vec![
            (None, true, false, ""),
            (Some(&good), true, true, ""),
            (Some(&good), false, false, "sorted run gone"),
            (Some(&replanned), true, false, "planned differently"),
            (Some(&foreign), true, false, "not this task's"),
            (Some(&wrong_kind), true, false, "not this task's"),
        ];
        for (i, (e, present, keep, why)) in cases.into_iter().enumerate() {
            let d = if present {
                decide(&task, e, ok)
            } else {
                decide(&task, e, missing)
            };
            match d {
                Decision::Keep(o) => {
                    assert!(keep, "case {i}");
                    assert_eq!(o, good.output);
                }
                Decision::Run(reason) => {
                    assert!(!keep, "case {i}");
                    assert_eq!(reason.is_some(), e.is_some(), "case {i}");
                    assert!(reason.unwrap_or_default().contains(why), "case {i}");
                }
            }
        }
    }

    #[test]
    fn files_are_checked_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = crate::storage::local::LocalScratch::new(dir.path().join("s"));
        let out = crate::storage::local::LocalOutput::new(dir.path().join("o"), "run1");
        let mut f = scratch.create("m00001.0/spill-0000.run").unwrap();
        std::io::Write::write_all(&mut f, b"12345").unwrap();
        f.close().unwrap();
        // (recorded size, passes)
        for (bytes, ok) in [(5, true), (6, false)] {
            let o = map_output(1, "m00001.0/spill-0000.run", bytes);
            assert_eq!(check_files(&o, &scratch, &out).is_ok(), ok, "{bytes}");
        }
        let gone = map_output(1, "m00001.0/spill-0001.run", 5);
        assert!(check_files(&gone, &scratch, &out)
            .unwrap_err()
            .contains("spill-0001"));
        // A staged reduce output: there with its size, then discarded. A task of several
        // partitions is usable only while every one of them is.
        let stage = |rel: &str, bytes: &[u8]| {
            let mut w = out.stage_attempt(rel, "r00000.0").unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
            w.finish().unwrap()
        };
        let staged = stage("a/00.log.gz", b"abc");
        let other = stage("b/00.log.gz", b"defg");
        let merged = |staged: StagedObject| MergedPartition {
            staged,
            lines: 1,
            line_bytes: 3,
            parts: vec![],
        };
        let reduce = |staged: StagedObject| {
            TaskOutput::Reduce(ReduceOutput {
                id: 0,
                partitions: vec![merged(other.clone()), merged(staged)],
            })
        };
        assert!(check_files(&reduce(staged.clone()), &scratch, &out).is_ok());
        let longer = StagedObject {
            bytes: 4,
            ..staged.clone()
        };
        assert!(check_files(&reduce(longer), &scratch, &out).is_err());
        out.discard(&staged).unwrap();
        assert!(check_files(&reduce(staged), &scratch, &out).is_err());
    }
}
