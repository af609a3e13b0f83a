//! filex as a YARN application: the client (`filex submit`), the application master
//! (`filex am`, started by YARN) and the launch of worker containers that run the same
//! tasks as the embedded mode through the coordinator of [`crate::cluster::remote`].
//!
//! The client caches its own executable on HDFS by its SHA-256 (`lib_cache`, shared across
//! applications), uploads the resolved job and the cluster configuration (without any S3A
//! secret) to a private staging directory on HDFS
//! (`/user/<user>/.filexStaging/<application id>`), and puts a per-application secret and,
//! for an object-store output, the object-store credentials it resolved into the AM
//! container's credentials; the AM hands the same credentials (without its AMRMToken) to the
//! workers ([`crate::cluster::handoff`]), which prove the secret to the coordinator and write
//! with those credentials. On a Kerberized cluster the client also puts delegation tokens for
//! every NameNode the job touches and for the ResourceManager there ([`tokens`]); the AM
//! passes them on to the workers too. None of them appears in argv, environment, staged
//! files or logs.

pub mod cleanup;
pub mod fleet;
pub mod fleet_state;
pub mod journal;
pub mod launch;
pub mod lib_cache;
pub mod master;
pub mod spec;
pub mod staging;
pub mod status;
pub mod submit;
pub mod tokens;

/// YARN application type of filex applications.
pub const APPLICATION_TYPE: &str = "FILEX";
/// Link names of the localized files in every container.
pub const BINARY: &str = "filex";
pub const SPEC_FILE: &str = "filex-app.json";
/// The submitter's keytab in the staging directory and the AM's container (`--keytab`).
pub const KEYTAB_FILE: &str = "filex-am.keytab";
