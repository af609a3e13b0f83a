//! What the client hands the application master, as a JSON file localized in its container:
//! the resolved job, where the staging directory is, and how to size the worker fleet (from
//! the `filex.*` settings of [`crate::settings`]); and the rules of uber mode (a small job's
//! tasks run in the AM's own container): which jobs, and how big that container must be.

use serde::{Deserialize, Serialize};
use yarn::Resource;

/// Share of a container's memory (a worker's, or the AM's in uber mode) its task buffers
/// and held runs may use; the rest is the process's own.
pub const TASK_MEMORY_SHARE: f64 = 0.6;
/// How many bytes of lines one byte of gzip'd CDN log holds, rounded up: issue 14's
/// 533-shard corpus is 276 MB of lines in 37 MB of gzip (7.5×). A sorted run held in
/// memory takes about its lines' bytes, so an uber job of `filex.uber.max-bytes` holds about
/// this many times as much.
pub const LINES_PER_GZIP_BYTE: u64 = 8;
const MIB: u64 = 1 << 20;

/// The memory, in MiB, of a container whose held-runs share
/// ([`TASK_MEMORY_SHARE`] × [`crate::driver::HELD_RUNS_SHARE`]) keeps the sorted runs of
/// `input_bytes` of gzip'd input in memory.
pub fn uber_memory_mb(input_bytes: u64) -> i64 {
    let runs = input_bytes.saturating_mul(LINES_PER_GZIP_BYTE) as f64;
    let share = TASK_MEMORY_SHARE * crate::driver::HELD_RUNS_SHARE;
    (runs / share / MIB as f64).ceil() as i64
}

/// The AM container to ask for: `am_memory_mb` (`filex.am.memory-mb`) and one core without
/// uber mode (`uber_max_bytes` 0). With it, the AM gets the memory that holds the runs of
/// `uber_max_bytes` of input ([`uber_memory_mb`]; the default AM already does) and the cores
/// of the one worker it stands in for (its task threads), both within `maximum`, the
/// largest container the cluster grants (an AM smaller than wanted still runs uber jobs,
/// holding the runs that fit and writing the others to scratch). The AM memory set is never
/// lowered: one beyond `maximum` is refused by YARN, as before.
pub fn am_resource(
    am_memory_mb: i64,
    uber_max_bytes: u64,
    worker: Resource,
    maximum: Resource,
) -> Resource {
    if uber_max_bytes == 0 {
        return Resource::new(am_memory_mb, 1);
    }
    let within = |want: i64, max: i64| if max > 0 { want.min(max) } else { want };
    let uber_mb = within(uber_memory_mb(uber_max_bytes), maximum.memory_mb);
    let vcores = within(i64::from(worker.vcores), i64::from(maximum.vcores)).max(1);
    Resource::new(am_memory_mb.max(uber_mb), vcores as i32)
}

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
    /// The AM container's memory (MiB) and cores, as asked for ([`am_resource`]).
    #[serde(default)]
    pub am_memory_mb: i64,
    #[serde(default)]
    pub am_vcores: i32,
    /// `filex.uber.max-bytes`: a job of at most this much input runs in the AM; 0: never.
    #[serde(default)]
    pub uber_max_bytes: u64,
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
    /// `filex submit --principal P --keytab K` on a Kerberized cluster: who the AM logs in
    /// as and the link name of the keytab, shipped among the AM's files only (not its bytes).
    #[serde(default)]
    pub keytab: Option<KeytabLogin>,
}

/// The submitter's keytab as the AM gets it: localized from the private staging directory
/// (mode 600) into the AM's container alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeytabLogin {
    /// e.g. `filex@EXAMPLE.COM`.
    pub principal: String,
    /// Link name in the AM container's working directory.
    pub file: String,
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

    /// Whether a job of `input_bytes` (compressed) runs uber: in the AM's container, with
    /// no worker container.
    pub fn runs_uber(&self, input_bytes: u64) -> bool {
        self.uber_max_bytes > 0 && input_bytes <= self.uber_max_bytes
    }

    /// Memory the tasks share in a container of `memory_mb`.
    pub fn tasks_memory(memory_mb: i64) -> usize {
        ((memory_mb.max(0) as f64) * TASK_MEMORY_SHARE) as usize * (1 << 20)
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
            am_memory_mb: 512,
            am_vcores: 1,
            uber_max_bytes: 16 << 20,
            workers_min: 1,
            workers_max: 8,
            bytes_per_worker: 100,
            task_bytes: 10,
            locality_wait_ms: 0,
            task_timeout_ms: 0,
            submitted_ms: 0,
            worker_files: vec![],
            full: false,
            keytab: None,
        };
        assert_eq!(spec.workers_for(0, 0), 1);
        assert_eq!(spec.workers_for(250, 10), 3);
        assert_eq!(spec.workers_for(250, 2), 2);
        assert_eq!(spec.workers_for(100_000, 1000), 8);
        assert!(spec.runs_uber(0) && spec.runs_uber(16 << 20));
        assert!(!spec.runs_uber((16 << 20) + 1));
        let off = AppSpec {
            uber_max_bytes: 0,
            ..spec
        };
        assert!(!off.runs_uber(0), "0 turns uber mode off");
    }

    #[test]
    fn the_default_uber_job_fits_the_default_am() {
        // 16 MiB of gzip: 128 MiB of runs, 30 % of the container → 427 MiB, under 512.
        assert_eq!(uber_memory_mb(16 << 20), 427);
        let worker = Resource::new(1024, 1);
        let max = Resource::new(4096, 8);
        assert_eq!(am_resource(512, 0, worker, max), Resource::new(512, 1));
        assert_eq!(
            am_resource(512, 16 << 20, worker, max),
            Resource::new(512, 1),
            "the default threshold needs no bigger AM than the default"
        );
        assert_eq!(
            am_resource(512, 64 << 20, Resource::new(1024, 2), max),
            Resource::new(1707, 2),
            "more input held, and the cores of the worker it stands in for"
        );
    }

    #[test]
    fn an_am_sized_for_uber_stays_within_the_largest_container() {
        let max = Resource::new(4096, 8);
        let r = am_resource(512, 1 << 30, Resource::new(1024, 16), max);
        assert_eq!(r, max, "1 GiB of input would want 27 GiB and 16 cores");
        assert_eq!(
            am_resource(8192, 16 << 20, Resource::new(1024, 1), max),
            Resource::new(8192, 1),
            "the memory set is not lowered (YARN refuses it, naming the limit)"
        );
        // A cluster that did not say: as asked.
        let unknown = Resource::new(0, 0);
        assert_eq!(
            am_resource(512, 64 << 20, Resource::new(1024, 1), unknown),
            Resource::new(1707, 1)
        );
    }
}
