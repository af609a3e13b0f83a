//! The coordinator: hands tasks to authenticated workers over TCP and collects their outputs.
//! It implements [`Cluster`], so the driver runs the same sequence on threads or on workers.
//!
//! Scheduling: a worker asking for work gets a pending task whose preferred hosts include its
//! own host; other tasks go to any worker once they have waited `locality_wait`. A failed or
//! lost attempt is retried on another worker, up to `MAX_ATTEMPTS`; a worker that fails
//! `MAX_WORKER_FAILURES` attempts is told to shut down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, BufReader, BufWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::wire::{
    constant_time_eq, hmac_sha256_hex, random_hex, read_msg, write_msg, ToCoordinator, ToWorker,
    WorkerSetup,
};
use crate::cluster::{task_finished, Cluster, ClusterError};
use crate::task::{Progress, Task, TaskOutput};

/// Attempts of one task before the run fails.
pub const MAX_ATTEMPTS: u32 = 4;
/// Failed attempts after which a worker is sent away.
pub const MAX_WORKER_FAILURES: u32 = 3;
/// How long a worker waits before asking again when nothing is ready for it.
const IDLE_WAIT_MS: u64 = 100;

/// Coordinator settings.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Address to listen on (port 0: any).
    pub bind: SocketAddr,
    /// The shared secret workers prove they hold.
    pub secret: String,
    pub setup: WorkerSetup,
    /// How many workers run tasks at once (what [`Cluster::slots`] reports).
    pub slots: usize,
    /// How long a task with preferred hosts waits for a worker on one of them.
    pub locality_wait: Duration,
    /// The run's progress, updated as tasks finish.
    pub progress: Arc<Progress>,
}

impl CoordinatorConfig {
    /// Listens on `bind` for `slots` workers holding `secret`, with no locality wait.
    pub fn new(
        bind: SocketAddr,
        secret: String,
        setup: WorkerSetup,
        slots: usize,
        progress: Arc<Progress>,
    ) -> CoordinatorConfig {
        CoordinatorConfig {
            bind,
            secret,
            setup,
            slots,
            locality_wait: Duration::ZERO,
            progress,
        }
    }
}

struct Batch {
    tasks: Vec<Task>,
    pending: VecDeque<usize>,
    queued_at: Vec<Instant>,
    attempts: Vec<u32>,
    avoid: Vec<HashSet<String>>,
    results: Vec<Option<TaskOutput>>,
    remaining: usize,
    fatal: Option<ClusterError>,
}

#[derive(Default)]
struct State {
    batch: Option<Batch>,
    /// Connected workers: id → (failures, running attempt).
    workers: HashMap<String, WorkerState>,
    /// Tasks placed on a worker of one of their preferred hosts / with preferences at all.
    local_assignments: u64,
    preferring_assignments: u64,
    closing: bool,
    /// Set by [`Coordinator::abort`]: every batch fails with it.
    aborted: Option<String>,
    /// In the last batch: idle workers beyond the unfinished tasks are sent away.
    draining: bool,
}

struct WorkerState {
    failures: u32,
    running: Option<(usize, u32)>,
}

struct Shared {
    config: CoordinatorConfig,
    state: Mutex<State>,
    changed: Condvar,
}

/// A running coordinator. Dropping it (or [`Coordinator::shutdown`]) tells workers to stop.
pub struct Coordinator {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Coordinator {
    /// Binds and starts accepting workers.
    pub fn start(config: CoordinatorConfig) -> io::Result<Coordinator> {
        let listener = TcpListener::bind(config.bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept = shared.clone();
        thread::Builder::new()
            .name("coordinator-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept.state.lock().closing {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let conn = accept.clone();
                    let _ = thread::Builder::new()
                        .name("coordinator-conn".into())
                        .spawn(move || serve(conn, stream));
                }
            })?;
        Ok(Coordinator { addr, shared })
    }

    /// The address workers connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// (tasks placed on one of their preferred hosts, tasks that had preferred hosts).
    pub fn locality(&self) -> (u64, u64) {
        let s = self.shared.state.lock();
        (s.local_assignments, s.preferring_assignments)
    }

    /// How many workers the work in sight can use: `fleet` while more batches may come,
    /// at most the unfinished tasks once the last batch runs.
    pub fn wanted_workers(&self, fleet: usize) -> usize {
        let s = self.shared.state.lock();
        match (&s.batch, s.draining) {
            (Some(b), true) => fleet.min(b.remaining),
            (None, true) => 0,
            _ => fleet,
        }
    }

    /// Whether a batch is running and still has unfinished tasks.
    pub fn busy(&self) -> bool {
        self.shared
            .state
            .lock()
            .batch
            .as_ref()
            .is_some_and(|b| b.remaining > 0)
    }

    /// Fails the running batch (e.g. when no worker can be started any more).
    pub fn abort(&self, reason: ClusterError) {
        let mut s = self.shared.state.lock();
        s.aborted.get_or_insert_with(|| reason.to_string());
        if let Some(b) = s.batch.as_mut() {
            b.fatal.get_or_insert(reason);
        }
        self.shared.changed.notify_all();
    }

    /// Tells every worker to stop at its next request.
    pub fn shutdown(&self) {
        self.shared.state.lock().closing = true;
        self.shared.changed.notify_all();
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Cluster for Coordinator {
    fn slots(&self) -> usize {
        self.shared.config.slots.max(1)
    }

    fn last_batch(&self) {
        self.shared.state.lock().draining = true;
    }

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        let n = tasks.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut s = self.shared.state.lock();
        if let Some(reason) = &s.aborted {
            return Err(ClusterError::NoWorkers(reason.clone()));
        }
        let now = Instant::now();
        s.batch = Some(Batch {
            pending: (0..n).collect(),
            queued_at: vec![now; n],
            attempts: vec![0; n],
            avoid: vec![HashSet::new(); n],
            results: vec![None; n],
            remaining: n,
            fatal: None,
            tasks,
        });
        self.shared.changed.notify_all();
        loop {
            let done = match s.batch.as_mut() {
                Some(b) if b.fatal.is_some() => true,
                Some(b) => b.remaining == 0,
                None => true,
            };
            if done {
                break;
            }
            self.shared.changed.wait(&mut s);
        }
        let batch = s.batch.take().ok_or(ClusterError::Cancelled)?;
        if let Some(e) = batch.fatal {
            return Err(e);
        }
        batch
            .results
            .into_iter()
            .map(|r| r.ok_or(ClusterError::Cancelled))
            .collect()
    }
}

fn preferred_hosts(task: &Task) -> &[String] {
    match task {
        Task::Map(m) => &m.preferred_hosts,
        Task::Reduce(_) => &[],
    }
}

/// Picks the next task for a worker on `host`, or `None`.
fn pick(
    state: &mut State,
    worker: &str,
    host: &str,
    cfg: &CoordinatorConfig,
) -> Option<(usize, u32, Task)> {
    let single_worker = state.workers.len() <= 1;
    let b = state.batch.as_mut()?;
    let now = Instant::now();
    let allowed = |i: usize| single_worker || !b.avoid[i].contains(worker);
    let local = b
        .pending
        .iter()
        .position(|&i| allowed(i) && preferred_hosts(&b.tasks[i]).iter().any(|h| h == host));
    let chosen = local.or_else(|| {
        b.pending.iter().position(|&i| {
            allowed(i)
                && (preferred_hosts(&b.tasks[i]).is_empty()
                    || now.duration_since(b.queued_at[i]) >= cfg.locality_wait)
        })
    })?;
    let i = b.pending.remove(chosen)?;
    let prefs = preferred_hosts(&b.tasks[i]);
    if !prefs.is_empty() {
        state.preferring_assignments += 1;
        if prefs.iter().any(|h| h == host) {
            state.local_assignments += 1;
        }
    }
    Some((i, b.attempts[i], b.tasks[i].clone()))
}

/// Records a failed or lost attempt; retries it or fails the batch.
fn attempt_failed(
    shared: &Shared,
    state: &mut State,
    worker: &str,
    task: usize,
    attempt: u32,
    error: String,
) {
    if let Some(w) = state.workers.get_mut(worker) {
        w.failures += 1;
        w.running = None;
    }
    let Some(b) = state.batch.as_mut() else {
        return;
    };
    if task >= b.tasks.len() || b.results[task].is_some() || b.attempts[task] != attempt {
        return;
    }
    b.attempts[task] += 1;
    b.avoid[task].insert(worker.to_string());
    tracing::warn!(task = %b.tasks[task].describe(), attempt, worker, %error, "task attempt failed");
    if b.attempts[task] >= MAX_ATTEMPTS {
        b.fatal.get_or_insert(ClusterError::Attempts {
            task: b.tasks[task].describe(),
            attempts: b.attempts[task],
            last_error: error,
        });
    } else {
        b.queued_at[task] = Instant::now();
        b.pending.push_front(task);
    }
    shared.changed.notify_all();
}

fn serve(shared: Arc<Shared>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    let (worker, host) = match handshake(&shared, &mut reader, &mut writer) {
        Ok(Some(who)) => who,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "worker handshake failed");
            return;
        }
    };
    tracing::info!(%worker, %host, "worker connected");
    let result = converse(&shared, &worker, &host, &mut reader, &mut writer);
    let mut s = shared.state.lock();
    let running = s.workers.remove(&worker).and_then(|w| w.running);
    if let Some((task, attempt)) = running {
        let why = match &result {
            Ok(()) => "worker disconnected while running the task".to_string(),
            Err(e) => format!("lost connection to the worker: {e}"),
        };
        attempt_failed(&shared, &mut s, &worker, task, attempt, why);
    }
    shared.changed.notify_all();
    tracing::info!(%worker, "worker gone");
}

fn handshake(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    writer: &mut BufWriter<TcpStream>,
) -> io::Result<Option<(String, String)>> {
    let nonce = random_hex(16)?;
    write_msg(
        writer,
        &ToWorker::Challenge {
            nonce: nonce.clone(),
        },
    )?;
    let Some(ToCoordinator::Hello {
        worker,
        host,
        proof,
    }) = read_msg(reader)?
    else {
        return Ok(None);
    };
    let expected = hmac_sha256_hex(shared.config.secret.as_bytes(), nonce.as_bytes());
    if !constant_time_eq(&proof, &expected) {
        tracing::warn!(%worker, "worker failed authentication");
        write_msg(
            writer,
            &ToWorker::Rejected {
                reason: "authentication failed".into(),
            },
        )?;
        return Ok(None);
    }
    let mut s = shared.state.lock();
    if s.workers.contains_key(&worker) {
        drop(s);
        write_msg(
            writer,
            &ToWorker::Rejected {
                reason: format!("worker id {worker} is already connected"),
            },
        )?;
        return Ok(None);
    }
    s.workers.insert(
        worker.clone(),
        WorkerState {
            failures: 0,
            running: None,
        },
    );
    drop(s);
    write_msg(
        writer,
        &ToWorker::Welcome {
            setup: shared.config.setup.clone(),
        },
    )?;
    Ok(Some((worker, host)))
}

fn converse(
    shared: &Shared,
    worker: &str,
    host: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut BufWriter<TcpStream>,
) -> io::Result<()> {
    loop {
        let Some(msg) = read_msg::<ToCoordinator>(reader)? else {
            return Ok(());
        };
        let reply = {
            let mut s = shared.state.lock();
            match msg {
                ToCoordinator::Hello { .. } => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "a second hello"))
                }
                ToCoordinator::Done {
                    task,
                    attempt,
                    output,
                } => {
                    if let Some(w) = s.workers.get_mut(worker) {
                        w.running = None;
                    }
                    if let Some(b) = s.batch.as_mut() {
                        if task < b.results.len()
                            && b.results[task].is_none()
                            && b.attempts[task] == attempt
                        {
                            task_finished(&shared.config.progress, &output, false);
                            b.results[task] = Some(output);
                            b.remaining -= 1;
                        }
                    }
                    shared.changed.notify_all();
                    None
                }
                ToCoordinator::Failed {
                    task,
                    attempt,
                    error,
                } => {
                    attempt_failed(shared, &mut s, worker, task, attempt, error);
                    None
                }
                ToCoordinator::Next => {
                    let failures = s.workers.get(worker).map_or(0, |w| w.failures);
                    if s.closing || failures >= MAX_WORKER_FAILURES {
                        Some(ToWorker::Shutdown)
                    } else {
                        match pick(&mut s, worker, host, &shared.config) {
                            Some((task, attempt, spec)) => {
                                if let Some(w) = s.workers.get_mut(worker) {
                                    w.running = Some((task, attempt));
                                }
                                shared.config.progress.event_once("first task running");
                                Some(ToWorker::Assign {
                                    task,
                                    attempt,
                                    spec,
                                })
                            }
                            None => {
                                let unfinished = s.batch.as_ref().map_or(0, |b| b.remaining);
                                let busy =
                                    s.workers.values().filter(|w| w.running.is_some()).count();
                                if s.draining && busy >= unfinished {
                                    // Nothing left for this worker: give its container back.
                                    tracing::info!(%worker, "releasing an idle worker");
                                    Some(ToWorker::Shutdown)
                                } else {
                                    Some(ToWorker::Idle {
                                        wait_ms: IDLE_WAIT_MS,
                                    })
                                }
                            }
                        }
                    }
                }
            }
        };
        if let Some(reply) = reply {
            let stop = matches!(reply, ToWorker::Shutdown);
            write_msg(writer, &reply)?;
            if stop {
                return Ok(());
            }
        }
    }
}
