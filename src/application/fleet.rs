//! The worker fleet: the AM's heartbeat loop with the ResourceManager. It keeps as many
//! worker containers as the data deserves (`desired`, set by the AM from the plan), asks for
//! them on the hosts holding the input (YARN relaxes to rack and any), starts the `filex
//! worker` command in each allocated container, explains containers that end badly, and lets
//! the fleet drain when the work is done.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use yarn::{AmRmClient, ContainerId, ContainerRequest, NmClient, Resource};

use super::launch::worker_context;
use super::spec::StagedFile;
use super::status::StatusBoard;
use crate::cluster::remote::Coordinator;
use crate::cluster::ClusterError;

/// Worker containers that may end badly per wanted worker before the fleet gives up.
const FAILURES_PER_WORKER: usize = 4;
/// … and at least this many.
const MIN_FAILURE_BUDGET: usize = 8;
/// Failed worker containers on one node before no more are placed there.
const NODE_FAILURES_BEFORE_AVOIDING: u32 = 3;

/// Heartbeat interval while containers are wanted, and when idle.
const FAST_BEAT: Duration = Duration::from_millis(250);
const SLOW_BEAT: Duration = Duration::from_millis(1000);
/// Priority of worker requests.
const WORKER_PRIORITY: i32 = 1;

/// What the fleet needs to launch workers.
pub struct FleetConfig {
    pub amrm: Arc<AmRmClient>,
    pub nm: Arc<NmClient>,
    pub runtime: Arc<tokio::runtime::Runtime>,
    pub capability: Resource,
    pub files: Vec<StagedFile>,
    /// Credentials for workers (the secret, no AMRMToken).
    pub credentials: Vec<u8>,
    /// `host:port` workers connect to.
    pub coordinator_addr: String,
    pub board: Arc<StatusBoard>,
    /// Told to fail the run when workers keep dying and the fleet gives up.
    pub coordinator: Arc<Coordinator>,
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

/// Why a container ended, in words (YARN's `ContainerExitStatus` and signal exit codes).
pub fn explain_exit(status: i32) -> &'static str {
    match status {
        0 => "succeeded",
        -100 => "released or aborted by the application master",
        -101 => "the node's disks failed",
        -102 => "preempted by the scheduler",
        -103 => "killed for exceeding its virtual memory limit",
        -104 => "killed for exceeding its physical memory limit",
        -105 => "killed by the application master",
        -106 => "killed by the ResourceManager",
        -107 => "killed because the application finished",
        -108 => "killed by the node (resource pressure)",
        -109 => "killed: the node's disks are full",
        137 => "killed (SIGKILL; often the memory limit or a lost node)",
        143 => "terminated (SIGTERM)",
        1 => "the worker exited with an error (see its stderr)",
        _ => "exited abnormally (see its logs)",
    }
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
    let mut running: HashMap<ContainerId, String> = HashMap::new();
    let mut requested = 0usize;
    let mut next_host = 0usize;
    let mut failures_by_host: HashMap<String, u32> = HashMap::new();
    let mut failed_containers = 0usize;
    let mut seen_hosts: std::collections::BTreeSet<String> = Default::default();
    let mut avoided: Vec<String> = Vec::new();
    let mut gave_up = false;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let want = if stopping || gave_up {
            0
        } else {
            cfg.coordinator
                .wanted_workers(desired.load(Ordering::Relaxed))
        };
        // Ask for what is missing.
        while running.len() + requested < want {
            let hosts = preferred.lock().clone();
            let nodes = if hosts.is_empty() {
                vec![]
            } else {
                let h = hosts[next_host % hosts.len()].clone();
                next_host += 1;
                vec![h]
            };
            let req = ContainerRequest {
                capability: cfg.capability,
                nodes,
                racks: vec![],
                priority: WORKER_PRIORITY,
                allocation_request_id: 0,
                relax_locality: true,
            };
            rt.block_on(cfg.amrm.add_container_request(req));
            requested += 1;
        }
        let progress = {
            let p = &cfg.board.progress;
            let total = crate::task::Progress::get(&p.tasks_total).max(1);
            crate::task::Progress::get(&p.tasks_done) as f32 / total as f32
        };
        match rt.block_on(cfg.amrm.allocate(progress.min(1.0))) {
            Ok(resp) => {
                for a in resp.allocated {
                    // The ask table already took the matched request off.
                    requested = requested.saturating_sub(1);
                    let c = a.container;
                    seen_hosts.insert(c.node_id.host.clone());
                    if running.len() >= want {
                        rt.block_on(cfg.amrm.release_assigned_container(c.id));
                        continue;
                    }
                    let Some(token) = rt.block_on(cfg.amrm.nm_token(&c.node_id)) else {
                        tracing::warn!(container = %c.id, node = %c.node_id, "no NMToken for the node; releasing");
                        rt.block_on(cfg.amrm.release_assigned_container(c.id));
                        continue;
                    };
                    let launch = worker_context(
                        &cfg.files,
                        cfg.credentials.clone(),
                        &cfg.coordinator_addr,
                        &c.id.to_string(),
                        &c.node_id.host,
                    );
                    match rt.block_on(cfg.nm.start_container(&c, &token, &launch)) {
                        Ok(r) if r.failed.is_empty() => {
                            tracing::info!(container = %c.id, node = %c.node_id, "worker container started");
                            cfg.board.mark_once("first worker started");
                            running.insert(c.id, c.node_id.host.clone());
                        }
                        Ok(r) => {
                            let why: Vec<String> =
                                r.failed.iter().map(|f| f.message.clone()).collect();
                            tracing::warn!(container = %c.id, "container failed to start: {}", why.join("; "));
                            cfg.board.diagnostics.lock().push(format!(
                                "{} failed to start: {}",
                                c.id,
                                why.join("; ")
                            ));
                            rt.block_on(cfg.amrm.release_assigned_container(c.id));
                        }
                        Err(e) => {
                            tracing::warn!(container = %c.id, error = %e, "cannot start container");
                            cfg.board
                                .diagnostics
                                .lock()
                                .push(format!("{} could not be started: {e}", c.id));
                            rt.block_on(cfg.amrm.release_assigned_container(c.id));
                        }
                    }
                }
                for s in resp.completed {
                    let host = running.remove(&s.container_id);
                    if s.exit_status != 0 && !stopping && host.is_some() {
                        let host = host.unwrap_or_default();
                        let n = failures_by_host.entry(host.clone()).or_default();
                        *n += 1;
                        // Never avoid the last node(s): leave at least one host to run on.
                        let can_avoid = avoided.len() + 1 < seen_hosts.len();
                        if *n == NODE_FAILURES_BEFORE_AVOIDING && want > 0 && can_avoid {
                            avoided.push(host.clone());
                            // Like MapReduce's node blacklisting: stop placing workers there.
                            tracing::warn!(%host, "avoiding a node where workers keep failing");
                            rt.block_on(
                                cfg.amrm.update_blacklist(std::slice::from_ref(&host), &[]),
                            );
                            cfg.board
                                .diagnostics
                                .lock()
                                .push(format!("avoiding node {host} after {n} failed workers"));
                        }
                        let line = format!(
                            "worker {} on {host} ended with {}: {}{}",
                            s.container_id,
                            s.exit_status,
                            explain_exit(s.exit_status),
                            if s.diagnostics.trim().is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", s.diagnostics.trim())
                            }
                        );
                        tracing::warn!("{line}");
                        failed_containers += 1;
                        let budget = (want * FAILURES_PER_WORKER).max(MIN_FAILURE_BUDGET);
                        if failed_containers >= budget && !gave_up {
                            gave_up = true;
                            cfg.coordinator.abort(ClusterError::NoWorkers(format!(
                                "{failed_containers} worker containers ended badly; last: {line}"
                            )));
                        }
                        let mut diags = cfg.board.diagnostics.lock();
                        if diags.len() < 50 {
                            diags.push(line);
                        }
                    }
                }
                cfg.board
                    .workers
                    .store(running.len() as u64, Ordering::Relaxed);
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
        std::thread::sleep(if requested > 0 || running.len() < want {
            FAST_BEAT
        } else {
            SLOW_BEAT
        });
    }
}
