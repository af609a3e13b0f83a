//! Uber mode (MapReduce's name for running a small job inside its application master): the
//! tasks run on threads of this process ([`LocalCluster`], with the sorted runs held in
//! memory while they fit) and no worker container is asked for. An attempt that fails here
//! is retried by the coordinator in worker containers, which are asked for only then; the
//! rest of the run stays on them (the AM has shown it is no place for this job). Before the
//! workers take over, the runs held in memory are written to the scratch directory they read.
//!
//! Not here: deciding that a job is small enough (the AM does, from the plan), sizing the
//! AM's container (`filex submit`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::local::{Attempted, LocalCluster};
use super::remote::schedule::FailedAttempt;
use super::remote::Coordinator;
use super::{Cluster, ClusterError};
use crate::storage::held::HeldScratch;
use crate::storage::Scratch;
use crate::task::{Task, TaskOutput};

/// What the status page calls the application master, as the worker of an attempt.
pub const AM_WORKER: &str = "application master (uber)";

/// Tasks on this process's threads, retried on workers. See the module documentation.
pub struct UberCluster {
    local: LocalCluster,
    /// The scratch `local`'s tasks write to (the run's), whose held runs are persisted
    /// before workers take over.
    held: Arc<HeldScratch>,
    workers: Arc<Coordinator>,
    /// Asks for worker containers (sizes the fleet); called once, at the first failure.
    start_workers: Box<dyn Fn() + Send + Sync>,
    /// Set at the first failure: every later batch runs on workers.
    on_workers: AtomicBool,
    /// The attempts that failed here, in order, for the status page.
    failed: Mutex<Vec<FailedAttempt>>,
}

impl UberCluster {
    /// Runs tasks on `local` (writing to `held`); what fails goes to `workers`, after
    /// `start_workers` asked for their containers.
    pub fn new(
        local: LocalCluster,
        held: Arc<HeldScratch>,
        workers: Arc<Coordinator>,
        start_workers: Box<dyn Fn() + Send + Sync>,
    ) -> UberCluster {
        UberCluster {
            local,
            held,
            workers,
            start_workers,
            on_workers: AtomicBool::new(false),
            failed: Mutex::new(Vec::new()),
        }
    }

    /// Whether the run moved to worker containers after a failure here.
    pub fn on_workers(&self) -> bool {
        self.on_workers.load(Ordering::Relaxed)
    }

    /// The attempts that failed in this process.
    pub fn failed_attempts(&self) -> Vec<FailedAttempt> {
        self.failed.lock().clone()
    }

    /// Moves the run to worker containers: the held runs go to scratch, the fleet is asked
    /// for. Idempotent.
    fn move_to_workers(&self) -> Result<(), ClusterError> {
        if self.on_workers.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let persisted = self.held.persist().map_err(|e| {
            ClusterError::NoWorkers(format!(
                "cannot write the runs held in memory to {}: {e}",
                self.held.describe()
            ))
        })?;
        tracing::warn!(
            persisted,
            "a task failed in the application master: the run goes on in worker containers"
        );
        (self.start_workers)();
        Ok(())
    }
}

impl Cluster for UberCluster {
    /// The parallelism the run was planned for on workers, not this process's threads: the
    /// gzip members, so the output bytes, follow it, and they must not depend on where the
    /// tasks ran.
    fn slots(&self) -> usize {
        self.workers.slots()
    }

    fn last_batch(&self) {
        self.workers.last_batch();
    }

    fn take_superseded(&self) -> Vec<TaskOutput> {
        self.workers.take_superseded()
    }

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        if self.on_workers() {
            return self.workers.run(tasks);
        }
        let Attempted { mut results, .. } = self.local.attempt_each(&tasks, 0, true);
        let failed: Vec<usize> = (0..tasks.len())
            .filter(|&i| !matches!(results[i], Some(Ok(_))))
            .collect();
        if failed.is_empty() {
            return results
                .into_iter()
                .map(|r| r.unwrap_or(Err(ClusterError::Cancelled)))
                .collect();
        }
        {
            let mut log = self.failed.lock();
            for &i in &failed {
                let reason = match &results[i] {
                    Some(Err(e)) => crate::errors::chain(e),
                    _ => "not run".to_string(),
                };
                tracing::warn!(task = %tasks[i].describe(), %reason, "task attempt failed in the application master");
                log.push(FailedAttempt {
                    task: tasks[i].describe(),
                    attempt: 0,
                    worker: AM_WORKER.to_string(),
                    reason,
                });
            }
        }
        self.move_to_workers()?;
        let retried = self
            .workers
            .run_retries(failed.iter().map(|&i| tasks[i].clone()).collect(), 1)?;
        for (i, output) in failed.into_iter().zip(retried) {
            results[i] = Some(Ok(output));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ClusterError::Cancelled)))
            .collect()
    }
}
