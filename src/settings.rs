//! The configuration of a filex process besides its job file: the Hadoop configuration
//! (`--conf-dir` or `HADOOP_CONF_DIR`…, then `-D key=value`), loaded once by
//! [`ConfArgs::load`] with [`yarn::Config`] and shared through [`install`]/[`effective`] by
//! every client that needs it (ResourceManager, NameNode, hdfs-native, staging); and filex's
//! own `filex.*` settings, declared once in [`SETTINGS`] (the README's table is checked
//! against it). Not here: reading the site files (that is `yarn::Config`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use yarn::Config;

use crate::size::parse_size;

/// The prefix of filex's own settings.
pub const PREFIX: &str = "filex.";

/// How a setting's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer.
    Integer,
    /// A byte size such as `256m` ([`crate::size`]).
    Bytes,
    /// An absolute path on the default file system (`/apps/filex/lib`).
    Path,
    /// Comma-separated `hdfs://authority` URIs.
    Uris,
}

impl Kind {
    /// The name the README's table uses.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Bytes => "bytes",
            Kind::Path => "path",
            Kind::Uris => "hdfs:// URIs",
        }
    }
}

/// One `filex.*` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub kind: Kind,
    /// The value when not set, as it would be written.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Memory of the AM container.
pub const AM_MEMORY_MB: Setting = Setting {
    key: "filex.am.memory-mb",
    kind: Kind::Integer,
    default: "512",
    meaning: "AM container memory, MiB",
};
/// Attempts YARN makes at running the AM (the submission context's `max_app_attempts`;
/// the RM caps it at `yarn.resourcemanager.am.max-attempts`). A new attempt runs the job
/// again from the start (no recovery of finished tasks yet).
pub const AM_MAX_ATTEMPTS: Setting = Setting {
    key: "filex.am.max-attempts",
    kind: Kind::Integer,
    default: "2",
    meaning: "AM attempts (a new attempt starts the run over)",
};
/// Memory of a worker container.
pub const WORKER_MEMORY_MB: Setting = Setting {
    key: "filex.worker.memory-mb",
    kind: Kind::Integer,
    default: "1024",
    meaning: "worker container memory, MiB",
};
/// Cores of a worker container.
pub const WORKER_VCORES: Setting = Setting {
    key: "filex.worker.vcores",
    kind: Kind::Integer,
    default: "1",
    meaning: "worker container cores",
};
/// Fewest workers.
pub const WORKERS_MIN: Setting = Setting {
    key: "filex.workers.min",
    kind: Kind::Integer,
    default: "1",
    meaning: "fewest workers",
};
/// Most workers.
pub const WORKERS_MAX: Setting = Setting {
    key: "filex.workers.max",
    kind: Kind::Integer,
    default: "16",
    meaning: "most workers",
};
/// Compressed input one worker is sized for.
pub const BYTES_PER_WORKER: Setting = Setting {
    key: "filex.worker.input-bytes",
    kind: Kind::Bytes,
    default: "256m",
    meaning: "compressed input per worker (the fleet is sized by it)",
};
/// Compressed input of one map task.
pub const TASK_BYTES: Setting = Setting {
    key: "filex.task.input-bytes",
    kind: Kind::Bytes,
    default: "64m",
    meaning: "compressed input per map task",
};
/// How long a map task waits for a worker on one of its hosts.
pub const LOCALITY_WAIT_MS: Setting = Setting {
    key: "filex.locality.wait-ms",
    kind: Kind::Integer,
    default: "3000",
    meaning: "how long a map task waits for a worker on its hosts, ms",
};

/// Uber mode: a job of at most this much compressed input runs its tasks in the AM's own
/// container, with its sorted runs held in memory, and asks YARN for no worker container.
/// The default, 16 MiB of gzip, is about 128 MiB of lines: what the default AM (512 MiB,
/// 30 % of it for held runs) holds in memory, and about 2.5 s of one core's work at filex's
/// 6–7 MB of gzip per CPU second — of the order of what asking for, localizing and starting
/// one worker container costs (1.5–3 s on the mini cluster). Most customer-hours are this
/// small. MapReduce's thresholds (input under one 128 MB block, at most 9 maps and 1
/// reduce) count tasks because each of its tasks is a JVM run one after the other; ours
/// are threads, small shards are combined into map tasks and a partition's reduce costs
/// microseconds in-process, so only the bytes count, and 128 MB of gzip (a gigabyte of
/// lines) would be tens of seconds on one core and not fit the AM.
pub const UBER_MAX_BYTES: Setting = Setting {
    key: "filex.uber.max-bytes",
    kind: Kind::Bytes,
    default: "16m",
    meaning: "a job of at most this much compressed input runs its tasks in the AM's container (uber mode: no worker container; a failed task is retried in one); 0: never",
};

/// How long a task attempt may go without progress, or its worker without a word, before it
/// is re-run elsewhere and the worker stopped (MapReduce's `mapreduce.task.timeout`).
pub const TASK_TIMEOUT_MS: Setting = Setting {
    key: "filex.task.timeout",
    kind: Kind::Integer,
    default: "600000",
    meaning: "how long a task attempt may make no progress (or its worker stay silent) before it is re-run elsewhere and the worker killed, ms; 0: never",
};
/// How often a client asks the ResourceManager for an application's report: `filex submit`
/// following its application, and `filex kill` (or a signalled `submit`) waiting for a kill
/// to complete. The default, one second, is what Hadoop users already live with: MapReduce's
/// job client polls every 1000 ms (`mapreduce.client.progressmonitor.pollinterval`) and Spark
/// on YARN every second (`spark.yarn.report.interval`). A state change shows within a second,
/// which is all a person or a scheduler needs, and hundreds of hourly jobs followed at once
/// cost the RM one report a second each. The name follows YARN's own client setting,
/// `yarn.client.application-client-protocol.poll-interval-ms`.
pub const CLIENT_POLL_INTERVAL_MS: Setting = Setting {
    key: "filex.client.poll-interval-ms",
    kind: Kind::Integer,
    default: "1000",
    meaning: "how often the client asks the ResourceManager for an application's report (following, killing), ms; at least 1",
};

/// Where `filex submit` caches the executable by its SHA-256 (`application::lib_cache`).
pub const YARN_LIB_DIR: Setting = Setting {
    key: "filex.yarn.lib-dir",
    kind: Kind::Path,
    default: "per user",
    meaning: "HDFS directory caching the executable by SHA-256; per user: `/user/<user>/.filex/lib`; a world-readable one is shared by all users (PUBLIC)",
};

/// NameNodes `filex submit` gets delegation tokens from on a Kerberized cluster besides the
/// default file system's and those the job's locations name (as MapReduce's
/// `mapreduce.job.hdfs-servers`).
pub const JOB_HDFS_SERVERS: Setting = Setting {
    key: "filex.job.hdfs-servers",
    kind: Kind::Uris,
    default: "none",
    meaning: "comma-separated `hdfs://host:port` (or `hdfs://nameservice`) URIs of further NameNodes the application gets delegation tokens for on a Kerberized cluster",
};

/// Every `filex.*` setting, in the README's order.
pub const SETTINGS: &[Setting] = &[
    AM_MEMORY_MB,
    AM_MAX_ATTEMPTS,
    WORKER_MEMORY_MB,
    WORKER_VCORES,
    WORKERS_MIN,
    WORKERS_MAX,
    BYTES_PER_WORKER,
    TASK_BYTES,
    LOCALITY_WAIT_MS,
    TASK_TIMEOUT_MS,
    UBER_MAX_BYTES,
    CLIENT_POLL_INTERVAL_MS,
    YARN_LIB_DIR,
    JOB_HDFS_SERVERS,
];

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("-D {pair}: expected KEY=VALUE")]
    NotAPair { pair: String },
    #[error("-D {key}: no such filex setting (known: {known})")]
    UnknownKey { key: String, known: String },
    #[error("{key} = {value:?}: {reason}")]
    BadValue {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read the Hadoop configuration{}", dir.as_ref().map(|d| format!(" from {}", d.display())).unwrap_or_default())]
    Load {
        dir: Option<PathBuf>,
        #[source]
        source: yarn::Error,
    },
}

impl Setting {
    /// The number in `conf`, else the default's (a [`Kind::Path`] setting has none: see
    /// [`Setting::path`]).
    pub fn value(&self, conf: &Config) -> Result<u64, SettingsError> {
        let text = conf
            .get(self.key)
            .unwrap_or_else(|| self.default.to_string());
        self.parse(&text)
    }

    /// The path in `conf` (`None`: not set, the caller's default applies).
    pub fn path(&self, conf: &Config) -> Result<Option<String>, SettingsError> {
        let Some(text) = conf.get(self.key) else {
            return Ok(None);
        };
        let path = text.trim();
        if self.kind != Kind::Path || !path.starts_with('/') {
            return Err(SettingsError::BadValue {
                key: self.key,
                value: text.to_string(),
                reason: "not an absolute path (/dir/…)".into(),
            });
        }
        // `/` becomes "" so that `{dir}/{name}` stays one slash.
        Ok(Some(path.trim_end_matches('/').to_string()))
    }

    /// Whether the value in `conf` (or the default) is well formed.
    pub fn check(&self, conf: &Config) -> Result<(), SettingsError> {
        match self.kind {
            Kind::Path => self.path(conf).map(|_| ()),
            Kind::Uris => self.authorities(conf).map(|_| ()),
            Kind::Integer | Kind::Bytes => self.value(conf).map(|_| ()),
        }
    }

    fn parse(&self, text: &str) -> Result<u64, SettingsError> {
        let bad = |reason: String| SettingsError::BadValue {
            key: self.key,
            value: text.to_string(),
            reason,
        };
        match self.kind {
            Kind::Integer => text
                .trim()
                .parse()
                .map_err(|_| bad("not a non-negative integer".into())),
            Kind::Bytes => parse_size(text).map_err(|e| bad(e.to_string())),
            Kind::Path => Err(bad("a path, not a number".into())),
            Kind::Uris => Err(bad("URIs, not a number".into())),
        }
    }

    /// The authorities of the `hdfs://` URIs in `conf` (a [`Kind::Uris`] setting; empty when
    /// not set).
    pub fn authorities(&self, conf: &Config) -> Result<Vec<String>, SettingsError> {
        let mut out = Vec::new();
        for uri in conf.get_list(self.key) {
            let authority = uri
                .strip_prefix("hdfs://")
                .map(|rest| rest.split('/').next().unwrap_or(""))
                .filter(|a| !a.is_empty() && self.kind == Kind::Uris);
            match authority {
                Some(a) => out.push(a.to_string()),
                None => {
                    return Err(SettingsError::BadValue {
                        key: self.key,
                        value: uri,
                        reason: "not an hdfs://host:port URI".into(),
                    })
                }
            }
        }
        Ok(out)
    }
}

/// The NameNode authorities of [`JOB_HDFS_SERVERS`] in `conf`.
pub fn hdfs_servers(conf: &Config) -> Result<Vec<String>, SettingsError> {
    JOB_HDFS_SERVERS.authorities(conf)
}

/// [`CLIENT_POLL_INTERVAL_MS`] in `conf`: a positive interval.
pub fn client_poll_interval(conf: &Config) -> Result<Duration, SettingsError> {
    let s = CLIENT_POLL_INTERVAL_MS;
    match s.value(conf)? {
        0 => Err(SettingsError::BadValue {
            key: s.key,
            value: "0".into(),
            reason: "must be at least 1 (ms)".into(),
        }),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// The setting named `key`.
/// `filex.task.timeout` as a duration; `None` when it is 0 (no timeout).
pub fn task_timeout(conf: &Config) -> Result<Option<Duration>, SettingsError> {
    Ok(match TASK_TIMEOUT_MS.value(conf)? {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    })
}

pub fn lookup(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The README's table of settings, as generated from [`SETTINGS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| `-D` setting | type | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.key,
            s.kind.name(),
            s.default,
            s.meaning
        ));
    }
    out
}

/// Where the Hadoop configuration comes from: the flags `run`, `plan`, `submit` and the
/// operator commands share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfArgs {
    /// Hadoop configuration directory (default: $HADOOP_CONF_DIR, $YARN_CONF_DIR, then
    /// $HADOOP_HOME/etc/hadoop).
    #[arg(long, value_name = "DIR", global = true)]
    pub conf_dir: Option<PathBuf>,
    /// Hadoop key or filex setting, e.g. -D fs.defaultFS=hdfs://nn:8020, -D filex.workers.max=8.
    #[arg(short = 'D', value_name = "KEY=VALUE", global = true)]
    pub define: Vec<String>,
}

impl ConfArgs {
    /// The site files, then the `-D` values; an unknown `filex.*` key or a malformed value of
    /// a known one is an error naming it.
    pub fn load(&self) -> Result<Config, SettingsError> {
        let mut conf =
            Config::load(self.conf_dir.as_deref()).map_err(|source| SettingsError::Load {
                dir: self.conf_dir.clone(),
                source,
            })?;
        for pair in &self.define {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| SettingsError::NotAPair { pair: pair.clone() })?;
            let key = key.trim();
            if key.starts_with(PREFIX) && lookup(key).is_none() {
                return Err(SettingsError::UnknownKey {
                    key: key.to_string(),
                    known: SETTINGS
                        .iter()
                        .map(|s| s.key)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            conf.set(key, value.trim());
        }
        for s in SETTINGS {
            s.check(&conf)?;
        }
        client_poll_interval(&conf)?;
        Ok(conf)
    }

    /// Whether the command line says anything the environment does not.
    pub fn is_given(&self) -> bool {
        self.conf_dir.is_some() || !self.define.is_empty()
    }
}

/// The effective configuration where child processes (`filex run --workers`) read it: one
/// `core-site.xml` in a private directory (mode 700, the file 600) that becomes their
/// `HADOOP_CONF_DIR`, as the YARN containers get theirs. Removed on drop. Give it a
/// configuration without secrets (`storage::object::hadoop::without_secrets`).
pub struct ChildConf {
    dir: PathBuf,
}

impl ChildConf {
    /// Writes `conf` and points this process's `HADOOP_CONF_DIR` (inherited by children) at
    /// it. Call it before any thread is started: it changes the environment.
    pub fn export(conf: &Config) -> std::io::Result<ChildConf> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = std::env::temp_dir().join(format!(
            "filex-conf-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let child = ChildConf { dir };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(child.dir.join("core-site.xml"))?
            .write_all(conf.to_xml().as_bytes())?;
        std::env::set_var("HADOOP_CONF_DIR", &child.dir);
        Ok(child)
    }
}

impl Drop for ChildConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn installed() -> &'static Mutex<Option<Arc<Config>>> {
    static EFFECTIVE: Mutex<Option<Arc<Config>>> = Mutex::new(None);
    &EFFECTIVE
}

/// Makes `conf` the configuration of every Hadoop client this process creates from now on.
pub fn install(conf: Config) -> Arc<Config> {
    let conf = Arc::new(conf);
    *installed().lock() = Some(conf.clone());
    conf
}

/// The installed configuration, else the one the environment points at (site files only).
pub fn effective() -> Result<Arc<Config>, SettingsError> {
    if let Some(conf) = installed().lock().clone() {
        return Ok(conf);
    }
    ConfArgs::default().load().map(install)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_setting() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's settings table differs from src/settings.rs; it should read:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn defaults_parse_and_keys_are_unique() {
        let conf = Config::default();
        for s in SETTINGS {
            s.check(&conf).expect(s.key);
            assert!(s.key.starts_with(PREFIX));
            assert_eq!(SETTINGS.iter().filter(|t| t.key == s.key).count(), 1);
        }
        assert_eq!(BYTES_PER_WORKER.value(&conf).unwrap(), 256 << 20);
        assert_eq!(client_poll_interval(&conf).unwrap(), Duration::from_secs(1));
    }

    fn load(defines: &[&str]) -> Result<Config, SettingsError> {
        let empty = tempfile::tempdir().unwrap();
        ConfArgs {
            conf_dir: Some(empty.path().to_path_buf()),
            define: defines.iter().map(|d| d.to_string()).collect(),
        }
        .load()
    }

    #[test]
    fn defines_are_checked_against_the_table() {
        let conf = load(&[
            "filex.worker.input-bytes=1.5g",
            "fs.defaultFS = hdfs://nn:1",
        ])
        .unwrap();
        assert_eq!(BYTES_PER_WORKER.value(&conf).unwrap(), 3 << 29);
        assert_eq!(conf.default_fs(), "hdfs://nn:1");
        let unknown = load(&["filex.workers.maxx=3"]).unwrap_err().to_string();
        assert!(
            unknown.starts_with("-D filex.workers.maxx: no such filex setting"),
            "{unknown}"
        );
        let bad = load(&["filex.workers.max=lots"]).unwrap_err().to_string();
        assert_eq!(
            bad,
            "filex.workers.max = \"lots\": not a non-negative integer"
        );
        assert!(load(&["novalue"]).is_err());
        assert_eq!(
            client_poll_interval(&load(&["filex.client.poll-interval-ms=250"]).unwrap()).unwrap(),
            Duration::from_millis(250)
        );
        let zero = load(&["filex.client.poll-interval-ms=0"])
            .unwrap_err()
            .to_string();
        assert!(
            zero.starts_with("filex.client.poll-interval-ms = \"0\""),
            "{zero}"
        );
        let lib = load(&["filex.yarn.lib-dir=/apps/filex/lib/"]).unwrap();
        assert_eq!(
            YARN_LIB_DIR.path(&lib).unwrap().as_deref(),
            Some("/apps/filex/lib")
        );
        assert_eq!(YARN_LIB_DIR.path(&Config::default()).unwrap(), None);
        let relative = load(&["filex.yarn.lib-dir=lib"]).unwrap_err().to_string();
        assert_eq!(
            relative,
            "filex.yarn.lib-dir = \"lib\": not an absolute path (/dir/…)"
        );
        // Hadoop's own keys are not checked.
        assert!(load(&["some.other.key=x"]).is_ok());
    }

    #[test]
    fn hdfs_servers_are_authorities_of_hdfs_uris() {
        assert!(hdfs_servers(&Config::default()).unwrap().is_empty());
        let conf = load(&["filex.job.hdfs-servers=hdfs://nn2:8020/, hdfs://ns1"]).unwrap();
        assert_eq!(hdfs_servers(&conf).unwrap(), vec!["nn2:8020", "ns1"]);
        let bad = load(&["filex.job.hdfs-servers=hdfs://nn2:8020,s3://bucket"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            bad,
            "filex.job.hdfs-servers = \"s3://bucket\": not an hdfs://host:port URI"
        );
    }
}
