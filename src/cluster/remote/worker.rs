//! The worker loop: connect to the coordinator, prove the shared secret, build the same task
//! context as the coordinator from the setup it sends, then pull and run tasks until told to
//! stop. The task code is the one the embedded mode runs, on a thread of its own, while this
//! loop sends the coordinator a heartbeat with the process's work count every
//! `heartbeat_ms` (a stopped process sends none; a stuck task's count stops moving).
//! Messages are read on a thread of their own, which installs new delegation tokens
//! (`Tokens`, from an AM that refreshes them) as they come, also in the middle of a task.

use std::io::{self, BufReader, BufWriter};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::wire::{
    hmac_sha256_hex, open, read_msg, write_msg, ToCoordinator, ToWorker, WorkerSetup,
};
use crate::job::{Job, JobError};
use crate::storage::{self, StorageError};
use crate::task::{Progress, TaskContext};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Who this worker is and where its coordinator listens.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// `host:port` of the coordinator.
    pub coordinator: String,
    pub secret: String,
    pub worker_id: String,
    /// The host this worker runs on (for locality).
    pub host: String,
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot reach the coordinator at {addr}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("coordinator {addr}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("the coordinator rejected this worker: {0}")]
    Rejected(String),
    #[error("unexpected message from the coordinator: {0}")]
    Protocol(String),
    #[error("job sent by the coordinator: {0}")]
    Job(#[from] JobError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[cfg(feature = "fault-injection")]
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
}

/// Connects to `host:port`, trying every address the name resolves to.
fn connect(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Builds the task context described by `setup`.
pub fn context_from_setup(setup: &WorkerSetup) -> Result<TaskContext, WorkerError> {
    let origin = Path::new("(job from coordinator)");
    let job = Arc::new(Job::from_toml(&setup.job_toml, origin, &setup.base_dir)?);
    let output = job.output.spec.open(&setup.run_id)?;
    let scratch = storage::scratch(setup.scratch.as_ref(), &setup.run_id)?;
    Ok(TaskContext {
        job,
        scratch,
        output,
        memory_per_task: setup.memory_per_task,
        progress: Arc::new(Progress::default()),
    })
}

/// Reads the coordinator's messages on a thread: installs `Tokens` at once
/// ([`install_tokens`]) and passes every other message (and the end of the connection) on.
fn read_on_a_thread(
    mut reader: BufReader<TcpStream>,
    secret: String,
) -> io::Result<std::sync::mpsc::Receiver<io::Result<Option<ToWorker>>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("worker-reader".into())
        .spawn(move || loop {
            let msg = read_msg::<ToWorker>(&mut reader);
            match msg {
                Ok(Some(ToWorker::Tokens {
                    generation,
                    nonce,
                    sealed,
                })) => install_tokens(&secret, generation, &nonce, &sealed),
                other => {
                    let end = !matches!(other, Ok(Some(_)));
                    if tx.send(other).is_err() || end {
                        return;
                    }
                }
            }
        })?;
    Ok(rx)
}

/// Takes new delegation tokens: opens them, writes them into this container's token file
/// ([`crate::cluster::handoff::replace_tokens`]) and drops the HDFS clients, so that the next
/// HDFS call connects anew with them. A failure is logged: the worker goes on with the
/// tokens it has, which work until they expire.
fn install_tokens(secret: &str, generation: u64, nonce: &str, sealed: &str) {
    let installed = open(secret, generation, nonce, sealed)
        .map_err(|e| e.to_string())
        .and_then(|plain| yarn::Credentials::decode(&plain).map_err(|e| e.to_string()))
        .and_then(|tokens| {
            crate::cluster::handoff::replace_tokens(&tokens)
                .map(|()| tokens.token_summary())
                .map_err(|e| crate::errors::chain(&e))
        });
    match installed {
        Ok(summary) => {
            crate::storage::hdfs::client::forget_clients();
            tracing::info!(generation, tokens = %summary, "switched to new delegation tokens");
        }
        Err(e) => {
            tracing::warn!(generation, error = %e, "cannot take the new delegation tokens")
        }
    }
}

/// Runs until the coordinator says `Shutdown` or goes away. Returns the tasks run.
pub fn run_worker(opts: &WorkerOptions) -> Result<u64, WorkerError> {
    let addr = opts.coordinator.clone();
    let io_err = |source| WorkerError::Io {
        addr: addr.clone(),
        source,
    };
    let sock = connect(&addr).map_err(|source| WorkerError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let _ = sock.set_nodelay(true);
    let mut reader = BufReader::new(sock.try_clone().map_err(io_err)?);
    let mut writer = BufWriter::new(sock);
    let nonce = match read_msg::<ToWorker>(&mut reader).map_err(io_err)? {
        Some(ToWorker::Challenge { nonce }) => nonce,
        other => return Err(WorkerError::Protocol(format!("{other:?}"))),
    };
    write_msg(
        &mut writer,
        &ToCoordinator::Hello {
            worker: opts.worker_id.clone(),
            host: opts.host.clone(),
            proof: hmac_sha256_hex(opts.secret.as_bytes(), nonce.as_bytes()),
        },
    )
    .map_err(io_err)?;
    let setup = match read_msg::<ToWorker>(&mut reader).map_err(io_err)? {
        Some(ToWorker::Welcome { setup }) => setup,
        Some(ToWorker::Rejected { reason }) => return Err(WorkerError::Rejected(reason)),
        other => return Err(WorkerError::Protocol(format!("{other:?}"))),
    };
    let ctx = context_from_setup(&setup)?;
    #[cfg(feature = "fault-injection")]
    let faults = crate::fault::Faults::from_env()?;
    let replies = read_on_a_thread(reader, opts.secret.clone()).map_err(io_err)?;
    let mut ran = 0u64;
    loop {
        write_msg(&mut writer, &ToCoordinator::Next).map_err(io_err)?;
        // A closed channel: the reader thread saw the connection end.
        let reply = replies.recv().unwrap_or(Ok(None));
        match reply.map_err(io_err)? {
            None | Some(ToWorker::Shutdown) => return Ok(ran),
            Some(ToWorker::Idle { wait_ms }) => std::thread::sleep(Duration::from_millis(wait_ms)),
            Some(ToWorker::Assign {
                task,
                attempt,
                spec,
            }) => {
                tracing::info!(task = %spec.describe(), attempt, "running");
                let heartbeat = Duration::from_millis(setup.heartbeat_ms.max(1));
                let result = std::thread::scope(|scope| -> Result<_, WorkerError> {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let (ctx, spec) = (&ctx, &spec);
                    #[cfg(feature = "fault-injection")]
                    let faults = &faults;
                    scope.spawn(move || {
                        #[cfg(feature = "fault-injection")]
                        faults.before(spec, attempt);
                        let _ = tx.send(crate::cluster::run_attempt(spec, ctx, attempt));
                    });
                    loop {
                        match rx.recv_timeout(heartbeat) {
                            Ok(result) => return Ok(result),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                                let progress = ctx.progress.work();
                                let beat = ToCoordinator::Heartbeat {
                                    task,
                                    attempt,
                                    progress,
                                };
                                write_msg(&mut writer, &beat).map_err(io_err)?;
                            }
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                                return Err(WorkerError::Protocol(format!(
                                    "{} ended without a result",
                                    spec.describe()
                                )))
                            }
                        }
                    }
                })?;
                let reply = match result {
                    Ok(output) => ToCoordinator::Done {
                        task,
                        attempt,
                        output,
                    },
                    Err(e) => ToCoordinator::Failed {
                        task,
                        attempt,
                        error: crate::errors::chain(&e),
                    },
                };
                ran += 1;
                write_msg(&mut writer, &reply).map_err(io_err)?;
            }
            Some(other) => return Err(WorkerError::Protocol(format!("{other:?}"))),
        }
    }
}
