//! The coordinator: hands tasks to authenticated workers over TCP and collects their outputs.
//! It implements [`Cluster`], so the driver runs the same sequence on threads or on workers.
//!
//! This file is the I/O: the accept loop, the handshake and one thread per worker connection.
//! Every decision (which task, retries, stale reports, sending a worker away) is the
//! [`Scheduler`]'s, in `schedule.rs`. With a task timeout, a watchdog thread asks the
//! scheduler for timed-out workers, closes their connections and queues their ids for
//! whoever owns their processes or containers ([`Coordinator::take_evicted`]). New
//! delegation tokens ([`Coordinator::send_tokens`]) go to every connected worker with its
//! next exchange (a heartbeat or a request), and to a new one with its first request.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, BufWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::schedule::{
    Assignment, Eviction, FailedAttempt, Locality, Next, Scheduler, SlotState, WorkerTally,
};
use super::wire::{
    constant_time_eq, hmac_sha256_hex, random_hex, read_msg, seal, write_msg, ToCoordinator,
    ToWorker, WorkerSetup,
};
use crate::cluster::{task_finished, Cluster, ClusterError, TaskJournal};
use crate::task::{Progress, Task, TaskOutput};

/// How long a worker waits before asking again when nothing is ready for it.
const IDLE_WAIT_MS: u64 = 100;
/// Heartbeats per task timeout, and the longest heartbeat interval.
const HEARTBEATS_PER_TIMEOUT: u32 = 4;
const MAX_HEARTBEAT: Duration = Duration::from_secs(3);

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
    /// How long a running attempt may go without progress, and a worker without a word,
    /// before it is timed out (`filex.task.timeout`); `None`: never.
    pub task_timeout: Option<Duration>,
    /// The first attempt number of every task: `(n - 1) ×`
    /// [`ATTEMPTS_PER_AM_ATTEMPT`](super::schedule::ATTEMPTS_PER_AM_ATTEMPT) in AM attempt
    /// `n`, so that its attempts never share scratch or staging names with an earlier one's.
    pub first_attempt: u32,
    /// Where accepted outputs are recorded, and those of an earlier AM attempt found.
    pub journal: Option<Arc<dyn TaskJournal>>,
    /// How long a connection may take to say hello after it connected.
    pub hello_timeout: Duration,
}

/// How long a new connection has to answer the challenge.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

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
            task_timeout: None,
            first_attempt: 0,
            journal: None,
            hello_timeout: HELLO_TIMEOUT,
        }
    }

    /// The heartbeat interval workers are told: a quarter of the timeout, at most 3 s.
    fn heartbeat(&self) -> Duration {
        self.task_timeout
            .map_or(MAX_HEARTBEAT, |t| {
                (t / HEARTBEATS_PER_TIMEOUT).min(MAX_HEARTBEAT)
            })
            .max(Duration::from_millis(10))
    }
}

struct Shared {
    config: CoordinatorConfig,
    state: Mutex<Scheduler>,
    changed: Condvar,
    /// A handle on each connected worker's socket, by worker id, to close it when the
    /// worker is timed out; its connection thread removes it when it ends.
    sockets: Mutex<HashMap<String, TcpStream>>,
    /// Timed-out workers not yet taken by [`Coordinator::take_evicted`].
    evicted: Mutex<Vec<Eviction>>,
    /// Accepted outputs being written to the journal (under `state`'s lock): a batch ends
    /// only once they are recorded.
    recording: AtomicUsize,
    /// The latest delegation tokens for the workers: their generation and the sealed
    /// `ToWorker::Tokens` message; none until [`Coordinator::send_tokens`].
    tokens: Mutex<Option<(u64, Arc<ToWorker>)>>,
}

/// A running coordinator. Dropping it (or [`Coordinator::shutdown`]) tells workers to stop.
pub struct Coordinator {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Coordinator {
    /// Binds and starts accepting workers.
    pub fn start(mut config: CoordinatorConfig) -> io::Result<Coordinator> {
        let listener = TcpListener::bind(config.bind)?;
        let addr = listener.local_addr()?;
        config.setup.heartbeat_ms = config.heartbeat().as_millis() as u64;
        let shared = Arc::new(Shared {
            state: Mutex::new(
                Scheduler::new(config.locality_wait).with_first_attempt(config.first_attempt),
            ),
            config,
            changed: Condvar::new(),
            sockets: Mutex::new(HashMap::new()),
            evicted: Mutex::new(Vec::new()),
            recording: AtomicUsize::new(0),
            tokens: Mutex::new(None),
        });
        if let Some(timeout) = shared.config.task_timeout {
            let watched = Arc::downgrade(&shared);
            let every = shared.config.heartbeat();
            thread::Builder::new()
                .name("coordinator-watchdog".into())
                .spawn(move || watchdog(watched, timeout, every))?;
        }
        let accept = shared.clone();
        thread::Builder::new()
            .name("coordinator-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept.state.lock().closing() {
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

    /// Tasks placed on one of their preferred hosts, of those that had preferred hosts.
    pub fn locality(&self) -> Locality {
        self.shared.state.lock().locality()
    }

    /// What each worker did so far (by worker id) and the run's first failed attempts.
    pub fn activity(&self) -> (BTreeMap<String, WorkerTally>, Vec<FailedAttempt>) {
        let s = self.shared.state.lock();
        (s.tallies().clone(), s.failed_attempts().to_vec())
    }

    /// How many workers the work in sight can use: `fleet` while more batches may come,
    /// at most the unfinished tasks once the last batch runs.
    pub fn wanted_workers(&self, fleet: usize) -> usize {
        self.shared.state.lock().wanted_workers(fleet)
    }

    /// Whether the worker `worker` ever said hello (and was let in).
    pub fn has_connected(&self, worker: &str) -> bool {
        self.shared.state.lock().tallies().contains_key(worker)
    }

    /// Whether a batch is running and still has unfinished tasks.
    pub fn busy(&self) -> bool {
        self.shared.state.lock().busy()
    }

    /// Workers timed out since the last call: their connections are closed and they get
    /// no more work; the caller stops their processes or gives their containers back.
    pub fn take_evicted(&self) -> Vec<Eviction> {
        std::mem::take(&mut *self.shared.evicted.lock())
    }

    /// Fails the running batch (e.g. when no worker can be started any more).
    pub fn abort(&self, reason: ClusterError) {
        self.shared.state.lock().abort(reason);
        self.shared.changed.notify_all();
    }

    /// Hands `tokens` (credentials holding delegation tokens only) of `generation` to every
    /// worker, sealed under the shared secret: the connected ones get them with their next
    /// exchange, those connecting later with their first request. A generation not newer
    /// than the one held is ignored.
    pub fn send_tokens(&self, generation: u64, tokens: &yarn::Credentials) -> io::Result<()> {
        let mut held = self.shared.tokens.lock();
        if held.as_ref().is_some_and(|(g, _)| *g >= generation) {
            return Ok(());
        }
        let plain = tokens.encode(yarn::credentials::Format::Writable);
        let (nonce, sealed) = seal(&self.shared.config.secret, generation, &plain)?;
        let msg = ToWorker::Tokens {
            generation,
            nonce,
            sealed,
        };
        *held = Some((generation, Arc::new(msg)));
        Ok(())
    }

    /// Tells every worker to stop at its next request.
    pub fn shutdown(&self) {
        self.shared.state.lock().close();
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
        self.shared.state.lock().last_batch();
    }

    fn take_superseded(&self) -> Vec<TaskOutput> {
        self.shared.state.lock().take_superseded()
    }

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        self.run_retries(tasks, 0)
    }
}

impl Coordinator {
    /// Runs `tasks` that already failed `attempts_made` attempts elsewhere (the application
    /// master's own, in uber mode): attempt numbers go on from there, so that no two
    /// attempts of a task share the names of their scratch files or staged output.
    pub fn run_retries(
        &self,
        tasks: Vec<Task>,
        attempts_made: u32,
    ) -> Result<Vec<TaskOutput>, ClusterError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let recovered = match &self.shared.config.journal {
            Some(j) => j.recovered(&tasks),
            None => Vec::new(),
        };
        let mut s = self.shared.state.lock();
        s.start_retries(tasks, attempts_made, Instant::now())?;
        let progress = &self.shared.config.progress;
        for (i, output) in recovered.into_iter().enumerate() {
            if let Some(output) = output {
                if s.recovered(i, output) {
                    Progress::add(&progress.tasks_recovered, 1);
                    if let Some(SlotState::Done(o)) = s.slots().get(i).map(|x| &x.state) {
                        task_finished(progress, o, false);
                    }
                }
            }
        }
        self.shared.changed.notify_all();
        loop {
            if self.shared.recording.load(Ordering::SeqCst) == 0 {
                if let Some(result) = s.finish_batch() {
                    return result;
                }
            }
            self.shared.changed.wait(&mut s);
        }
    }
}

/// Every `every`, times out what the scheduler says is stuck, until the coordinator goes.
fn watchdog(shared: std::sync::Weak<Shared>, timeout: Duration, every: Duration) {
    loop {
        thread::sleep(every);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let evictions = {
            let mut s = shared.state.lock();
            if s.closing() {
                return;
            }
            s.timed_out(Instant::now(), timeout)
        };
        if evictions.is_empty() {
            continue;
        }
        shared.changed.notify_all();
        let sockets = shared.sockets.lock();
        for e in &evictions {
            tracing::warn!(worker = %e.worker, reason = %e.reason, "worker timed out; re-running its task elsewhere");
            if let Some(sock) = sockets.get(&e.worker) {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
        }
        drop(sockets);
        shared.evicted.lock().extend(evictions);
    }
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
    // A connection that does not answer the challenge in time is dropped; once in, reads
    // wait as long as they need (liveness is the task timeout's business).
    let _ = read_half.set_read_timeout(Some(shared.config.hello_timeout));
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    let greeted = handshake(&shared, &mut reader, &mut writer);
    let _ = reader.get_ref().set_read_timeout(None);
    let (worker, host) = match greeted {
        Ok(Some(who)) => who,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "worker handshake failed");
            return;
        }
    };
    tracing::info!(%worker, %host, "worker connected");
    if let Ok(sock) = writer.get_ref().try_clone() {
        shared.sockets.lock().insert(worker.clone(), sock);
    }
    let result = converse(&shared, &worker, &host, &mut reader, &mut writer);
    shared.sockets.lock().remove(&worker);
    let why = match &result {
        Ok(()) => "worker disconnected while running the task".to_string(),
        Err(e) => format!("lost connection to the worker: {e}"),
    };
    shared.state.lock().lost(&worker, why, Instant::now());
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
    if !shared.state.lock().connect(&worker, Instant::now()) {
        write_msg(
            writer,
            &ToWorker::Rejected {
                reason: format!("worker id {worker} is already connected or was timed out"),
            },
        )?;
        return Ok(None);
    }
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
    // The generation of the last tokens this worker was sent.
    let mut tokens_sent = 0;
    loop {
        let Some(msg) = read_msg::<ToCoordinator>(reader)? else {
            return Ok(());
        };
        let newer = match &*shared.tokens.lock() {
            Some((generation, msg)) if *generation > tokens_sent => {
                Some((*generation, msg.clone()))
            }
            _ => None,
        };
        if let Some((generation, tokens)) = newer {
            write_msg(writer, &*tokens)?;
            tokens_sent = generation;
            tracing::info!(%worker, generation, "delegation tokens sent to the worker");
        }
        // An accepted output to record in the journal, once the lock is released.
        let mut to_record: Option<(Task, u32, TaskOutput)> = None;
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
                    s.seen(worker, Instant::now());
                    if let Some(output) = s.done(worker, task, attempt, output) {
                        task_finished(&shared.config.progress, output, false);
                        if shared.config.journal.is_some() {
                            let output = output.clone();
                            if let Some(slot) = s.slots().get(task) {
                                to_record = Some((slot.task.clone(), attempt, output));
                                // The batch waits for the record (see `Cluster::run`).
                                shared.recording.fetch_add(1, Ordering::SeqCst);
                            }
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
                    s.failed(worker, task, attempt, error, Instant::now());
                    shared.changed.notify_all();
                    None
                }
                ToCoordinator::Heartbeat {
                    task,
                    attempt,
                    progress,
                } => {
                    s.heartbeat(worker, task, attempt, progress, Instant::now());
                    None
                }
                ToCoordinator::Next => Some(match s.next(worker, host, Instant::now()) {
                    Next::Assign(Assignment {
                        task,
                        attempt,
                        spec,
                    }) => {
                        shared.config.progress.event_once("first task running");
                        ToWorker::Assign {
                            task,
                            attempt,
                            spec,
                        }
                    }
                    Next::Idle => ToWorker::Idle {
                        wait_ms: IDLE_WAIT_MS,
                    },
                    Next::Shutdown => ToWorker::Shutdown,
                }),
            }
        };
        if let (Some((task, attempt, output)), Some(journal)) = (to_record, &shared.config.journal)
        {
            journal.record(&task, attempt, &output);
            // Under the state lock, so that `Cluster::run` cannot miss the wake-up.
            let _s = shared.state.lock();
            shared.recording.fetch_sub(1, Ordering::SeqCst);
            shared.changed.notify_all();
        }
        if let Some(reply) = reply {
            let stop = matches!(reply, ToWorker::Shutdown);
            write_msg(writer, &reply)?;
            if stop {
                return Ok(());
            }
        }
    }
}
