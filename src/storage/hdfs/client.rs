//! The bridge from filex's blocking storage traits to the async `hdfs-native` client: one
//! tokio runtime owned by this module, one client per NameNode authority (cached for the
//! process), every call bounded by a timeout, and every failure turned into one
//! [`HdfsFailure`] that says what went wrong without repeating the path (callers add it).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hdfs_native::{Client, ClientBuilder, HdfsError};
use parking_lot::Mutex;
use tokio::runtime::Runtime;

use super::conf;
use super::viewfs::{self, MountTable, ViewFsError};

/// Bound on one metadata call (list, stat, create, rename, delete, open): an unreachable or
/// hung NameNode fails within this time instead of hanging the run.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on moving one chunk of data (reads, writes, closing a file with its pipeline).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the TCP probe of a NameNode address may take before the first call.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a NameNode could not be reached, later calls fail at once for this long rather than
/// each waiting out its own timeout (cleanup after a failed run would otherwise take minutes).
const UNREACHABLE_MEMORY: Duration = Duration::from_secs(60);
/// Worker threads of the I/O runtime (the work is network waits and packet checksums): one
/// per core, within these bounds.
const IO_THREADS: (usize, usize) = (2, 8);

/// Why an HDFS operation failed. Displays without the path; the caller names it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HdfsFailure {
    #[error("cannot reach NameNode {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("no answer from NameNode {addr} within {} s", timeout.as_secs())]
    NameNodeTimeout { addr: String, timeout: Duration },
    #[error("reading or writing data timed out after {} s", timeout.as_secs())]
    DataTimeout { timeout: Duration },
    #[error("no such file or directory")]
    NotFound,
    /// `detail` is the NameNode's explanation (user, access, inode) without its own
    /// "Permission denied:" prefix.
    #[error("permission denied ({detail})")]
    PermissionDenied { detail: String },
    #[error("already exists")]
    AlreadyExists,
    /// The NameNode refused the delegation token this process authenticates with
    /// (`SecretManager$InvalidToken`): it expired (nobody renewed it in time, or it passed its
    /// maximum lifetime) or was cancelled. `detail` is the NameNode's message.
    #[error(
        "the NameNode refused the delegation token ({detail}): it has expired or was \
         cancelled; run again with fresh credentials (kinit, --principal/--keytab, or a new \
         launch by the scheduler that hands out tokens), and submit jobs that outlive the \
         tokens with --keytab"
    )]
    TokenRefused { detail: String },
    #[error("{class}: {message}")]
    Remote { class: String, message: String },
    #[error("{0}")]
    Client(String),
    #[error("HDFS client setup: {0}")]
    Setup(String),
    /// A `viewfs://` path the mount table cannot serve.
    #[error("{0}")]
    View(#[from] ViewFsError),
}

impl HdfsFailure {
    /// The closest `io::ErrorKind`, for the `std::io` based scratch interface.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            HdfsFailure::Unreachable { .. } => io::ErrorKind::ConnectionRefused,
            HdfsFailure::NameNodeTimeout { .. } | HdfsFailure::DataTimeout { .. } => {
                io::ErrorKind::TimedOut
            }
            HdfsFailure::NotFound => io::ErrorKind::NotFound,
            HdfsFailure::PermissionDenied { .. } | HdfsFailure::TokenRefused { .. } => {
                io::ErrorKind::PermissionDenied
            }
            HdfsFailure::AlreadyExists => io::ErrorKind::AlreadyExists,
            HdfsFailure::Remote { .. }
            | HdfsFailure::Client(_)
            | HdfsFailure::Setup(_)
            | HdfsFailure::View(_) => io::ErrorKind::Other,
        }
    }

    /// An `io::Error` whose message is `<url>: <failure>`.
    pub fn into_io(self, url: &str) -> io::Error {
        io::Error::new(self.kind(), format!("{url}: {self}"))
    }

    /// Classifies an error of a data transfer (reading or writing blocks): connection
    /// failures there are DataNode failures, not the NameNode's.
    pub fn from_data(e: HdfsError) -> HdfsFailure {
        match e {
            HdfsError::IOError(io) => HdfsFailure::Client(format!("DataNode I/O: {io}")),
            other => HdfsFailure::from_client(other, "?"),
        }
    }

    /// Classifies an `hdfs-native` error; `addr` names the NameNode for connection failures.
    pub fn from_client(e: HdfsError, addr: &str) -> HdfsFailure {
        match e {
            HdfsError::FileNotFound(_) => HdfsFailure::NotFound,
            HdfsError::AlreadyExists(_) => HdfsFailure::AlreadyExists,
            HdfsError::RPCError(class, message) | HdfsError::FatalRPCError(class, message) => {
                remote(&class, &message)
            }
            HdfsError::IOError(io) if is_connect_error(io.kind()) => HdfsFailure::Unreachable {
                addr: addr.to_string(),
                reason: io.to_string(),
            },
            other => HdfsFailure::Client(other.to_string()),
        }
    }
}

/// Maps a Java exception class from a `RemoteException` to a failure.
fn remote(class: &str, message: &str) -> HdfsFailure {
    let short = class.rsplit('.').next().unwrap_or(class);
    let first_line = message.lines().next().unwrap_or("").trim().to_string();
    match short {
        "FileNotFoundException" => HdfsFailure::NotFound,
        "AccessControlException" | "AuthorizationException" => {
            let detail = first_line
                .strip_prefix("Permission denied:")
                .map(str::trim)
                .unwrap_or(&first_line)
                .to_string();
            HdfsFailure::PermissionDenied { detail }
        }
        "FileAlreadyExistsException" => HdfsFailure::AlreadyExists,
        "SecretManager$InvalidToken" | "InvalidToken" => {
            HdfsFailure::TokenRefused { detail: first_line }
        }
        _ => HdfsFailure::Remote {
            class: short.to_string(),
            message: first_line,
        },
    }
}

fn is_connect_error(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

/// The runtime all HDFS futures run on. Built on first use; a failure to build it is kept
/// and reported by every call.
fn runtime() -> Result<&'static Runtime, HdfsFailure> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(
                    std::thread::available_parallelism()
                        .map_or(IO_THREADS.0, |n| n.get())
                        .clamp(IO_THREADS.0, IO_THREADS.1),
                )
                .thread_name("filex-hdfs")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| HdfsFailure::Setup(e.clone()))
}

/// Runs `fut` to completion on the module's runtime from a blocking caller. Returns
/// `Ok(None)` on timeout. Calling this from inside an async runtime is a setup error, not a
/// panic.
pub fn block_on<F: Future>(timeout: Duration, fut: F) -> Result<Option<F::Output>, HdfsFailure> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(HdfsFailure::Setup(
            "blocking HDFS call made from inside an async runtime".into(),
        ));
    }
    let rt = runtime()?;
    Ok(rt.block_on(async { tokio::time::timeout(timeout, fut).await.ok() }))
}

/// Spawns `fut` on the module's runtime (for read-ahead).
pub fn spawn<F>(fut: F) -> Result<tokio::task::JoinHandle<F::Output>, HdfsFailure>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(runtime()?.spawn(fut))
}

/// One NameNode (or name service) and the client talking to it.
pub struct NameNode {
    pub client: Client,
    /// `hdfs://<authority>` as resolved (the default file system's when the URL had none).
    pub base_url: String,
    /// What messages call it: `host:port`, or `ns (h1:8020, h2:8020)` for a name service.
    pub addr: String,
    /// WebHDFS base URLs to try for block locations, best first.
    pub webhdfs: Vec<String>,
    /// The Hadoop configuration the client was built with.
    pub config: Arc<yarn::Config>,
}

impl NameNode {
    /// The `hdfs://` URL of `path` on this NameNode.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The NameNode's host and port (`-1`: none given), as YARN's URLs of localized
    /// files name them.
    pub fn host_port(&self) -> (String, i32) {
        let authority = self.base_url.trim_start_matches("hdfs://");
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(-1)),
            None => (authority.to_string(), -1),
        }
    }

    /// Runs one metadata call with [`RPC_TIMEOUT`]. A timeout or connection failure is
    /// remembered so that the next calls to this NameNode fail at once.
    pub fn call<T, F>(&self, fut: F) -> Result<T, HdfsFailure>
    where
        F: Future<Output = Result<T, HdfsError>>,
    {
        if let Some(failure) = recently_unreachable(&self.key()) {
            return Err(failure);
        }
        match block_on(RPC_TIMEOUT, fut)? {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => {
                let failure = HdfsFailure::from_client(e, &self.addr);
                if matches!(failure, HdfsFailure::Unreachable { .. }) {
                    remember_unreachable(&self.key(), &failure);
                }
                Err(failure)
            }
            None => {
                let failure = HdfsFailure::NameNodeTimeout {
                    addr: self.addr.clone(),
                    timeout: RPC_TIMEOUT,
                };
                remember_unreachable(&self.key(), &failure);
                Err(failure)
            }
        }
    }

    fn key(&self) -> Option<String> {
        Some(self.base_url.trim_start_matches("hdfs://").to_string())
    }
}

type Cache = Mutex<HashMap<Option<String>, Arc<NameNode>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// NameNodes that could not be reached lately: when, and why.
type Down = Mutex<HashMap<Option<String>, (Instant, HdfsFailure)>>;

fn unreachable() -> &'static Down {
    static DOWN: OnceLock<Down> = OnceLock::new();
    DOWN.get_or_init(|| Mutex::new(HashMap::new()))
}

fn remember_unreachable(key: &Option<String>, failure: &HdfsFailure) {
    unreachable()
        .lock()
        .insert(key.clone(), (Instant::now(), failure.clone()));
}

fn recently_unreachable(key: &Option<String>) -> Option<HdfsFailure> {
    let mut down = unreachable().lock();
    match down.get(key) {
        Some((at, failure)) if at.elapsed() < UNREACHABLE_MEMORY => Some(failure.clone()),
        Some(_) => {
            down.remove(key);
            None
        }
        None => None,
    }
}

/// `--principal P --keytab K`: the Kerberos identity of this process's HDFS clients, set
/// before the first one is built. Unset, hdfs-native uses the ticket cache (or, in a YARN
/// container, the delegation tokens of `HADOOP_TOKEN_FILE_LOCATION`: explicit credentials
/// would turn those off, so the AM and workers never set this).
static KEYTAB_LOGIN: OnceLock<(String, String)> = OnceLock::new();

/// Makes the HDFS clients of this process authenticate as `principal` with `keytab`
/// (hdfs-native's own memory cache; unset, the ticket cache or the container's delegation
/// tokens); an error when a client exists already or another identity was set.
pub fn use_keytab(principal: &str, keytab: &std::path::Path) -> Result<(), HdfsFailure> {
    let wanted = (principal.to_string(), keytab.display().to_string());
    if !cache().lock().is_empty() && KEYTAB_LOGIN.get() != Some(&wanted) {
        return Err(HdfsFailure::Setup(
            "the Kerberos keytab must be chosen before the first HDFS client".into(),
        ));
    }
    match KEYTAB_LOGIN.get_or_init(|| wanted.clone()) {
        set if *set == wanted => Ok(()),
        set => Err(HdfsFailure::Setup(format!(
            "HDFS clients already authenticate as {}",
            set.0
        ))),
    }
}

/// Where the Kerberos tickets of this process's NameNode clients come from: the keytab of
/// [`use_keytab`], else the ticket cache. For the `yarn` crate's NameNode client (block
/// locations), so that it and hdfs-native authenticate alike.
pub fn kerberos_credentials() -> yarn::KerberosCredentials {
    match KEYTAB_LOGIN.get() {
        Some((principal, keytab)) => yarn::KerberosCredentials::Keytab {
            principal: principal.clone(),
            keytab: keytab.into(),
        },
        None => yarn::KerberosCredentials::TicketCache,
    }
}

/// The NameNode for `authority` (`None`: `fs.defaultFS`), connecting on first use. The first
/// use of a plain `host:port` probes it with one TCP connection so that a wrong address fails
/// in milliseconds with a clear message instead of after the client's retries.
pub fn namenode(authority: Option<&str>) -> Result<Arc<NameNode>, HdfsFailure> {
    let key = authority.map(str::to_string);
    if let Some(nn) = cache().lock().get(&key) {
        return Ok(nn.clone());
    }
    let config = effective_config()?;
    let resolved = match authority {
        Some(a) => a.to_string(),
        None => conf::default_authority(&config).ok_or_else(|| {
            if viewfs::default_fs_is_view(&config) {
                return HdfsFailure::Setup(format!(
                    "hdfs:/// needs fs.defaultFS = hdfs://…, and it is {}: write viewfs:///… \
                     for paths of the federated view",
                    config.default_fs()
                ));
            }
            HdfsFailure::Setup(format!(
                "hdfs:/// needs fs.defaultFS = hdfs://… (core-site.xml or -D; conf directory: {})",
                config.conf_dir().map_or_else(
                    || "none, set HADOOP_CONF_DIR or --conf-dir".to_string(),
                    |d| d.display().to_string()
                )
            ))
        })?,
    };
    let resolved_key = Some(resolved.clone());
    if let Some(failure) = recently_unreachable(&resolved_key) {
        return Err(failure);
    }
    let nameservice = conf::is_nameservice(&config, &resolved);
    let rpc = conf::rpc_addresses(&config, &resolved);
    let addr = if nameservice {
        format!("{resolved} ({})", rpc.join(", "))
    } else {
        rpc.first().cloned().unwrap_or_else(|| resolved.clone())
    };
    if !nameservice {
        if let Err(reason) = probe(&addr) {
            let failure = HdfsFailure::Unreachable {
                addr: addr.clone(),
                reason,
            };
            remember_unreachable(&resolved_key, &failure);
            return Err(failure);
        }
    }
    let rt = runtime()?;
    // The effective configuration (site files and `-D`), not hdfs-native's own reading of
    // the directory, which would miss `-D` and `--conf-dir`.
    let mut builder = ClientBuilder::new()
        .with_url(format!("hdfs://{resolved}"))
        .with_config(config.iter())
        .with_io_runtime(rt.handle().clone());
    if let Some(dir) = config.conf_dir() {
        builder = builder.with_config_dir(dir.display().to_string());
    }
    if let Some((principal, keytab)) = KEYTAB_LOGIN.get() {
        builder = builder
            .with_kerberos_principal(principal.clone())
            .with_kerberos_keytab(keytab.clone());
    }
    let client = builder
        .build()
        .map_err(|e| HdfsFailure::Setup(format!("client for hdfs://{resolved}: {e}")))?;
    let nn = Arc::new(NameNode {
        client,
        base_url: format!("hdfs://{resolved}"),
        addr,
        webhdfs: conf::webhdfs_bases(&config, &resolved),
        config,
    });
    tracing::debug!(namenode = %nn.addr, webhdfs = ?nn.webhdfs, "HDFS client ready");
    cache().lock().insert(key, nn.clone());
    Ok(nn)
}

/// Drops this process's NameNode clients: the next call builds new ones, whose connections
/// read the credentials anew (a worker given new delegation tokens). Calls under way finish
/// on the clients they hold.
pub fn forget_clients() {
    cache().lock().clear();
}

/// The mount table of `viewfs://<table>/` (`None`: `viewfs:///`), read from the process's
/// configuration once.
pub fn mount_table(table: Option<&str>) -> Result<Arc<MountTable>, HdfsFailure> {
    type Tables = Mutex<HashMap<String, Arc<MountTable>>>;
    static TABLES: OnceLock<Tables> = OnceLock::new();
    let config = effective_config()?;
    let name = viewfs::table_name(&config, table);
    let tables = TABLES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(t) = tables.lock().get(&name) {
        return Ok(t.clone());
    }
    let t = Arc::new(MountTable::of(&config, &name)?);
    tables.lock().insert(name, t.clone());
    Ok(t)
}

/// The NameNode and path of the absolute `path` on `fs.defaultFS`, an `hdfs://` URL or a
/// `viewfs://` view (resolved through its mount table): where `filex submit` stages files.
pub fn on_default_fs(path: &str) -> Result<(Arc<NameNode>, String), HdfsFailure> {
    let config = effective_config()?;
    if viewfs::default_fs_is_view(&config) {
        let target = mount_table(None)?.resolve(path)?;
        return Ok((namenode(Some(&target.authority))?, target.path));
    }
    Ok((namenode(None)?, path.to_string()))
}

/// `hdfs://<authority>` for messages and manifests, without connecting: the authority given,
/// else that of `fs.defaultFS` (`None` when the configuration does not name one).
pub fn base_url(authority: Option<&str>) -> Option<String> {
    if let Some(a) = authority {
        return Some(format!("hdfs://{a}"));
    }
    if let Some(nn) = cache().lock().get(&None) {
        return Some(nn.base_url.clone());
    }
    let config = effective_config().ok()?;
    conf::default_authority(&config).map(|a| format!("hdfs://{a}"))
}

/// The process's Hadoop configuration ([`crate::settings::effective`]).
fn effective_config() -> Result<Arc<yarn::Config>, HdfsFailure> {
    crate::settings::effective().map_err(|e| HdfsFailure::Setup(crate::errors::chain(&e)))
}

/// One TCP connection to `addr`, closed at once.
fn probe(addr: &str) -> Result<(), String> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = String::from("resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                last = format!("no answer within {} s", PROBE_TIMEOUT.as_secs())
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_exceptions_are_classified() {
        let f = |class: &str, msg: &str| {
            HdfsFailure::from_client(HdfsError::RPCError(class.into(), msg.into()), "nn:1")
        };
        assert!(matches!(
            f("java.io.FileNotFoundException", "File does not exist: /x"),
            HdfsFailure::NotFound
        ));
        let denied = f(
            "org.apache.hadoop.security.AccessControlException",
            "Permission denied: user=a, access=WRITE, inode=\"/x\"\n\tat org.apache...",
        );
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            denied.to_string(),
            "permission denied (user=a, access=WRITE, inode=\"/x\")"
        );
        let other = f("org.apache.hadoop.ipc.RetriableException", "later");
        assert_eq!(other.to_string(), "RetriableException: later");
        let token = f(
            "org.apache.hadoop.security.token.SecretManager$InvalidToken",
            "token (HDFS_DELEGATION_TOKEN token 7 for filex) is expired\n\tat org.apache...",
        );
        assert_eq!(token.kind(), io::ErrorKind::PermissionDenied);
        let text = token.to_string();
        assert!(
            text.starts_with(
                "the NameNode refused the delegation token (token (HDFS_DELEGATION_TOKEN token 7 \
                 for filex) is expired): it has expired or was cancelled;"
            ) && text.contains("kinit")
                && text.ends_with("with --keytab"),
            "{text}"
        );
    }

    #[test]
    fn connection_failures_name_the_namenode() {
        let e = HdfsError::IOError(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        let f = HdfsFailure::from_client(e, "127.0.0.1:9");
        assert_eq!(f.to_string(), "cannot reach NameNode 127.0.0.1:9: refused");
        let io = f.into_io("hdfs://127.0.0.1:9/x");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(
            io.to_string(),
            "hdfs://127.0.0.1:9/x: cannot reach NameNode 127.0.0.1:9: refused"
        );
    }

    #[test]
    fn probe_reports_a_closed_port() {
        // Bind then drop to find a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let err = probe(&format!("127.0.0.1:{port}")).unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn block_on_times_out() {
        let got = block_on(Duration::from_millis(20), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            1
        })
        .unwrap();
        assert_eq!(got, None);
        assert_eq!(
            block_on(Duration::from_secs(5), async { 2 }).unwrap(),
            Some(2)
        );
    }
}
