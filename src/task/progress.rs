//! Progress of a run, shared between the tasks (which add to it) and whoever shows it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by tasks as they go; cheap to bump (relaxed atomics, per block not per
/// line).
#[derive(Debug, Default)]
pub struct Progress {
    pub input_bytes: AtomicU64,
    pub lines: AtomicU64,
    pub output_bytes: AtomicU64,
    /// Lines merged by reduce tasks so far (bumped per block of lines, not per line).
    pub merged_lines: AtomicU64,
    pub tasks_done: AtomicU64,
    pub tasks_total: AtomicU64,
    /// Tasks of the whole run (every phase) not run because an earlier application master
    /// had finished them (its journal); counted in `tasks_done` too.
    pub tasks_recovered: AtomicU64,
    /// What the run is doing now (`plan`, `map`, `reduce`, `commit`).
    pub phase: parking_lot::Mutex<&'static str>,
    /// Milestones of the run, `(event, ms since the epoch)`, in order.
    pub events: parking_lot::Mutex<Vec<(String, i64)>>,
}

impl Progress {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
    /// A count that grows while any task of this process gets anywhere (bytes read, lines
    /// parsed and merged, bytes written): what a worker's heartbeat reports.
    pub fn work(&self) -> u64 {
        [
            &self.input_bytes,
            &self.lines,
            &self.merged_lines,
            &self.output_bytes,
        ]
        .iter()
        .map(|c| Self::get(c))
        .fold(0u64, u64::wrapping_add)
    }
    /// Records that `event` happened at `at_ms` (default: now).
    pub fn event(&self, event: &str, at_ms: Option<i64>) {
        let at = at_ms.unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
        tracing::debug!(event, "timeline");
        self.events.lock().push((event.to_string(), at));
    }
    /// Records `event` only the first time.
    pub fn event_once(&self, event: &str) {
        if !self.events.lock().iter().any(|(e, _)| e == event) {
            self.event(event, None);
        }
    }
    /// The milestones as `name +S.s` relative to the first one.
    pub fn timeline_text(&self) -> String {
        let events = self.events.lock();
        let t0 = events.first().map_or(0, |(_, t)| *t);
        events
            .iter()
            .map(|(e, t)| format!("{e} +{:.1}s", (t - t0) as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Enters a new phase of `tasks` tasks.
    pub fn start_phase(&self, phase: &'static str, tasks: u64) {
        *self.phase.lock() = phase;
        self.tasks_done.store(0, Ordering::Relaxed);
        self.tasks_total.store(tasks, Ordering::Relaxed);
    }
}
