//! The job driver: the one sequence both modes share. A [`Run`] is opened, planned and
//! handed with a cluster to [`execute()`]; this module runs it in this process (`filex run`),
//! on threads or in worker processes. The application master does the same with its
//! containers.

mod duplicates;
pub mod execute;
pub mod previous;
pub mod run;

use std::sync::Arc;

use crate::cluster::local::LocalCluster;
use crate::cluster::process::ProcessCluster;
use crate::cluster::Cluster;
use crate::job::Job;
use crate::storage;
use crate::storage::held::HeldScratch;
use crate::task::Progress;

pub use execute::{execute, DriverError, RunReport};
pub use run::{make_plan, Run};

/// Memory reserved for the process itself, outside the tasks' buffers.
const RESERVED_MEMORY: usize = 32 << 20;

/// Share of the tasks' memory (`--memory` less the reserve) that, when tasks run on threads,
/// holds map tasks' sorted runs in memory for the reduce tasks, instead of compressing them to
/// the scratch directory; the tasks' buffers get the rest. Runs beyond it go to disk.
pub const HELD_RUNS_SHARE: f64 = 0.5;

/// How to run a job here.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub threads: usize,
    /// Memory budget for all buffers of the run.
    pub memory: usize,
    /// Compressed input bytes per map task.
    pub task_bytes: u64,
    /// Run tasks in this many worker processes instead of threads (0: threads).
    pub workers: usize,
    /// With worker processes: how long an attempt may make no progress (or its process
    /// say nothing) before it is re-run elsewhere and the process killed (`None`: never).
    pub task_timeout: Option<std::time::Duration>,
    /// Recompute every partition, even those a previous run of the window left unchanged.
    pub full: bool,
}

/// Runs `job` in this process on `opts.threads` threads (or `opts.workers` processes).
pub fn run_embedded(
    job: Arc<Job>,
    opts: &RunOptions,
    progress: Arc<Progress>,
) -> Result<RunReport, DriverError> {
    let scratch = job.scratch.clone();
    let mut run = Run::open(job, storage::new_run_id(), scratch, progress)?;
    run.full = opts.full;
    let threads = opts.threads.max(1);
    let tasks_memory = opts.memory.saturating_sub(RESERVED_MEMORY).max(8 << 20);
    let cluster: Box<dyn Cluster> = if opts.workers > 0 {
        Box::new(start_workers(&run, opts, tasks_memory / threads)?)
    } else {
        Box::new(threads_cluster(&mut run, tasks_memory, threads).0)
    };
    let plan = run.plan(opts.task_bytes, cluster.slots())?;
    execute(&run, plan, cluster.as_ref())
}

/// The cluster of `threads` threads of this process for `run`, whose tasks share
/// `tasks_memory`: [`HELD_RUNS_SHARE`] of it holds sorted runs in memory (the run's scratch
/// becomes the returned [`HeldScratch`] over the one it had), the rest is the tasks' buffers.
/// `filex run` uses it, and the application master in uber mode.
pub fn threads_cluster(
    run: &mut Run,
    tasks_memory: usize,
    threads: usize,
) -> (LocalCluster, Arc<HeldScratch>) {
    let threads = threads.max(1);
    let held = ((tasks_memory as f64) * HELD_RUNS_SHARE) as usize;
    let scratch = Arc::new(HeldScratch::new(run.scratch.clone(), held));
    run.scratch = scratch.clone();
    let ctx = run.task_context((tasks_memory - held) / threads);
    (LocalCluster { ctx, threads }, scratch)
}

/// Starts `opts.workers` processes of this executable, connected to a local coordinator.
fn start_workers(
    run: &Run,
    opts: &RunOptions,
    memory_per_task: usize,
) -> Result<ProcessCluster, DriverError> {
    let setup = run.worker_setup(memory_per_task)?;
    let exe = std::env::current_exe().map_err(DriverError::Workers)?;
    let secret_dir = std::env::temp_dir().join(format!("filex-{}-secret", run.id));
    let object = run.job.output.spec.object_credentials()?;
    ProcessCluster::start(
        &exe,
        opts.workers,
        setup,
        run.progress.clone(),
        secret_dir,
        object.as_ref(),
        opts.task_timeout,
    )
    .map_err(DriverError::Workers)
}
