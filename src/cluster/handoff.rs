//! What a worker process is handed besides its command line: a Hadoop credentials file
//! holding the coordinator's shared secret and, for an object-store output, the credentials
//! to write it with. YARN writes that file for each container from the credentials in its
//! launch context (`HADOOP_TOKEN_FILE_LOCATION`); `filex run --workers` writes one itself
//! (mode 600) and names it with `--credentials-file`. Nothing secret is in argv or the
//! environment.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::storage::object::{handed, Credentials, ObjectError};

/// Alias of the coordinator's shared secret in the credentials.
pub const SECRET_ALIAS: &str = "filex.worker.secret";

/// Why the handed credentials cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("cannot read the credentials file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: yarn::Error,
    },
    #[error("cannot write the credentials file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "HADOOP_TOKEN_FILE_LOCATION is not set: not running in a YARN container (or give --credentials-file)"
    )]
    NotInContainer,
    #[error("the credentials hold no filex worker secret ({SECRET_ALIAS})")]
    NoSecret,
    #[error("the filex worker secret is not text")]
    SecretNotText,
    #[error(transparent)]
    ObjectStore(#[from] ObjectError),
}

/// The credentials to hand on: the shared `secret`, and `object` for an object-store output.
pub fn credentials(secret: &str, object: Option<&Credentials>) -> yarn::Credentials {
    let mut secrets = vec![(SECRET_ALIAS.to_string(), secret.as_bytes().to_vec())];
    if let Some(c) = object {
        secrets.extend(handed::to_secrets(c));
    }
    yarn::Credentials {
        tokens: vec![],
        secrets,
    }
}

/// Writes `creds` to `path` (created, mode 600), as YARN writes a container's token file.
pub fn write_file(path: &Path, creds: &yarn::Credentials) -> Result<(), HandoffError> {
    let write = || -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?
            .write_all(&creds.encode(yarn::credentials::Format::Writable))
    };
    write().map_err(|source| HandoffError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Puts the tokens of `tokens` into this YARN container's token file
/// (`HADOOP_TOKEN_FILE_LOCATION`), each replacing the one of the same alias, and keeps the
/// rest (the secrets): written beside it (mode 600) and renamed over it, so that a reader
/// (hdfs-native reads the file on every new NameNode connection) sees the old file or the
/// new one, never part of one.
pub fn replace_tokens(tokens: &yarn::Credentials) -> Result<(), HandoffError> {
    let path = std::env::var_os(yarn::credentials::TOKEN_FILE_ENV)
        .map(PathBuf::from)
        .ok_or(HandoffError::NotInContainer)?;
    let mut creds = read(Some(path.as_path()))?;
    for (alias, token) in &tokens.tokens {
        creds.add_token(alias.clone(), token.clone());
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let new = path.with_file_name(name);
    write_file(&new, &creds)?;
    std::fs::rename(&new, &path).map_err(|source| HandoffError::Write { path, source })
}

/// The credentials handed to this process: `file` if given, else the YARN container's.
pub fn read(file: Option<&Path>) -> Result<yarn::Credentials, HandoffError> {
    let path = match file {
        Some(f) => f.to_path_buf(),
        None => std::env::var_os(yarn::credentials::TOKEN_FILE_ENV)
            .map(PathBuf::from)
            .ok_or(HandoffError::NotInContainer)?,
    };
    yarn::Credentials::read_file(&path).map_err(|source| HandoffError::Read { path, source })
}

/// Takes over `creds`: installs the object-store credentials among them as this process's
/// ([`handed::install`]) and returns the shared secret.
pub fn accept(creds: &yarn::Credentials) -> Result<String, HandoffError> {
    // Kinds and services only (delegation tokens on a Kerberized cluster).
    tracing::info!(tokens = %creds.token_summary(), "handed credentials");
    let object = handed::from_secrets(&creds.secrets)?;
    handed::install(object);
    let secret = creds
        .secrets
        .iter()
        .find(|(alias, _)| alias == SECRET_ALIAS)
        .map(|(_, s)| s.clone())
        .ok_or(HandoffError::NoSecret)?;
    String::from_utf8(secret).map_err(|_| HandoffError::SecretNotText)
}
