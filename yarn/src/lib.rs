//! Hadoop IPC, SASL and the three YARN protocols in Rust, without a JVM.
//!
//! `filex-yarn` (library name `yarn`) lets a Rust program act as a YARN
//! client (submit, watch and kill applications), as an ApplicationMaster
//! (register, heartbeat with a locality-aware ask table, finish) and as the
//! AM's NodeManager client (start and stop containers). It also reads HDFS
//! block locations from the NameNode, which the filex planner needs for
//! locality.
//!
//! `PROTOCOL.md` (beside this crate's `Cargo.toml`) describes what goes over the wire and
//! which Hadoop sources each part follows.
//!
//! # Layout
//!
//! - `ipc` (private): the sans-IO wire format (`frame`: preamble, 4-byte
//!   framing, RPC headers) and one multiplexed connection per server, with
//!   timeouts, reconnect and HA failover.
//! - `sasl` (private): a small mechanism trait, DIGEST-MD5 (qop auth,
//!   auth-int, auth-conf) for AMRM/NM tokens, GSSAPI (Kerberos, with MIT's
//!   `libgssapi_krb5` loaded at run time), and the one negotiation loop.
//! - [`kerberos`]: where tickets come from, `hadoop.rpc.protection` levels.
//! - [`config`]: `*-site.xml` loading with `${var}` substitution and typed
//!   accessors for the keys we read.
//! - [`credentials`]: the `HDTS` token storage file, both serialisations.
//! - [`delegation`]: delegation-token renewer and service names.
//! - [`environment`]: what the NodeManager tells a container (its id, NM,
//!   token file).
//! - [`records`]: ids, resources, reports and launch contexts — the crate's
//!   own types; no protobuf type is public.
//! - [`protocols`]: [`ApplicationClient`] (client → RM), [`AmRmClient`] and
//!   its [`AskTable`] (AM → RM), [`NmClient`] (AM → NM) and
//!   [`NameNodeClient`] (block locations).
//!
//! # Example
//!
//! ```no_run
//! use yarn::{ApplicationClient, ApplicationSubmissionContext, Config};
//!
//! # async fn run() -> yarn::Result<()> {
//! let config = Config::load(None)?; // HADOOP_CONF_DIR / YARN_CONF_DIR
//! let rm = ApplicationClient::new(&config)?;
//! let app = rm.get_new_application().await?;
//! let mut ctx = ApplicationSubmissionContext::new(app.application_id, "sleepy");
//! ctx.am_container.commands = vec!["/bin/sleep 2".into()];
//! rm.submit_application(&ctx).await?;
//! println!("{}", app.application_id);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod config;
pub mod credentials;
pub mod delegation;
pub mod environment;
mod error;
mod ipc;
pub mod kerberos;
mod proto;
pub mod protocols;
pub mod records;
mod sasl;
mod writable;

pub use config::Config;
pub use credentials::{Credentials, Token};
pub use environment::ContainerEnvironment;
pub use error::{exception_class, Error, RemoteException, Result};
pub use ipc::ConnectOptions as IpcOptions;
pub use kerberos::{KerberosCredentials, Qop};
pub use protocols::application_client::{ApplicationClient, ApplicationFilter, NewApplication};
pub use protocols::application_master::{
    AllocateResponse, AllocatedContainer, AmRmClient, RegisterResponse,
};
pub use protocols::ask::{AskTable, ContainerRequest};
pub use protocols::container_management::{BulkResult, ContainerFailure, NmClient};
pub use protocols::namenode::{
    BlockLocation, FileStatus, LocatedBlocks, LocatedEntry, NameNodeClient, PlacedBlock,
};
pub use records::{
    ApplicationAttemptId, ApplicationId, ApplicationReport, ApplicationState,
    ApplicationSubmissionContext, ClusterMetrics, Container, ContainerId, ContainerLaunchContext,
    ContainerState, ContainerStatus, FinalApplicationStatus, LocalResource, LocalResourceType,
    LocalResourceVisibility, NodeId, NodeReport, NodeState, QueueInfo, Resource,
};
pub use sasl::gssapi::check_credentials;
