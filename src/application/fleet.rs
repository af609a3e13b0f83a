//! The worker fleet: the AM's heartbeat loop with the ResourceManager. It keeps as many
//! worker containers as the data deserves ([`Wanted`], set by the AM from the plan), asks for
//! them on the hosts holding the input, starts the `filex worker` command in each allocated
//! container, explains containers that end badly, and lets the fleet drain when the work is
//! done. The decisions are [`FleetState`]'s (`fleet_state.rs`); this loop does the RPCs.
//!
//! Start-up is on the job's critical path: a change of the wanted count wakes the loop at
//! once (the ask goes out in the next heartbeat, not after an idle second), the loop beats at
//! `FIRST_BEAT` while asks are pending and doubles up to `FAST_BEAT` (as Spark's
//! allocator does), and the containers of one allocation are started concurrently.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use yarn::{AmRmClient, Container, ContainerId, ContainerRequest, NmClient, Resource};

use super::fleet_state::{Action, Ended, FleetState};
use super::launch::worker_context;
use super::spec::StagedFile;
use super::status::StatusBoard;
use crate::cluster::remote::Coordinator;
use crate::cluster::ClusterError;

/// Heartbeat interval when asks have just gone out (doubling while they stay pending), the
/// longest one while containers are wanted, and the one when idle.
const FIRST_BEAT: Duration = Duration::from_millis(100);
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

/// The number of worker containers wanted; setting it wakes the fleet loop.
#[derive(Clone)]
pub struct Wanted {
    count: Arc<AtomicUsize>,
    /// The loop's thread, to unpark (none if it could not be spawned).
    loop_thread: Option<Thread>,
}

impl Wanted {
    /// Wants `n` worker containers from now on; 0 drains the fleet.
    pub fn set(&self, n: usize) {
        if self.count.swap(n, Ordering::Relaxed) != n {
            if let Some(t) = &self.loop_thread {
                t.unpark();
            }
        }
    }
}

/// A running fleet loop.
pub struct Fleet {
    /// Worker containers wanted now.
    pub wanted: Wanted,
    /// Hosts to prefer for new containers (those holding pending input), best first.
    pub preferred_hosts: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Fleet {
    pub fn start(cfg: FleetConfig) -> Fleet {
        let count = Arc::new(AtomicUsize::new(0));
        let preferred_hosts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (count, preferred, stop) = (count.clone(), preferred_hosts.clone(), stop.clone());
            std::thread::Builder::new()
                .name("am-fleet".into())
                .spawn(move || run(cfg, count, preferred, stop))
                .ok()
        };
        let loop_thread = handle.as_ref().map(|h| h.thread().clone());
        Fleet {
            wanted: Wanted { count, loop_thread },
            preferred_hosts,
            stop,
            handle,
        }
    }

    /// Stops the loop (after one last heartbeat) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
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
    let mut beat = FIRST_BEAT;
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
                let mut to_start = Vec::new();
                for c in resp.allocated.into_iter().map(|a| a.container) {
                    match fleet.allocated(c.id, &c.node_id.host, want) {
                        Action::Start(_) => to_start.push(c),
                        // Surplus.
                        _ => release(&cfg, c.id),
                    }
                }
                let starts = to_start.iter().map(|c| start_worker(&cfg, c));
                let started = rt.block_on(futures::future::join_all(starts));
                for (c, ok) in to_start.iter().zip(started) {
                    if ok {
                        fleet.started(c.id, &c.node_id.host);
                    } else {
                        // The node would not start it.
                        release(&cfg, c.id);
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
        // Asleep until the beat is due or the wanted count changes (a spurious wake-up
        // costs one early heartbeat).
        if fleet.filling(want) {
            std::thread::park_timeout(beat);
            beat = next_beat(beat);
        } else {
            beat = FIRST_BEAT;
            std::thread::park_timeout(SLOW_BEAT);
        }
    }
}

/// The interval after `last` while containers are missing: doubling from [`FIRST_BEAT`] up to
/// [`FAST_BEAT`].
fn next_beat(last: Duration) -> Duration {
    (last * 2).clamp(FIRST_BEAT, FAST_BEAT)
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
async fn start_worker(cfg: &FleetConfig, c: &Container) -> bool {
    let Some(token) = cfg.amrm.nm_token(&c.node_id).await else {
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
    let why = match cfg.nm.start_container(c, &token, &launch).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_asks_beat_fast_then_slower_up_to_the_fast_beat() {
        let mut beat = FIRST_BEAT;
        let mut beats = vec![beat];
        for _ in 0..4 {
            beat = next_beat(beat);
            beats.push(beat);
        }
        let ms: Vec<u128> = beats.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 250, 250, 250]);
    }
}
