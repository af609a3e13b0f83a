//! One run of a job: its id, the job, the output store and scratch opened for it, and its
//! progress. `filex run`, `filex run --workers N` and the application master open a run
//! once, plan it, hand it to [`execute()`](super::execute()), and drop it: dropping is the one
//! place a run is cleaned up (scratch removed, whatever is still staged aborted).

use std::sync::Arc;
use std::time::Instant;

use crate::cluster::remote::WorkerSetup;
use crate::commit::CommitLatch;
use crate::job::{Job, JobError};
use crate::plan::{self, Plan};
use crate::storage::lease::Lease;
use crate::storage::location::Location;
use crate::storage::{self, OutputStore, Scratch, StorageError};
use crate::task::{Progress, TaskContext};

/// Lists the shards and splits them into map tasks (what `filex plan` shows).
pub fn make_plan(job: &Job, task_bytes: u64, slots: usize) -> Result<Plan, StorageError> {
    let found = plan::discover(job)?;
    Ok(plan::plan(job, found, task_bytes, slots))
}

/// An open run. See the module documentation.
pub struct Run {
    pub id: String,
    pub job: Arc<Job>,
    pub output: Arc<dyn OutputStore>,
    pub scratch: Arc<dyn Scratch>,
    /// Where the scratch directory lives (`None`: the temp dir); workers open it there too.
    pub scratch_base: Option<Location>,
    pub progress: Arc<Progress>,
    /// How long [`Run::plan`] took, for the manifest's timeline.
    pub plan_ms: u64,
    /// `--full`: recompute every partition, whatever a previous run of the window left.
    pub full: bool,
    /// Held by whoever may discard the run's staging (its drop, the AM's SIGTERM handler):
    /// once the commit is decided, what it publishes is no longer theirs to discard.
    pub latch: Arc<CommitLatch>,
    /// The claim on a local scratch directory while the run lives (see [`Lease`]).
    _lease: Option<Lease>,
}

impl Run {
    /// Opens the job's output and a scratch directory under `scratch_base` for run `id`.
    pub fn open(
        job: Arc<Job>,
        id: String,
        scratch_base: Option<Location>,
        progress: Arc<Progress>,
    ) -> Result<Run, StorageError> {
        let output = job.output.spec.open(&id)?;
        let scratch = storage::scratch(scratch_base.as_ref(), &id)?;
        let lease = match storage::local_scratch_dir(scratch_base.as_ref(), &id) {
            Some(dir) => {
                let lease = Lease::take(&dir, 0o700)
                    .map_err(|e| StorageError::io("create scratch", dir.display(), e))?;
                lease.sweep_siblings();
                Some(lease)
            }
            None => None,
        };
        Ok(Run {
            id,
            job,
            output,
            scratch,
            scratch_base,
            progress,
            plan_ms: 0,
            full: false,
            latch: Arc::default(),
            _lease: lease,
        })
    }

    /// Plans the run for `slots` tasks at once (the `plan` phase), and times it.
    pub fn plan(&mut self, task_bytes: u64, slots: usize) -> Result<Plan, StorageError> {
        let t = Instant::now();
        self.progress.start_phase("plan", 0);
        let plan = make_plan(&self.job, task_bytes, slots)?;
        self.plan_ms = t.elapsed().as_millis() as u64;
        Ok(plan)
    }

    /// The context tasks of this run execute with in this process.
    pub fn task_context(&self, memory_per_task: usize) -> TaskContext {
        TaskContext {
            job: self.job.clone(),
            scratch: self.scratch.clone(),
            output: self.output.clone(),
            memory_per_task,
            progress: self.progress.clone(),
        }
    }

    /// What a worker in another process needs to build the same context.
    pub fn worker_setup(&self, memory_per_task: usize) -> Result<WorkerSetup, JobError> {
        Ok(WorkerSetup {
            job_toml: self.job.to_toml()?,
            base_dir: self.job.base_dir.clone(),
            run_id: self.id.clone(),
            scratch: self.scratch_base.clone(),
            memory_per_task,
            // The coordinator sets it from its task timeout.
            heartbeat_ms: crate::cluster::remote::wire::DEFAULT_HEARTBEAT_MS,
        })
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Err(e) = self.scratch.remove_all() {
            tracing::warn!(scratch = %self.scratch.describe(), error = %e, "could not remove scratch");
        }
        // After a failure this discards what was staged; after success only empty staging
        // directories remain, and they go too. Not after a commit that was decided and did
        // not finish: the next run of the window finishes it from what is staged.
        let output = &self.output;
        let discarded = self.latch.discard_unless_decided(|| {
            if let Err(e) = output.abort() {
                tracing::warn!(error = %e, "could not remove the staging area of the output");
            }
        });
        if !discarded {
            tracing::warn!(
                run = %self.id,
                "the commit did not finish: what it publishes stays staged for the next run \
                 of the window, which finishes it first"
            );
        }
    }
}
