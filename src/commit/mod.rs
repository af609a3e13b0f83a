//! The crash-safe commit of a run: publication of many staged partitions (renames, or
//! completions of multipart uploads), removal of the previous run's stale files, then the
//! manifest (the completeness signal) and the done-flag. The commit is first written down as
//! an [`Intent`]; every step is idempotent; so a commit cut short (a crash, a SIGKILL, a
//! storage error) is finished — rolled forward, never undone — by the next run of the same
//! window, or by a new attempt of the same application, before it does anything else.
//!
//! Not here: what the commit publishes (`crate::driver::execute` builds the intent) and the
//! staging itself (`crate::storage`).

pub mod intent;

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

pub use intent::{intent_rel, Intent, IntentError, Step, INTENT_VERSION};

use crate::parallel;
use crate::storage::{OutputStore, Published, StorageError};

/// Why a commit could not be made or finished.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(
        "{url} records an unfinished commit of this window but cannot be used ({source}); \
         the window may hold files of two runs: check them, remove {url} and re-run the \
         window with --full"
    )]
    Corrupt {
        url: String,
        #[source]
        source: IntentError,
    },
    #[error(
        "cannot finish the commit of run {run_id} recorded in {url} (step {step} of {steps}); \
         the window may hold files of two runs: check them, remove {url} and re-run the \
         window with --full"
    )]
    Unfinishable {
        url: String,
        run_id: String,
        step: usize,
        steps: usize,
        #[source]
        source: Box<StorageError>,
    },
    #[error(
        "the commit stopped at step {step} of {steps}; {url} records it, and the next run of \
         the window finishes it before anything else"
    )]
    Interrupted {
        url: String,
        step: usize,
        steps: usize,
        #[source]
        source: Box<StorageError>,
    },
    #[error("cannot access the commit record {url}")]
    Record {
        url: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error("commit record: {0}")]
    Encode(#[source] IntentError),
    #[cfg(feature = "fault-injection")]
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LatchState {
    /// Nothing decided: what the run staged may be discarded.
    Open,
    /// The intent is written and the commit not finished: the staged objects belong to the
    /// intent, for this run or the next one to publish.
    Decided,
    /// The commit is finished: what is left staged is litter.
    Finished,
}

/// Guards a run's staged output between the decision to commit and the commit's end: from
/// the moment its intent is written, neither the run's drop nor the SIGTERM handler of the
/// AM may discard what the intent publishes. Shared by the run and whoever may discard its
/// staging; a discard and the decision never interleave.
#[derive(Debug)]
pub struct CommitLatch {
    state: Mutex<LatchState>,
}

impl Default for CommitLatch {
    fn default() -> Self {
        CommitLatch {
            state: Mutex::new(LatchState::Open),
        }
    }
}

impl CommitLatch {
    /// Runs `discard` (the abort of the run's staging) unless a commit is decided and not
    /// finished; returns whether it ran.
    pub fn discard_unless_decided(&self, discard: impl FnOnce()) -> bool {
        let state = self.state.lock();
        if *state == LatchState::Decided {
            return false;
        }
        discard();
        true
    }

    /// Runs `write` (the intent's write) and, if it succeeds, marks the commit decided, with
    /// no discard in between.
    fn decide<T, E>(&self, write: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let mut state = self.state.lock();
        let written = write()?;
        *state = LatchState::Decided;
        Ok(written)
    }

    fn finish(&self) {
        *self.state.lock() = LatchState::Finished;
    }
}

/// Counts of a commit's steps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepCounts {
    /// Done by this call.
    pub now: usize,
    /// Found done already (an earlier, cut-short try of the same commit).
    pub before: usize,
}

/// Makes the commit `intent` on `output`: writes the intent (the decision, under `latch`),
/// carries out its steps, writes the manifest and the done-flag, then removes the intent.
/// An error after the decision leaves the intent and the staged objects for the next run
/// ([`CommitError::Interrupted`]).
pub fn commit(
    output: &dyn OutputStore,
    latch: &CommitLatch,
    intent: &Intent,
) -> Result<StepCounts, CommitError> {
    let exit_after = fault_exit_after()?;
    let rel = intent_rel(&intent.manifest_rel);
    let url = output.url(&rel);
    let bytes = intent.encode().map_err(CommitError::Encode)?;
    latch
        .decide(|| output.put_atomic(&rel, &bytes))
        .map_err(|source| {
            // The write may have gone through with its answer lost: a record of a commit
            // that will not happen must not stay.
            let _ = output.remove(&rel);
            CommitError::Record {
                url: url.clone(),
                source: Box::new(source),
            }
        })?;
    let counts = carry_out(output, intent, exit_after).map_err(|(step, source)| {
        CommitError::Interrupted {
            url: url.clone(),
            step,
            steps: intent.total_steps(),
            source: Box::new(source),
        }
    })?;
    latch.finish();
    Ok(counts)
}

/// The unfinished commit recorded for job `job`'s window `window` at `rel`, if any.
pub fn pending(
    output: &dyn OutputStore,
    rel: &str,
    job: &str,
    window: &str,
) -> Result<Option<Intent>, CommitError> {
    let url = output.url(rel);
    let bytes = output.read(rel).map_err(|source| CommitError::Record {
        url: url.clone(),
        source: Box::new(source),
    })?;
    match bytes {
        None => Ok(None),
        Some(b) => Intent::decode(&b, job, window)
            .map(Some)
            .map_err(|source| CommitError::Corrupt { url, source }),
    }
}

/// Finishes the unfinished commit of job `job`'s window `window` recorded at `rel`, if any:
/// every step, the manifest, the done-flag, then the record goes; logs one line saying so.
/// Returns the intent finished.
pub fn roll_forward(
    output: &dyn OutputStore,
    rel: &str,
    job: &str,
    window: &str,
) -> Result<Option<Intent>, CommitError> {
    let Some(intent) = pending(output, rel, job, window)? else {
        return Ok(None);
    };
    let url = output.url(rel);
    let counts =
        carry_out(output, &intent, None).map_err(|(step, source)| CommitError::Unfinishable {
            url: url.clone(),
            run_id: intent.run_id.clone(),
            step,
            steps: intent.total_steps(),
            source: Box::new(source),
        })?;
    tracing::warn!(
        record = %url,
        run = %intent.run_id,
        steps_done_now = counts.now,
        steps_done_before = counts.before,
        manifest = %output.url(&intent.manifest_rel),
        "finished the commit an earlier run of this window left unfinished"
    );
    Ok(Some(intent))
}

/// Steps of one wave carried out at once. A commit of a customer-day publishes thousands of
/// partitions, each a round trip to the store (a NameNode rename, an object store's
/// completion of a multipart upload): one after another they would take minutes on an object
/// store. 16 at a time keeps a NameNode's RPC handlers (10 by default) busy without queueing
/// far behind them; Hadoop's S3A committers and the manifest committer complete their
/// uploads and renames on thread pools for the same reason.
const STEP_THREADS: usize = 16;

/// The intent's steps cut into waves of consecutive steps of the same kind, in order: the
/// done-flag comes down before any file is replaced, and the files of the previous run are
/// removed once every new one is published; within a wave the steps are independent (each
/// changes its own path) and run [`STEP_THREADS`] at a time.
fn waves(steps: &[Step]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match out.last_mut() {
            Some(w) if same_kind(&steps[w.start], step) => w.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

fn same_kind(a: &Step, b: &Step) -> bool {
    matches!(
        (a, b),
        (Step::Publish(_), Step::Publish(_)) | (Step::Remove(_), Step::Remove(_))
    )
}

/// The steps of `intent` (in [`waves`]), the manifest, the done-flag, then the removal of the
/// record. On an error, the number of the step that failed (from 1; the lowest of its wave
/// when several failed). `exit_after`: the fault-injection hook's step count; while it is
/// set the steps run one at a time, so the process exits between steps with none in flight.
/// That is the crash the hook stands for: an exit with requests in flight would instead test
/// the server (s3s-fs forgets an upload before it has written the object a completion makes,
/// so a completion cut off mid-request loses the object; S3 and HDFS finish what they were
/// asked).
fn carry_out(
    output: &dyn OutputStore,
    intent: &Intent,
    exit_after: Option<u32>,
) -> Result<StepCounts, (usize, StorageError)> {
    let mut counts = StepCounts::default();
    after_step(exit_after, 0);
    let done_steps = AtomicUsize::new(0);
    let threads = if exit_after.is_some() {
        1
    } else {
        STEP_THREADS
    };
    for wave in waves(&intent.steps) {
        let steps = &intent.steps[wave.clone()];
        let results = parallel::try_each(steps.len(), threads, |i| {
            let done = match &steps[i] {
                Step::Publish(obj) => output.publish(obj),
                // A removal cannot tell whether it removed anything; it counts as done now.
                Step::Remove(rel) => output.remove(rel).map(|()| Published::Now),
            }?;
            after_step(exit_after, done_steps.fetch_add(1, Ordering::SeqCst) + 1);
            Ok(done)
        })
        .map_err(|(i, e)| (wave.start + i + 1, e))?;
        for done in results {
            match done {
                Published::Now => counts.now += 1,
                Published::Already => counts.before += 1,
            }
        }
    }
    let mut step = intent.steps.len() + 1;
    let bytes = intent.manifest.encode().map_err(|e| {
        (
            step,
            StorageError::Backend {
                location: output.url(&intent.manifest_rel),
                message: format!("cannot encode the manifest: {e}"),
            },
        )
    })?;
    output
        .put_atomic(&intent.manifest_rel, &bytes)
        .map_err(|e| (step, e))?;
    after_step(exit_after, step);
    // The very last publication: the done-flag downstream jobs wait for.
    if let Some(flag) = &intent.done_flag {
        step += 1;
        output.put_atomic(flag, b"").map_err(|e| (step, e))?;
        tracing::info!(marker = %output.url(flag), "done-flag written");
        after_step(exit_after, step);
    }
    output
        .remove(&intent_rel(&intent.manifest_rel))
        .map_err(|e| (step, e))?;
    Ok(counts)
}

#[cfg(feature = "fault-injection")]
fn fault_exit_after() -> Result<Option<u32>, CommitError> {
    Ok(crate::fault::commit_exit_after()?)
}

#[cfg(not(feature = "fault-injection"))]
fn fault_exit_after() -> Result<Option<u32>, CommitError> {
    Ok(None)
}

#[cfg(feature = "fault-injection")]
fn after_step(exit_after: Option<u32>, done: usize) {
    crate::fault::after_commit_step(exit_after, done as u32);
}

#[cfg(not(feature = "fault-injection"))]
fn after_step(_: Option<u32>, _: usize) {}

#[cfg(test)]
mod tests;
