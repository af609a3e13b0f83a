//! Who runs the tasks. The engine hands a list of [`Task`]s to a [`Cluster`] and gets their
//! outputs back in the same order; this trait is the only place where the embedded mode and
//! the YARN mode differ.

pub mod handoff;
pub mod local;
pub mod process;
pub mod remote;
pub mod uber;

use crate::task::{Progress, Task, TaskContext, TaskError, TaskOutput};

/// Why a cluster could not run a batch of tasks.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{task} failed")]
    Task {
        task: String,
        #[source]
        source: TaskError,
    },
    #[error("{task} panicked: {message}")]
    Panicked { task: String, message: String },
    #[error("{task} failed {attempts} times; last error: {last_error}")]
    Attempts {
        task: String,
        attempts: u32,
        last_error: String,
    },
    #[error("no worker left to run the tasks: {0}")]
    NoWorkers(String),
    #[error("cancelled")]
    Cancelled,
}

/// Runs tasks somewhere.
pub trait Cluster {
    /// Runs every task and returns the outputs in task order. Fails with the first task that
    /// failed (after its retries, where the cluster retries); the other tasks are stopped.
    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError>;
    /// Parallelism: how many tasks run at once.
    fn slots(&self) -> usize;
    /// Says that the next batch is the last one: workers left without work from then on
    /// may be released (YARN containers given back as the work drains).
    fn last_batch(&self) {}
    /// Outputs of task attempts that finished after they were superseded by a retry (never
    /// returned by [`Cluster::run`]), since the last call: the caller discards what they
    /// staged. Only clusters that retry have any.
    fn take_superseded(&self) -> Vec<TaskOutput> {
        Vec::new()
    }
}

/// Where a coordinator keeps the outputs it accepted, so that a later application master
/// (after this one died) keeps them instead of running their tasks again. Implemented by
/// the AM's journal on HDFS (`application::journal`).
pub trait TaskJournal: Send + Sync {
    /// For each task of a batch about to run, the output an earlier application master
    /// accepted for exactly this task, if it is still usable; `None`: run the task.
    fn recovered(&self, tasks: &[Task]) -> Vec<Option<TaskOutput>>;
    /// Records the accepted `output` of `attempt` of `task`. Best effort: an output not
    /// recorded only means that a later application master runs its task again.
    fn record(&self, task: &Task, attempt: u32, output: &TaskOutput);
}

impl std::fmt::Debug for dyn TaskJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskJournal")
    }
}

/// Runs `attempt` of `task` in this process: every cluster runs attempts through here, where
/// the test hooks of `crate::fault` (in builds with them) stall or fail the listed ones.
pub(crate) fn run_attempt(
    task: &Task,
    ctx: &TaskContext,
    attempt: u32,
) -> Result<TaskOutput, TaskError> {
    #[cfg(feature = "fault-injection")]
    if let Some(reason) = crate::fault::injected_failure(task, attempt) {
        return Err(TaskError::Injected { reason });
    }
    task.execute(ctx, attempt)
}

/// Counts one finished task in the run's progress: the one place every cluster counts
/// tasks. A map task run in this process (`ran_here`) has added its input bytes as it read
/// them; one run in another process reports them only now, with its output.
pub(crate) fn task_finished(progress: &Progress, output: &TaskOutput, ran_here: bool) {
    Progress::add(&progress.tasks_done, 1);
    if let (false, TaskOutput::Map(m)) = (ran_here, output) {
        Progress::add(&progress.input_bytes, m.input_bytes);
    }
}
