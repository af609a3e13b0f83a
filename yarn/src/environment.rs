//! What the NodeManager tells a container about itself through its
//! environment (PROTOCOL.md section 6.1), read once into a typed value.
//! An ApplicationMaster uses it to learn its attempt id, its NodeManager and
//! where its credentials are.

use std::path::PathBuf;

use crate::credentials::{Credentials, TOKEN_FILE_ENV};
use crate::error::{Error, Result};
use crate::records::{ApplicationAttemptId, ContainerId};

/// `CONTAINER_ID`.
pub const CONTAINER_ID_ENV: &str = "CONTAINER_ID";
/// `NM_HOST`.
pub const NM_HOST_ENV: &str = "NM_HOST";
/// `NM_PORT`.
pub const NM_PORT_ENV: &str = "NM_PORT";
/// `NM_HTTP_PORT`.
pub const NM_HTTP_PORT_ENV: &str = "NM_HTTP_PORT";
/// `LOG_DIRS` (comma list).
pub const LOG_DIRS_ENV: &str = "LOG_DIRS";
/// `LOCAL_DIRS` (comma list).
pub const LOCAL_DIRS_ENV: &str = "LOCAL_DIRS";
/// `USER`: the application submitter.
pub const USER_ENV: &str = "USER";

/// A container's view of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEnvironment {
    /// This container.
    pub container_id: ContainerId,
    /// NodeManager host.
    pub nm_host: String,
    /// NodeManager RPC port.
    pub nm_port: u16,
    /// NodeManager web port.
    pub nm_http_port: Option<u16>,
    /// Log directories of this container.
    pub log_dirs: Vec<PathBuf>,
    /// Application-scoped local directories.
    pub local_dirs: Vec<PathBuf>,
    /// The submitting user (use it as the HDFS user).
    pub user: Option<String>,
    /// `HADOOP_TOKEN_FILE_LOCATION`.
    pub token_file: Option<PathBuf>,
}

impl ContainerEnvironment {
    /// Reads the process environment.
    pub fn from_env() -> Result<ContainerEnvironment> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from any lookup (for tests and embedding).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ContainerEnvironment> {
        let need = |k: &str| {
            get(k).ok_or_else(|| Error::Config {
                key: k.to_string(),
                message: "environment variable not set (not running in a YARN container?)".into(),
            })
        };
        let port = |k: &str, v: String| {
            v.parse::<u16>().map_err(|_| Error::Parse {
                what: "port",
                value: format!("{k}={v}"),
            })
        };
        let dirs = |k: &str| {
            get(k)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(ContainerEnvironment {
            container_id: need(CONTAINER_ID_ENV)?.parse()?,
            nm_host: need(NM_HOST_ENV)?,
            nm_port: port(NM_PORT_ENV, need(NM_PORT_ENV)?)?,
            nm_http_port: match get(NM_HTTP_PORT_ENV) {
                Some(v) => Some(port(NM_HTTP_PORT_ENV, v)?),
                None => None,
            },
            log_dirs: dirs(LOG_DIRS_ENV),
            local_dirs: dirs(LOCAL_DIRS_ENV),
            user: get(USER_ENV).filter(|u| !u.is_empty()),
            token_file: get(TOKEN_FILE_ENV).map(PathBuf::from),
        })
    }

    /// The application attempt this container belongs to.
    pub fn attempt_id(&self) -> ApplicationAttemptId {
        self.container_id.attempt
    }

    /// The container's credentials, if a token file was given.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        self.token_file
            .as_ref()
            .map(Credentials::read_file)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn reads_the_nm_environment() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("CONTAINER_ID", "container_e02_1700000000000_0003_01_000001"),
            ("NM_HOST", "nm1"),
            ("NM_PORT", "45454"),
            ("NM_HTTP_PORT", "8042"),
            ("LOG_DIRS", "/logs/a,/logs/b"),
            ("USER", "alice"),
            ("HADOOP_TOKEN_FILE_LOCATION", "/data/nm/container_tokens"),
        ]);
        let e =
            ContainerEnvironment::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("env");
        assert_eq!(
            e.attempt_id().to_string(),
            "appattempt_1700000000000_0003_000001"
        );
        assert_eq!(e.nm_port, 45454);
        assert_eq!(e.log_dirs.len(), 2);
        assert_eq!(e.user.as_deref(), Some("alice"));
        let missing = ContainerEnvironment::from_lookup(|_| None).expect_err("missing");
        assert!(missing.to_string().contains("CONTAINER_ID"));
        let bad = ContainerEnvironment::from_lookup(|k| match k {
            "NM_PORT" => Some("x".into()),
            _ => env.get(k).map(|v| v.to_string()),
        })
        .expect_err("bad port");
        assert!(bad.to_string().contains("NM_PORT=x"));
    }
}
