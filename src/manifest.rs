//! The manifest: the record of one run, written last under `_manifests/`, so that its
//! presence means the output is complete. It lists every partition with its line count, size
//! and SHA-256, the counters (in total and per source), skipped and duplicate shards and
//! warnings.
//!
//! It is also what the next run of the same window starts from (incremental re-fusion, see
//! `crate::incremental`): the shard table lists every shard read with its fingerprint (URL,
//! size, modification time) and its counters, each partition names the shards that fed it
//! (indices into that table, as ranges), and `settings_digest` covers the job settings that
//! change output bytes. Sized for 100,000 shards (about 320 bytes each) and 10,000
//! partitions: no partition repeats a URL.

use serde::{Deserialize, Serialize};

pub use crate::calendar::now_rfc3339;
use crate::plan::DuplicateShard;
use crate::task::{Counters, SkippedShard};

/// Directory (under the output root) holding manifests.
pub const MANIFEST_DIR: &str = "_manifests";
/// Directory (under the output root) holding rejected lines.
pub const REJECTS_DIR: &str = "_rejects";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

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
    /// Shards not parsed because an earlier one has the same bytes (`on_duplicate_shard`):
    /// those of `shards` with a `duplicate_of`.
    #[serde(default)]
    pub duplicate_shards: Vec<DuplicateShard>,
    pub rejects: Option<RejectsFile>,
    pub warnings: Vec<String>,
    /// Files the previous run of the window published that this run does not (a partition
    /// whose shards are gone, parts beyond the new last one): removed before this manifest
    /// was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Milliseconds spent in each phase.
    pub timeline: Timeline,
    /// Milestones (in cluster mode: submitted, AM started and registered, first worker,
    /// maps done, reduces done), in order.
    #[serde(default)]
    pub events: Vec<Event>,
    /// SHA-256 of the job settings that change output bytes (`incremental::settings_digest`).
    #[serde(default)]
    pub settings_digest: String,
    /// Every shard of the window (duplicate deliveries included, marked `duplicate_of`), in
    /// the plan's order: what `partitions[].inputs` index.
    #[serde(default)]
    pub shards: Vec<ManifestShard>,
    /// What this run reused from the previous run of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalSummary>,
    /// Tasks not run by this application master because an earlier attempt of it, which
    /// died, had finished them (its journal); absent when there were none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tasks_recovered: u64,
}

impl Manifest {
    /// The document as written to the store: pretty JSON and a newline.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// One shard of the window: its fingerprint and what its lines became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestShard {
    pub url: String,
    /// Index of the source in the job.
    pub source: u32,
    pub bytes: u64,
    /// Last modification, ms since the epoch (absent where the store keeps none: such a shard
    /// counts as changed on every re-run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ms: Option<i64>,
    /// Its lines: in, out, rejected, outside the window (a re-run that does not read the
    /// shard carries these over).
    pub counters: Counters,
    /// Skipped as corrupt: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Not parsed: a duplicate delivery of this shard (same bytes), read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

/// Why a run computed a partition rather than keeping the previous run's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecomputeReason {
    /// No manifest of an earlier run of this job and window.
    NoPreviousManifest,
    /// The previous manifest could not be used (unreadable, another job, window or version,
    /// no shard table, its rejects file gone); the run's warnings say why.
    PreviousManifestUnusable,
    /// `--full`.
    FullRequested,
    /// A job setting that changes output bytes differs from the previous run's.
    SettingsChanged,
    /// A shard the previous run did not have wrote lines to it.
    NewShard,
    /// A shard whose size or modification time changed fed it (before or now).
    ChangedShard,
    /// A shard that fed it is gone.
    VanishedShard,
    /// Its file is missing or has another size than the previous manifest says.
    MissingOutput,
}

/// The reuse of one run, in figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IncrementalSummary {
    /// The run whose manifest this one started from (`None`: none was used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_run_id: Option<String>,
    pub partitions_kept: u64,
    pub partitions_recomputed: u64,
    /// Shards read by this run, of `shards`.
    pub shards_read: u64,
    pub shards_new: u64,
    pub shards_changed: u64,
    /// URLs of the previous run's shards that are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards_vanished: Vec<String>,
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
    /// The shards that fed it: indices into [`Manifest::shards`].
    #[serde(default)]
    pub inputs: ShardSet,
    /// Why this run wrote it; empty when it was kept as an earlier run published it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recomputed: Vec<RecomputeReason>,
    /// Kept: the run that published the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_from: Option<String>,
    /// For a numbered part (`output.max_file_size`): the path the unsplit partition would
    /// have; absent for a partition written as one file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// For a numbered part: its number, 1-based, in time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
}

/// A set of shard indices, written compactly as ranges: `"0-11,288-299,301"` (a
/// partition's shards are mostly consecutive in the plan's order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSet(Vec<u32>);

impl ShardSet {
    /// The set of `indices` (any order, repeats allowed).
    pub fn new(mut indices: Vec<u32>) -> ShardSet {
        indices.sort_unstable();
        indices.dedup();
        ShardSet(indices)
    }
    /// The indices, ascending.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `"0-11,20"`.
    pub fn to_ranges(&self) -> String {
        let mut out = String::new();
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&start.to_string());
            if end > start {
                out.push('-');
                out.push_str(&end.to_string());
            }
            i += 1;
        }
        out
    }
    /// Parses [`ShardSet::to_ranges`]'s text.
    pub fn from_ranges(text: &str) -> Result<ShardSet, String> {
        let mut v = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let num = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad shard range '{part}'"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if b < a {
                        return Err(format!("bad shard range '{part}'"));
                    }
                    v.extend(a..=b);
                }
                None => v.push(num(part)?),
            }
        }
        Ok(ShardSet::new(v))
    }
}

impl Serialize for ShardSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_ranges())
    }
}

impl<'de> Deserialize<'de> for ShardSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ShardSet, D::Error> {
        let text = String::deserialize(d)?;
        ShardSet::from_ranges(&text).map_err(serde::de::Error::custom)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_sets_are_written_as_ranges_and_read_back() {
        for (indices, text) in [
            (vec![], ""),
            (vec![7], "7"),
            (vec![3, 0, 1, 2, 2, 11, 9, 10, 5], "0-3,5,9-11"),
        ] {
            let set = ShardSet::new(indices);
            assert_eq!(set.to_ranges(), text);
            assert_eq!(ShardSet::from_ranges(text).unwrap(), set);
            let json = serde_json::to_string(&set).unwrap();
            assert_eq!(serde_json::from_str::<ShardSet>(&json).unwrap(), set);
        }
        for bad in ["x", "3-1", "1-", "-2"] {
            assert!(ShardSet::from_ranges(bad).is_err(), "{bad}");
        }
    }
}
