//! The application's private staging directory on HDFS: the client uploads the application
//! spec and the cluster configuration there (mode 700), YARN localizes them into every
//! container, and the directory is removed when the application ends. The executable is not
//! here: it has a cache of its own ([`super::lib_cache`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use hdfs_native::WriteOptions;

use crate::storage::hdfs::client::{block_on, namenode, on_default_fs, NameNode};
use crate::storage::location::Location;

/// Permission of the staging directory (as MapReduce's `.staging`).
pub const STAGING_PERMISSION: u32 = 0o700;
/// Permission of the files in it.
const FILE_PERMISSION: u32 = 0o600;
/// Upload chunk size.
const CHUNK: usize = 8 << 20;
/// Time allowed for one upload or metadata call.
const TIMEOUT: Duration = Duration::from_secs(300);

/// One uploaded file, as YARN must be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Absolute HDFS path.
    pub path: String,
    pub size: u64,
    /// Modification time, ms (YARN checks it when localizing).
    pub timestamp: u64,
}

/// A staging directory (or the staging root) that belongs to another user than the
/// submitter: nothing is written into it.
#[derive(Debug, thiserror::Error)]
#[error(
    "staging directory {url} belongs to {owner}, not to the submitter {user}: remove it, or give it to {user} with mode 700"
)]
pub struct ForeignStaging {
    /// `hdfs://…` of the directory.
    pub url: String,
    pub owner: String,
    pub user: String,
}

/// The submitter's staging root, `/user/<user>/.filexStaging` (as MapReduce's `.staging`).
fn staging_root() -> String {
    format!("/user/{}/.filexStaging", user_name())
}

/// The staging directory of one application.
pub struct Staging {
    nn: Arc<NameNode>,
    /// Absolute path on the default file system.
    pub dir: String,
}

/// The submitter as a Kerberized cluster knows it (the short name of the principal the
/// delegation tokens were issued to), once `filex submit` has it.
static KERBEROS_USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes `name` the user of [`user_name`] (on a Kerberized cluster, where the principal
/// decides, not `HADOOP_USER_NAME`).
pub fn set_kerberos_user(name: &str) {
    let _ = KERBEROS_USER.set(name.to_string());
}

/// The user YARN and HDFS will see: the Kerberos principal's short name on a Kerberized
/// cluster ([`set_kerberos_user`]), else `HADOOP_USER_NAME`, else the login name.
pub fn user_name() -> String {
    if let Some(u) = KERBEROS_USER.get() {
        return u.clone();
    }
    std::env::var("HADOOP_USER_NAME")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

/// The NameNode's answer to `fut` (an error only when there is none: timeout, no runtime).
pub(super) fn answer<T>(
    what: &str,
    fut: impl std::future::Future<Output = hdfs_native::Result<T>>,
) -> Result<hdfs_native::Result<T>> {
    match block_on(TIMEOUT, fut)? {
        Some(r) => Ok(r),
        None => anyhow::bail!("{what}: no answer within {} s", TIMEOUT.as_secs()),
    }
}

/// `fut`'s result, any failure in the context of `what`.
pub(super) fn wait<T>(
    what: &str,
    fut: impl std::future::Future<Output = hdfs_native::Result<T>>,
) -> Result<T> {
    answer(what, fut)?.with_context(|| what.to_string())
}

/// Writes `data` as a new file `path` (mode `permission`); returns it as YARN must be told.
pub(super) fn write_file(
    nn: &NameNode,
    path: &str,
    data: Bytes,
    permission: u32,
) -> Result<Uploaded> {
    let what = format!("cannot upload {}", nn.url(path));
    let client = &nn.client;
    let opts = WriteOptions {
        permission,
        ..WriteOptions::default()
    };
    wait(&what, async {
        let mut w = client.create(path, opts).await?;
        let mut off = 0;
        while off < data.len() {
            let end = (off + CHUNK).min(data.len());
            w.write_bytes(data.slice(off..end)).await?;
            off = end;
        }
        w.close().await
    })?;
    let status = wait(&what, client.get_file_info(path))?;
    Ok(Uploaded {
        path: path.to_string(),
        size: status.length as u64,
        timestamp: status.modification_time,
    })
}

impl Staging {
    /// `/user/<user>/.filexStaging/<application id>` on `fs.defaultFS` (through its mount
    /// table when that is a `viewfs://` view), created mode 700. The staging root and the
    /// directory must belong to the submitter (as MapReduce checks its `.staging`): one
    /// owned by someone else is an error, and nothing is written into it.
    pub fn create(application_id: &str) -> Result<Staging> {
        let s = Staging::of(application_id)?;
        let root = s
            .dir
            .rsplit_once('/')
            .map_or(s.dir.as_str(), |(r, _)| r)
            .to_string();
        s.check_owner(&root)?;
        wait(
            &format!("cannot create {}", s.url(&s.dir)),
            s.nn.client.mkdirs(&s.dir, STAGING_PERMISSION, true),
        )?;
        s.check_owner(&s.dir)?;
        wait(
            &format!("cannot restrict {}", s.url(&s.dir)),
            s.nn.client.set_permission(&s.dir, STAGING_PERMISSION),
        )?;
        Ok(s)
    }

    /// Fails ([`ForeignStaging`]) when `path` exists and belongs to another user than the
    /// submitter.
    fn check_owner(&self, path: &str) -> Result<()> {
        let user = user_name();
        let status = match answer(
            &format!("cannot check {}", self.url(path)),
            self.nn.client.get_file_info(path),
        )? {
            Ok(st) => st,
            Err(hdfs_native::HdfsError::FileNotFound(_)) => return Ok(()),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot check {}", self.url(path)))
                )
            }
        };
        if status.owner != user {
            return Err(ForeignStaging {
                url: self.url(path),
                owner: status.owner,
                user,
            }
            .into());
        }
        Ok(())
    }

    /// Checks the submitter's staging root (`/user/<user>/.filexStaging`) before anything
    /// is asked of YARN: absent, or the submitter's. One owned by someone else is a
    /// [`ForeignStaging`] error.
    pub fn check_root() -> Result<()> {
        let (nn, dir) =
            on_default_fs(&staging_root()).context("staging needs HDFS (fs.defaultFS)")?;
        let root = Staging { nn, dir };
        root.check_owner(&root.dir)
    }

    /// Where the staging directory of `application_id` is (it may not exist).
    pub fn of(application_id: &str) -> Result<Staging> {
        let (nn, dir) = on_default_fs(&format!("{}/{application_id}", staging_root()))
            .context("staging needs HDFS (fs.defaultFS)")?;
        Ok(Staging { nn, dir })
    }

    /// The staging directory of an existing application (for removal), by the
    /// `hdfs://authority/path` URL [`Staging::url`] gave it.
    pub fn open(url: &str) -> Result<Staging> {
        match Location::parse(url, Path::new("/")) {
            Ok(Location::Hdfs { authority, path }) => Ok(Staging {
                nn: namenode(authority.as_deref())?,
                dir: path,
            }),
            _ => bail!("staging directory {url}: not an hdfs:// URL"),
        }
    }

    /// `hdfs://…` of an absolute path.
    pub fn url(&self, path: &str) -> String {
        self.nn.url(path)
    }

    /// Uploads `bytes` as `<dir>/<name>`.
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<Uploaded> {
        write_file(
            &self.nn,
            &format!("{}/{name}", self.dir),
            Bytes::from(bytes),
            FILE_PERMISSION,
        )
    }

    /// The NameNode the directory is on.
    pub fn namenode(&self) -> &Arc<NameNode> {
        &self.nn
    }

    /// Removes the staging directory and everything in it.
    /// Whether the directory exists.
    pub fn exists(&self) -> Result<bool> {
        let what = format!("cannot check {}", self.url(&self.dir));
        match answer(&what, self.nn.client.get_file_info(&self.dir))? {
            Ok(_) => Ok(true),
            Err(hdfs_native::HdfsError::FileNotFound(_)) => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context(what)),
        }
    }

    pub fn remove(&self) -> Result<()> {
        wait(
            &format!("cannot remove {}", self.url(&self.dir)),
            self.nn.client.delete(&self.dir, true),
        )?;
        Ok(())
    }
}
