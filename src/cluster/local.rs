//! The embedded cluster: a fixed number of worker threads in this process pulling tasks from
//! a shared queue. The first failure stops the queue; running tasks finish their current
//! work and their results are dropped. [`LocalCluster::attempt_each`] runs a batch without
//! stopping, for a cluster that retries elsewhere what failed here (uber mode).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{run_attempt, task_finished, Cluster, ClusterError};
use crate::task::{Task, TaskContext, TaskOutput};

/// Runs tasks on `threads` threads of this process.
pub struct LocalCluster {
    pub ctx: TaskContext,
    pub threads: usize,
}

/// What [`LocalCluster::attempt_each`] did with each task of a batch.
pub struct Attempted {
    /// Per task, in order: its output or why it failed; `None` for one never started (a
    /// failure stopped the queue).
    pub results: Vec<Option<Result<TaskOutput, ClusterError>>>,
    /// The task that failed first.
    pub first_failure: Option<usize>,
}

impl LocalCluster {
    /// Runs attempt `attempt` of every task on the threads. A failure stops the queue unless
    /// `keep_going`, in which case every task is attempted once.
    pub fn attempt_each(&self, tasks: &[Task], attempt: u32, keep_going: bool) -> Attempted {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<TaskOutput, ClusterError>>>> =
            Mutex::new((0..tasks.len()).map(|_| None).collect());
        let first_failure: Mutex<Option<usize>> = Mutex::new(None);
        let workers = self.slots().min(tasks.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) && !keep_going {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(i) else {
                        return;
                    };
                    let span = tracing::debug_span!("task", task = %task.describe());
                    let _enter = span.enter();
                    let outcome =
                        catch_unwind(AssertUnwindSafe(|| run_attempt(task, &self.ctx, attempt)));
                    let error = match outcome {
                        Ok(Ok(out)) => {
                            task_finished(&self.ctx.progress, &out, true);
                            results.lock()[i] = Some(Ok(out));
                            continue;
                        }
                        Ok(Err(source)) => ClusterError::Task {
                            task: task.describe(),
                            source,
                        },
                        Err(panic) => ClusterError::Panicked {
                            task: task.describe(),
                            message: panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default(),
                        },
                    };
                    failed.store(true, Ordering::Relaxed);
                    first_failure.lock().get_or_insert(i);
                    results.lock()[i] = Some(Err(error));
                });
            }
        });
        Attempted {
            results: results.into_inner(),
            first_failure: first_failure.into_inner(),
        }
    }
}

impl Cluster for LocalCluster {
    fn slots(&self) -> usize {
        self.threads.max(1)
    }

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        let Attempted {
            mut results,
            first_failure,
        } = self.attempt_each(&tasks, 0, false);
        if let Some(Some(Err(e))) = first_failure.map(|i| results[i].take()) {
            return Err(e);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ClusterError::Cancelled)))
            .collect()
    }
}
