//! The embedded cluster: a fixed number of worker threads in this process pulling tasks from
//! a shared queue. The first failure stops the queue; running tasks finish their current
//! work and their results are dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::{task_finished, Cluster, ClusterError};
use crate::task::{Task, TaskContext, TaskOutput};

/// Runs tasks on `threads` threads of this process.
pub struct LocalCluster {
    pub ctx: TaskContext,
    pub threads: usize,
}

impl Cluster for LocalCluster {
    fn slots(&self) -> usize {
        self.threads.max(1)
    }

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<TaskOutput>>> = Mutex::new(vec![None; tasks.len()]);
        let first_error: Mutex<Option<ClusterError>> = Mutex::new(None);
        let workers = self.slots().min(tasks.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(task) = tasks.get(i) else {
                        return;
                    };
                    let span = tracing::debug_span!("task", task = %task.describe());
                    let _enter = span.enter();
                    let outcome = catch_unwind(AssertUnwindSafe(|| task.execute(&self.ctx, 0)));
                    let error = match outcome {
                        Ok(Ok(out)) => {
                            task_finished(&self.ctx.progress, &out, true);
                            results.lock()[i] = Some(out);
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
                    first_error.lock().get_or_insert(error);
                    return;
                });
            }
        });
        if let Some(e) = first_error.into_inner() {
            return Err(e);
        }
        results
            .into_inner()
            .into_iter()
            .map(|r| r.ok_or(ClusterError::Cancelled))
            .collect()
    }
}
