//! filex as a YARN application: the client (`filex submit`), the application master
//! (`filex am`, started by YARN) and the launch of worker containers that run the same
//! tasks as the embedded mode through the coordinator of [`crate::cluster::remote`].
//!
//! The client caches its own executable on HDFS by its SHA-256 (`lib_cache`, shared across
//! applications), uploads the resolved job and the cluster configuration to a private
//! staging directory (`/user/<user>/.filexStaging/<application id>`), and
//! puts a per-application secret into the AM container's credentials; the AM hands the same
//! credentials (without its AMRMToken) to the workers, which prove the secret to the
//! coordinator. The secret never appears in argv, environment or logs.

pub mod fleet;
pub mod fleet_state;
pub mod launch;
pub mod lib_cache;
pub mod master;
pub mod spec;
pub mod staging;
pub mod status;
pub mod submit;

/// Alias of the worker secret in the containers' credentials.
pub const SECRET_ALIAS: &str = "filex.worker.secret";
/// YARN application type of filex applications.
pub const APPLICATION_TYPE: &str = "FILEX";
/// Link names of the localized files in every container.
pub const BINARY: &str = "filex";
pub const SPEC_FILE: &str = "filex-app.json";

/// Reads the worker secret from the container's credentials (`HADOOP_TOKEN_FILE_LOCATION`).
pub fn secret_from_credentials() -> anyhow::Result<String> {
    use anyhow::Context;
    let creds = yarn::Credentials::from_env()
        .context("cannot read the container credentials")?
        .context("HADOOP_TOKEN_FILE_LOCATION is not set: not running in a YARN container")?;
    let secret = creds
        .secrets
        .iter()
        .find(|(alias, _)| alias == SECRET_ALIAS)
        .map(|(_, s)| s.clone())
        .context("the container credentials hold no filex worker secret")?;
    String::from_utf8(secret).context("the filex worker secret is not text")
}
