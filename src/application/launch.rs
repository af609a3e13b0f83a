//! Container launch contexts: the AM's (built by the client) and the workers' (built by the
//! AM). Both run the same localized `filex` executable with the client's effective
//! configuration (one `core-site.xml`) as `HADOOP_CONF_DIR`, and get the application's
//! credentials.

use std::collections::BTreeMap;

use yarn::{ContainerLaunchContext, LocalResource, LocalResourceType, LocalResourceVisibility};

use super::spec::{StagedFile, Visibility};
use super::{BINARY, SPEC_FILE};

/// `<LOG_DIR>`: the NodeManager replaces it with the container's log directory.
const LOG_DIR: &str = "<LOG_DIR>";
/// MIT Kerberos's configuration file variable.
const KRB5_CONFIG: &str = "KRB5_CONFIG";

/// The YARN form of a staged file.
pub fn local_resource(f: &StagedFile) -> LocalResource {
    LocalResource {
        scheme: "hdfs".into(),
        host: f.host.clone(),
        port: f.port,
        file: f.path.clone(),
        size: f.size as i64,
        timestamp: f.timestamp as i64,
        kind: LocalResourceType::File,
        visibility: match f.visibility {
            Visibility::Public => LocalResourceVisibility::Public,
            Visibility::Private => LocalResourceVisibility::Private,
            Visibility::Application => LocalResourceVisibility::Application,
        },
    }
}

fn environment() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    // The configuration file is localized into the working directory.
    env.insert("HADOOP_CONF_DIR".to_string(), "$PWD".to_string());
    env.insert("YARN_CONF_DIR".to_string(), "$PWD".to_string());
    env.insert(
        "FILEX_LOG".to_string(),
        std::env::var("FILEX_LOG").unwrap_or_else(|_| "info".to_string()),
    );
    // The AM and workers log as the client was asked to (`FILEX_LOG_FORMAT=json`).
    if let Ok(format) = std::env::var("FILEX_LOG_FORMAT") {
        env.insert("FILEX_LOG_FORMAT".to_string(), format);
    }
    // The test hooks travel client → AM → workers, in builds that have them.
    #[cfg(feature = "fault-injection")]
    for key in crate::fault::ENV_VARS {
        if let Ok(v) = std::env::var(key) {
            env.insert(key.to_string(), v);
        }
    }
    env
}

fn redirect(command: String) -> String {
    format!("{command} 1>{LOG_DIR}/stdout 2>{LOG_DIR}/stderr")
}

/// The AM container: `filex am --spec filex-app.json`. An AM that logs in from a shipped
/// keytab (`kerberos_login`) finds the KDC as the client did: the client's `KRB5_CONFIG`
/// (a path) when it has one, else the node's `/etc/krb5.conf`.
pub fn am_context(
    files: &[StagedFile],
    credentials: Vec<u8>,
    kerberos_login: bool,
) -> ContainerLaunchContext {
    let mut environment = environment();
    if kerberos_login {
        if let Ok(krb5) = std::env::var(KRB5_CONFIG) {
            environment.insert(KRB5_CONFIG.to_string(), krb5);
        }
    }
    ContainerLaunchContext {
        commands: vec![redirect(format!("./{BINARY} am --spec {SPEC_FILE}"))],
        environment,
        local_resources: files
            .iter()
            .map(|f| (f.name.clone(), local_resource(f)))
            .collect(),
        tokens: Some(credentials),
    }
}

/// A worker container: `filex worker --connect <coordinator> --id <container>`, the
/// secret read from the container credentials.
pub fn worker_context(
    files: &[StagedFile],
    credentials: Vec<u8>,
    coordinator: &str,
    worker_id: &str,
    host: &str,
) -> ContainerLaunchContext {
    ContainerLaunchContext {
        commands: vec![redirect(format!(
            "./{BINARY} worker --connect {coordinator} --id {worker_id} --host {host} --secret-from-credentials"
        ))],
        environment: environment(),
        local_resources: files
            .iter()
            .map(|f| (f.name.clone(), local_resource(f)))
            .collect(),
        tokens: Some(credentials),
    }
}
