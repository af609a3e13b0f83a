//! The coordinator's decisions, apart from its sockets: which task a worker gets, what a
//! report does to its task, when a batch has finished or failed. [`Scheduler`] does no I/O
//! and reads no clock (every method that needs the time takes `now`); the connection threads
//! in `coordinator.rs` carry out what it returns — the split MapReduce's AM makes between
//! `RMCommunicator` and `RMContainerAllocator`.
//!
//! Each task of a batch is a [`TaskSlot`]: pending, running (on one worker, in one attempt),
//! done or failed. A report names its task and attempt; one whose attempt is not the slot's
//! current one is stale and ignored, so a late or duplicate answer can never replace the
//! accepted output or fail a retry. The output of a superseded attempt (one that was retried
//! and then finished anyway) is kept aside for [`Scheduler::take_superseded`], so that the
//! driver discards what it staged.
//!
//! Placement: a worker gets a pending task whose preferred hosts include its own host; other
//! tasks go to any worker once they have waited `locality_wait`. A failed or lost attempt is
//! retried, on another worker while there are several, up to [`MAX_ATTEMPTS`]; a worker that
//! failed [`MAX_WORKER_FAILURES`] attempts is told to shut down.
//!
//! Liveness (`filex.task.timeout`, MapReduce's `mapreduce.task.timeout`): a running attempt
//! whose progress has not moved for the timeout, or a worker not heard from for as long, is
//! timed out by [`Scheduler::timed_out`]: the attempt is re-queued as failed and the worker
//! is evicted — told to stop if it ever asks again, its reports stale — and named, so that
//! whoever owns its process or container kills it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::cluster::ClusterError;
use crate::task::{Task, TaskOutput};

/// Attempts of one task before the run fails.
pub const MAX_ATTEMPTS: u32 = 4;
/// Attempt numbers of AM attempt `n` start at `(n - 1) × ATTEMPTS_PER_AM_ATTEMPT`, so that
/// no task attempt of a later application master shares a name (its scratch and staging
/// paths) with one of an earlier, dead one, whose zombie workers may still be writing.
pub const ATTEMPTS_PER_AM_ATTEMPT: u32 = 1000;
/// Failed attempts after which a worker is sent away.
pub const MAX_WORKER_FAILURES: u32 = 3;
/// Failed attempts kept for the status page (the first ones: they name the first cause).
pub const FAILED_ATTEMPTS_KEPT: usize = 50;

/// Where one task of the batch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// Waiting for a worker since the instant given (queued or re-queued).
    Pending { since: Instant },
    /// Attempt `attempt` runs on `worker`, started at `since`; its worker last reported
    /// `progress` (an opaque, growing count of work) and it last moved at `progressed`.
    Running {
        worker: String,
        attempt: u32,
        since: Instant,
        progress: u64,
        progressed: Instant,
    },
    /// The accepted output.
    Done(TaskOutput),
    /// Out of attempts; the batch failed with it.
    Failed,
}

/// One task of the batch, with its attempt count and the workers that failed it.
#[derive(Debug, Clone)]
pub struct TaskSlot {
    pub task: Task,
    /// The current attempt (0 for the first).
    pub attempt: u32,
    /// Workers an earlier attempt failed on; retries go elsewhere while there is a choice.
    avoid: HashSet<String>,
    pub state: SlotState,
}

/// A task handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub task: usize,
    pub attempt: u32,
    pub spec: Task,
}

/// What to tell a worker that asks for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Assign(Assignment),
    /// Nothing ready for it now; ask again later.
    Idle,
    /// Stop: the coordinator closes, the worker failed too often, or the last batch
    /// needs no more workers.
    Shutdown,
}

/// What one worker did over the whole run (every batch), kept after it disconnects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerTally {
    /// Attempts it finished and that were accepted.
    pub tasks_done: u64,
    /// Attempts that failed on it, reported or lost with its connection.
    pub task_failures: u64,
}

/// A task attempt that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// `map task 3`, `reduce task 1 (a.example.com/…)`.
    pub task: String,
    pub attempt: u32,
    pub worker: String,
    pub reason: String,
}

/// A worker timed out by [`Scheduler::timed_out`]: stop or kill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub worker: String,
    /// `map task 3 made no progress for 600 s`, `no word from the worker for 600 s`.
    pub reason: String,
}

/// A connected worker.
#[derive(Debug, Clone, Copy)]
struct WorkerState {
    /// Attempts it failed.
    failures: u32,
    /// When it last sent anything.
    seen: Instant,
}

/// Tasks placed on one of their preferred hosts, of those that had preferred hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locality {
    pub local: u64,
    pub preferring: u64,
}

struct Batch {
    slots: Vec<TaskSlot>,
    /// Pending slots in the order they are offered (retries first).
    queue: VecDeque<usize>,
    remaining: usize,
    fatal: Option<ClusterError>,
}

/// The coordinator's state: connected workers, the running batch, what it has placed.
pub struct Scheduler {
    locality_wait: Duration,
    /// The first attempt number of every task (see [`ATTEMPTS_PER_AM_ATTEMPT`]).
    first_attempt: u32,
    /// Connected workers.
    workers: HashMap<String, WorkerState>,
    /// Workers timed out: never given work again, whatever they send.
    evicted: HashSet<String>,
    batch: Option<Batch>,
    locality: Locality,
    closing: bool,
    /// Every batch fails with it (set by [`Scheduler::abort`]).
    aborted: Option<String>,
    /// In the last batch: idle workers beyond the unfinished tasks are sent away.
    draining: bool,
    /// The next batch to start is the last one ([`Scheduler::last_batch`] between batches):
    /// draining begins when it starts, never in the gap before it, where no task is
    /// unfinished and every worker would be sent away just before the batch arrives.
    drain_next: bool,
    /// Per worker id, over the run.
    tallies: BTreeMap<String, WorkerTally>,
    /// The first [`FAILED_ATTEMPTS_KEPT`] failed attempts of the run.
    failed_attempts: Vec<FailedAttempt>,
    /// Outputs of superseded attempts, not yet taken: their staged bytes are to be discarded.
    superseded: Vec<TaskOutput>,
}

fn preferred_hosts(task: &Task) -> &[String] {
    match task {
        Task::Map(m) => &m.preferred_hosts,
        Task::Reduce(_) => &[],
    }
}

impl Scheduler {
    pub fn new(locality_wait: Duration) -> Scheduler {
        Scheduler {
            locality_wait,
            first_attempt: 0,
            workers: HashMap::new(),
            evicted: HashSet::new(),
            batch: None,
            locality: Locality::default(),
            closing: false,
            aborted: None,
            draining: false,
            drain_next: false,
            tallies: BTreeMap::new(),
            failed_attempts: Vec::new(),
            superseded: Vec::new(),
        }
    }

    /// Numbers every task's attempts from `first` (the AM attempt's share, see
    /// [`ATTEMPTS_PER_AM_ATTEMPT`]); the attempt limit counts from there.
    pub fn with_first_attempt(mut self, first: u32) -> Scheduler {
        self.first_attempt = first;
        self
    }

    /// Registers a worker at `now`; `false` if one with this id is already connected or
    /// was evicted.
    pub fn connect(&mut self, worker: &str, now: Instant) -> bool {
        if self.workers.contains_key(worker) || self.evicted.contains(worker) {
            return false;
        }
        self.workers.insert(
            worker.to_string(),
            WorkerState {
                failures: 0,
                seen: now,
            },
        );
        self.tallies.entry(worker.to_string()).or_default();
        true
    }

    /// Starts a batch of `tasks`, all pending from `now`. Fails once the run was aborted.
    pub fn start_batch(&mut self, tasks: Vec<Task>, now: Instant) -> Result<(), ClusterError> {
        self.start_retries(tasks, 0, now)
    }

    /// Starts a batch of `tasks` that already failed `attempts_made` attempts elsewhere (in
    /// the application master, uber mode): their first attempt here has that number, and
    /// they have [`MAX_ATTEMPTS`] in all.
    pub fn start_retries(
        &mut self,
        tasks: Vec<Task>,
        attempts_made: u32,
        now: Instant,
    ) -> Result<(), ClusterError> {
        if let Some(reason) = &self.aborted {
            return Err(ClusterError::NoWorkers(reason.clone()));
        }
        if std::mem::take(&mut self.drain_next) {
            self.draining = true;
        }
        let slots: Vec<TaskSlot> = tasks
            .into_iter()
            .map(|task| TaskSlot {
                task,
                attempt: self.first_attempt + attempts_made,
                avoid: HashSet::new(),
                state: SlotState::Pending { since: now },
            })
            .collect();
        self.batch = Some(Batch {
            queue: (0..slots.len()).collect(),
            remaining: slots.len(),
            fatal: None,
            slots,
        });
        Ok(())
    }

    /// Marks pending `task` of the running batch done with `output`, accepted by an earlier
    /// application master (its journal): it is never offered to a worker. `false` (and no
    /// change) if the task is not pending.
    pub fn recovered(&mut self, task: usize, output: TaskOutput) -> bool {
        let Some(b) = self.batch.as_mut() else {
            return false;
        };
        match b.slots.get_mut(task) {
            Some(slot) if matches!(slot.state, SlotState::Pending { .. }) => {
                slot.state = SlotState::Done(output);
                b.queue.retain(|&i| i != task);
                b.remaining -= 1;
                true
            }
            _ => false,
        }
    }

    /// The batch's result once every task is done or one failed for good (the batch is then
    /// over); `None` while it runs.
    pub fn finish_batch(&mut self) -> Option<Result<Vec<TaskOutput>, ClusterError>> {
        match &self.batch {
            Some(b) if b.fatal.is_none() && b.remaining > 0 => return None,
            _ => {}
        }
        let Some(batch) = self.batch.take() else {
            return Some(Err(ClusterError::Cancelled));
        };
        if let Some(e) = batch.fatal {
            return Some(Err(e));
        }
        Some(
            batch
                .slots
                .into_iter()
                .map(|slot| match slot.state {
                    SlotState::Done(output) => Ok(output),
                    _ => Err(ClusterError::Cancelled),
                })
                .collect(),
        )
    }

    /// The slots of the running batch.
    pub fn slots(&self) -> &[TaskSlot] {
        self.batch.as_ref().map_or(&[], |b| &b.slots)
    }

    /// Answers a worker on `host` asking for work at `now`.
    pub fn next(&mut self, worker: &str, host: &str, now: Instant) -> Next {
        self.seen(worker, now);
        let failures = self.workers.get(worker).map_or(0, |w| w.failures);
        if self.closing || failures >= MAX_WORKER_FAILURES || self.evicted.contains(worker) {
            return Next::Shutdown;
        }
        if let Some(a) = self.pick(worker, host, now) {
            return Next::Assign(a);
        }
        let unfinished = self.batch.as_ref().map_or(0, |b| b.remaining);
        if self.draining && self.running() >= unfinished {
            // Nothing left for this worker: give its container back.
            tracing::info!(%worker, "releasing an idle worker");
            return Next::Shutdown;
        }
        Next::Idle
    }

    /// Picks a pending task for `worker` on `host` and marks it running there.
    pub fn pick(&mut self, worker: &str, host: &str, now: Instant) -> Option<Assignment> {
        let single_worker = self.workers.len() <= 1;
        let wait = self.locality_wait;
        let b = self.batch.as_mut()?;
        let slots = &b.slots;
        let allowed = |i: usize| single_worker || !slots[i].avoid.contains(worker);
        let waited = |i: usize| match slots[i].state {
            SlotState::Pending { since } => now.saturating_duration_since(since) >= wait,
            _ => false,
        };
        let local = b
            .queue
            .iter()
            .position(|&i| allowed(i) && preferred_hosts(&slots[i].task).iter().any(|h| h == host));
        let chosen = local.or_else(|| {
            b.queue.iter().position(|&i| {
                allowed(i) && (preferred_hosts(&slots[i].task).is_empty() || waited(i))
            })
        })?;
        let i = b.queue.remove(chosen)?;
        let slot = &mut b.slots[i];
        let prefs = preferred_hosts(&slot.task);
        if !prefs.is_empty() {
            self.locality.preferring += 1;
            if prefs.iter().any(|h| h == host) {
                self.locality.local += 1;
            }
        }
        slot.state = SlotState::Running {
            worker: worker.to_string(),
            attempt: slot.attempt,
            since: now,
            progress: 0,
            progressed: now,
        };
        Some(Assignment {
            task: i,
            attempt: slot.attempt,
            spec: slot.task.clone(),
        })
    }

    /// Whether `attempt` of `task` is the one running on `worker`.
    fn current(&self, worker: &str, task: usize, attempt: u32) -> bool {
        self.batch
            .as_ref()
            .and_then(|b| b.slots.get(task))
            .is_some_and(|s| {
                matches!(&s.state, SlotState::Running { worker: w, attempt: a, .. }
                    if w == worker && *a == attempt)
            })
    }

    /// Accepts `output` of the current attempt of `task` and returns it as stored; a stale
    /// report gives `None` and changes nothing, except that the output of an attempt other
    /// than the task's current (or accepted) one is set aside to be discarded.
    pub fn done(
        &mut self,
        worker: &str,
        task: usize,
        attempt: u32,
        output: TaskOutput,
    ) -> Option<&TaskOutput> {
        if !self.current(worker, task, attempt) {
            let superseded = self.slots().get(task).is_some_and(|s| attempt < s.attempt);
            tracing::debug!(
                task,
                attempt,
                worker,
                superseded,
                "ignoring a stale task report"
            );
            if superseded {
                self.superseded.push(output);
            }
            return None;
        }
        self.tallies
            .entry(worker.to_string())
            .or_default()
            .tasks_done += 1;
        let b = self.batch.as_mut()?;
        b.remaining -= 1;
        let slot = &mut b.slots[task];
        slot.state = SlotState::Done(output);
        match &slot.state {
            SlotState::Done(output) => Some(output),
            _ => None,
        }
    }

    /// Records that `worker` failed `attempt` of `task`: the task is retried, or the batch
    /// fails once it is out of attempts. A stale report only counts against the worker.
    pub fn failed(
        &mut self,
        worker: &str,
        task: usize,
        attempt: u32,
        reason: String,
        now: Instant,
    ) {
        self.seen(worker, now);
        if let Some(w) = self.workers.get_mut(worker) {
            w.failures += 1;
        }
        self.attempt_failed(worker, task, attempt, reason, now);
    }

    /// Notes that `worker` sent something at `now`.
    pub fn seen(&mut self, worker: &str, now: Instant) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.seen = w.seen.max(now);
        }
    }

    /// A heartbeat from `worker` running `attempt` of `task`, whose work count is now
    /// `progress`: the attempt's clock restarts if the count moved. Stale ones change
    /// nothing but the worker's last word.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        task: usize,
        attempt: u32,
        progress: u64,
        now: Instant,
    ) {
        self.seen(worker, now);
        let Some(slot) = self.batch.as_mut().and_then(|b| b.slots.get_mut(task)) else {
            return;
        };
        if let SlotState::Running {
            worker: w,
            attempt: a,
            progress: p,
            progressed,
            ..
        } = &mut slot.state
        {
            if w == worker && *a == attempt && *p != progress {
                *p = progress;
                *progressed = now;
            }
        }
    }

    /// Times out, at `now`, every running attempt whose progress has not moved for
    /// `timeout` and every worker not heard from for as long: their attempts are failed
    /// (re-queued, elsewhere while there is a choice) and the workers evicted. Returns the
    /// workers to stop, each once.
    pub fn timed_out(&mut self, now: Instant, timeout: Duration) -> Vec<Eviction> {
        let secs = timeout.as_secs_f64();
        let mut evictions: Vec<Eviction> = Vec::new();
        for (worker, w) in &self.workers {
            if now.saturating_duration_since(w.seen) >= timeout {
                evictions.push(Eviction {
                    worker: worker.clone(),
                    reason: format!("no word from the worker for {secs:.0} s"),
                });
            }
        }
        for slot in self.slots() {
            if let SlotState::Running {
                worker, progressed, ..
            } = &slot.state
            {
                let stuck = now.saturating_duration_since(*progressed) >= timeout;
                if stuck && !evictions.iter().any(|e| &e.worker == worker) {
                    evictions.push(Eviction {
                        worker: worker.clone(),
                        reason: format!(
                            "{} made no progress for {secs:.0} s",
                            slot.task.describe()
                        ),
                    });
                }
            }
        }
        evictions.sort_by(|a, b| a.worker.cmp(&b.worker));
        for e in &evictions {
            tracing::warn!(worker = %e.worker, reason = %e.reason, "timing out a worker");
            self.evicted.insert(e.worker.clone());
            // As if its connection ended: the running attempt fails and is re-queued.
            self.lost(&e.worker, format!("timed out: {}", e.reason), now);
        }
        evictions
    }

    /// Forgets a worker whose connection ended; its running attempt fails with `reason`.
    pub fn lost(&mut self, worker: &str, reason: String, now: Instant) {
        self.workers.remove(worker);
        let running = self.batch.as_ref().and_then(|b| {
            b.slots
                .iter()
                .enumerate()
                .find_map(|(i, s)| match &s.state {
                    SlotState::Running {
                        worker: w, attempt, ..
                    } if w == worker => Some((i, *attempt)),
                    _ => None,
                })
        });
        if let Some((task, attempt)) = running {
            self.attempt_failed(worker, task, attempt, reason, now);
        }
    }

    /// The outputs of superseded attempts reported since the last call: none of them is
    /// used; what they staged is to be discarded.
    pub fn take_superseded(&mut self) -> Vec<TaskOutput> {
        std::mem::take(&mut self.superseded)
    }

    /// Whether `worker` was timed out.
    pub fn is_evicted(&self, worker: &str) -> bool {
        self.evicted.contains(worker)
    }

    fn attempt_failed(
        &mut self,
        worker: &str,
        task: usize,
        attempt: u32,
        error: String,
        now: Instant,
    ) {
        if !self.current(worker, task, attempt) {
            return;
        }
        let Some(b) = self.batch.as_mut() else {
            return;
        };
        let slot = &mut b.slots[task];
        self.tallies
            .entry(worker.to_string())
            .or_default()
            .task_failures += 1;
        if self.failed_attempts.len() < FAILED_ATTEMPTS_KEPT {
            self.failed_attempts.push(FailedAttempt {
                task: slot.task.describe(),
                attempt,
                worker: worker.to_string(),
                reason: error.clone(),
            });
        }
        slot.attempt += 1;
        slot.avoid.insert(worker.to_string());
        tracing::warn!(task = %slot.task.describe(), attempt, worker, %error, "task attempt failed");
        let attempts = slot.attempt - self.first_attempt;
        if attempts >= MAX_ATTEMPTS {
            slot.state = SlotState::Failed;
            b.fatal.get_or_insert(ClusterError::Attempts {
                task: slot.task.describe(),
                attempts,
                last_error: error,
            });
        } else {
            // Re-queued from the failure, so a retry waits for locality afresh.
            slot.state = SlotState::Pending { since: now };
            b.queue.push_front(task);
        }
    }

    /// Fails the running batch and every later one with `reason`.
    pub fn abort(&mut self, reason: ClusterError) {
        self.aborted.get_or_insert_with(|| reason.to_string());
        if let Some(b) = self.batch.as_mut() {
            b.fatal.get_or_insert(reason);
        }
    }

    /// From now on every worker asking for work is told to stop.
    pub fn close(&mut self) {
        self.closing = true;
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// The running batch, or between batches the one about to start, is the last one: idle
    /// workers may go once it needs no more.
    pub fn last_batch(&mut self) {
        if self.batch.is_some() {
            self.draining = true;
        } else {
            self.drain_next = true;
        }
    }

    /// How many workers the work in sight can use: `fleet` while more batches may come,
    /// at most the unfinished tasks once the last batch runs.
    pub fn wanted_workers(&self, fleet: usize) -> usize {
        match (&self.batch, self.draining) {
            (Some(b), true) => fleet.min(b.remaining),
            (None, true) => 0,
            _ => fleet,
        }
    }

    /// Whether a batch is running and still has unfinished tasks.
    pub fn busy(&self) -> bool {
        self.batch.as_ref().is_some_and(|b| b.remaining > 0)
    }

    pub fn locality(&self) -> Locality {
        self.locality
    }

    /// What each worker that ever connected did, by worker id.
    pub fn tallies(&self) -> &BTreeMap<String, WorkerTally> {
        &self.tallies
    }

    /// The run's first failed attempts, in order.
    pub fn failed_attempts(&self) -> &[FailedAttempt] {
        &self.failed_attempts
    }

    /// Attempts running now.
    fn running(&self) -> usize {
        self.slots()
            .iter()
            .filter(|s| matches!(s.state, SlotState::Running { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MapTask;
    use crate::task::MapOutput;

    const WAIT: Duration = Duration::from_secs(3);

    fn map(id: u32, hosts: &[&str]) -> Task {
        Task::Map(MapTask {
            id,
            shards: vec![],
            bytes: 0,
            preferred_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            duplicates: vec![],
        })
    }

    fn output(task: u32) -> TaskOutput {
        TaskOutput::Map(MapOutput {
            task,
            runs: vec![],
            partitions: vec![],
            counters: vec![],
            rejects: None,
            skipped: vec![],
            input_bytes: 0,
            shards: vec![],
        })
    }

    /// A scheduler with `workers` connected and a batch of `tasks` queued at `t0`.
    fn scheduler(workers: &[&str], tasks: Vec<Task>, t0: Instant) -> Scheduler {
        let mut s = Scheduler::new(WAIT);
        for w in workers {
            assert!(s.connect(w, t0));
        }
        s.start_batch(tasks, t0).unwrap();
        s
    }

    fn assigned(next: Next) -> (usize, u32) {
        match next {
            Next::Assign(a) => (a.task, a.attempt),
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    #[test]
    fn locality_wait_before_and_after() {
        let t0 = Instant::now();
        // (worker's host, seconds after queueing, task it gets)
        let cases: [(&str, u64, Option<usize>); 4] = [
            ("elsewhere", 0, None),    // the preferring task waits for its host
            ("elsewhere", 2, None),    // … still within the wait
            ("h1", 0, Some(0)),        // a worker on the host gets it at once
            ("elsewhere", 3, Some(0)), // after the wait, any worker
        ];
        for (host, secs, want) in cases {
            let mut s = scheduler(&["w"], vec![map(0, &["h1"])], t0);
            let got = s.pick("w", host, t0 + Duration::from_secs(secs));
            assert_eq!(got.map(|a| a.task), want, "host {host} after {secs}s");
        }
    }

    #[test]
    fn local_tasks_first_and_locality_counted() {
        let t0 = Instant::now();
        let tasks = vec![map(0, &[]), map(1, &["h2"]), map(2, &["h1"])];
        let mut s = scheduler(&["a", "b"], tasks, t0);
        assert_eq!(assigned(s.next("a", "h1", t0)), (2, 0));
        assert_eq!(assigned(s.next("b", "h3", t0)), (0, 0));
        assert_eq!(s.next("b", "h3", t0), Next::Idle);
        assert_eq!(assigned(s.next("b", "h3", t0 + WAIT)), (1, 0));
        assert_eq!(
            s.locality(),
            Locality {
                local: 1,
                preferring: 2
            }
        );
    }

    #[test]
    fn retries_of_attempts_made_elsewhere_go_on_numbering_and_share_the_limit() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(WAIT);
        for w in ["a", "b", "c"] {
            assert!(s.connect(w, t0));
        }
        s.start_retries(vec![map(0, &[])], 1, t0).unwrap();
        for (w, attempt) in [("a", 1), ("b", 2), ("c", 3)] {
            assert_eq!(assigned(s.next(w, "h", t0)), (0, attempt));
            assert!(s.finish_batch().is_none());
            s.failed(w, 0, attempt, "boom".into(), t0);
        }
        match s.finish_batch() {
            Some(Err(ClusterError::Attempts { attempts, .. })) => {
                assert_eq!(attempts, MAX_ATTEMPTS, "one attempt was made elsewhere")
            }
            other => panic!("expected the batch to fail, got {other:?}"),
        }
    }

    #[test]
    fn retries_up_to_the_attempt_limit_then_the_batch_fails() {
        let t0 = Instant::now();
        let workers = ["a", "b", "c", "d"];
        let mut s = scheduler(&workers, vec![map(0, &[])], t0);
        for (attempt, w) in workers.iter().enumerate() {
            assert!(s.finish_batch().is_none());
            // Each retry goes to a worker that has not failed the task yet.
            for earlier in &workers[..attempt] {
                assert_eq!(s.next(earlier, "h", t0), Next::Idle);
            }
            assert_eq!(assigned(s.next(w, "h", t0)), (0, attempt as u32));
            s.failed(w, 0, attempt as u32, format!("boom {attempt}"), t0);
        }
        assert_eq!(s.slots()[0].state, SlotState::Failed);
        match s.finish_batch() {
            Some(Err(ClusterError::Attempts {
                attempts,
                last_error,
                ..
            })) => {
                assert_eq!(attempts, MAX_ATTEMPTS);
                assert_eq!(last_error, "boom 3");
            }
            other => panic!("expected the attempts error, got {other:?}"),
        }
    }

    #[test]
    fn a_retry_succeeds_and_the_batch_finishes_in_task_order() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a", "b"], vec![map(0, &[]), map(1, &[])], t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 0));
        assert_eq!(assigned(s.next("b", "h", t0)), (1, 0));
        s.failed("a", 0, 0, "disk".into(), t0);
        assert!(s.done("b", 1, 0, output(1)).is_some());
        assert!(s.busy());
        // The retry of task 0 avoids worker a while b can take it.
        assert_eq!(s.next("a", "h", t0), Next::Idle);
        assert_eq!(assigned(s.next("b", "h", t0)), (0, 1));
        assert!(s.done("b", 0, 1, output(0)).is_some());
        assert!(!s.busy());
        let outputs = s.finish_batch().unwrap().unwrap();
        assert_eq!(outputs, vec![output(0), output(1)]);
        // What each worker did, for the status page.
        let tally = |w: &str| s.tallies()[w];
        assert_eq!((tally("a").tasks_done, tally("a").task_failures), (0, 1));
        assert_eq!((tally("b").tasks_done, tally("b").task_failures), (2, 0));
        assert_eq!(
            s.failed_attempts(),
            &[FailedAttempt {
                task: "map task 0".into(),
                attempt: 0,
                worker: "a".into(),
                reason: "disk".into(),
            }]
        );
    }

    #[test]
    fn a_later_am_attempt_numbers_attempts_apart_and_keeps_recovered_tasks() {
        let t0 = Instant::now();
        let first = ATTEMPTS_PER_AM_ATTEMPT;
        let mut s = Scheduler::new(WAIT).with_first_attempt(first);
        assert!(s.connect("a", t0));
        s.start_batch(vec![map(0, &[]), map(1, &[]), map(2, &[])], t0)
            .unwrap();
        // Task 1 was finished by the dead AM: done at once, never offered.
        assert!(s.recovered(1, output(1)));
        assert!(
            !s.recovered(1, output(9)),
            "only a pending task is recovered"
        );
        assert_eq!(assigned(s.next("a", "h", t0)), (0, first));
        assert!(!s.recovered(0, output(9)), "nor a running one");
        // A zombie of the dead AM's attempt 0 is not this attempt.
        assert!(s.done("a", 0, 0, output(70)).is_none());
        // The attempt limit counts from this AM's first attempt (each retry on a fresh
        // worker, so that no worker is sent away for its failures).
        for n in 0..MAX_ATTEMPTS {
            let w = if n == 0 {
                "a".to_string()
            } else {
                format!("w{n}")
            };
            s.failed(&w, 0, first + n, "boom".into(), t0);
            if n + 1 < MAX_ATTEMPTS {
                let next = format!("w{}", n + 1);
                assert!(s.connect(&next, t0));
                assert_eq!(assigned(s.next(&next, "h", t0)), (0, first + n + 1));
            }
        }
        match s.finish_batch() {
            Some(Err(ClusterError::Attempts { attempts, .. })) => {
                assert_eq!(attempts, MAX_ATTEMPTS)
            }
            other => panic!("expected the attempts error, got {other:?}"),
        }
        // Without failures the recovered output comes back in task order.
        let mut s = scheduler(&["a"], vec![map(0, &[]), map(1, &[])], t0);
        assert!(s.recovered(0, output(0)));
        assert_eq!(assigned(s.next("a", "h", t0)), (1, 0));
        assert_eq!(s.next("a", "h", t0), Next::Idle);
        assert!(s.done("a", 1, 0, output(1)).is_some());
        assert_eq!(
            s.finish_batch().unwrap().unwrap(),
            vec![output(0), output(1)]
        );
    }

    #[test]
    fn a_single_worker_may_retry_its_own_failure() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a"], vec![map(0, &[])], t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 0));
        s.failed("a", 0, 0, "flaky".into(), t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 1));
    }

    #[test]
    fn a_failing_worker_is_sent_away() {
        let t0 = Instant::now();
        let tasks = (0..MAX_WORKER_FAILURES).map(|i| map(i, &[])).collect();
        let mut s = scheduler(&["bad", "good"], tasks, t0);
        for i in 0..MAX_WORKER_FAILURES as usize {
            let (task, attempt) = assigned(s.next("bad", "h", t0));
            assert_eq!((task, attempt), (i, 0));
            s.failed("bad", task, attempt, "broken".into(), t0);
        }
        assert_eq!(s.next("bad", "h", t0), Next::Shutdown);
        assert!(matches!(s.next("good", "h", t0), Next::Assign(_)));
    }

    #[test]
    fn a_lost_worker_gives_its_task_back() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a", "b"], vec![map(0, &[])], t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 0));
        s.lost("a", "connection reset".into(), t0);
        assert!(matches!(s.slots()[0].state, SlotState::Pending { .. }));
        assert_eq!(assigned(s.next("b", "h", t0)), (0, 1));
        // The id may connect again once it is gone.
        assert!(s.connect("a", t0));
        assert!(!s.connect("a", t0));
    }

    #[test]
    fn stale_reports_are_ignored() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a", "b"], vec![map(0, &[])], t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 0));
        s.lost("a", "gone".into(), t0);
        assert_eq!(assigned(s.next("b", "h", t0)), (0, 1));
        // (worker, task, attempt): the dead attempt, a wrong worker, a task out of range.
        for (worker, task, attempt) in [("a", 0, 0), ("a", 0, 1), ("b", 0, 0), ("b", 7, 1)] {
            assert!(s.done(worker, task, attempt, output(9)).is_none());
            s.failed(worker, task, attempt, "late".into(), t0);
            assert_eq!(s.slots()[0].attempt, 1, "{worker} {task} {attempt}");
            assert!(matches!(s.slots()[0].state, SlotState::Running { .. }));
        }
        assert!(s.done("b", 0, 1, output(0)).is_some());
        // A duplicate of the accepted report changes nothing either.
        assert!(s.done("b", 0, 1, output(9)).is_none());
        assert_eq!(s.finish_batch().unwrap().unwrap(), vec![output(0)]);
        // Stale reports count neither as done nor as failed attempts.
        assert_eq!(s.tallies()["b"].tasks_done, 1);
        assert_eq!(s.failed_attempts().len(), 1);
    }

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn a_task_without_progress_times_out_and_runs_elsewhere() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = scheduler(&["hung", "ok"], vec![map(0, &[])], t0);
        assert_eq!(assigned(s.next("hung", "h", t0)), (0, 0));
        // (seconds, progress reported by the hung worker, "ok" asks for work, evicted)
        let steps: [(u64, Option<u64>, bool); 5] = [
            (5, Some(100), false),  // moving: the clock restarts at 5 s
            (9, Some(100), false),  // heartbeats without progress…
            (14, Some(100), false), // … 9 s since it moved
            (15, None, true),       // 10 s since it moved: timed out
            (16, None, false),
        ];
        for (secs, progress, evicted) in steps {
            if let Some(p) = progress {
                s.heartbeat("hung", 0, 0, p, at(secs));
            }
            // The other worker keeps asking, so it is never timed out itself.
            if secs < 15 {
                assert_eq!(s.next("ok", "h", at(secs)), Next::Idle);
            }
            let out = s.timed_out(at(secs), TIMEOUT);
            assert_eq!(
                out.iter().map(|e| e.worker.as_str()).collect::<Vec<_>>(),
                if evicted { vec!["hung"] } else { vec![] },
                "at {secs} s"
            );
            if evicted {
                assert_eq!(out[0].reason, "map task 0 made no progress for 10 s");
            }
        }
        // Re-queued as a failed attempt, and the next attempt goes to the other worker.
        assert_eq!(assigned(s.next("ok", "h", at(16))), (0, 1));
        assert_eq!(s.failed_attempts().len(), 1);
        assert!(s.failed_attempts()[0].reason.starts_with("timed out: "));
        // The hung worker is sent away whatever it says, its late output ignored.
        assert!(s.is_evicted("hung"));
        assert_eq!(s.next("hung", "h", at(17)), Next::Shutdown);
        assert!(s.done("hung", 0, 0, output(9)).is_none());
        assert!(!s.connect("hung", at(17)));
        assert!(s.done("ok", 0, 1, output(0)).is_some());
        assert_eq!(s.finish_batch().unwrap().unwrap(), vec![output(0)]);
    }

    #[test]
    fn a_silent_worker_times_out_even_when_idle() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = scheduler(&["quiet", "chatty"], vec![map(0, &[]), map(1, &[])], t0);
        assert_eq!(assigned(s.next("chatty", "h", at(9))), (0, 0));
        s.heartbeat("chatty", 0, 0, 1, at(12));
        // "quiet" never asked since it connected at 0 s.
        let out = s.timed_out(at(12), TIMEOUT);
        assert_eq!(
            out,
            vec![Eviction {
                worker: "quiet".into(),
                reason: "no word from the worker for 10 s".into(),
            }]
        );
        // Each worker is evicted once; the running, progressing attempt is untouched.
        assert!(s.timed_out(at(13), TIMEOUT).is_empty());
        assert!(matches!(s.slots()[0].state, SlotState::Running { .. }));
        assert_eq!(s.failed_attempts().len(), 0);
    }

    #[test]
    fn stale_heartbeats_do_not_keep_an_attempt_alive() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = scheduler(&["a"], vec![map(0, &[])], t0);
        assert_eq!(assigned(s.next("a", "h", t0)), (0, 0));
        // Progress reported for another attempt or task does not count for attempt 0.
        s.heartbeat("a", 0, 1, 50, at(8));
        s.heartbeat("a", 3, 0, 60, at(9));
        let out = s.timed_out(at(10), TIMEOUT);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason, "map task 0 made no progress for 10 s");
    }

    #[test]
    fn a_late_result_of_a_superseded_attempt_is_ignored_and_set_aside() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = scheduler(&["zombie", "b"], vec![map(0, &[]), map(1, &[])], t0);
        assert_eq!(assigned(s.next("zombie", "h", t0)), (0, 0));
        assert_eq!(assigned(s.next("b", "h", t0)), (1, 0));
        s.heartbeat("b", 1, 0, 1, at(9));
        // Attempt 0 of task 0 times out; attempt 1 runs on b.
        assert_eq!(s.timed_out(at(10), TIMEOUT).len(), 1);
        assert!(s.done("b", 1, 0, output(1)).is_some());
        assert_eq!(assigned(s.next("b", "h", at(10))), (0, 1));
        // The zombie finishes before the retry does: its result is not taken…
        assert!(s.done("zombie", 0, 0, output(70)).is_none());
        assert!(matches!(
            s.slots()[0].state,
            SlotState::Running { attempt: 1, .. }
        ));
        // … nor after it, and a duplicate of the accepted report is not set aside.
        assert!(s.done("b", 0, 1, output(0)).is_some());
        assert!(s.done("zombie", 0, 0, output(71)).is_none());
        assert!(s.done("b", 0, 1, output(0)).is_none());
        assert_eq!(s.take_superseded(), vec![output(70), output(71)]);
        assert!(s.take_superseded().is_empty());
        assert_eq!(
            s.finish_batch().unwrap().unwrap(),
            vec![output(0), output(1)]
        );
    }

    #[test]
    fn the_last_batch_releases_idle_workers() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a", "b"], vec![map(0, &[])], t0);
        assert_eq!(s.wanted_workers(5), 5);
        s.last_batch();
        assert_eq!(s.wanted_workers(5), 1);
        assert!(matches!(s.next("a", "h", t0), Next::Assign(_)));
        assert_eq!(s.next("b", "h", t0), Next::Shutdown);
    }

    #[test]
    fn no_worker_is_released_between_the_maps_and_the_last_batch() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a", "b"], vec![map(0, &[])], t0);
        let (task, attempt) = assigned(s.next("a", "h", t0));
        assert!(s.done("a", task, attempt, output(0)).is_some());
        assert!(s.finish_batch().unwrap().is_ok());
        // The driver says the reduces are last before it hands them over.
        s.last_batch();
        assert_eq!(s.wanted_workers(5), 5);
        assert_eq!(s.next("a", "h", t0), Next::Idle);
        assert_eq!(s.next("b", "h", t0), Next::Idle);
        s.start_batch(vec![map(1, &[]), map(2, &[]), map(3, &[])], t0)
            .unwrap();
        assert_eq!(s.wanted_workers(5), 3);
        assert!(matches!(s.next("a", "h", t0), Next::Assign(_)));
        assert!(matches!(s.next("b", "h", t0), Next::Assign(_)));
        assert!(s.finish_batch().is_none());
    }

    #[test]
    fn abort_and_close() {
        let t0 = Instant::now();
        let mut s = scheduler(&["a"], vec![map(0, &[])], t0);
        s.abort(ClusterError::NoWorkers("no containers".into()));
        assert!(matches!(
            s.finish_batch(),
            Some(Err(ClusterError::NoWorkers(_)))
        ));
        assert!(s.start_batch(vec![map(1, &[])], t0).is_err());
        s.close();
        assert_eq!(s.next("a", "h", t0), Next::Shutdown);
    }
}
