//! Worker processes on this machine: `filex run --workers N` starts a coordinator and N
//! `filex worker` processes that connect to it over 127.0.0.1. A task that crashes its
//! process is retried in another one, and a worker that dies while work remains is replaced
//! (up to a budget) — the same machinery the YARN application master uses with containers.
//! A worker the coordinator timed out (stopped, or stuck in its task) is killed here, and
//! replaced like one that died.
//! Each worker gets the coordinator's secret and the output's object-store credentials in a
//! credentials file (mode 600, [`super::handoff`]), never in argv or its environment.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::handoff;
use super::remote::wire::random_hex;
use super::remote::{Coordinator, CoordinatorConfig, WorkerSetup};
use super::{Cluster, ClusterError};
use crate::storage::lease::Lease;
use crate::storage::object::Credentials;
use crate::task::{Progress, Task, TaskOutput};

/// Replacement workers allowed per worker slot over a run.
const RESPAWNS_PER_SLOT: usize = 2;
const MONITOR_EVERY: Duration = Duration::from_millis(200);
/// Environment variables a worker does not inherit: its credentials come in its file.
const WITHHELD_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A coordinator and its worker processes.
pub struct ProcessCluster {
    coordinator: Arc<Coordinator>,
    /// Worker processes by worker id (`w3`).
    children: Arc<Mutex<Vec<(String, Child)>>>,
    stop: Arc<AtomicBool>,
    monitor: Option<JoinHandle<()>>,
    /// The folder of the workers' credentials file, claimed while the cluster lives.
    secret_dir: Lease,
}

struct Spawner {
    exe: PathBuf,
    addr: SocketAddr,
    credentials_file: PathBuf,
}

impl Spawner {
    fn spawn(&self, id: usize) -> io::Result<(String, Child)> {
        let name = format!("w{id}");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .arg("--connect")
            .arg(self.addr.to_string())
            .arg("--credentials-file")
            .arg(&self.credentials_file)
            .arg("--id")
            .arg(&name)
            .stdin(Stdio::null());
        for var in WITHHELD_ENV {
            cmd.env_remove(var);
        }
        Ok((name, cmd.spawn()?))
    }
}

impl ProcessCluster {
    /// Starts the coordinator and `workers` processes of `exe` (the filex binary), counting
    /// finished tasks in `progress`; `object` are the credentials of an object-store output,
    /// handed to the workers with the secret in a file under `secret_dir`.
    pub fn start(
        exe: &Path,
        workers: usize,
        setup: WorkerSetup,
        progress: Arc<Progress>,
        secret_dir: PathBuf,
        object: Option<&Credentials>,
        task_timeout: Option<Duration>,
    ) -> io::Result<Self> {
        let workers = workers.max(1);
        let secret = random_hex(32)?;
        let secret_dir = Lease::take(&secret_dir, 0o700)?;
        let credentials_file = secret_dir.dir().join("worker.credentials");
        handoff::write_file(&credentials_file, &handoff::credentials(&secret, object))
            .map_err(io::Error::other)?;
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = CoordinatorConfig {
            task_timeout,
            ..CoordinatorConfig::new(bind, secret, setup, workers, progress)
        };
        let coordinator = Arc::new(Coordinator::start(config)?);
        let spawner = Spawner {
            exe: exe.to_path_buf(),
            addr: coordinator.addr(),
            credentials_file,
        };
        let mut children = Vec::with_capacity(workers);
        for id in 0..workers {
            children.push(spawner.spawn(id)?);
        }
        let children = Arc::new(Mutex::new(children));
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = {
            let (children, stop, coordinator) =
                (children.clone(), stop.clone(), coordinator.clone());
            std::thread::spawn(move || {
                let mut next_id = workers;
                let mut budget = workers * RESPAWNS_PER_SLOT;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(MONITOR_EVERY);
                    let mut kids = children.lock();
                    for e in coordinator.take_evicted() {
                        if let Some((_, c)) = kids.iter_mut().find(|(id, _)| *id == e.worker) {
                            tracing::warn!(worker = %e.worker, reason = %e.reason, "killing a timed-out worker process");
                            let _ = c.kill();
                            let _ = c.wait();
                        }
                    }
                    let mut alive = 0;
                    let mut exited = 0;
                    for (_, c) in kids.iter_mut() {
                        match c.try_wait() {
                            Ok(None) => alive += 1,
                            Ok(Some(status)) if !status.success() => exited += 1,
                            _ => {}
                        }
                    }
                    kids.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
                    if exited == 0 || !coordinator.busy() {
                        continue;
                    }
                    for _ in 0..exited.min(workers.saturating_sub(alive)) {
                        if budget == 0 {
                            break;
                        }
                        budget -= 1;
                        tracing::warn!("a worker process died; starting worker w{next_id}");
                        match spawner.spawn(next_id) {
                            Ok(c) => kids.push(c),
                            Err(e) => tracing::error!(error = %e, "cannot start a worker"),
                        }
                        next_id += 1;
                    }
                    if kids.is_empty() && budget == 0 {
                        coordinator.abort(ClusterError::NoWorkers(
                            "every worker process died and the restart budget is spent".into(),
                        ));
                    }
                }
            })
        };
        Ok(ProcessCluster {
            coordinator,
            children,
            stop,
            monitor: Some(monitor),
            secret_dir,
        })
    }
}

impl Cluster for ProcessCluster {
    fn run(&self, tasks: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
        self.coordinator.run(tasks)
    }
    fn slots(&self) -> usize {
        self.coordinator.slots()
    }
    fn take_superseded(&self) -> Vec<TaskOutput> {
        self.coordinator.take_superseded()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(m) = self.monitor.take() {
            let _ = m.join();
        }
        self.coordinator.shutdown();
        let mut kids = self.children.lock();
        for (_, c) in kids.iter_mut() {
            // Workers leave at their next request; give them a moment, then make sure.
            for _ in 0..50 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(self.secret_dir.dir());
    }
}
