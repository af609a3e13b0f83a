//! Progress of a run, shared between the tasks (which add to it) and whoever shows it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by tasks as they go; cheap to bump (relaxed atomics, per block not per
/// line).
#[derive(Debug, Default)]
pub struct Progress {
    pub input_bytes: AtomicU64,
    pub lines: AtomicU64,
    pub output_bytes: AtomicU64,
    pub tasks_done: AtomicU64,
    pub tasks_total: AtomicU64,
    /// What the run is doing now (`plan`, `map`, `reduce`, `commit`).
    pub phase: parking_lot::Mutex<&'static str>,
}

impl Progress {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    /// Enters a new phase of `tasks` tasks.
    pub fn start_phase(&self, phase: &'static str, tasks: u64) {
        *self.phase.lock() = phase;
        self.tasks_done.store(0, Ordering::Relaxed);
        self.tasks_total.store(tasks, Ordering::Relaxed);
    }
}
