//! Where the running test cluster is and how to reach it.
//!
//! `scripts/cluster.sh start` leaves the harness's state in a directory (`FILEX_CLUSTER_DIR`,
//! default `<project>/target/cluster`); its `conf/cluster.env` holds the addresses as shell
//! `KEY=value` lines. The harness deletes `cluster.env` when it stops, but a killed JVM leaves
//! it behind, so [`Cluster::locate`] also checks that the addresses accept connections.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the cluster's state directory.
pub const CLUSTER_DIR_ENV: &str = "FILEX_CLUSTER_DIR";
/// What to tell a developer whose cluster is not running.
pub const START_HINT: &str = "start it with scripts/cluster.sh start";
/// State directory below the project root when `FILEX_CLUSTER_DIR` is unset.
pub const DEFAULT_CLUSTER_DIR: &str = "target/cluster";
/// The harness's facts file inside the conf directory.
pub const CLUSTER_ENV_FILE: &str = "cluster.env";

/// `cluster.env` keys.
pub const KEY_NAMENODE: &str = "FILEX_NAMENODE";
pub const KEY_WEBHDFS: &str = "FILEX_WEBHDFS";
pub const KEY_RM_ADDRESS: &str = "FILEX_RM_ADDRESS";
pub const KEY_RM_SCHEDULER_ADDRESS: &str = "FILEX_RM_SCHEDULER_ADDRESS";
pub const KEY_RM_WEBAPP: &str = "FILEX_RM_WEBAPP";
/// `cluster.env` keys of a secure (Kerberized) cluster: `FILEX_SECURE=1` and these.
pub const KEY_SECURE: &str = "FILEX_SECURE";
pub const KEY_REALM: &str = "FILEX_REALM";
pub const KEY_KRB5_CONFIG: &str = "FILEX_KRB5_CONFIG";
pub const KEY_SERVICE_PRINCIPAL: &str = "FILEX_SERVICE_PRINCIPAL";
pub const KEY_PRINCIPAL: &str = "FILEX_PRINCIPAL";
pub const KEY_KEYTAB: &str = "FILEX_KEYTAB";
pub const KEY_OTHER_PRINCIPAL: &str = "FILEX_OTHER_PRINCIPAL";
pub const KEY_OTHER_KEYTAB: &str = "FILEX_OTHER_KEYTAB";

/// Environment variable naming the secure cluster's state directory. Secure-cluster tests run
/// only when it is set (scripts/test.sh starts that cluster and sets it); set but unreachable
/// is a failure.
pub const SECURE_CLUSTER_DIR_ENV: &str = "FILEX_SECURE_CLUSTER_DIR";
/// How to start the secure cluster beside the plain one.
pub const SECURE_START_HINT: &str = "start it with FILEX_CLUSTER_SECURE=1 \
    FILEX_CLUSTER_DIR=target/secure-cluster scripts/cluster.sh start";

/// Environment variable naming the privacy-only secure cluster's state directory
/// (`FILEX_CLUSTER_PROTECTION=privacy`); its tests run only when it is set (scripts/test.sh
/// starts that cluster for them alone).
pub const PRIVACY_CLUSTER_DIR_ENV: &str = "FILEX_PRIVACY_CLUSTER_DIR";
/// How to start the privacy-only cluster.
pub const PRIVACY_START_HINT: &str = "start it with FILEX_CLUSTER_SECURE=1 \
    FILEX_CLUSTER_PROTECTION=privacy FILEX_CLUSTER_DIR=target/privacy-cluster scripts/cluster.sh start";

/// Environment variable naming the state directory of a secure cluster with short-lived
/// delegation tokens (`FILEX_CLUSTER_SHORT_TOKENS=1`: renewed every 30 s, 5 min at most);
/// its tests run only when it is set (scripts/test.sh starts that cluster for them alone).
pub const SHORT_TOKENS_CLUSTER_DIR_ENV: &str = "FILEX_SHORT_TOKENS_CLUSTER_DIR";
/// How to start the short-token cluster.
pub const SHORT_TOKENS_START_HINT: &str = "start it with FILEX_CLUSTER_SECURE=1 \
    FILEX_CLUSTER_SHORT_TOKENS=1 FILEX_CLUSTER_DIR=target/short-cluster scripts/cluster.sh start";

/// How long a liveness probe waits for one TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the cluster could not be located.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// `cluster.env` could not be read (usually: the cluster was never started, or stopped).
    EnvFile { path: PathBuf, source: io::Error },
    /// A line of `cluster.env` is not `KEY=value`.
    BadLine {
        path: PathBuf,
        line_no: usize,
        line: String,
    },
    /// A required key is missing from `cluster.env`.
    MissingKey { path: PathBuf, key: &'static str },
    /// A value is not `host:port` or `scheme://host:port[/...]` with a non-zero port.
    BadAddress { key: &'static str, value: String },
    /// Nothing accepts connections at an address the cluster published.
    Unreachable {
        key: &'static str,
        addr: String,
        source: io::Error,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::EnvFile { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ClusterError::BadLine {
                path,
                line_no,
                line,
            } => write!(
                f,
                "{}:{line_no}: expected KEY=value, got {line:?}",
                path.display()
            ),
            ClusterError::MissingKey { path, key } => {
                write!(f, "{} has no {key}", path.display())
            }
            ClusterError::BadAddress { key, value } => {
                write!(f, "{key}={value:?} is not an address with a port")
            }
            ClusterError::Unreachable { key, addr, source } => {
                write!(f, "{key} at {addr} does not accept connections: {source}")
            }
        }
    }
}

impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::EnvFile { source, .. } | ClusterError::Unreachable { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// The project root (the workspace directory holding `scripts/` and `integration/`).
pub fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cluster's state directory: `$FILEX_CLUSTER_DIR` if set and non-empty (a relative path
/// is taken against the project root, as `scripts/cluster.sh` does), else
/// `<project>/target/cluster`.
pub fn cluster_dir() -> PathBuf {
    match std::env::var_os(CLUSTER_DIR_ENV) {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join(DEFAULT_CLUSTER_DIR),
    }
}

/// The Hadoop conf directory written by the harness (`HADOOP_CONF_DIR` for clients).
pub fn conf_dir() -> PathBuf {
    cluster_dir().join("conf")
}

/// The addresses the harness published in `cluster.env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEnv {
    /// `hdfs://127.0.0.1:PORT` (`fs.defaultFS`).
    pub namenode: String,
    /// `http://127.0.0.1:PORT`, the NameNode HTTP server (WebHDFS under `/webhdfs/v1`).
    pub webhdfs: String,
    /// `127.0.0.1:PORT`, `yarn.resourcemanager.address` (client → RM).
    pub rm_address: String,
    /// `127.0.0.1:PORT`, `yarn.resourcemanager.scheduler.address` (AM → RM).
    pub rm_scheduler_address: String,
    /// `http://127.0.0.1:PORT`, the RM web UI and REST API (`/ws/v1/cluster/...`).
    pub rm_webapp: String,
    /// The Kerberos facts of a secure cluster (`FILEX_SECURE=1`), else `None`.
    pub secure: Option<SecureEnv>,
}

/// What a client of the secure cluster needs: the KDC's krb5.conf and the users' keytabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureEnv {
    /// `EXAMPLE.COM`.
    pub realm: String,
    /// krb5.conf for MIT clients (`KRB5_CONFIG`).
    pub krb5_config: PathBuf,
    /// The principal every daemon runs as (`hdfs/localhost@REALM`).
    pub service_principal: String,
    /// The submitter (`filex@REALM`) and its keytab.
    pub principal: String,
    pub keytab: PathBuf,
    /// A second user (`other@REALM`) and its keytab, for negative tests.
    pub other_principal: String,
    pub other_keytab: PathBuf,
}

impl ClusterEnv {
    /// Reads and parses a `cluster.env` file.
    pub fn load(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::EnvFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `KEY=value` lines; blank lines and `#` comments are skipped, one level of
    /// surrounding quotes is removed. `path` only labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ClusterError> {
        let vars = parse_env_lines(path, text)?;
        let get = |key: &'static str| -> Result<String, ClusterError> {
            let value = vars.get(key).ok_or_else(|| ClusterError::MissingKey {
                path: path.to_path_buf(),
                key,
            })?;
            host_port(value).ok_or_else(|| ClusterError::BadAddress {
                key,
                value: value.clone(),
            })?;
            Ok(value.clone())
        };
        let secure = if vars.get(KEY_SECURE).map(String::as_str) == Some("1") {
            let text = |key: &'static str| -> Result<String, ClusterError> {
                vars.get(key)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or_else(|| ClusterError::MissingKey {
                        path: path.to_path_buf(),
                        key,
                    })
            };
            Some(SecureEnv {
                realm: text(KEY_REALM)?,
                krb5_config: text(KEY_KRB5_CONFIG)?.into(),
                service_principal: text(KEY_SERVICE_PRINCIPAL)?,
                principal: text(KEY_PRINCIPAL)?,
                keytab: text(KEY_KEYTAB)?.into(),
                other_principal: text(KEY_OTHER_PRINCIPAL)?,
                other_keytab: text(KEY_OTHER_KEYTAB)?.into(),
            })
        } else {
            None
        };
        Ok(ClusterEnv {
            secure,
            namenode: get(KEY_NAMENODE)?,
            webhdfs: get(KEY_WEBHDFS)?,
            rm_address: get(KEY_RM_ADDRESS)?,
            rm_scheduler_address: get(KEY_RM_SCHEDULER_ADDRESS)?,
            rm_webapp: get(KEY_RM_WEBAPP)?,
        })
    }

    /// Every published address with its key, in file order.
    pub fn addresses(&self) -> [(&'static str, &str); 5] {
        [
            (KEY_NAMENODE, &self.namenode),
            (KEY_WEBHDFS, &self.webhdfs),
            (KEY_RM_ADDRESS, &self.rm_address),
            (KEY_RM_SCHEDULER_ADDRESS, &self.rm_scheduler_address),
            (KEY_RM_WEBAPP, &self.rm_webapp),
        ]
    }
}

fn parse_env_lines(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ClusterError> {
    let mut vars = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(ClusterError::BadLine {
                path: path.to_path_buf(),
                line_no: i + 1,
                line: raw.to_string(),
            });
        };
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.insert(key.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

/// Splits `host:port`, `scheme://host:port` or `scheme://host:port/path` into host and a
/// non-zero port.
pub fn host_port(addr: &str) -> Option<(String, u16)> {
    let rest = addr.split_once("://").map_or(addr, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.trim_matches(['[', ']']).to_string(), port))
}

/// A located, reachable test cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The state directory (`FILEX_CLUSTER_DIR`).
    pub dir: PathBuf,
    /// The Hadoop conf directory (`HADOOP_CONF_DIR` / `YARN_CONF_DIR` for clients).
    pub conf_dir: PathBuf,
    /// The published addresses.
    pub env: ClusterEnv,
}

impl Cluster {
    /// Reads `cluster.env` from [`conf_dir`] and checks that every published address accepts
    /// a TCP connection.
    pub fn locate() -> Result<Self, ClusterError> {
        Self::locate_in(&cluster_dir())
    }

    /// As [`Cluster::locate`], for an explicit state directory.
    pub fn locate_in(dir: &Path) -> Result<Self, ClusterError> {
        let conf_dir = dir.join("conf");
        let env = ClusterEnv::load(&conf_dir.join(CLUSTER_ENV_FILE))?;
        for (key, addr) in env.addresses() {
            probe(key, addr)?;
        }
        Ok(Cluster {
            dir: dir.to_path_buf(),
            conf_dir,
            env,
        })
    }

    /// Path of a file in the conf directory, e.g. `site_file("yarn-site.xml")`.
    pub fn site_file(&self, name: &str) -> PathBuf {
        self.conf_dir.join(name)
    }
}

fn probe(key: &'static str, addr: &str) -> Result<(), ClusterError> {
    let (host, port) = host_port(addr).ok_or_else(|| ClusterError::BadAddress {
        key,
        value: addr.to_string(),
    })?;
    let unreachable = |source| ClusterError::Unreachable {
        key,
        addr: addr.to_string(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolved to no address");
    for sock in (host.as_str(), port)
        .to_socket_addrs()
        .map_err(unreachable)?
    {
        match TcpStream::connect_timeout(&sock, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(unreachable(last))
}

/// The running secure cluster named by `FILEX_SECURE_CLUSTER_DIR`, or `None` when that is
/// unset (the caller then skips, saying so). Set but not running, or not secure, panics.
pub fn secure_cluster() -> Option<Cluster> {
    secure_cluster_named_by(SECURE_CLUSTER_DIR_ENV, SECURE_START_HINT)
}

/// The running privacy-only secure cluster (`FILEX_CLUSTER_PROTECTION=privacy`) named by
/// `FILEX_PRIVACY_CLUSTER_DIR`, or `None` when that is unset; as [`secure_cluster`].
pub fn privacy_cluster() -> Option<Cluster> {
    secure_cluster_named_by(PRIVACY_CLUSTER_DIR_ENV, PRIVACY_START_HINT)
}

/// The running secure cluster with short-lived delegation tokens named by
/// `FILEX_SHORT_TOKENS_CLUSTER_DIR`, or `None` when that is unset; as [`secure_cluster`].
pub fn short_tokens_cluster() -> Option<Cluster> {
    secure_cluster_named_by(SHORT_TOKENS_CLUSTER_DIR_ENV, SHORT_TOKENS_START_HINT)
}

/// The running secure cluster whose state directory `var` names (`None`: unset); set but not
/// running, or not secure, panics with `start` (how to start it).
fn secure_cluster_named_by(var: &str, start: &str) -> Option<Cluster> {
    let dir = std::env::var_os(var).filter(|d| !d.is_empty())?;
    let dir = project_root().join(dir);
    match Cluster::locate_in(&dir) {
        Ok(cluster) if cluster.env.secure.is_some() => Some(cluster),
        Ok(_) => panic!(
            "{var}={} names a cluster that is not secure; {start}",
            dir.display()
        ),
        Err(e) => panic!(
            "the secure test cluster is not running ({e}) [{var}={}]; {start}",
            dir.display()
        ),
    }
}

/// The running cluster, or a panic that says how to start it. Call this first in every test
/// that needs the cluster: a missing cluster is a failure, never a silent skip.
pub fn require_cluster() -> Cluster {
    match Cluster::locate() {
        Ok(cluster) => cluster,
        Err(e) => panic!(
            "the filex test cluster is not running ({e}) [cluster dir: {}]; {START_HINT}",
            cluster_dir().display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Written by the filex test cluster\n\
        FILEX_NAMENODE=hdfs://127.0.0.1:40001\n\
        FILEX_WEBHDFS=http://127.0.0.1:40002\n\
        \n\
        FILEX_RM_ADDRESS=127.0.0.1:40003\n\
        export FILEX_RM_SCHEDULER_ADDRESS='127.0.0.1:40004'\n\
        FILEX_RM_WEBAPP=\"http://127.0.0.1:40005\"\n";

    #[test]
    fn parses_cluster_env() {
        let env = ClusterEnv::parse(Path::new("cluster.env"), SAMPLE).unwrap();
        assert_eq!(env.namenode, "hdfs://127.0.0.1:40001");
        assert_eq!(env.webhdfs, "http://127.0.0.1:40002");
        assert_eq!(env.rm_address, "127.0.0.1:40003");
        assert_eq!(env.rm_scheduler_address, "127.0.0.1:40004");
        assert_eq!(env.rm_webapp, "http://127.0.0.1:40005");
    }

    #[test]
    fn plain_cluster_has_no_secure_facts() {
        let env = ClusterEnv::parse(Path::new("cluster.env"), SAMPLE).unwrap();
        assert_eq!(env.secure, None);
    }

    #[test]
    fn parses_secure_facts() {
        let text = format!(
            "{SAMPLE}FILEX_SECURE=1\nFILEX_REALM=EXAMPLE.COM\nFILEX_KRB5_CONFIG=/c/krb5.conf\n\
             FILEX_SERVICE_PRINCIPAL=hdfs/localhost@EXAMPLE.COM\n\
             FILEX_PRINCIPAL=filex@EXAMPLE.COM\nFILEX_KEYTAB=/c/filex.keytab\n\
             FILEX_OTHER_PRINCIPAL=other@EXAMPLE.COM\nFILEX_OTHER_KEYTAB=/c/other.keytab\n"
        );
        let secure = ClusterEnv::parse(Path::new("c.env"), &text)
            .unwrap()
            .secure
            .unwrap();
        assert_eq!(secure.principal, "filex@EXAMPLE.COM");
        assert_eq!(secure.keytab, PathBuf::from("/c/filex.keytab"));
        assert_eq!(secure.krb5_config, PathBuf::from("/c/krb5.conf"));
        let missing = text.replace("FILEX_KEYTAB=/c/filex.keytab\n", "");
        let err = ClusterEnv::parse(Path::new("c.env"), &missing).unwrap_err();
        assert!(
            matches!(err, ClusterError::MissingKey { key, .. } if key == KEY_KEYTAB),
            "{err}"
        );
    }

    #[test]
    fn missing_key_is_named() {
        let text = SAMPLE.replace("FILEX_RM_ADDRESS=127.0.0.1:40003\n", "");
        let err = ClusterEnv::parse(Path::new("c.env"), &text).unwrap_err();
        assert!(
            matches!(err, ClusterError::MissingKey { key, .. } if key == KEY_RM_ADDRESS),
            "{err}"
        );
    }

    #[test]
    fn zero_port_is_rejected() {
        let text = SAMPLE.replace("127.0.0.1:40003", "127.0.0.1:0");
        let err = ClusterEnv::parse(Path::new("c.env"), &text).unwrap_err();
        assert!(matches!(err, ClusterError::BadAddress { .. }), "{err}");
    }

    #[test]
    fn bad_line_reports_its_number() {
        let err = ClusterEnv::parse(Path::new("c.env"), "\nnonsense\n").unwrap_err();
        assert!(
            matches!(err, ClusterError::BadLine { line_no: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(
            host_port("127.0.0.1:8032"),
            Some(("127.0.0.1".into(), 8032))
        );
        assert_eq!(
            host_port("http://localhost:9870/webhdfs/v1/"),
            Some(("localhost".into(), 9870))
        );
        assert_eq!(host_port("hdfs://[::1]:8020"), Some(("::1".into(), 8020)));
        assert_eq!(host_port("localhost"), None);
        assert_eq!(host_port("localhost:0"), None);
    }

    #[test]
    fn missing_cluster_dir_is_an_env_file_error() {
        let err = Cluster::locate_in(Path::new("/nonexistent/filex-cluster")).unwrap_err();
        assert!(matches!(err, ClusterError::EnvFile { .. }), "{err}");
    }
}
