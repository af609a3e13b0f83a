//! `ApplicationClientProtocol` (client → RM, `yarn.resourcemanager.address`):
//! create, submit, watch and kill applications; list nodes and applications; get a
//! ResourceManager delegation token.
//! On an insecure cluster this uses SIMPLE auth with the current user, on a
//! Kerberized one GSSAPI; with RM HA it fails over on connection refused or `StandbyException`.

use std::time::Duration;

use prost::Message;

use super::APPLICATION_CLIENT_PROTOCOL;
use crate::config::{self, Config};
use crate::credentials::Token;
use crate::error::{Error, Result};
use crate::ipc::{Auth, ConnectOptions, RpcClient};
use crate::proto::common as common_pb;
use crate::proto::yarn as pb;
use crate::records::{
    ApplicationId, ApplicationReport, ApplicationState, ApplicationSubmissionContext,
    ClusterMetrics, NodeReport, NodeState, QueueInfo, Resource,
};

/// Methods that may safely be sent twice (resent once if the connection
/// dies under them).
const IDEMPOTENT: &[&str] = &[
    "getApplicationReport",
    "forceKillApplication",
    "getApplications",
    "getClusterNodes",
    "getClusterMetrics",
    "getQueueInfo",
];

/// Result of `getNewApplication`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApplication {
    /// The id to submit under.
    pub application_id: ApplicationId,
    /// Largest container the cluster grants.
    pub maximum_capability: Resource,
}

/// Filter for `getApplications`; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplicationFilter {
    /// Application types, e.g. `YARN`.
    pub types: Vec<String>,
    /// States.
    pub states: Vec<ApplicationState>,
    /// Tags (an application matches if it has any of them; compared in
    /// lower case, as YARN stores them).
    pub tags: Vec<String>,
    /// Users.
    pub users: Vec<String>,
    /// Queues.
    pub queues: Vec<String>,
    /// Maximum number of reports.
    pub limit: Option<i64>,
}

/// A client of the ResourceManager's client port.
pub struct ApplicationClient {
    rpc: RpcClient,
}

impl ApplicationClient {
    /// A client for the RM(s) in `config`, authenticating as
    /// [`config::current_user`] (SIMPLE), or with the ticket cache on a
    /// Kerberized cluster. Connects lazily.
    pub fn new(config: &Config) -> Result<ApplicationClient> {
        Self::with_options(config, crate::IpcOptions::from_config(config)?)
    }

    /// As [`ApplicationClient::new`] with explicit timeouts.
    ///
    /// With `hadoop.security.authentication=kerberos` it authenticates with
    /// Kerberos instead (credentials from `options.kerberos`), checks the RM's
    /// principal against `yarn.resourcemanager.principal` and negotiates
    /// `hadoop.rpc.protection`.
    pub fn with_options(config: &Config, options: ConnectOptions) -> Result<ApplicationClient> {
        Ok(Self::from_parts(
            config.rm_addresses()?,
            super::ipc_auth(config, config::RM_PRINCIPAL)?,
            options,
        ))
    }

    pub(crate) fn from_parts(
        addrs: Vec<String>,
        auth: Auth,
        options: ConnectOptions,
    ) -> ApplicationClient {
        ApplicationClient {
            rpc: RpcClient::new(addrs, APPLICATION_CLIENT_PROTOCOL, auth, options),
        }
    }

    /// The RM addresses this client tries.
    pub fn addresses(&self) -> &[String] {
        self.rpc.addrs()
    }

    async fn call<Req: Message, Res: Message + Default>(
        &self,
        method: &'static str,
        request: Req,
    ) -> Result<Res> {
        tracing::debug!(method, "ApplicationClientProtocol");
        if IDEMPOTENT.contains(&method) {
            self.rpc.call_idempotent(method, &request).await
        } else {
            self.rpc.call(method, &request).await
        }
    }

    /// `getNewApplication`.
    pub async fn get_new_application(&self) -> Result<NewApplication> {
        let r: pb::GetNewApplicationResponseProto = self
            .call("getNewApplication", pb::GetNewApplicationRequestProto {})
            .await?;
        let id = r.application_id.as_ref().ok_or_else(|| Error::Unexpected {
            addr: self.rpc.addrs().join(","),
            method: "getNewApplication".into(),
            message: "response has no application id".into(),
        })?;
        Ok(NewApplication {
            application_id: ApplicationId::from_proto(id),
            maximum_capability: Resource::from_proto(r.maximum_capability.as_ref()),
        })
    }

    /// `submitApplication`.
    pub async fn submit_application(&self, context: &ApplicationSubmissionContext) -> Result<()> {
        let _: pb::SubmitApplicationResponseProto = self
            .call(
                "submitApplication",
                pb::SubmitApplicationRequestProto {
                    application_submission_context: Some(context.to_proto()),
                },
            )
            .await?;
        Ok(())
    }

    /// `getDelegationToken(renewer)`: an `RM_DELEGATION_TOKEN` that `renewer` (a full
    /// principal) may renew; issued only over Kerberos. Its service is the `ip:port` of
    /// every RM address, as Hadoop's clients look it up
    /// ([`crate::delegation::rm_service`]).
    pub async fn get_delegation_token(&self, renewer: &str) -> Result<Token> {
        let r: common_pb::GetDelegationTokenResponseProto = self
            .call(
                "getDelegationToken",
                common_pb::GetDelegationTokenRequestProto {
                    renewer: renewer.to_string(),
                },
            )
            .await?;
        let token = r.token.ok_or_else(|| Error::Unexpected {
            addr: self.rpc.addrs().join(","),
            method: "getDelegationToken".into(),
            message: "no token in the response".into(),
        })?;
        let mut token = Token::from_proto(token);
        token.service = self
            .rpc
            .addrs()
            .iter()
            .map(|a| crate::delegation::token_service(a))
            .collect::<Vec<_>>()
            .join(",");
        Ok(token)
    }

    /// `getApplicationReport`.
    pub async fn get_application_report(&self, id: ApplicationId) -> Result<ApplicationReport> {
        let r: pb::GetApplicationReportResponseProto = self
            .call(
                "getApplicationReport",
                pb::GetApplicationReportRequestProto {
                    application_id: Some(id.to_proto()),
                },
            )
            .await?;
        r.application_report
            .as_ref()
            .map(ApplicationReport::from_proto)
            .ok_or_else(|| Error::Unexpected {
                addr: self.rpc.addrs().join(","),
                method: "getApplicationReport".into(),
                message: format!("no report for {id}"),
            })
    }

    /// `forceKillApplication` once; true when the kill is complete.
    pub async fn force_kill_application(
        &self,
        id: ApplicationId,
        diagnostics: Option<&str>,
    ) -> Result<bool> {
        let r: pb::KillApplicationResponseProto = self
            .call(
                "forceKillApplication",
                pb::KillApplicationRequestProto {
                    application_id: Some(id.to_proto()),
                    diagnostics: diagnostics.map(str::to_string),
                },
            )
            .await?;
        Ok(r.is_kill_completed())
    }

    /// Calls `forceKillApplication` every `poll` until the RM reports the kill
    /// complete, or `timeout` passes.
    pub async fn kill_application(
        &self,
        id: ApplicationId,
        diagnostics: Option<&str>,
        poll: Duration,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.force_kill_application(id, diagnostics).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    addr: self.rpc.current_addr().await,
                    method: "forceKillApplication".into(),
                    timeout,
                });
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// `getApplications`.
    pub async fn get_applications(
        &self,
        filter: &ApplicationFilter,
    ) -> Result<Vec<ApplicationReport>> {
        let r: pb::GetApplicationsResponseProto = self
            .call(
                "getApplications",
                pb::GetApplicationsRequestProto {
                    application_types: filter.types.clone(),
                    application_states: filter.states.iter().map(|s| s.to_i32()).collect(),
                    users: filter.users.clone(),
                    queues: filter.queues.clone(),
                    limit: filter.limit,
                    // Hadoop's client lower-cases tags; the RM stores them so.
                    application_tags: filter.tags.iter().map(|t| t.to_lowercase()).collect(),
                },
            )
            .await?;
        Ok(r.applications
            .iter()
            .map(ApplicationReport::from_proto)
            .collect())
    }

    /// `getClusterNodes`; an empty `states` means every state.
    pub async fn get_cluster_nodes(&self, states: &[NodeState]) -> Result<Vec<NodeReport>> {
        let r: pb::GetClusterNodesResponseProto = self
            .call(
                "getClusterNodes",
                pb::GetClusterNodesRequestProto {
                    node_states: states.iter().map(|s| s.to_i32()).collect(),
                },
            )
            .await?;
        Ok(r.node_reports.iter().map(NodeReport::from_proto).collect())
    }

    /// `getClusterMetrics`.
    pub async fn get_cluster_metrics(&self) -> Result<ClusterMetrics> {
        let r: pb::GetClusterMetricsResponseProto = self
            .call("getClusterMetrics", pb::GetClusterMetricsRequestProto {})
            .await?;
        let m = r.cluster_metrics.unwrap_or_default();
        Ok(ClusterMetrics {
            num_node_managers: m.num_node_managers(),
            num_active_nms: m.num_active_nms(),
            num_decommissioned_nms: m.num_decommissioned_nms(),
            num_lost_nms: m.num_lost_nms(),
            num_unhealthy_nms: m.num_unhealthy_nms(),
            num_rebooted_nms: m.num_rebooted_nms(),
        })
    }

    /// `getQueueInfo`.
    pub async fn get_queue_info(
        &self,
        queue: &str,
        include_child_queues: bool,
        recursive: bool,
    ) -> Result<QueueInfo> {
        let r: pb::GetQueueInfoResponseProto = self
            .call(
                "getQueueInfo",
                pb::GetQueueInfoRequestProto {
                    queue_name: Some(queue.to_string()),
                    include_applications: Some(false),
                    include_child_queues: Some(include_child_queues),
                    recursive: Some(recursive),
                },
            )
            .await?;
        r.queue_info
            .as_ref()
            .map(QueueInfo::from_proto)
            .ok_or_else(|| Error::Unexpected {
                addr: self.rpc.addrs().join(","),
                method: "getQueueInfo".into(),
                message: format!("no queue info for {queue}"),
            })
    }
}
