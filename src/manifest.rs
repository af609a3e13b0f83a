//! The manifest: the record of one run, written last under `_manifests/`, so that its
//! presence means the output is complete. It lists every partition with its line count, size
//! and SHA-256, the counters (in total and per source), skipped and duplicate shards and
//! warnings.

use serde::{Deserialize, Serialize};

pub use crate::calendar::now_rfc3339;
use crate::plan::DuplicateShard;
use crate::task::{Counters, SkippedShard};

/// Directory (under the output root) holding manifests.
pub const MANIFEST_DIR: &str = "_manifests";
/// Directory (under the output root) holding rejected lines.
pub const REJECTS_DIR: &str = "_rejects";

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub filex_version: String,
    pub job: String,
    pub window: ManifestWindow,
    pub run_id: String,
    pub output_root: String,
    pub started_at: String,
    pub finished_at: String,
    pub partitions: Vec<ManifestPartition>,
    pub counters: Counters,
    pub sources: Vec<SourceSummary>,
    pub skipped_shards: Vec<SkippedShard>,
    /// Shards not read because an earlier one has the same bytes (`on_duplicate_shard`).
    #[serde(default)]
    pub duplicate_shards: Vec<DuplicateShard>,
    pub rejects: Option<RejectsFile>,
    pub warnings: Vec<String>,
    /// Milliseconds spent in each phase.
    pub timeline: Timeline,
    /// Milestones (in cluster mode: submitted, AM started and registered, first worker,
    /// maps done, reduces done), in order.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One milestone of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// The logical window of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestWindow {
    pub start: String,
    pub end: String,
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPartition {
    /// Relative to the output root.
    pub path: String,
    pub domain: String,
    /// Start of the partition's hour or day, RFC 3339 in the output zone.
    pub start: String,
    pub lines: u64,
    pub bytes: u64,
    pub sha256: String,
    /// For a numbered part (`output.max_file_size`): the path the unsplit partition would
    /// have; absent for a partition written as one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// For a numbered part: its number, 1-based, in time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
}

/// Per-source figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub shards: u64,
    pub shard_bytes: u64,
    pub counters: Counters,
}

/// The rejects file of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectsFile {
    pub path: String,
    pub lines: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Phase durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub plan_ms: u64,
    pub map_ms: u64,
    pub reduce_ms: u64,
    pub commit_ms: u64,
}
