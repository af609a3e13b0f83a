//! `ApplicationMasterProtocol` (AM → RM scheduler port): register, the
//! allocate heartbeat, finish. Always authenticated with the AMRMToken via
//! DIGEST-MD5, even on insecure clusters.
//!
//! [`AmRmClient`] keeps what AMRMClient keeps: the [`AskTable`], pending
//! releases, `response_id`, the NMToken cache and the newest AMRMToken. It
//! re-registers and resends everything on `ApplicationMasterNotRegistered`,
//! and `finish_application_master` repeats until the RM says unregistered.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use prost::Message;
use tokio::sync::Mutex;

use super::ask::{AskRow, AskTable, ContainerRequest};
use super::APPLICATION_MASTER_PROTOCOL;
use crate::config::Config;
use crate::credentials::{Credentials, Token};
use crate::error::{Error, Result};
use crate::ipc::{Auth, ConnectOptions, RpcClient};
use crate::proto::yarn as pb;
use crate::records::{
    Container, ContainerId, ContainerStatus, FinalApplicationStatus, NodeId, Resource,
};

/// Methods that may safely be sent twice (resent once if the connection
/// dies under them). allocate repeats its response_id, so the RM answers a
/// duplicate from its cache.
const IDEMPOTENT: &[&str] = &["allocate", "finishApplicationMaster"];

/// Pause between `finishApplicationMaster` attempts.
const FINISH_POLL: Duration = Duration::from_millis(100);
/// Give up finishing after this many attempts.
const FINISH_ATTEMPTS: usize = 100;

/// Result of registering.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterResponse {
    /// Largest container the RM grants.
    pub maximum_capability: Resource,
    /// Queue the application runs in.
    pub queue: String,
    /// Containers kept from a previous attempt.
    pub containers_from_previous_attempts: Vec<Container>,
}

/// A container matched to the request it satisfies.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocatedContainer {
    /// The container.
    pub container: Container,
    /// The request it was matched to.
    pub request: ContainerRequest,
}

/// What one heartbeat brought.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AllocateResponse {
    /// Newly allocated containers matched to requests.
    pub allocated: Vec<AllocatedContainer>,
    /// Surplus containers that matched nothing; already queued for release.
    pub released_surplus: Vec<ContainerId>,
    /// Containers that completed.
    pub completed: Vec<ContainerStatus>,
    /// Available headroom.
    pub limit: Resource,
    /// Nodes in the cluster.
    pub num_cluster_nodes: i32,
    /// The RM asked the AM to shut down (2.x RMs).
    pub shutdown_requested: bool,
}

#[derive(Debug, Clone)]
struct Registration {
    host: String,
    rpc_port: i32,
    tracking_url: String,
}

struct State {
    response_id: i32,
    table: AskTable,
    release: BTreeSet<ContainerId>,
    blacklist_additions: BTreeSet<String>,
    blacklist_removals: BTreeSet<String>,
    /// Every node currently blacklisted (resent after re-registering).
    blacklisted: BTreeSet<String>,
    nm_tokens: HashMap<String, Token>,
    am_rm_token: Token,
    registration: Option<Registration>,
    /// Rack of each node, for rack-local matching.
    node_racks: HashMap<String, String>,
}

/// The AM's client of the RM scheduler.
pub struct AmRmClient {
    rpc: RpcClient,
    state: Mutex<State>,
}

impl AmRmClient {
    /// A client for the scheduler address(es) in `config`, authenticating
    /// with `am_rm_token`. Connects lazily.
    pub fn new(config: &Config, am_rm_token: Token) -> Result<AmRmClient> {
        Ok(Self::from_parts(
            config.scheduler_addresses()?,
            am_rm_token,
            crate::IpcOptions::from_config(config)?,
        ))
    }

    /// As [`AmRmClient::new`], taking the AMRMToken from the container's
    /// token file (`HADOOP_TOKEN_FILE_LOCATION`).
    pub fn from_env(config: &Config) -> Result<AmRmClient> {
        let creds = Credentials::from_env()?.ok_or_else(|| Error::MissingToken {
            kind: crate::credentials::AM_RM_TOKEN_KIND.into(),
            service: None,
        })?;
        Self::new(config, creds.am_rm_token()?.clone())
    }

    /// A client for explicit addresses.
    pub fn from_parts(addrs: Vec<String>, am_rm_token: Token, options: ConnectOptions) -> Self {
        AmRmClient {
            rpc: RpcClient::new(
                addrs,
                APPLICATION_MASTER_PROTOCOL,
                Auth::Token(am_rm_token.clone()),
                options,
            ),
            state: Mutex::new(State {
                response_id: 0,
                table: AskTable::new(),
                release: BTreeSet::new(),
                blacklist_additions: BTreeSet::new(),
                blacklist_removals: BTreeSet::new(),
                blacklisted: BTreeSet::new(),
                nm_tokens: HashMap::new(),
                am_rm_token,
                registration: None,
                node_racks: HashMap::new(),
            }),
        }
    }

    async fn call<Req: Message, Res: Message + Default>(
        &self,
        method: &'static str,
        request: Req,
    ) -> Result<Res> {
        tracing::debug!(method, "ApplicationMasterProtocol");
        if IDEMPOTENT.contains(&method) {
            self.rpc.call_idempotent(method, &request).await
        } else {
            self.rpc.call(method, &request).await
        }
    }

    /// `registerApplicationMaster`.
    pub async fn register_application_master(
        &self,
        host: &str,
        rpc_port: i32,
        tracking_url: &str,
    ) -> Result<RegisterResponse> {
        let reg = Registration {
            host: host.to_string(),
            rpc_port,
            tracking_url: tracking_url.to_string(),
        };
        let r = self.register(&reg).await?;
        let mut s = self.state.lock().await;
        s.registration = Some(reg);
        Ok(r)
    }

    async fn register(&self, reg: &Registration) -> Result<RegisterResponse> {
        let r: pb::RegisterApplicationMasterResponseProto = self
            .call(
                "registerApplicationMaster",
                pb::RegisterApplicationMasterRequestProto {
                    host: Some(reg.host.clone()),
                    rpc_port: Some(reg.rpc_port),
                    tracking_url: Some(reg.tracking_url.clone()),
                },
            )
            .await?;
        let mut s = self.state.lock().await;
        s.response_id = 0;
        for t in &r.nm_tokens_from_previous_attempts {
            if let (Some(node), Some(tok)) = (&t.node_id, &t.token) {
                s.nm_tokens.insert(
                    NodeId::from_proto(node).to_string(),
                    Token::from_proto(tok.clone()),
                );
            }
        }
        Ok(RegisterResponse {
            maximum_capability: Resource::from_proto(r.maximum_capability.as_ref()),
            queue: r.queue().to_string(),
            containers_from_previous_attempts: r
                .containers_from_previous_attempts
                .iter()
                .map(Container::from_proto)
                .collect(),
        })
    }

    /// Records the rack of a node (used to match rack-local containers).
    pub async fn set_node_rack(&self, host: &str, rack: &str) {
        self.state
            .lock()
            .await
            .node_racks
            .insert(host.to_string(), rack.to_string());
    }

    /// Adds a container request; racks of the preferred nodes are looked up
    /// from [`AmRmClient::set_node_rack`].
    pub async fn add_container_request(&self, req: ContainerRequest) {
        let mut s = self.state.lock().await;
        let racks: Vec<String> = req
            .nodes
            .iter()
            .filter_map(|n| s.node_racks.get(n).cloned())
            .collect();
        s.table.add(req, &racks);
    }

    /// Cancels an outstanding request.
    pub async fn remove_container_request(&self, req: &ContainerRequest) -> bool {
        self.state.lock().await.table.remove(req)
    }

    /// Queues a container for release on the next heartbeat.
    pub async fn release_assigned_container(&self, id: ContainerId) {
        self.state.lock().await.release.insert(id);
    }

    /// Adds and removes nodes from the application's blacklist; sent with
    /// the next heartbeat.
    pub async fn update_blacklist(&self, additions: &[String], removals: &[String]) {
        let mut s = self.state.lock().await;
        for n in additions {
            s.blacklist_removals.remove(n);
            s.blacklist_additions.insert(n.clone());
            s.blacklisted.insert(n.clone());
        }
        for n in removals {
            s.blacklist_additions.remove(n);
            s.blacklist_removals.insert(n.clone());
            s.blacklisted.remove(n);
        }
    }

    /// Requests not yet satisfied.
    pub async fn outstanding_requests(&self) -> usize {
        self.state.lock().await.table.outstanding()
    }

    /// The NMToken for a node (`host:port`), once the RM sent one.
    pub async fn nm_token(&self, node: &NodeId) -> Option<Token> {
        self.state
            .lock()
            .await
            .nm_tokens
            .get(&node.to_string())
            .cloned()
    }

    /// The newest AMRMToken (it rolls).
    pub async fn am_rm_token(&self) -> Token {
        self.state.lock().await.am_rm_token.clone()
    }

    /// One `allocate` heartbeat with `progress` (0.0–1.0).
    pub async fn allocate(&self, progress: f32) -> Result<AllocateResponse> {
        match self.allocate_once(progress).await {
            Err(e)
                if e.remote()
                    .is_some_and(|r| r.is_application_master_not_registered()) =>
            {
                tracing::warn!("RM lost our registration; re-registering and resending the ask");
                self.reregister().await?;
                self.allocate_once(progress).await
            }
            other => other,
        }
    }

    async fn reregister(&self) -> Result<()> {
        let reg = self
            .state
            .lock()
            .await
            .registration
            .clone()
            .ok_or_else(|| Error::Unexpected {
                addr: self.rpc.addrs().join(","),
                method: "allocate".into(),
                message: "allocate before registerApplicationMaster".into(),
            })?;
        self.register(&reg).await?;
        let mut s = self.state.lock().await;
        s.table.mark_all_changed();
        s.blacklist_additions = s.blacklisted.clone();
        Ok(())
    }

    async fn allocate_once(&self, progress: f32) -> Result<AllocateResponse> {
        let (ask, release, response_id, additions, removals) = {
            let mut s = self.state.lock().await;
            let ask = s.table.take_changed();
            let release: Vec<ContainerId> = s.release.iter().copied().collect();
            let additions: Vec<String> = std::mem::take(&mut s.blacklist_additions)
                .into_iter()
                .collect();
            let removals: Vec<String> = std::mem::take(&mut s.blacklist_removals)
                .into_iter()
                .collect();
            (ask, release, s.response_id, additions, removals)
        };
        let blacklist_request = (!additions.is_empty() || !removals.is_empty()).then(|| {
            pb::ResourceBlacklistRequestProto {
                blacklist_additions: additions.clone(),
                blacklist_removals: removals.clone(),
            }
        });
        let request = pb::AllocateRequestProto {
            ask: ask.iter().map(ask_proto).collect(),
            release: release.iter().map(|c| c.to_proto()).collect(),
            blacklist_request,
            response_id: Some(response_id),
            progress: Some(progress),
        };
        let r: pb::AllocateResponseProto = match self.call("allocate", request).await {
            Ok(r) => r,
            Err(e) => {
                let mut s = self.state.lock().await;
                s.table.restore(ask);
                for n in additions {
                    if s.blacklisted.contains(&n) {
                        s.blacklist_additions.insert(n);
                    }
                }
                for n in removals {
                    if !s.blacklisted.contains(&n) {
                        s.blacklist_removals.insert(n);
                    }
                }
                return Err(e);
            }
        };
        let mut s = self.state.lock().await;
        for id in &release {
            s.release.remove(id);
        }
        s.response_id = r.response_id();
        for t in &r.nm_tokens {
            if let (Some(node), Some(tok)) = (&t.node_id, &t.token) {
                s.nm_tokens.insert(
                    NodeId::from_proto(node).to_string(),
                    Token::from_proto(tok.clone()),
                );
            }
        }
        if let Some(t) = &r.am_rm_token {
            let mut token = Token::from_proto(t.clone());
            if token.kind.is_empty() {
                token.kind = crate::credentials::AM_RM_TOKEN_KIND.into();
            }
            tracing::info!("AMRMToken rolled; new connections use the new token");
            self.rpc.set_auth(Auth::Token(token.clone()));
            s.am_rm_token = token;
        }
        let mut out = AllocateResponse {
            limit: Resource::from_proto(r.limit.as_ref()),
            num_cluster_nodes: r.num_cluster_nodes(),
            shutdown_requested: r.a_m_command == Some(pb::AmCommandProto::AmShutdown as i32),
            ..AllocateResponse::default()
        };
        if r.a_m_command == Some(pb::AmCommandProto::AmResync as i32) {
            drop(s);
            self.reregister().await?;
            s = self.state.lock().await;
        }
        for c in &r.allocated_containers {
            let container = Container::from_proto(c);
            let rack = s.node_racks.get(&container.node_id.host).cloned();
            match s.table.match_container(&container, rack.as_deref()) {
                Some(request) => out
                    .allocated
                    .push(AllocatedContainer { container, request }),
                None => {
                    tracing::info!(container = %container.id, "surplus container; releasing");
                    s.release.insert(container.id);
                    out.released_surplus.push(container.id);
                }
            }
        }
        out.completed = r
            .completed_container_statuses
            .iter()
            .map(ContainerStatus::from_proto)
            .collect();
        Ok(out)
    }

    /// `finishApplicationMaster`, repeated until the RM confirms.
    pub async fn finish_application_master(
        &self,
        status: FinalApplicationStatus,
        diagnostics: &str,
        tracking_url: &str,
    ) -> Result<()> {
        for _ in 0..FINISH_ATTEMPTS {
            let result: Result<pb::FinishApplicationMasterResponseProto> = self
                .call(
                    "finishApplicationMaster",
                    pb::FinishApplicationMasterRequestProto {
                        diagnostics: Some(diagnostics.to_string()),
                        tracking_url: Some(tracking_url.to_string()),
                        final_application_status: Some(status.to_i32()),
                    },
                )
                .await;
            match result {
                Ok(r) if r.is_unregistered() => return Ok(()),
                Ok(_) => tokio::time::sleep(FINISH_POLL).await,
                Err(e)
                    if e.remote()
                        .is_some_and(|r| r.is_application_master_not_registered()) =>
                {
                    self.reregister().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unexpected {
            addr: self.rpc.addrs().join(","),
            method: "finishApplicationMaster".into(),
            message: format!("still registered after {FINISH_ATTEMPTS} attempts"),
        })
    }
}

fn ask_proto(row: &AskRow) -> pb::ResourceRequestProto {
    pb::ResourceRequestProto {
        priority: Some(pb::PriorityProto {
            priority: Some(row.key.priority),
        }),
        resource_name: Some(row.key.resource_name.clone()),
        capability: Some(row.capability.to_proto()),
        num_containers: Some(row.num_containers),
        relax_locality: Some(row.relax_locality),
        node_label_expression: None,
        execution_type_request: None,
        allocation_request_id: Some(row.key.allocation_request_id),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ipc::testing::{failure, listener, reply, test_token, Peer};
    use crate::proto::common::{rpc_response_header_proto::RpcStatusProto, TokenProto};
    use crate::records::{ApplicationAttemptId, ApplicationId};

    fn attempt() -> ApplicationAttemptId {
        ApplicationAttemptId {
            application_id: ApplicationId {
                cluster_timestamp: 99,
                id: 1,
            },
            attempt_id: 1,
        }
    }

    fn container(seq: i64, host: &str) -> pb::ContainerProto {
        pb::ContainerProto {
            id: Some(
                ContainerId {
                    attempt: attempt(),
                    id: seq,
                }
                .to_proto(),
            ),
            node_id: Some(pb::NodeIdProto {
                host: Some(host.into()),
                port: Some(4545),
            }),
            node_http_address: None,
            resource: Some(Resource::new(512, 1).to_proto()),
            priority: Some(pb::PriorityProto { priority: Some(1) }),
            container_token: None,
            execution_type: None,
            allocation_request_id: Some(0),
            version: None,
        }
    }

    fn decode<M: Message + Default>(body: &[u8]) -> M {
        M::decode_length_delimited(body).expect("request decodes")
    }

    fn any_count(r: &pb::AllocateRequestProto) -> Option<i32> {
        r.ask
            .iter()
            .find(|a| a.resource_name() == "*")
            .map(|a| a.num_containers())
    }

    /// A scripted RM: checks each request the AM sends and answers it.
    async fn fake_rm(l: tokio::net::TcpListener) {
        let mut p = Peer::accept(&l).await;
        p.token_handshake(&test_token(), "auth").await;
        let proto = APPLICATION_MASTER_PROTOCOL;

        let (id, m, _) = p.call(proto).await.expect("register");
        assert_eq!(m, "registerApplicationMaster");
        let reg = pb::RegisterApplicationMasterResponseProto {
            maximum_capability: Some(Resource::new(8192, 8).to_proto()),
            queue: Some("default".into()),
            ..Default::default()
        };
        p.send(reply(id, &reg)).await;

        // First heartbeat: response_id 0, two containers wanted on h1/h2.
        let (id, m, body) = p.call(proto).await.expect("allocate 1");
        assert_eq!(m, "allocate");
        let r: pb::AllocateRequestProto = decode(&body);
        assert_eq!(r.response_id, Some(0));
        assert_eq!(any_count(&r), Some(2));
        assert!(r.ask.iter().all(|a| a.allocation_request_id == Some(0)));
        assert!(r.release.is_empty());
        assert!(r.blacklist_request.is_none());
        // Three containers for two requests: one is surplus. A new AMRMToken.
        let resp = pb::AllocateResponseProto {
            response_id: Some(1),
            allocated_containers: vec![container(1, "h1"), container(2, "h2"), container(3, "h3")],
            nm_tokens: vec![pb::NmTokenProto {
                node_id: Some(pb::NodeIdProto {
                    host: Some("h1".into()),
                    port: Some(4545),
                }),
                token: Some(TokenProto {
                    identifier: b"nm".to_vec(),
                    password: b"pw".to_vec(),
                    kind: "NMToken".into(),
                    service: "h1:4545".into(),
                }),
            }],
            am_rm_token: Some(TokenProto {
                identifier: b"rolled".to_vec(),
                password: b"new".to_vec(),
                kind: crate::credentials::AM_RM_TOKEN_KIND.into(),
                service: String::new(),
            }),
            num_cluster_nodes: Some(3),
            ..Default::default()
        };
        p.send(reply(id, &resp)).await;

        // Second heartbeat echoes response_id 1, cancels rows, releases the
        // surplus. Pretend the RM restarted: not registered.
        let (id, _, body) = p.call(proto).await.expect("allocate 2");
        let r: pb::AllocateRequestProto = decode(&body);
        assert_eq!(r.response_id, Some(1));
        assert_eq!(
            any_count(&r),
            Some(0),
            "matched containers cancel their rows"
        );
        assert_eq!(r.release.len(), 1);
        assert_eq!(ContainerId::from_proto(&r.release[0]).id, 3);
        let bl = r.blacklist_request.expect("blacklist sent");
        assert_eq!(bl.blacklist_additions, vec!["bad-node".to_string()]);
        p.send(failure(
            id,
            RpcStatusProto::Error,
            crate::exception_class::APPLICATION_MASTER_NOT_REGISTERED,
        ))
        .await;

        // The client re-registers and resends with response_id 0 and the
        // release it could not deliver.
        let (id, m, _) = p.call(proto).await.expect("re-register");
        assert_eq!(m, "registerApplicationMaster");
        p.send(reply(id, &reg)).await;
        let (id, m, body) = p.call(proto).await.expect("allocate 3");
        assert_eq!(m, "allocate");
        let r: pb::AllocateRequestProto = decode(&body);
        assert_eq!(r.response_id, Some(0));
        assert_eq!(r.release.len(), 1);
        let bl = r
            .blacklist_request
            .expect("blacklist resent after re-register");
        assert_eq!(bl.blacklist_additions, vec!["bad-node".to_string()]);
        let resp = pb::AllocateResponseProto {
            response_id: Some(1),
            completed_container_statuses: vec![pb::ContainerStatusProto {
                container_id: Some(
                    ContainerId {
                        attempt: attempt(),
                        id: 1,
                    }
                    .to_proto(),
                ),
                state: Some(pb::ContainerStateProto::CComplete as i32),
                diagnostics: None,
                exit_status: Some(0),
                capability: None,
            }],
            ..Default::default()
        };
        p.send(reply(id, &resp)).await;

        // Finish: first "not yet", then unregistered.
        for done in [false, true] {
            let (id, m, body) = p.call(proto).await.expect("finish");
            assert_eq!(m, "finishApplicationMaster");
            let r: pb::FinishApplicationMasterRequestProto = decode(&body);
            assert_eq!(
                r.final_application_status,
                Some(pb::FinalApplicationStatusProto::AppSucceeded as i32)
            );
            let resp = pb::FinishApplicationMasterResponseProto {
                is_unregistered: Some(done),
            };
            p.send(reply(id, &resp)).await;
        }
    }

    #[tokio::test]
    async fn heartbeat_protocol_against_a_scripted_rm() {
        let (l, addr) = listener().await;
        let rm = tokio::spawn(fake_rm(l));
        let options = ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(60),
            ..ConnectOptions::default()
        };
        let am = AmRmClient::from_parts(vec![addr], test_token(), options);
        let reg = am
            .register_application_master("am-host", -1, "")
            .await
            .expect("register");
        assert_eq!(reg.maximum_capability, Resource::new(8192, 8));
        am.set_node_rack("h1", "/r1").await;
        am.set_node_rack("h2", "/r2").await;
        for host in ["h1", "h2"] {
            am.add_container_request(ContainerRequest {
                capability: Resource::new(512, 1),
                nodes: vec![host.into()],
                racks: vec![],
                priority: 1,
                allocation_request_id: 0,
                relax_locality: true,
            })
            .await;
        }
        let r = am.allocate(0.1).await.expect("allocate 1");
        let hosts: Vec<&str> = r
            .allocated
            .iter()
            .map(|a| a.container.node_id.host.as_str())
            .collect();
        assert_eq!(hosts, vec!["h1", "h2"]);
        assert_eq!(r.allocated[0].request.nodes, vec!["h1".to_string()]);
        assert_eq!(r.released_surplus.len(), 1);
        assert_eq!(r.num_cluster_nodes, 3);
        let node = NodeId {
            host: "h1".into(),
            port: 4545,
        };
        assert_eq!(am.nm_token(&node).await.expect("cached").kind, "NMToken");
        assert_eq!(am.am_rm_token().await.identifier, b"rolled".to_vec());

        am.update_blacklist(&["bad-node".into()], &[]).await;
        // Re-registration happens inside allocate.
        let r = am
            .allocate(0.5)
            .await
            .expect("allocate 2 (with re-register)");
        assert_eq!(r.completed.len(), 1);
        assert_eq!(r.completed[0].exit_status, 0);
        assert_eq!(am.outstanding_requests().await, 0);

        am.finish_application_master(FinalApplicationStatus::Succeeded, "ok", "")
            .await
            .expect("finish");
        rm.await.expect("scripted RM saw what it expected");
    }
}
