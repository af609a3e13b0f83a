//! The fleet's decisions, apart from its RPCs: how many containers to ask for and where, which
//! allocation to start or give back, what a container that ended badly means for its node and
//! for the run. [`FleetState`] does no I/O; the heartbeat loop in `fleet.rs` carries out the
//! [`Action`]s it returns with the `AmRmClient` and `NmClient` (MapReduce's
//! `RMContainerAllocator` beside its `RMCommunicator`).
//!
//! Rules: asks go round-robin over the hosts holding pending input (YARN relaxes them to rack
//! and any); an allocation beyond the containers wanted is released; a node where
//! [`NODE_FAILURES_BEFORE_AVOIDING`] workers ended badly is blacklisted — never the last node
//! seen; after [`FAILURES_PER_WORKER`] bad endings per wanted worker (at least
//! [`MIN_FAILURE_BUDGET`]) the fleet gives up and asks for nothing more.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use yarn::ContainerId;

/// Worker containers that may end badly per wanted worker before the fleet gives up.
pub const FAILURES_PER_WORKER: usize = 4;
/// … and at least this many.
pub const MIN_FAILURE_BUDGET: usize = 8;
/// Failed worker containers on one node before no more are placed there.
pub const NODE_FAILURES_BEFORE_AVOIDING: u32 = 3;

/// What the heartbeat loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask for one container, preferably on `nodes` (empty: anywhere).
    Ask { nodes: Vec<String> },
    /// Give an allocated container back (surplus).
    Release(ContainerId),
    /// Start a worker in an allocated container.
    Start(ContainerId),
    /// Place no more containers on `host`, where `failures` workers ended badly.
    Blacklist { host: String, failures: u32 },
    /// A worker container ended badly; `line` explains it for the diagnostics.
    WorkerFailed { line: String },
    /// Workers keep dying: fail the run with `reason`.
    GiveUp { reason: String },
}

/// A container that ended, as the ResourceManager reports it.
#[derive(Debug, Clone, Copy)]
pub struct Ended<'a> {
    pub id: ContainerId,
    pub exit_status: i32,
    pub diagnostics: &'a str,
}

/// The worker containers: asked for, running, failed, and the nodes avoided.
#[derive(Debug, Default)]
pub struct FleetState {
    /// Started worker containers and their hosts.
    running: HashMap<ContainerId, String>,
    /// When each started container that has not said hello to the coordinator yet started.
    unheard: HashMap<ContainerId, Instant>,
    /// Containers released for never saying hello.
    silent: HashSet<ContainerId>,
    /// Asks not yet matched by an allocation.
    requested: usize,
    /// Round-robin position over the preferred hosts.
    next_host: usize,
    failures_by_host: HashMap<String, u32>,
    failed_containers: usize,
    /// Hosts any container was allocated on.
    seen_hosts: BTreeSet<String>,
    blacklisted: Vec<String>,
    gave_up: bool,
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

impl FleetState {
    /// The containers to keep given what the work can use (`wanted`): none once given up.
    pub fn target(&self, wanted: usize) -> usize {
        if self.gave_up {
            0
        } else {
            wanted
        }
    }

    /// Asks for the containers missing to reach `want`, round-robin over `preferred` hosts.
    pub fn asks(&mut self, want: usize, preferred: &[String]) -> Vec<Action> {
        let mut actions = Vec::new();
        while self.running.len() + self.requested < want {
            let nodes = if preferred.is_empty() {
                vec![]
            } else {
                let h = preferred[self.next_host % preferred.len()].clone();
                self.next_host += 1;
                vec![h]
            };
            actions.push(Action::Ask { nodes });
            self.requested += 1;
        }
        actions
    }

    /// A container allocated on `host`: start a worker in it, or release it as surplus.
    pub fn allocated(&mut self, id: ContainerId, host: &str, want: usize) -> Action {
        // The ask table already took the matched request off.
        self.requested = self.requested.saturating_sub(1);
        self.seen_hosts.insert(host.to_string());
        if self.running.len() >= want {
            Action::Release(id)
        } else {
            Action::Start(id)
        }
    }

    /// A worker runs in container `id` on `host`.
    pub fn started(&mut self, id: ContainerId, host: &str) {
        self.started_at(id, host, Instant::now());
    }

    /// A worker runs in container `id` on `host` since `now`.
    pub fn started_at(&mut self, id: ContainerId, host: &str, now: Instant) {
        self.running.insert(id, host.to_string());
        self.unheard.insert(id, now);
    }

    /// Worker containers started more than `timeout` before `now` whose worker never said
    /// hello to the coordinator (`greeted`, by worker id = container id): they count as lost
    /// (MapReduce times out a launched attempt that never reports the same way), so each is
    /// released once — its end then counts as a worker that ended badly, and it is replaced.
    pub fn silent_workers(
        &mut self,
        now: Instant,
        timeout: Duration,
        greeted: impl Fn(&str) -> bool,
    ) -> Vec<Action> {
        self.unheard.retain(|id, _| !greeted(&id.to_string()));
        let mut late: Vec<ContainerId> = self
            .unheard
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= timeout)
            .map(|(id, _)| *id)
            .collect();
        late.sort_by_key(|id| id.to_string());
        let mut actions = Vec::new();
        for id in late {
            self.unheard.remove(&id);
            self.silent.insert(id);
            actions.push(Action::WorkerFailed {
                line: format!(
                    "worker {id} never said hello to the coordinator within {} s; releasing it",
                    timeout.as_secs()
                ),
            });
            actions.push(Action::Release(id));
        }
        actions
    }

    /// A container ended. A worker that ended badly while the fleet runs counts against its
    /// node (which may be blacklisted) and against the run (which may give up).
    pub fn completed(&mut self, ended: Ended<'_>, want: usize, stopping: bool) -> Vec<Action> {
        self.unheard.remove(&ended.id);
        let Some(host) = self.running.remove(&ended.id) else {
            return Vec::new();
        };
        if ended.exit_status == 0 || stopping {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let n = self.failures_by_host.entry(host.clone()).or_default();
        *n += 1;
        // Never avoid the last node(s): leave at least one host to run on.
        let can_avoid = self.blacklisted.len() + 1 < self.seen_hosts.len();
        if *n == NODE_FAILURES_BEFORE_AVOIDING && want > 0 && can_avoid {
            self.blacklisted.push(host.clone());
            actions.push(Action::Blacklist {
                host: host.clone(),
                failures: *n,
            });
        }
        let diagnostics = ended.diagnostics.trim();
        let line = format!(
            "worker {} on {host} ended with {}: {}{}",
            ended.id,
            ended.exit_status,
            explain_exit(ended.exit_status),
            if diagnostics.is_empty() {
                String::new()
            } else {
                format!(" ({diagnostics})")
            }
        );
        self.failed_containers += 1;
        let budget = (want * FAILURES_PER_WORKER).max(MIN_FAILURE_BUDGET);
        let give_up = self.failed_containers >= budget && !self.gave_up;
        let reason = format!(
            "{} worker containers ended badly; last: {line}",
            self.failed_containers
        );
        actions.push(Action::WorkerFailed { line });
        if give_up {
            self.gave_up = true;
            actions.push(Action::GiveUp { reason });
        }
        actions
    }

    /// The coordinator timed out `worker` (a worker's id is its container's): give its
    /// container back, which kills it. When it ends, it counts as a worker that ended badly.
    pub fn evicted(&self, worker: &str) -> Option<Action> {
        self.running
            .keys()
            .find(|id| id.to_string() == worker)
            .map(|id| Action::Release(*id))
    }

    /// Worker containers running.
    pub fn workers(&self) -> usize {
        self.running.len()
    }

    /// Whether to heartbeat fast: asks are open or containers are missing.
    pub fn filling(&self, want: usize) -> bool {
        self.requested > 0 || self.running.len() < want
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yarn::{ApplicationAttemptId, ApplicationId};

    fn cid(n: i64) -> ContainerId {
        ContainerId {
            attempt: ApplicationAttemptId {
                application_id: ApplicationId {
                    cluster_timestamp: 1,
                    id: 1,
                },
                attempt_id: 1,
            },
            id: n,
        }
    }

    fn ended(n: i64, exit_status: i32) -> Ended<'static> {
        Ended {
            id: cid(n),
            exit_status,
            diagnostics: "",
        }
    }

    /// A fleet with one started worker per host given, container ids from 1.
    fn fleet(hosts: &[&str]) -> FleetState {
        let mut f = FleetState::default();
        let want = hosts.len();
        f.asks(want, &[]);
        for (i, h) in hosts.iter().enumerate() {
            let id = cid(i as i64 + 1);
            assert_eq!(f.allocated(id, h, want), Action::Start(id));
            f.started(id, h);
        }
        f
    }

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn asks_round_robin_over_preferred_hosts() {
        let mut f = FleetState::default();
        // (want, preferred hosts, asks expected)
        let ask = |n: &[&str]| Action::Ask { nodes: hosts(n) };
        let cases = [
            (
                3,
                hosts(&["a", "b"]),
                vec![ask(&["a"]), ask(&["b"]), ask(&["a"])],
            ),
            (3, hosts(&["a", "b"]), vec![]),
            (4, vec![], vec![ask(&[])]),
        ];
        for (want, preferred, expected) in cases {
            assert_eq!(f.asks(want, &preferred), expected, "want {want}");
        }
        assert!(f.filling(4));
    }

    #[test]
    fn surplus_allocations_are_released() {
        let mut f = FleetState::default();
        f.asks(2, &[]);
        // (container, want at allocation, action)
        let cases = [
            (1, 2, Action::Start(cid(1))),
            (2, 2, Action::Start(cid(2))),
            (3, 2, Action::Release(cid(3))),
            (4, 1, Action::Release(cid(4))),
        ];
        for (n, want, expected) in cases {
            let action = f.allocated(cid(n), "h", want);
            if let Action::Start(id) = action {
                f.started(id, "h");
            }
            assert_eq!(action, expected, "container {n}");
        }
        assert_eq!(f.workers(), 2);
        assert!(!f.filling(2));
    }

    #[test]
    fn a_timed_out_worker_has_its_container_released() {
        let mut f = fleet(&["a", "b"]);
        // The worker id is its container's id.
        let worker = cid(2).to_string();
        assert_eq!(f.evicted(&worker), Some(Action::Release(cid(2))));
        assert_eq!(f.evicted("w-unknown"), None);
        // Once the released container ends, it counts as failed and is replaced.
        let actions = f.completed(ended(2, -100), 2, false);
        assert!(matches!(actions.as_slice(), [Action::WorkerFailed { .. }]));
        assert_eq!(f.asks(2, &[]), vec![Action::Ask { nodes: vec![] }]);
    }

    #[test]
    fn a_worker_that_never_says_hello_is_released_once_and_replaced() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let timeout = Duration::from_secs(60);
        let mut f = FleetState::default();
        f.asks(2, &[]);
        for n in [1, 2] {
            assert_eq!(f.allocated(cid(n), "h", 2), Action::Start(cid(n)));
            f.started_at(cid(n), "h", at(0));
        }
        let hello_from_1 = |w: &str| w == cid(1).to_string();
        // (seconds, containers released)
        let steps: [(u64, Vec<i64>); 3] = [(59, vec![]), (60, vec![2]), (200, vec![])];
        for (secs, want) in steps {
            let released: Vec<i64> = f
                .silent_workers(at(secs), timeout, hello_from_1)
                .into_iter()
                .filter_map(|a| match a {
                    Action::Release(id) => Some(id.id),
                    _ => None,
                })
                .collect();
            assert_eq!(released, want, "at {secs} s");
        }
        // Its end counts as a bad one, and another container is asked for.
        let actions = f.completed(ended(2, -100), 2, false);
        assert!(matches!(actions.as_slice(), [Action::WorkerFailed { .. }]));
        assert_eq!(f.asks(2, &[]), vec![Action::Ask { nodes: vec![] }]);
    }

    #[test]
    fn lost_workers_are_replaced() {
        let mut f = fleet(&["a", "b"]);
        assert_eq!(f.workers(), 2);
        assert_eq!(
            f.completed(ended(1, 137), 2, false),
            vec![Action::WorkerFailed {
                line: format!(
                    "worker {} on a ended with 137: {}",
                    cid(1),
                    explain_exit(137)
                )
            }]
        );
        assert_eq!(f.workers(), 1);
        assert_eq!(f.asks(2, &[]), vec![Action::Ask { nodes: vec![] }]);
        // A clean exit, one while stopping, or an unknown container count nothing.
        for (n, status, stopping) in [(2, 0, false), (9, 1, false)] {
            assert!(f.completed(ended(n, status,), 2, stopping).is_empty());
        }
        let mut f = fleet(&["a"]);
        assert!(f.completed(ended(1, 1), 1, true).is_empty());
    }

    #[test]
    fn a_failing_node_is_blacklisted_but_never_the_last() {
        // (hosts seen, failures on host "a", blacklisted after them)
        let cases: [(&[&str], u32, bool); 3] = [
            (&["a", "b"], NODE_FAILURES_BEFORE_AVOIDING, true),
            (&["a", "b"], NODE_FAILURES_BEFORE_AVOIDING - 1, false),
            (&["a"], NODE_FAILURES_BEFORE_AVOIDING, false),
        ];
        for (seen, failures, blacklisted) in cases {
            let mut f = fleet(seen);
            let mut got = false;
            for i in 0..failures {
                let id = cid(100 + i as i64);
                f.started(id, "a");
                got |= f
                    .completed(ended(100 + i as i64, 1), 2, false)
                    .iter()
                    .any(|a| matches!(a, Action::Blacklist { host, .. } if host == "a"));
            }
            assert_eq!(got, blacklisted, "seen {seen:?}, {failures} failures");
        }
    }

    #[test]
    fn the_last_node_left_is_never_blacklisted() {
        let mut f = fleet(&["a", "b"]);
        let mut blacklisted = Vec::new();
        for (i, host) in ["a", "a", "a", "b", "b", "b"].iter().enumerate() {
            let n = 100 + i as i64;
            f.started(cid(n), host);
            for a in f.completed(ended(n, 1), 2, false) {
                if let Action::Blacklist { host, failures } = a {
                    assert_eq!(failures, NODE_FAILURES_BEFORE_AVOIDING);
                    blacklisted.push(host);
                }
            }
        }
        assert_eq!(blacklisted, vec!["a".to_string()]);
    }

    #[test]
    fn gives_up_after_repeated_worker_failures() {
        // (workers wanted, bad endings before giving up)
        let cases = [(1, MIN_FAILURE_BUDGET), (3, 3 * FAILURES_PER_WORKER)];
        for (want, budget) in cases {
            let mut f = FleetState::default();
            let mut gave_up = Vec::new();
            for i in 0..budget + 2 {
                let n = i as i64;
                f.started(cid(n), &format!("h{}", i % 5));
                for a in f.completed(ended(n, 143), want, false) {
                    if let Action::GiveUp { reason } = a {
                        gave_up.push((i + 1, reason));
                    }
                }
            }
            assert_eq!(gave_up.len(), 1, "want {want}");
            assert_eq!(gave_up[0].0, budget, "want {want}");
            assert!(gave_up[0]
                .1
                .starts_with(&format!("{budget} worker containers ended badly")));
            assert_eq!(f.target(want), 0);
            assert!(f.asks(f.target(want), &[]).is_empty());
        }
    }
}
