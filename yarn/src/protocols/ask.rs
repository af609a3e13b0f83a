//! The AM's resource-request table (PROTOCOL.md section 5).
//!
//! The RM keeps one row per (priority, allocation request id, resource
//! name) and each row we send *replaces* the RM's row, so the table holds
//! absolute outstanding counts. A request for a container adds 1 to each of
//! its node rows, each rack row (explicit, or inferred from the nodes) and
//! `*`. When a container is allocated we match it to a request node → rack
//! → any and decrement that request's rows; containers that match nothing
//! (the over-allocation race) are surplus and must be released. Only rows
//! that changed since the last heartbeat are sent.

use std::collections::{BTreeMap, BTreeSet};

use crate::records::{Container, Resource};

/// The `*` resource name.
pub const ANY: &str = "*";

/// One logical container request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRequest {
    /// Resources wanted.
    pub capability: Resource,
    /// Preferred hosts (NodeManager host names).
    pub nodes: Vec<String>,
    /// Preferred racks (the racks of `nodes` are added automatically when
    /// given through `node_racks`).
    pub racks: Vec<String>,
    /// Priority (lower is more important).
    pub priority: i32,
    /// Allocation request id (-1 for none). Use one per capability.
    pub allocation_request_id: i64,
    /// May the RM fall back to other racks/nodes?
    pub relax_locality: bool,
}

impl ContainerRequest {
    /// A request with no locality preference.
    pub fn any(capability: Resource, priority: i32) -> ContainerRequest {
        ContainerRequest {
            capability,
            nodes: vec![],
            racks: vec![],
            priority,
            allocation_request_id: 0,
            relax_locality: true,
        }
    }
}

/// Key of a row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AskKey {
    /// Priority.
    pub priority: i32,
    /// Allocation request id.
    pub allocation_request_id: i64,
    /// Host, rack or `*`.
    pub resource_name: String,
}

/// A row as sent to the RM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskRow {
    /// Which row.
    pub key: AskKey,
    /// Absolute outstanding containers.
    pub num_containers: i32,
    /// Capability (one per priority and allocation id).
    pub capability: Resource,
    /// Relax locality flag of this row.
    pub relax_locality: bool,
}

/// The table.
#[derive(Debug, Default, Clone)]
pub struct AskTable {
    rows: BTreeMap<AskKey, AskRow>,
    changed: BTreeSet<AskKey>,
    /// Outstanding requests, in arrival order, with their resolved racks.
    outstanding: Vec<(ContainerRequest, Vec<String>)>,
}

impl AskTable {
    /// An empty table.
    pub fn new() -> AskTable {
        AskTable::default()
    }

    fn bump(&mut self, key: AskKey, delta: i32, capability: Resource, relax: bool) {
        let row = self.rows.entry(key.clone()).or_insert(AskRow {
            key: key.clone(),
            num_containers: 0,
            capability,
            relax_locality: relax,
        });
        row.num_containers = (row.num_containers + delta).max(0);
        row.capability = capability;
        row.relax_locality = relax;
        self.changed.insert(key);
    }

    fn rows_of(req: &ContainerRequest, racks: &[String]) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        let mut seen = BTreeSet::new();
        for n in &req.nodes {
            if seen.insert(n.clone()) {
                out.push((n.clone(), true));
            }
        }
        for r in racks {
            if seen.insert(r.clone()) {
                // Racks named explicitly are always relaxable to; inferred
                // racks follow the request's flag (as AMRMClient does).
                let relax = req.racks.contains(r) || req.relax_locality;
                out.push((r.clone(), relax));
            }
        }
        out.push((
            ANY.to_string(),
            req.relax_locality || (req.nodes.is_empty() && racks.is_empty()),
        ));
        out
    }

    fn key(req: &ContainerRequest, name: &str) -> AskKey {
        AskKey {
            priority: req.priority,
            allocation_request_id: req.allocation_request_id,
            resource_name: name.to_string(),
        }
    }

    /// Adds a request. `node_racks` gives the rack of each preferred node
    /// (e.g. from HDFS block locations or `getClusterNodes`).
    pub fn add(&mut self, req: ContainerRequest, node_racks: &[String]) {
        let mut racks: Vec<String> = req.racks.clone();
        for r in node_racks {
            if !racks.contains(r) {
                racks.push(r.clone());
            }
        }
        for (name, relax) in Self::rows_of(&req, &racks) {
            self.bump(Self::key(&req, &name), 1, req.capability, relax);
        }
        self.outstanding.push((req, racks));
    }

    fn decrement(&mut self, req: &ContainerRequest, racks: &[String]) {
        for (name, relax) in Self::rows_of(req, racks) {
            self.bump(Self::key(req, &name), -1, req.capability, relax);
        }
    }

    /// Cancels one outstanding request equal to `req`. Returns whether one was found.
    pub fn remove(&mut self, req: &ContainerRequest) -> bool {
        let Some(pos) = self.outstanding.iter().position(|(r, _)| r == req) else {
            return false;
        };
        let (r, racks) = self.outstanding.remove(pos);
        self.decrement(&r, &racks);
        true
    }

    /// Matches an allocated container to an outstanding request — same
    /// priority (and allocation id when set), capability that fits, node
    /// first, then rack, then any request that may run anywhere — and
    /// decrements that request's rows. `None` means the container is
    /// surplus and should be released.
    pub fn match_container(
        &mut self,
        container: &Container,
        node_rack: Option<&str>,
    ) -> Option<ContainerRequest> {
        let host = container.node_id.host.as_str();
        let fits = |r: &ContainerRequest| {
            r.priority == container.priority
                && (container.allocation_request_id < 0
                    || r.allocation_request_id == container.allocation_request_id)
                && container.resource.memory_mb >= r.capability.memory_mb
                && container.resource.vcores >= r.capability.vcores
        };
        let pick = self
            .outstanding
            .iter()
            .position(|(r, _)| fits(r) && r.nodes.iter().any(|n| n == host))
            .or_else(|| {
                let rack = node_rack?;
                self.outstanding
                    .iter()
                    .position(|(r, racks)| fits(r) && racks.iter().any(|x| x == rack))
            })
            .or_else(|| {
                self.outstanding.iter().position(|(r, racks)| {
                    fits(r) && (r.relax_locality || (r.nodes.is_empty() && racks.is_empty()))
                })
            })?;
        let (req, racks) = self.outstanding.remove(pick);
        self.decrement(&req, &racks);
        Some(req)
    }

    /// Rows changed since the last call, for the next `allocate`. Rows
    /// that dropped to zero are sent once more (to cancel on the RM) and
    /// then forgotten.
    pub fn take_changed(&mut self) -> Vec<AskRow> {
        let keys = std::mem::take(&mut self.changed);
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(row) = self.rows.get(&k) {
                out.push(row.clone());
                if row.num_containers == 0 {
                    self.rows.remove(&k);
                }
            }
        }
        out
    }

    /// Puts rows back after a failed `allocate` (unless changed since).
    pub fn restore(&mut self, rows: Vec<AskRow>) {
        for row in rows {
            if !self.rows.contains_key(&row.key) && row.num_containers == 0 {
                self.rows.insert(row.key.clone(), row.clone());
            }
            self.changed.insert(row.key);
        }
    }

    /// Marks every row changed (after re-registering with the RM).
    pub fn mark_all_changed(&mut self) {
        self.changed = self.rows.keys().cloned().collect();
    }

    /// Current absolute count of a row.
    pub fn count(&self, priority: i32, allocation_request_id: i64, resource_name: &str) -> i32 {
        self.rows
            .get(&AskKey {
                priority,
                allocation_request_id,
                resource_name: resource_name.to_string(),
            })
            .map(|r| r.num_containers)
            .unwrap_or(0)
    }

    /// Requests not yet matched.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ApplicationAttemptId, ApplicationId, ContainerId, NodeId};

    fn req(nodes: &[&str]) -> ContainerRequest {
        ContainerRequest {
            capability: Resource::new(512, 1),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            racks: vec![],
            priority: 1,
            allocation_request_id: 0,
            relax_locality: true,
        }
    }

    fn container(seq: i64, host: &str) -> Container {
        Container {
            id: ContainerId {
                attempt: ApplicationAttemptId {
                    application_id: ApplicationId {
                        cluster_timestamp: 1,
                        id: 1,
                    },
                    attempt_id: 1,
                },
                id: seq,
            },
            node_id: NodeId {
                host: host.into(),
                port: 1,
            },
            node_http_address: String::new(),
            resource: Resource::new(512, 1),
            priority: 1,
            allocation_request_id: 0,
            container_token: None,
        }
    }

    #[test]
    fn node_rack_any_rows_are_absolute() {
        let mut t = AskTable::new();
        t.add(req(&["h1", "h2"]), &["/r1".into()]);
        t.add(req(&["h1"]), &["/r1".into()]);
        t.add(req(&[]), &[]);
        assert_eq!(t.count(1, 0, "h1"), 2);
        assert_eq!(t.count(1, 0, "h2"), 1);
        assert_eq!(t.count(1, 0, "/r1"), 2);
        assert_eq!(t.count(1, 0, ANY), 3);
        let sent = t.take_changed();
        assert_eq!(sent.len(), 4);
        assert!(t.take_changed().is_empty(), "nothing changed since");
    }

    #[test]
    fn matching_prefers_node_then_rack_then_any() {
        let mut t = AskTable::new();
        let a = req(&["h1"]);
        let b = req(&["h2"]);
        t.add(a.clone(), &["/r1".into()]);
        t.add(b.clone(), &["/r2".into()]);
        t.take_changed();
        // h2 is node-local for b even though a came first.
        assert_eq!(t.match_container(&container(1, "h2"), Some("/r2")), Some(b));
        // h3 on /r1 is rack-local for a.
        assert_eq!(t.match_container(&container(2, "h3"), Some("/r1")), Some(a));
        assert_eq!(t.count(1, 0, ANY), 0);
        let rows = t.take_changed();
        assert!(rows.iter().all(|r| r.num_containers == 0));
        assert_eq!(rows.len(), 5, "h1, h2, /r1, /r2 and * are cancelled");
        // Zero rows are forgotten after being sent once.
        assert!(t.take_changed().is_empty());
        assert_eq!(t.match_container(&container(3, "h1"), Some("/r1")), None);
    }

    #[test]
    fn over_allocation_race_releases_surplus() {
        // Model the RM: it stores what we send and decrements on allocation.
        let mut rm: BTreeMap<String, i32> = BTreeMap::new();
        let mut t = AskTable::new();
        t.add(req(&[]), &[]);
        t.add(req(&[]), &[]);
        for r in t.take_changed() {
            rm.insert(r.key.resource_name, r.num_containers);
        }
        assert_eq!(rm[ANY], 2);
        // The RM allocates one container before our next heartbeat…
        *rm.get_mut(ANY).expect("row") -= 1;
        let early = container(1, "h1");
        // …while we, unaware, ask for one more: we send 3, the RM had 1.
        t.add(req(&[]), &[]);
        for r in t.take_changed() {
            rm.insert(r.key.resource_name, r.num_containers);
        }
        assert_eq!(rm[ANY], 3, "absolute count re-adds the allocated one");
        // The RM hands out all three plus the early one: four containers.
        let mut granted = vec![early];
        for i in 0..rm[ANY] {
            granted.push(container(10 + i64::from(i), "h1"));
        }
        let mut matched = 0;
        let mut surplus = 0;
        for c in &granted {
            match t.match_container(c, None) {
                Some(_) => matched += 1,
                None => surplus += 1,
            }
        }
        assert_eq!(matched, 3, "exactly the three wanted containers are used");
        assert_eq!(surplus, 1, "the extra one is released");
        assert_eq!(t.count(1, 0, ANY), 0);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn remove_and_restore() {
        let mut t = AskTable::new();
        let r = req(&["h1"]);
        t.add(r.clone(), &["/r".into()]);
        let rows = t.take_changed();
        t.restore(rows);
        assert_eq!(t.take_changed().len(), 3, "failed allocate resends");
        assert!(t.remove(&r));
        assert!(!t.remove(&r));
        assert_eq!(t.count(1, 0, ANY), 0);
        t.mark_all_changed();
        assert_eq!(t.take_changed().len(), 3);
    }

    #[test]
    fn strict_node_request_does_not_relax_inferred_rack_or_any() {
        let mut t = AskTable::new();
        let mut r = req(&["h1"]);
        r.relax_locality = false;
        t.add(r, &["/r1".into()]);
        let rows = t.take_changed();
        let relax = |name: &str| {
            rows.iter()
                .find(|x| x.key.resource_name == name)
                .map(|x| x.relax_locality)
        };
        assert_eq!(relax("h1"), Some(true));
        assert_eq!(relax("/r1"), Some(false));
        assert_eq!(relax(ANY), Some(false));
        // Not matched off-node.
        assert_eq!(t.match_container(&container(1, "h9"), Some("/r9")), None);
    }

    #[test]
    fn capability_and_priority_must_fit() {
        let mut t = AskTable::new();
        let mut big = req(&[]);
        big.capability = Resource::new(4096, 1);
        t.add(big, &[]);
        assert_eq!(t.match_container(&container(1, "h"), None), None);
        let mut c = container(2, "h");
        c.resource = Resource::new(4096, 2);
        c.priority = 2;
        assert_eq!(t.match_container(&c, None), None);
        c.priority = 1;
        assert!(t.match_container(&c, None).is_some());
    }
}
