//! `ContainerManagementProtocol` (AM → NodeManager): start, query and stop
//! containers. One authenticated connection per node, using that node's
//! NMToken (DIGEST-MD5); a new NMToken replaces the connection's credentials
//! for the next reconnect.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;
use tokio::sync::Mutex;

use super::CONTAINER_MANAGEMENT_PROTOCOL;
use crate::credentials::Token;
use crate::error::{Error, Result};
use crate::ipc::{Auth, ConnectOptions, RpcClient};
use crate::proto::yarn as pb;
use crate::records::{Container, ContainerId, ContainerLaunchContext, ContainerStatus, NodeId};

/// Methods that may safely be sent twice (resent once if the connection
/// dies under them).
const IDEMPOTENT: &[&str] = &["getContainerStatuses", "stopContainers"];

/// A per-container failure reported by the NM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFailure {
    /// The container.
    pub container_id: ContainerId,
    /// Java exception class.
    pub class: String,
    /// Message.
    pub message: String,
}

/// Result of a bulk NM call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkResult {
    /// Containers the NM accepted.
    pub succeeded: Vec<ContainerId>,
    /// Containers it refused, with the reason.
    pub failed: Vec<ContainerFailure>,
}

/// The AM's client of every NodeManager.
pub struct NmClient {
    options: ConnectOptions,
    nodes: Mutex<HashMap<String, (Token, Arc<RpcClient>)>>,
}

impl NmClient {
    /// A client with the given timeouts.
    pub fn new(options: ConnectOptions) -> NmClient {
        NmClient {
            options,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, node: &NodeId, nm_token: &Token) -> Arc<RpcClient> {
        let key = node.to_string();
        let mut nodes = self.nodes.lock().await;
        if let Some((tok, c)) = nodes.get_mut(&key) {
            if tok != nm_token {
                c.set_auth(Auth::Token(nm_token.clone()));
                *tok = nm_token.clone();
            }
            return c.clone();
        }
        let c = Arc::new(RpcClient::new(
            vec![key.clone()],
            CONTAINER_MANAGEMENT_PROTOCOL,
            Auth::Token(nm_token.clone()),
            self.options.clone(),
        ));
        nodes.insert(key, (nm_token.clone(), c.clone()));
        c
    }

    async fn call<Req: Message, Res: Message + Default>(
        &self,
        node: &NodeId,
        nm_token: &Token,
        method: &'static str,
        request: Req,
    ) -> Result<Res> {
        tracing::debug!(method, %node, "ContainerManagementProtocol");
        let client = self.client(node, nm_token).await;
        if IDEMPOTENT.contains(&method) {
            client.call_idempotent(method, &request).await
        } else {
            client.call(method, &request).await
        }
    }

    /// `startContainers` for containers on one node.
    pub async fn start_containers(
        &self,
        node: &NodeId,
        nm_token: &Token,
        containers: &[(&Container, &ContainerLaunchContext)],
    ) -> Result<BulkResult> {
        let mut requests = Vec::with_capacity(containers.len());
        for (c, clc) in containers {
            let token = c
                .container_token
                .as_ref()
                .ok_or_else(|| Error::MissingToken {
                    kind: "ContainerToken".into(),
                    service: Some(c.id.to_string()),
                })?;
            requests.push(pb::StartContainerRequestProto {
                container_launch_context: Some(clc.to_proto()),
                container_token: Some(token.to_proto()),
            });
        }
        let r: pb::StartContainersResponseProto = self
            .call(
                node,
                nm_token,
                "startContainers",
                pb::StartContainersRequestProto {
                    start_container_request: requests,
                },
            )
            .await?;
        Ok(bulk(&r.succeeded_requests, &r.failed_requests))
    }

    /// Starts one container on its node.
    pub async fn start_container(
        &self,
        container: &Container,
        nm_token: &Token,
        launch: &ContainerLaunchContext,
    ) -> Result<BulkResult> {
        self.start_containers(&container.node_id, nm_token, &[(container, launch)])
            .await
    }

    /// `getContainerStatuses`.
    pub async fn get_container_statuses(
        &self,
        node: &NodeId,
        nm_token: &Token,
        ids: &[ContainerId],
    ) -> Result<(Vec<ContainerStatus>, Vec<ContainerFailure>)> {
        let r: pb::GetContainerStatusesResponseProto = self
            .call(
                node,
                nm_token,
                "getContainerStatuses",
                pb::GetContainerStatusesRequestProto {
                    container_id: ids.iter().map(|c| c.to_proto()).collect(),
                },
            )
            .await?;
        Ok((
            r.status.iter().map(ContainerStatus::from_proto).collect(),
            failures(&r.failed_requests),
        ))
    }

    /// `stopContainers`.
    pub async fn stop_containers(
        &self,
        node: &NodeId,
        nm_token: &Token,
        ids: &[ContainerId],
    ) -> Result<BulkResult> {
        let r: pb::StopContainersResponseProto = self
            .call(
                node,
                nm_token,
                "stopContainers",
                pb::StopContainersRequestProto {
                    container_id: ids.iter().map(|c| c.to_proto()).collect(),
                },
            )
            .await?;
        Ok(bulk(&r.succeeded_requests, &r.failed_requests))
    }
}

fn failures(f: &[pb::ContainerExceptionMapProto]) -> Vec<ContainerFailure> {
    f.iter()
        .map(|x| {
            let e = x.exception.clone().unwrap_or_default();
            ContainerFailure {
                container_id: ContainerId::from_proto(
                    x.container_id
                        .as_ref()
                        .unwrap_or(&pb::ContainerIdProto::default()),
                ),
                class: e.class_name().to_string(),
                message: e.message().to_string(),
            }
        })
        .collect()
}

fn bulk(ok: &[pb::ContainerIdProto], failed: &[pb::ContainerExceptionMapProto]) -> BulkResult {
    BulkResult {
        succeeded: ok.iter().map(ContainerId::from_proto).collect(),
        failed: failures(failed),
    }
}
