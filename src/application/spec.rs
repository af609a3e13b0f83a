//! What the client hands the application master, as a JSON file localized in its container:
//! the resolved job, where the staging directory is, and how to size the worker fleet (from
//! the `filex.*` settings of [`crate::settings`]).

use serde::{Deserialize, Serialize};

/// The application's plan of resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The job file after `--set`, as TOML.
    pub job_toml: String,
    pub application_id: String,
    /// `hdfs://…/user/<user>/.filexStaging/<application id>`.
    pub staging: String,
    pub worker_memory_mb: i64,
    pub worker_vcores: i32,
    pub workers_min: usize,
    pub workers_max: usize,
    pub bytes_per_worker: u64,
    pub task_bytes: u64,
    pub locality_wait_ms: u64,
    /// `filex.task.timeout`, ms; 0: none.
    #[serde(default)]
    pub task_timeout_ms: u64,
    /// When the client submitted, ms since the epoch (for the timeline).
    pub submitted_ms: i64,
    /// Files every worker container localizes (the executable, the effective configuration).
    pub worker_files: Vec<StagedFile>,
    /// `filex submit --full`: recompute every partition of the window.
    #[serde(default)]
    pub full: bool,
}

/// A file YARN localizes into the containers: one in the staging directory, or the
/// executable in its cache ([`super::lib_cache`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Link name in the container's working directory.
    pub name: String,
    pub host: String,
    pub port: i32,
    pub path: String,
    pub size: u64,
    pub timestamp: u64,
    /// Who may share the NodeManager's localized copy.
    pub visibility: Visibility,
}

/// YARN's `LocalResourceVisibility`: how long a NodeManager keeps a localized file and for
/// whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Visibility {
    /// One copy per NodeManager for every user's applications (the file and every ancestor
    /// directory are world-readable).
    Public,
    /// One copy per NodeManager for the user's applications.
    Private,
    /// One copy per application, removed with it (the staging files).
    Application,
}

impl Visibility {
    /// Its YARN name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Private => "PRIVATE",
            Visibility::Application => "APPLICATION",
        }
    }
}

impl AppSpec {
    /// How many workers the input deserves: one per `bytes_per_worker`, within the bounds,
    /// and never more than there are map tasks.
    pub fn workers_for(&self, input_bytes: u64, map_tasks: usize) -> usize {
        let by_bytes = input_bytes.div_ceil(self.bytes_per_worker.max(1)) as usize;
        by_bytes
            .min(map_tasks.max(1))
            .clamp(self.workers_min.max(1), self.workers_max.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_follows_the_bytes() {
        let spec = AppSpec {
            job_toml: String::new(),
            application_id: "application_1_0001".into(),
            staging: String::new(),
            worker_memory_mb: 1024,
            worker_vcores: 1,
            workers_min: 1,
            workers_max: 8,
            bytes_per_worker: 100,
            task_bytes: 10,
            locality_wait_ms: 0,
            task_timeout_ms: 0,
            submitted_ms: 0,
            worker_files: vec![],
            full: false,
        };
        assert_eq!(spec.workers_for(0, 0), 1);
        assert_eq!(spec.workers_for(250, 10), 3);
        assert_eq!(spec.workers_for(250, 2), 2);
        assert_eq!(spec.workers_for(100_000, 1000), 8);
    }
}
