//! The worker fleet: the AM's heartbeat loop with the ResourceManager. It keeps as many
//! worker containers as the data deserves (`desired`, set by the AM from the plan), asks for
//! them on the hosts holding the input, starts the `filex worker` command in each allocated
//! container, explains containers that end badly, and lets the fleet drain when the work is
//! done. The decisions are [`FleetState`]'s (`fleet_state.rs`); this loop does the RPCs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use yarn::{AmRmClient, Container, ContainerId, ContainerRequest, NmClient, Resource};

use super::fleet_state::{Action, Ended, FleetState};
use super::launch::worker_context;
use super::spec::StagedFile;
use super::status::StatusBoard;
use crate::cluster::remote::Coordinator;
use crate::cluster::ClusterError;

/// Heartbeat interval while containers are wanted, and when idle.
const FAST_BEAT: Duration = Duration::from_millis(250);
const SLOW_BEAT: Duration = Duration::from_millis(1000);
/// Lines about workers kept in the diagnostics.
const MAX_DIAGNOSTICS: usize = 50;
/// Priority of worker requests.
const WORKER_PRIORITY: i32 = 1;

/// What the fleet needs to launch workers.
pub struct FleetConfig {
    pub amrm: Arc<AmRmClient>,
    pub nm: Arc<NmClient>,
    pub runtime: Arc<tokio::runtime::Runtime>,
    pub capability: Resource,
    pub files: Vec<StagedFile>,
    /// Credentials for workers (the secret, no AMRMToken), as new containers get them (an
    /// AM that refreshes delegation tokens replaces them).
    pub credentials: Arc<Mutex<Vec<u8>>>,
    /// `host:port` workers connect to.
    pub coordinator_addr: String,
    pub board: Arc<StatusBoard>,
    /// Told to fail the run when workers keep dying and the fleet gives up.
    pub coordinator: Arc<Coordinator>,
    /// How long a started worker may take to say hello to the coordinator before its
    /// container is given back as lost (`filex.task.timeout`; `None`: forever).
    pub hello_timeout: Option<Duration>,
}

/// A running fleet loop.
pub struct Fleet {
    /// Worker containers wanted now; 0 drains the fleet.
    pub desired: Arc<AtomicUsize>,
    /// Hosts to prefer for new containers (those holding pending input), best first.
    pub preferred_hosts: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Fleet {
    pub fn start(cfg: FleetConfig) -> Fleet {
        let desired = Arc::new(AtomicUsize::new(0));
        let preferred_hosts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (desired, preferred, stop) =
                (desired.clone(), preferred_hosts.clone(), stop.clone());
            std::thread::Builder::new()
                .name("am-fleet".into())
                .spawn(move || run(cfg, desired, preferred, stop))
                .ok()
        };
        Fleet {
            desired,
            preferred_hosts,
            stop,
            handle,
        }
    }

    /// Stops the loop (after one last heartbeat) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(
    cfg: FleetConfig,
    desired: Arc<AtomicUsize>,
    preferred: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let rt = cfg.runtime.clone();
    let mut fleet = FleetState::default();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let want = if stopping {
            0
        } else {
            fleet.target(
                cfg.coordinator
                    .wanted_workers(desired.load(Ordering::Relaxed)),
            )
        };
        for e in cfg.coordinator.take_evicted() {
            if let Some(action) = fleet.evicted(&e.worker) {
                tracing::warn!(worker = %e.worker, reason = %e.reason, "releasing a timed-out worker");
                push_diagnostic(&cfg, format!("worker {} timed out: {}", e.worker, e.reason));
                carry_out(&cfg, action);
            }
        }
        if let Some(timeout) = cfg.hello_timeout {
            let coordinator = &cfg.coordinator;
            for action in
                fleet.silent_workers(Instant::now(), timeout, |w| coordinator.has_connected(w))
            {
                carry_out(&cfg, action);
            }
        }
        let hosts = preferred.lock().clone();
        for action in fleet.asks(want, &hosts) {
            carry_out(&cfg, action);
        }
        let progress = {
            let p = &cfg.board.progress;
            let total = crate::task::Progress::get(&p.tasks_total).max(1);
            crate::task::Progress::get(&p.tasks_done) as f32 / total as f32
        };
        match rt.block_on(cfg.amrm.allocate(progress.min(1.0))) {
            Ok(resp) => {
                for c in resp.allocated.into_iter().map(|a| a.container) {
                    match fleet.allocated(c.id, &c.node_id.host, want) {
                        Action::Start(_) if start_worker(&cfg, &c) => {
                            fleet.started(c.id, &c.node_id.host)
                        }
                        // Surplus, or the node would not start it.
                        _ => release(&cfg, c.id),
                    }
                }
                for s in resp.completed {
                    cfg.board.container_ended(
                        &s.container_id.to_string(),
                        s.exit_status,
                        &s.diagnostics,
                    );
                    let ended = Ended {
                        id: s.container_id,
                        exit_status: s.exit_status,
                        diagnostics: &s.diagnostics,
                    };
                    for action in fleet.completed(ended, want, stopping) {
                        carry_out(&cfg, action);
                    }
                }
                cfg.board
                    .workers
                    .store(fleet.workers() as u64, Ordering::Relaxed);
                if resp.shutdown_requested {
                    tracing::warn!("the ResourceManager asked the AM to shut down");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "allocate failed");
            }
        }
        if stopping {
            break;
        }
        std::thread::sleep(if fleet.filling(want) {
            FAST_BEAT
        } else {
            SLOW_BEAT
        });
    }
}

/// Does what the fleet state decided about asks and ended containers.
fn carry_out(cfg: &FleetConfig, action: Action) {
    match action {
        Action::Ask { nodes } => {
            let req = ContainerRequest {
                capability: cfg.capability,
                nodes,
                racks: vec![],
                priority: WORKER_PRIORITY,
                allocation_request_id: 0,
                relax_locality: true,
            };
            cfg.runtime.block_on(cfg.amrm.add_container_request(req));
        }
        Action::Release(id) => release(cfg, id),
        // Only an allocation starts a worker; the loop does, holding the container.
        Action::Start(_) => {}
        Action::Blacklist { host, failures } => {
            // Like MapReduce's node blacklisting: stop placing workers there.
            tracing::warn!(%host, "avoiding a node where workers keep failing");
            cfg.runtime
                .block_on(cfg.amrm.update_blacklist(std::slice::from_ref(&host), &[]));
            cfg.board.diagnostics.lock().push(format!(
                "avoiding node {host} after {failures} failed workers"
            ));
        }
        Action::WorkerFailed { line } => {
            tracing::warn!("{line}");
            push_diagnostic(cfg, line);
        }
        Action::GiveUp { reason } => cfg.coordinator.abort(ClusterError::NoWorkers(reason)),
    }
}

/// Adds a line to the diagnostics, up to [`MAX_DIAGNOSTICS`].
fn push_diagnostic(cfg: &FleetConfig, line: String) {
    let mut diags = cfg.board.diagnostics.lock();
    if diags.len() < MAX_DIAGNOSTICS {
        diags.push(line);
    }
}

fn release(cfg: &FleetConfig, id: ContainerId) {
    cfg.runtime
        .block_on(cfg.amrm.release_assigned_container(id));
}

/// Starts the worker command in `c`; `false` (with the reason in the diagnostics) if the
/// node refused it.
fn start_worker(cfg: &FleetConfig, c: &Container) -> bool {
    let rt = &cfg.runtime;
    let Some(token) = rt.block_on(cfg.amrm.nm_token(&c.node_id)) else {
        tracing::warn!(container = %c.id, node = %c.node_id, "no NMToken for the node; releasing");
        return false;
    };
    let launch = worker_context(
        &cfg.files,
        cfg.credentials.lock().clone(),
        &cfg.coordinator_addr,
        &c.id.to_string(),
        &c.node_id.host,
    );
    let why = match rt.block_on(cfg.nm.start_container(c, &token, &launch)) {
        Ok(r) if r.failed.is_empty() => {
            tracing::info!(container = %c.id, node = %c.node_id, "worker container started");
            cfg.board.container_started(
                &c.id.to_string(),
                &c.node_id.to_string(),
                &c.node_http_address,
            );
            cfg.board.mark_once("first worker started");
            return true;
        }
        Ok(r) => {
            let why: Vec<String> = r.failed.iter().map(|f| f.message.clone()).collect();
            tracing::warn!(container = %c.id, "container failed to start: {}", why.join("; "));
            format!("{} failed to start: {}", c.id, why.join("; "))
        }
        Err(e) => {
            tracing::warn!(container = %c.id, error = %e, "cannot start container");
            format!("{} could not be started: {e}", c.id)
        }
    };
    cfg.board.diagnostics.lock().push(why);
    false
}
