//! The protocol clients: one private generic `call` each, one thin method
//! per RPC named after Hadoop's.

pub mod application_client;
pub mod application_master;
pub mod ask;
pub mod container_management;
pub mod namenode;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::ipc::Auth;
use crate::kerberos::Qop;

/// client → RM.
pub(crate) const APPLICATION_CLIENT_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ApplicationClientProtocolPB";
/// AM → RM.
pub(crate) const APPLICATION_MASTER_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB";
/// AM → NM.
pub(crate) const CONTAINER_MANAGEMENT_PROTOCOL: &str =
    "org.apache.hadoop.yarn.api.ContainerManagementProtocolPB";
/// client → NameNode.
pub(crate) const CLIENT_NAMENODE_PROTOCOL: &str = "org.apache.hadoop.hdfs.protocol.ClientProtocol";

/// The IPC authentication for a server whose Kerberos principal is under
/// `principal_key` (e.g. `yarn.resourcemanager.principal`): SIMPLE as
/// [`config::current_user`] on an insecure cluster, else Kerberos (GSSAPI)
/// with `hadoop.rpc.protection`.
pub(crate) fn ipc_auth(config: &Config, principal_key: &str) -> Result<Auth> {
    if !config.security_enabled() {
        let user = config::current_user().ok_or_else(|| Error::Config {
            key: "HADOOP_USER_NAME".into(),
            message: "cannot determine the user name (set HADOOP_USER_NAME or USER)".into(),
        })?;
        return Ok(Auth::Simple { user });
    }
    let principal = config
        .get(principal_key)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| Error::Config {
            key: principal_key.to_string(),
            message: "hadoop.security.authentication is kerberos, but the server's principal is not configured".into(),
        })?;
    let protection = Qop::parse_list(&config.get(config::RPC_PROTECTION).unwrap_or_default())
        .map_err(|message| Error::Config {
            key: config::RPC_PROTECTION.into(),
            message,
        })?;
    Ok(Auth::Kerberos {
        principal_key: principal_key.to_string(),
        principal: principal.trim().to_string(),
        protection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kerberized() -> Config {
        let mut c = Config::defaults();
        c.set(config::SECURITY_AUTHENTICATION, "kerberos");
        c
    }

    #[test]
    fn kerberos_without_the_server_principal_names_the_key() {
        let err = ipc_auth(&kerberized(), config::RM_PRINCIPAL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("yarn.resourcemanager.principal"), "{err}");
    }

    #[test]
    fn kerberos_auth_carries_principal_and_protection_in_order() {
        let mut c = kerberized();
        c.set(config::RM_PRINCIPAL, " rm/_HOST@EXAMPLE.COM ");
        c.set(config::RPC_PROTECTION, "privacy,integrity");
        match ipc_auth(&c, config::RM_PRINCIPAL).unwrap() {
            Auth::Kerberos {
                principal_key,
                principal,
                protection,
            } => {
                assert_eq!(principal_key, config::RM_PRINCIPAL);
                assert_eq!(principal, "rm/_HOST@EXAMPLE.COM");
                assert_eq!(protection, vec![Qop::Privacy, Qop::Integrity]);
            }
            other => panic!("expected Kerberos, got {other:?}"),
        }
        c.set(config::RPC_PROTECTION, "secret");
        let err = ipc_auth(&c, config::RM_PRINCIPAL).unwrap_err().to_string();
        assert!(err.contains("hadoop.rpc.protection"), "{err}");
    }

    #[test]
    fn simple_cluster_never_uses_kerberos() {
        // SIMPLE with the current user (or an error naming HADOOP_USER_NAME when there is
        // none), never Kerberos, even with a principal configured.
        let mut c = Config::defaults();
        c.set(config::RM_PRINCIPAL, "rm/_HOST@EXAMPLE.COM");
        assert!(!matches!(
            ipc_auth(&c, config::RM_PRINCIPAL),
            Ok(Auth::Kerberos { .. })
        ));
    }
}
