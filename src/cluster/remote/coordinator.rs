//! The coordinator: hands tasks to authenticated workers over TCP and collects their outputs.
//! It implements [`Cluster`], so the driver runs the same sequence on threads or on workers.
//!
//! This file is the I/O: the accept loop, the handshake and one thread per worker connection.
//! Every decision (which task, retries, stale reports, sending a worker away) is the
//! [`Scheduler`]'s, in `schedule.rs`.

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::schedule::{Assignment, FailedAttempt, Locality, Next, Scheduler, WorkerTally};
use super::wire::{
    constant_time_eq, hmac_sha256_hex, random_hex, read_msg, write_msg, ToCoordinator, ToWorker,
    WorkerSetup,
};
use crate::cluster::{task_finished, Cluster, ClusterError};
use crate::task::{Progress, Task, TaskOutput};

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

struct Shared {
    config: CoordinatorConfig,
    state: Mutex<Scheduler>,
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
            state: Mutex::new(Scheduler::new(config.locality_wait)),
            config,
            changed: Condvar::new(),
        });
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

    /// Whether a batch is running and still has unfinished tasks.
    pub fn busy(&self) -> bool {
        self.shared.state.lock().busy()
    }

    /// Fails the running batch (e.g. when no worker can be started any more).
    pub fn abort(&self, reason: ClusterError) {
        self.shared.state.lock().abort(reason);
        self.shared.changed.notify_all();
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

    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = self.shared.state.lock();
        s.start_batch(tasks, Instant::now())?;
        self.shared.changed.notify_all();
        loop {
            if let Some(result) = s.finish_batch() {
                return result;
            }
            self.shared.changed.wait(&mut s);
        }
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
    if !shared.state.lock().connect(&worker) {
        write_msg(
            writer,
            &ToWorker::Rejected {
                reason: format!("worker id {worker} is already connected"),
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
                    if let Some(output) = s.done(worker, task, attempt, output) {
                        task_finished(&shared.config.progress, output, false);
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
        if let Some(reply) = reply {
            let stop = matches!(reply, ToWorker::Shutdown);
            write_msg(writer, &reply)?;
            if stop {
                return Ok(());
            }
        }
    }
}
