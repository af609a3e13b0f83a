//! The crate's one error type. Variants carry the input that failed (the
//! `host:port`, the RPC method, the Java exception class) so a message read
//! in a log is enough to find the cause.

use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to Hadoop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be opened (refused, unreachable, timed out).
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// `host:port` we tried.
        addr: String,
        /// The underlying socket error.
        error: std::io::Error,
    },
    /// Reading or writing an open connection failed.
    #[error("I/O error on connection to {addr}: {error}")]
    Io {
        /// `host:port` of the peer.
        addr: String,
        /// The underlying socket error.
        error: std::io::Error,
    },
    /// The connection closed while a call was outstanding (or before it was sent).
    #[error("connection to {addr} closed before {method} completed")]
    Disconnected {
        /// `host:port` of the peer.
        addr: String,
        /// The RPC method name.
        method: String,
    },
    /// A call (or the connection set-up) did not complete in time.
    #[error("{method} on {addr} timed out after {timeout:?}")]
    Timeout {
        /// `host:port` of the peer.
        addr: String,
        /// The RPC method name (or `connect`).
        method: String,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// The server answered with a Java exception.
    #[error("{method} on {addr} failed: {exception}")]
    Remote {
        /// `host:port` of the peer.
        addr: String,
        /// The RPC method name (or `connection` for FATAL replies outside a call).
        method: String,
        /// The exception class and message.
        exception: RemoteException,
    },
    /// The peer sent bytes that do not follow the Hadoop IPC protocol.
    #[error("protocol error from {addr}: {message}")]
    Protocol {
        /// `host:port` of the peer (empty when decoding offline).
        addr: String,
        /// What was wrong.
        message: String,
    },
    /// A protobuf message could not be decoded.
    #[error("cannot decode {what}: {error}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The prost error.
        error: prost::DecodeError,
    },
    /// SASL negotiation or the SASL security layer failed.
    #[error("{}", sasl_text(.addr, .message))]
    Sasl {
        /// `host:port` of the peer (empty inside the sans-IO mechanisms).
        addr: String,
        /// What was wrong.
        message: String,
    },
    /// The server offers no security layer that `hadoop.rpc.protection` allows
    /// (Java's "No common protection layer between client and server").
    #[error(
        "SASL with {addr}: the server offers protection {offered} but hadoop.rpc.protection \
         here allows only {allowed} (set -D hadoop.rpc.protection={offered} or fix the client's core-site.xml)"
    )]
    Protection {
        /// `host:port` of the peer (empty inside the sans-IO mechanisms).
        addr: String,
        /// The levels the server offers, comma-separated.
        offered: String,
        /// The levels the client's `hadoop.rpc.protection` allows, comma-separated.
        allowed: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("config file {path}: {message}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A configuration value is missing or malformed.
    #[error("config key {key}: {message}")]
    Config {
        /// The Hadoop key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A token storage ("HDTS") file or blob is malformed.
    #[error("credentials {source_name}: {message}")]
    Credentials {
        /// Where the bytes came from (a path, or `bytes`).
        source_name: String,
        /// What was wrong.
        message: String,
    },
    /// A needed token is not present.
    #[error("no token of kind {kind} (service {service:?})")]
    MissingToken {
        /// Token kind, e.g. `YARN_AM_RM_TOKEN`.
        kind: String,
        /// Service asked for, if any.
        service: Option<String>,
    },
    /// A string (application id, container id, address…) could not be parsed.
    #[error("invalid {what}: {value:?}")]
    Parse {
        /// What we tried to parse.
        what: &'static str,
        /// The input.
        value: String,
    },
    /// The server answered in a way the protocol does not allow at this point.
    #[error("{method} on {addr}: {message}")]
    Unexpected {
        /// `host:port` of the peer.
        addr: String,
        /// The RPC method name.
        method: String,
        /// What was wrong.
        message: String,
    },
}

/// A SASL failure: "SASL with <peer>: <what>", or only what was wrong when no connection
/// was involved (credentials checked before connecting).
fn sasl_text(addr: &str, message: &str) -> String {
    if addr.is_empty() {
        message.to_string()
    } else {
        format!("SASL with {addr}: {message}")
    }
}

impl Error {
    /// The Java exception, when the server answered with one.
    pub fn remote(&self) -> Option<&RemoteException> {
        match self {
            Error::Remote { exception, .. } => Some(exception),
            _ => None,
        }
    }

    /// True when trying another server of an HA pair may help: the connection
    /// could not be made, or the server is a standby.
    pub fn is_failover_candidate(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Remote { exception, .. } => exception.is_standby(),
            _ => false,
        }
    }

    /// True when the client's own `hadoop.rpc.protection` rules out every level the
    /// server offers: a configuration error that no retry or other client should paper over.
    pub fn is_protection_mismatch(&self) -> bool {
        matches!(self, Error::Protection { .. })
    }

    pub(crate) fn protocol(addr: &str, message: impl Into<String>) -> Error {
        Error::Protocol {
            addr: addr.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn sasl(message: impl Into<String>) -> Error {
        Error::Sasl {
            addr: String::new(),
            message: message.into(),
        }
    }

    pub(crate) fn decode(what: &'static str, error: prost::DecodeError) -> Error {
        Error::Decode { what, error }
    }
}

/// Java exception class names we recognise (PROTOCOL.md section 1.9).
pub mod exception_class {
    /// The application is unknown to the RM.
    pub const APPLICATION_NOT_FOUND: &str =
        "org.apache.hadoop.yarn.exceptions.ApplicationNotFoundException";
    /// The AM must register again (RM restart, or never registered).
    pub const APPLICATION_MASTER_NOT_REGISTERED: &str =
        "org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException";
    /// The application attempt is gone.
    pub const APPLICATION_ATTEMPT_NOT_FOUND: &str =
        "org.apache.hadoop.yarn.exceptions.ApplicationAttemptNotFoundException";
    /// A resource request was rejected (too big, bad name…).
    pub const INVALID_RESOURCE_REQUEST: &str =
        "org.apache.hadoop.yarn.exceptions.InvalidResourceRequestException";
    /// Bad response id, or already registered.
    pub const INVALID_APPLICATION_MASTER_REQUEST: &str =
        "org.apache.hadoop.yarn.exceptions.InvalidApplicationMasterRequestException";
    /// The server is an HA standby.
    pub const STANDBY: &str = "org.apache.hadoop.ipc.StandbyException";
    /// Authentication or authorization failed.
    pub const ACCESS_CONTROL: &str = "org.apache.hadoop.security.AccessControlException";
    /// A token was rejected.
    pub const INVALID_TOKEN: &str = "org.apache.hadoop.security.token.SecretManager$InvalidToken";
    /// The HDFS path does not exist.
    pub const FILE_NOT_FOUND: &str = "java.io.FileNotFoundException";
}

/// A Java exception returned by a Hadoop server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteException {
    /// Fully qualified Java class name.
    pub class: String,
    /// The message (often a stack trace).
    pub message: String,
}

impl RemoteException {
    fn is(&self, class: &str) -> bool {
        self.class == class
    }
    /// `ApplicationNotFoundException`.
    pub fn is_application_not_found(&self) -> bool {
        self.is(exception_class::APPLICATION_NOT_FOUND)
    }
    /// `ApplicationMasterNotRegisteredException`: re-register and resend the ask.
    pub fn is_application_master_not_registered(&self) -> bool {
        self.is(exception_class::APPLICATION_MASTER_NOT_REGISTERED)
    }
    /// `ApplicationAttemptNotFoundException`: the attempt is over, exit.
    pub fn is_application_attempt_not_found(&self) -> bool {
        self.is(exception_class::APPLICATION_ATTEMPT_NOT_FOUND)
    }
    /// `InvalidResourceRequestException`.
    pub fn is_invalid_resource_request(&self) -> bool {
        self.is(exception_class::INVALID_RESOURCE_REQUEST)
    }
    /// `InvalidApplicationMasterRequestException`.
    pub fn is_invalid_application_master_request(&self) -> bool {
        self.is(exception_class::INVALID_APPLICATION_MASTER_REQUEST)
    }
    /// `StandbyException`: fail over to the other RM/NameNode.
    pub fn is_standby(&self) -> bool {
        self.is(exception_class::STANDBY)
    }
    /// `AccessControlException` (includes "SIMPLE authentication is not enabled").
    pub fn is_access_control(&self) -> bool {
        self.is(exception_class::ACCESS_CONTROL)
    }
    /// `SecretManager$InvalidToken`.
    pub fn is_invalid_token(&self) -> bool {
        self.is(exception_class::INVALID_TOKEN)
    }
    /// `FileNotFoundException` (HDFS).
    pub fn is_file_not_found(&self) -> bool {
        self.is(exception_class::FILE_NOT_FOUND)
    }
    /// The first line of the message, without the stack trace.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl std::fmt::Display for RemoteException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self.class.rsplit('.').next().unwrap_or(&self.class);
        write!(f, "{short}: {}", self.summary())
    }
}
