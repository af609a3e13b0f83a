//! The crate's own record types (ids, resources, reports…), converted from
//! and to the generated protobuf messages so that no prost type appears in
//! the public API. Names follow Hadoop's records.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use prost::Message as _;

use crate::credentials::Token;
use crate::error::{Error, Result};
use crate::proto::yarn as pb;

/// `application_<clusterTimestamp>_<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationId {
    /// RM start time, ms.
    pub cluster_timestamp: i64,
    /// Sequence number within the RM.
    pub id: i32,
}

impl fmt::Display for ApplicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "application_{}_{:04}", self.cluster_timestamp, self.id)
    }
}

fn parse_num<T: FromStr>(s: &str, what: &'static str, whole: &str) -> Result<T> {
    s.parse().map_err(|_| Error::Parse {
        what,
        value: whole.to_string(),
    })
}

impl FromStr for ApplicationId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('_').collect();
        match parts.as_slice() {
            ["application", ts, id] => Ok(ApplicationId {
                cluster_timestamp: parse_num(ts, "application id", s)?,
                id: parse_num(id, "application id", s)?,
            }),
            _ => Err(Error::Parse {
                what: "application id",
                value: s.to_string(),
            }),
        }
    }
}

impl ApplicationId {
    pub(crate) fn to_proto(self) -> pb::ApplicationIdProto {
        pb::ApplicationIdProto {
            id: Some(self.id),
            cluster_timestamp: Some(self.cluster_timestamp),
        }
    }
    pub(crate) fn from_proto(p: &pb::ApplicationIdProto) -> ApplicationId {
        ApplicationId {
            cluster_timestamp: p.cluster_timestamp(),
            id: p.id(),
        }
    }
}

/// `appattempt_<ts>_<app>_<attempt>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationAttemptId {
    /// The application.
    pub application_id: ApplicationId,
    /// Attempt number, from 1.
    pub attempt_id: i32,
}

impl fmt::Display for ApplicationAttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "appattempt_{}_{:04}_{:06}",
            self.application_id.cluster_timestamp, self.application_id.id, self.attempt_id
        )
    }
}

impl ApplicationAttemptId {
    pub(crate) fn to_proto(self) -> pb::ApplicationAttemptIdProto {
        pb::ApplicationAttemptIdProto {
            application_id: Some(self.application_id.to_proto()),
            attempt_id: Some(self.attempt_id),
        }
    }
    pub(crate) fn from_proto(p: &pb::ApplicationAttemptIdProto) -> ApplicationAttemptId {
        ApplicationAttemptId {
            application_id: p
                .application_id
                .as_ref()
                .map(ApplicationId::from_proto)
                .unwrap_or(ApplicationId {
                    cluster_timestamp: 0,
                    id: 0,
                }),
            attempt_id: p.attempt_id(),
        }
    }

    /// The attempt an AMRMToken was issued to (its identifier is an
    /// `AMRMTokenIdentifierProto`).
    pub fn of_am_rm_token(token: &Token) -> Result<ApplicationAttemptId> {
        let id =
            pb::AmrmTokenIdentifierProto::decode(token.identifier.as_slice()).map_err(|e| {
                Error::Credentials {
                    source_name: token.kind.clone(),
                    message: format!("identifier is not an AMRMTokenIdentifierProto: {e}"),
                }
            })?;
        id.app_attempt_id
            .as_ref()
            .map(ApplicationAttemptId::from_proto)
            .ok_or_else(|| Error::Credentials {
                source_name: token.kind.clone(),
                message: "AMRMToken identifier has no attempt id".into(),
            })
    }
}

/// `container_[e<epoch>_]<ts>_<app>_<attempt>_<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId {
    /// The attempt that owns the container.
    pub attempt: ApplicationAttemptId,
    /// `(epoch << 40) | sequence`.
    pub id: i64,
}

const CONTAINER_ID_BITMASK: i64 = 0xff_ffff_ffff;

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let epoch = self.id >> 40;
        let seq = self.id & CONTAINER_ID_BITMASK;
        write!(f, "container_")?;
        if epoch > 0 {
            write!(f, "e{epoch:02}_")?;
        }
        write!(
            f,
            "{}_{:04}_{:02}_{:06}",
            self.attempt.application_id.cluster_timestamp,
            self.attempt.application_id.id,
            self.attempt.attempt_id,
            seq
        )
    }
}

impl FromStr for ContainerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "container id",
            value: s.to_string(),
        };
        let rest = s.strip_prefix("container_").ok_or_else(bad)?;
        let mut parts: Vec<&str> = rest.split('_').collect();
        let mut epoch: i64 = 0;
        if let Some(first) = parts.first() {
            if let Some(e) = first.strip_prefix('e') {
                epoch = parse_num(e, "container id", s)?;
                parts.remove(0);
            }
        }
        let [ts, app, attempt, seq] = parts.as_slice() else {
            return Err(bad());
        };
        let seq: i64 = parse_num(seq, "container id", s)?;
        Ok(ContainerId {
            attempt: ApplicationAttemptId {
                application_id: ApplicationId {
                    cluster_timestamp: parse_num(ts, "container id", s)?,
                    id: parse_num(app, "container id", s)?,
                },
                attempt_id: parse_num(attempt, "container id", s)?,
            },
            id: (epoch << 40) | (seq & CONTAINER_ID_BITMASK),
        })
    }
}

impl ContainerId {
    pub(crate) fn to_proto(self) -> pb::ContainerIdProto {
        pb::ContainerIdProto {
            app_id: Some(self.attempt.application_id.to_proto()),
            app_attempt_id: Some(self.attempt.to_proto()),
            id: Some(self.id),
        }
    }
    pub(crate) fn from_proto(p: &pb::ContainerIdProto) -> ContainerId {
        let mut attempt = p
            .app_attempt_id
            .as_ref()
            .map(ApplicationAttemptId::from_proto)
            .unwrap_or(ApplicationAttemptId {
                application_id: ApplicationId {
                    cluster_timestamp: 0,
                    id: 0,
                },
                attempt_id: 0,
            });
        if let Some(app) = &p.app_id {
            attempt.application_id = ApplicationId::from_proto(app);
        }
        ContainerId {
            attempt,
            id: p.id(),
        }
    }
}

/// A NodeManager, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Host name as the NM registered it.
    pub host: String,
    /// NM RPC port.
    pub port: i32,
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl NodeId {
    pub(crate) fn from_proto(p: &pb::NodeIdProto) -> NodeId {
        NodeId {
            host: p.host().to_string(),
            port: p.port(),
        }
    }
}

/// Memory and virtual cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Resource {
    /// Memory in MiB.
    pub memory_mb: i64,
    /// Virtual cores.
    pub vcores: i32,
}

impl Resource {
    /// A resource of `memory_mb` MiB and `vcores` cores.
    pub fn new(memory_mb: i64, vcores: i32) -> Resource {
        Resource { memory_mb, vcores }
    }
    pub(crate) fn to_proto(self) -> pb::ResourceProto {
        pb::ResourceProto {
            memory: Some(self.memory_mb),
            virtual_cores: Some(self.vcores),
        }
    }
    pub(crate) fn from_proto(p: Option<&pb::ResourceProto>) -> Resource {
        p.map(|p| Resource {
            memory_mb: p.memory(),
            vcores: p.virtual_cores(),
        })
        .unwrap_or_default()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<memory:{}, vCores:{}>", self.memory_mb, self.vcores)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident : $pb:ty { $($(#[$vm:meta])* $v:ident = $p:ident, $s:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A value this crate does not know.
            Unknown(i32),
        }
        impl $name {
            pub(crate) fn from_i32(v: i32) -> $name {
                match <$pb>::try_from(v) {
                    $(Ok(<$pb>::$p) => $name::$v,)*
                    #[allow(unreachable_patterns)]
                    _ => $name::Unknown(v),
                }
            }
            #[allow(dead_code)]
            pub(crate) fn to_i32(self) -> i32 {
                match self {
                    $($name::$v => <$pb>::$p as i32,)*
                    $name::Unknown(v) => v,
                }
            }
            /// Hadoop's spelling, e.g. `RUNNING`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$v => $s,)*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                let up = s.to_ascii_uppercase();
                $(if up == $s { return Ok($name::$v); })*
                Err(Error::Parse { what: stringify!($name), value: s.to_string() })
            }
        }
    };
}

wire_enum! {
    /// `YarnApplicationState`.
    ApplicationState: pb::YarnApplicationStateProto {
        /// Just created.
        New = New, "NEW";
        /// Being stored.
        NewSaving = NewSaving, "NEW_SAVING";
        /// Submitted to the scheduler.
        Submitted = Submitted, "SUBMITTED";
        /// Accepted, waiting for the AM container.
        Accepted = Accepted, "ACCEPTED";
        /// The AM is running.
        Running = Running, "RUNNING";
        /// Finished (see the final status).
        Finished = Finished, "FINISHED";
        /// Failed.
        Failed = Failed, "FAILED";
        /// Killed.
        Killed = Killed, "KILLED";
    }
}

impl ApplicationState {
    /// FINISHED, FAILED or KILLED.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ApplicationState::Finished | ApplicationState::Failed | ApplicationState::Killed
        )
    }
}

wire_enum! {
    /// `FinalApplicationStatus`.
    FinalApplicationStatus: pb::FinalApplicationStatusProto {
        /// Not finished yet.
        Undefined = AppUndefined, "UNDEFINED";
        /// Succeeded.
        Succeeded = AppSucceeded, "SUCCEEDED";
        /// Failed.
        Failed = AppFailed, "FAILED";
        /// Killed.
        Killed = AppKilled, "KILLED";
        /// Ended (long-running services).
        Ended = AppEnded, "ENDED";
    }
}

wire_enum! {
    /// `NodeState`.
    NodeState: pb::NodeStateProto {
        /// New.
        New = NsNew, "NEW";
        /// Running.
        Running = NsRunning, "RUNNING";
        /// Unhealthy.
        Unhealthy = NsUnhealthy, "UNHEALTHY";
        /// Decommissioned.
        Decommissioned = NsDecommissioned, "DECOMMISSIONED";
        /// Lost.
        Lost = NsLost, "LOST";
        /// Rebooted.
        Rebooted = NsRebooted, "REBOOTED";
        /// Decommissioning.
        Decommissioning = NsDecommissioning, "DECOMMISSIONING";
        /// Shut down.
        Shutdown = NsShutdown, "SHUTDOWN";
    }
}

wire_enum! {
    /// `ContainerState`.
    ContainerState: pb::ContainerStateProto {
        /// New.
        New = CNew, "NEW";
        /// Running.
        Running = CRunning, "RUNNING";
        /// Complete.
        Complete = CComplete, "COMPLETE";
    }
}

/// One NodeManager as the RM sees it (`yarn node -list`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    /// `host:port` of the NM.
    pub node_id: NodeId,
    /// NM web address.
    pub http_address: String,
    /// Rack (network location).
    pub rack_name: String,
    /// Resources in use.
    pub used: Resource,
    /// Total resources.
    pub capability: Resource,
    /// Running containers.
    pub num_containers: i32,
    /// State.
    pub state: NodeState,
    /// Health report text.
    pub health_report: String,
    /// Node labels.
    pub node_labels: Vec<String>,
}

impl NodeReport {
    pub(crate) fn from_proto(p: &pb::NodeReportProto) -> NodeReport {
        NodeReport {
            node_id: p
                .node_id
                .as_ref()
                .map(NodeId::from_proto)
                .unwrap_or(NodeId {
                    host: String::new(),
                    port: 0,
                }),
            http_address: p.http_address().to_string(),
            rack_name: p.rack_name().to_string(),
            used: Resource::from_proto(p.used.as_ref()),
            capability: Resource::from_proto(p.capability.as_ref()),
            num_containers: p.num_containers(),
            state: NodeState::from_i32(p.node_state.unwrap_or(0)),
            health_report: p.health_report().to_string(),
            node_labels: p.node_labels.clone(),
        }
    }
}

/// An application as the RM sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationReport {
    /// Id.
    pub application_id: ApplicationId,
    /// Submitting user.
    pub user: String,
    /// Queue.
    pub queue: String,
    /// Name.
    pub name: String,
    /// AM host (`N/A` before it runs).
    pub host: String,
    /// AM RPC port.
    pub rpc_port: i32,
    /// State.
    pub state: ApplicationState,
    /// Final status (UNDEFINED until finished).
    pub final_status: FinalApplicationStatus,
    /// Tracking URL.
    pub tracking_url: String,
    /// Diagnostics.
    pub diagnostics: String,
    /// Start time, ms.
    pub start_time: i64,
    /// Finish time, ms (0 while running).
    pub finish_time: i64,
    /// Progress 0.0–1.0.
    pub progress: f32,
    /// Application type.
    pub application_type: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Current attempt.
    pub current_attempt: Option<ApplicationAttemptId>,
    /// True for unmanaged AMs.
    pub unmanaged: bool,
    /// The AMRMToken, set only for unmanaged AMs once the attempt launched.
    pub am_rm_token: Option<Token>,
}

impl ApplicationReport {
    pub(crate) fn from_proto(p: &pb::ApplicationReportProto) -> ApplicationReport {
        ApplicationReport {
            application_id: p
                .application_id
                .as_ref()
                .map(ApplicationId::from_proto)
                .unwrap_or(ApplicationId {
                    cluster_timestamp: 0,
                    id: 0,
                }),
            user: p.user().to_string(),
            queue: p.queue().to_string(),
            name: p.name().to_string(),
            host: p.host().to_string(),
            rpc_port: p.rpc_port(),
            state: ApplicationState::from_i32(p.yarn_application_state.unwrap_or(0)),
            final_status: FinalApplicationStatus::from_i32(p.final_application_status.unwrap_or(0)),
            tracking_url: p.tracking_url().to_string(),
            diagnostics: p.diagnostics().to_string(),
            start_time: p.start_time(),
            finish_time: p.finish_time(),
            progress: p.progress(),
            application_type: p.application_type().to_string(),
            tags: p.application_tags.clone(),
            current_attempt: p
                .current_application_attempt_id
                .as_ref()
                .map(ApplicationAttemptId::from_proto),
            unmanaged: p.unmanaged_application(),
            am_rm_token: p.am_rm_token.clone().map(Token::from_proto),
        }
    }
}

/// Cluster-wide NodeManager counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterMetrics {
    /// All NMs.
    pub num_node_managers: i32,
    /// Active NMs.
    pub num_active_nms: i32,
    /// Decommissioned NMs.
    pub num_decommissioned_nms: i32,
    /// Lost NMs.
    pub num_lost_nms: i32,
    /// Unhealthy NMs.
    pub num_unhealthy_nms: i32,
    /// Rebooted NMs.
    pub num_rebooted_nms: i32,
}

/// A scheduler queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    /// Name.
    pub name: String,
    /// Configured capacity (fraction).
    pub capacity: f32,
    /// Maximum capacity (fraction).
    pub maximum_capacity: f32,
    /// Current usage (fraction of capacity).
    pub current_capacity: f32,
    /// `RUNNING`, `STOPPED`, `DRAINING`.
    pub state: String,
    /// Children (when asked for).
    pub child_queues: Vec<QueueInfo>,
}

impl QueueInfo {
    pub(crate) fn from_proto(p: &pb::QueueInfoProto) -> QueueInfo {
        let state = match pb::QueueStateProto::try_from(p.state.unwrap_or(0)) {
            Ok(pb::QueueStateProto::QRunning) => "RUNNING",
            Ok(pb::QueueStateProto::QStopped) => "STOPPED",
            Ok(pb::QueueStateProto::QDraining) => "DRAINING",
            Err(_) => "UNKNOWN",
        };
        QueueInfo {
            name: p.queue_name().to_string(),
            capacity: p.capacity(),
            maximum_capacity: p.maximum_capacity(),
            current_capacity: p.current_capacity(),
            state: state.to_string(),
            child_queues: p.child_queues.iter().map(QueueInfo::from_proto).collect(),
        }
    }
}

/// `LocalResourceType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResourceType {
    /// Unpacked into a directory.
    Archive,
    /// Linked as is.
    File,
}

/// `LocalResourceVisibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResourceVisibility {
    /// Shared by all users.
    Public,
    /// Per user.
    Private,
    /// Per application (normal for staging files).
    Application,
}

/// A file the NM downloads into the container's working directory.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalResource {
    /// URL scheme, e.g. `hdfs`.
    pub scheme: String,
    /// Host (or HA nameservice).
    pub host: String,
    /// Port, or -1 for none.
    pub port: i32,
    /// Absolute path.
    pub file: String,
    /// Length in bytes.
    pub size: i64,
    /// Modification time in ms; must equal the file system's.
    pub timestamp: i64,
    /// File or archive.
    pub kind: LocalResourceType,
    /// Visibility.
    pub visibility: LocalResourceVisibility,
}

/// What to run in a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerLaunchContext {
    /// Command words (joined by spaces and run by bash).
    pub commands: Vec<String>,
    /// Environment.
    pub environment: BTreeMap<String, String>,
    /// Files to localise, by link name.
    pub local_resources: BTreeMap<String, LocalResource>,
    /// Credentials blob (`HDTS`); `None` sends no tokens field at all.
    pub tokens: Option<Vec<u8>>,
}

impl ContainerLaunchContext {
    pub(crate) fn to_proto(&self) -> pb::ContainerLaunchContextProto {
        pb::ContainerLaunchContextProto {
            local_resources: self
                .local_resources
                .iter()
                .map(|(k, r)| pb::StringLocalResourceMapProto {
                    key: Some(k.clone()),
                    value: Some(pb::LocalResourceProto {
                        resource: Some(pb::UrlProto {
                            scheme: Some(r.scheme.clone()),
                            host: Some(r.host.clone()),
                            port: Some(r.port),
                            file: Some(r.file.clone()),
                            user_info: None,
                        }),
                        size: Some(r.size),
                        timestamp: Some(r.timestamp),
                        r#type: Some(match r.kind {
                            LocalResourceType::Archive => pb::LocalResourceTypeProto::Archive,
                            LocalResourceType::File => pb::LocalResourceTypeProto::File,
                        } as i32),
                        visibility: Some(match r.visibility {
                            LocalResourceVisibility::Public => {
                                pb::LocalResourceVisibilityProto::Public
                            }
                            LocalResourceVisibility::Private => {
                                pb::LocalResourceVisibilityProto::Private
                            }
                            LocalResourceVisibility::Application => {
                                pb::LocalResourceVisibilityProto::Application
                            }
                        } as i32),
                        pattern: None,
                    }),
                })
                .collect(),
            tokens: self.tokens.clone(),
            service_data: vec![],
            environment: self
                .environment
                .iter()
                .map(|(k, v)| pb::StringStringMapProto {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            command: self.commands.clone(),
        }
    }
}

/// Everything `submitApplication` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationSubmissionContext {
    /// From `getNewApplication`.
    pub application_id: ApplicationId,
    /// Name shown by the RM.
    pub name: String,
    /// Queue (default `default`).
    pub queue: String,
    /// Application type (default `YARN`).
    pub application_type: String,
    /// Tags (YARN stores them in lower case).
    pub tags: Vec<String>,
    /// AM container resources.
    pub am_resource: Resource,
    /// AM launch context (ignored for unmanaged AMs).
    pub am_container: ContainerLaunchContext,
    /// 0 uses the cluster default.
    pub max_app_attempts: i32,
    /// Run the AM outside the cluster (the client gets the AMRMToken).
    pub unmanaged_am: bool,
    /// Application priority, if any.
    pub priority: Option<i32>,
    /// Whether the RM cancels the delegation tokens of the AM's launch context when the
    /// application ends (default true, as YARN's).
    pub cancel_tokens_when_complete: bool,
}

impl ApplicationSubmissionContext {
    /// A context with defaults: queue `default`, type `YARN`, one attempt
    /// count from the cluster, 1024 MiB / 1 core for the AM.
    pub fn new(application_id: ApplicationId, name: impl Into<String>) -> Self {
        ApplicationSubmissionContext {
            application_id,
            name: name.into(),
            queue: "default".into(),
            application_type: "YARN".into(),
            tags: vec![],
            am_resource: Resource::new(1024, 1),
            am_container: ContainerLaunchContext::default(),
            max_app_attempts: 0,
            unmanaged_am: false,
            priority: None,
            cancel_tokens_when_complete: true,
        }
    }

    pub(crate) fn to_proto(&self) -> pb::ApplicationSubmissionContextProto {
        pb::ApplicationSubmissionContextProto {
            application_id: Some(self.application_id.to_proto()),
            application_name: Some(self.name.clone()),
            queue: Some(self.queue.clone()),
            priority: self
                .priority
                .map(|p| pb::PriorityProto { priority: Some(p) }),
            am_container_spec: Some(self.am_container.to_proto()),
            cancel_tokens_when_complete: Some(self.cancel_tokens_when_complete),
            unmanaged_am: Some(self.unmanaged_am),
            max_app_attempts: Some(self.max_app_attempts),
            resource: Some(self.am_resource.to_proto()),
            application_type: Some(self.application_type.clone()),
            keep_containers_across_application_attempts: None,
            application_tags: self.tags.iter().map(|t| t.to_lowercase()).collect(),
        }
    }
}

/// A container the RM allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// Id.
    pub id: ContainerId,
    /// NodeManager to start it on.
    pub node_id: NodeId,
    /// NM web address.
    pub node_http_address: String,
    /// Resources.
    pub resource: Resource,
    /// Priority it was allocated at.
    pub priority: i32,
    /// `allocation_request_id` it was allocated for (-1 if none).
    pub allocation_request_id: i64,
    /// The container token (pass unchanged to `startContainers`).
    pub container_token: Option<Token>,
}

impl Container {
    pub(crate) fn from_proto(p: &pb::ContainerProto) -> Container {
        Container {
            id: p
                .id
                .as_ref()
                .map(ContainerId::from_proto)
                .unwrap_or_else(|| ContainerId::from_proto(&pb::ContainerIdProto::default())),
            node_id: p
                .node_id
                .as_ref()
                .map(NodeId::from_proto)
                .unwrap_or(NodeId {
                    host: String::new(),
                    port: 0,
                }),
            node_http_address: p.node_http_address().to_string(),
            resource: Resource::from_proto(p.resource.as_ref()),
            priority: p.priority.as_ref().map(|x| x.priority()).unwrap_or(0),
            allocation_request_id: p.allocation_request_id(),
            container_token: p.container_token.clone().map(Token::from_proto),
        }
    }
}

/// Exit status of a container whose status is not known.
pub const EXIT_STATUS_INVALID: i32 = -1000;
/// Exit status of a container released by the AM.
pub const EXIT_STATUS_ABORTED: i32 = -100;

/// State of a container as reported by the RM or an NM.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    /// Id.
    pub container_id: ContainerId,
    /// State.
    pub state: ContainerState,
    /// Diagnostics.
    pub diagnostics: String,
    /// Exit status (see `ContainerExitStatus`; -1000 if unknown).
    pub exit_status: i32,
}

impl ContainerStatus {
    pub(crate) fn from_proto(p: &pb::ContainerStatusProto) -> ContainerStatus {
        ContainerStatus {
            container_id: ContainerId::from_proto(
                p.container_id
                    .as_ref()
                    .unwrap_or(&pb::ContainerIdProto::default()),
            ),
            state: ContainerState::from_i32(p.state.unwrap_or(0)),
            diagnostics: p.diagnostics().to_string(),
            exit_status: p.exit_status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let app: ApplicationId = "application_1700000000000_0042".parse().expect("app");
        assert_eq!(app.id, 42);
        assert_eq!(app.to_string(), "application_1700000000000_0042");
        let c: ContainerId = "container_1700000000000_0042_01_000007".parse().expect("c");
        assert_eq!(c.id, 7);
        assert_eq!(
            c.attempt.to_string(),
            "appattempt_1700000000000_0042_000001"
        );
        assert_eq!(c.to_string(), "container_1700000000000_0042_01_000007");
        let e: ContainerId = "container_e17_1700000000000_0042_01_000007"
            .parse()
            .expect("e");
        assert_eq!(e.id >> 40, 17);
        assert_eq!(e.to_string(), "container_e17_1700000000000_0042_01_000007");
        assert!("application_x_1".parse::<ApplicationId>().is_err());
        assert!("container_1_2".parse::<ContainerId>().is_err());
    }

    #[test]
    fn states_parse() {
        assert_eq!(
            "running".parse::<ApplicationState>().expect("s"),
            ApplicationState::Running
        );
        assert_eq!(ApplicationState::from_i32(6), ApplicationState::Finished);
        assert_eq!(
            ApplicationState::from_i32(99),
            ApplicationState::Unknown(99)
        );
        assert_eq!(ApplicationState::Killed.to_i32(), 8);
        assert!(ApplicationState::Failed.is_terminal());
    }
}
