//! The plan: which shards each source has in the window, and how they are split into map
//! tasks. [`discover()`] lists directories (one listing per directory the template reaches, not
//! one probe per 5-minute slot); [`plan`] is a pure function of the job and what discovery
//! found, which groups the shards that may be duplicate deliveries for the map tasks to
//! compare (`duplicates`).

mod discover;
mod duplicates;

pub use discover::{discover, Discovered};
pub use duplicates::DuplicateShard;

use serde::{Deserialize, Serialize};

use crate::job::{DuplicateShardPolicy, Job};
use crate::storage::location::Location;

/// Default input bytes (compressed) one map task takes; small shards are combined up to it.
pub const DEFAULT_MAP_TASK_BYTES: u64 = 64 << 20;
/// At most this many shards in one map task.
pub const MAX_SHARDS_PER_TASK: usize = 256;
/// Directory listings and block-location lookups the plan has in flight at once. Each is a round trip to the store, and a customer-day reaches thousands
/// of directories: one at a time, the plan would cost seconds of waiting.
const STORE_CONCURRENCY: usize = 8;

/// A shard found on storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredShard {
    pub location: Location,
    pub size: u64,
    /// Last modification (ms since the epoch), where the store keeps one.
    pub modified_ms: Option<i64>,
    pub domain: Option<String>,
    pub slot_start_ms: Option<i64>,
    pub hosts: Vec<String>,
}

/// One input shard, with its place in the total order of shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Position in the plan's shard order (source order, then path bytewise): the sort
    /// tie-breaker after the event time.
    pub ordinal: u32,
    /// Index of the source in the job.
    pub source: u32,
    pub location: Location,
    pub size: u64,
    /// Last modification (ms since the epoch), where the store keeps one: with the URL and
    /// the size, the shard's fingerprint in the manifest.
    #[serde(default)]
    pub modified_ms: Option<i64>,
    /// Host from `{domain}` in the path.
    pub domain: Option<String>,
    /// Start of the slot the path names, if it names one.
    pub slot_start_ms: Option<i64>,
    /// Hosts holding the shard's blocks (HDFS), best first.
    pub hosts: Vec<String>,
    /// The group of shards of the same size and `{domain}` it belongs to, if any
    /// (`on_duplicate_shard = "skip"`): the map task reading it reports its digest (see
    /// `duplicates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_size: Option<u32>,
}

/// One map task: shards read, parsed and sorted together, in ordinal order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTask {
    pub id: u32,
    pub shards: Vec<Shard>,
    pub bytes: u64,
    /// Hosts holding most of the task's bytes, best first.
    pub preferred_hosts: Vec<String>,
    /// Shards of the task found to be duplicate deliveries by an earlier attempt at the same
    /// shards: not read (see `duplicates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<KnownDuplicate>,
}

/// A shard of a map task known to have the same bytes as an earlier shard of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDuplicate {
    pub ordinal: u32,
    /// The URL of the shard read instead.
    pub of: String,
}

/// Shards of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePlan {
    pub name: String,
    pub template: String,
    pub shards: u64,
    pub bytes: u64,
    /// Slots with at least one shard, with shard count and bytes, in time order.
    pub slots: Vec<SlotPlan>,
}

/// Shards found for one slot of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPlan {
    pub start_ms: Option<i64>,
    pub shards: u64,
    pub bytes: u64,
}

/// What would run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub sources: Vec<SourcePlan>,
    pub map_tasks: Vec<MapTask>,
    /// Things the user should know (a source without any shard in the window…).
    pub warnings: Vec<String>,
    /// Shards in a group of the same size and `{domain}` (compared by the map tasks).
    #[serde(default)]
    pub same_size_shards: u64,
    /// Compressed input bytes a map task was given at most (how [`pack`] was called), so that
    /// a re-run reading only some of the shards packs them alike.
    #[serde(default)]
    pub task_bytes: u64,
}

impl Plan {
    /// Every shard of the plan, in ordinal order (index = ordinal).
    pub fn shards(&self) -> Vec<&Shard> {
        self.map_tasks
            .iter()
            .flat_map(|t| t.shards.iter())
            .collect()
    }
    pub fn total_bytes(&self) -> u64 {
        self.map_tasks.iter().map(|t| t.bytes).sum()
    }
    pub fn total_shards(&self) -> usize {
        self.map_tasks.iter().map(|t| t.shards.len()).sum()
    }
}

/// Orders the discovered shards, numbers them and groups them into map tasks of about
/// `task_bytes` compressed input each — smaller when that would leave fewer than
/// `min_tasks` tasks, so that every slot of the cluster has work.
pub fn plan(job: &Job, found: Discovered, task_bytes: u64, min_tasks: usize) -> Plan {
    let mut shards = Vec::new();
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    for (i, (source, mut list)) in job.sources.iter().zip(found.sources).enumerate() {
        list.sort_by(|a, b| {
            a.location
                .path_str()
                .as_bytes()
                .cmp(b.location.path_str().as_bytes())
        });
        let mut slots: std::collections::BTreeMap<Option<i64>, SlotPlan> = Default::default();
        for s in &list {
            let slot = slots.entry(s.slot_start_ms).or_insert(SlotPlan {
                start_ms: s.slot_start_ms,
                shards: 0,
                bytes: 0,
            });
            slot.shards += 1;
            slot.bytes += s.size;
        }
        if list.is_empty() {
            warnings.push(format!(
                "source '{}' matches no shard in the window ({})",
                source.name, source.shards.text
            ));
        }
        sources.push(SourcePlan {
            name: source.name.clone(),
            template: source.shards.text.clone(),
            shards: list.len() as u64,
            bytes: list.iter().map(|s| s.size).sum(),
            slots: slots.into_values().collect(),
        });
        for s in list {
            shards.push(Shard {
                ordinal: shards.len() as u32,
                source: i as u32,
                location: s.location,
                size: s.size,
                modified_ms: s.modified_ms,
                domain: s.domain,
                slot_start_ms: s.slot_start_ms,
                hosts: s.hosts,
                same_size: None,
            });
        }
    }
    let same_size_shards = match job.on_duplicate_shard {
        DuplicateShardPolicy::Skip => duplicates::group_same_sizes(&mut shards) as u64,
        DuplicateShardPolicy::Keep => 0,
    };
    let total: u64 = shards.iter().map(|s| s.size).sum();
    let task_bytes = task_bytes
        .min(total.div_ceil(min_tasks.max(1) as u64))
        .max(1);
    let map_tasks = pack(shards, task_bytes, 0);
    Plan {
        sources,
        map_tasks,
        warnings,
        same_size_shards,
        task_bytes,
    }
}

/// Groups shards (in ordinal order) into map tasks of at most `task_bytes` compressed input
/// and [`MAX_SHARDS_PER_TASK`] shards each (a bigger shard alone), numbered from `first_id`.
pub fn pack(shards: Vec<Shard>, task_bytes: u64, first_id: u32) -> Vec<MapTask> {
    let mut map_tasks: Vec<MapTask> = Vec::new();
    let mut current: Vec<Shard> = Vec::new();
    let mut bytes = 0u64;
    let flush = |current: &mut Vec<Shard>, bytes: &mut u64, tasks: &mut Vec<MapTask>| {
        if current.is_empty() {
            return;
        }
        let shards = std::mem::take(current);
        tasks.push(MapTask {
            id: first_id + tasks.len() as u32,
            preferred_hosts: preferred_hosts(&shards),
            shards,
            bytes: *bytes,
            duplicates: Vec::new(),
        });
        *bytes = 0;
    };
    for s in shards {
        if !current.is_empty()
            && (bytes + s.size > task_bytes || current.len() >= MAX_SHARDS_PER_TASK)
        {
            flush(&mut current, &mut bytes, &mut map_tasks);
        }
        bytes += s.size;
        current.push(s);
    }
    flush(&mut current, &mut bytes, &mut map_tasks);
    map_tasks
}

/// Hosts ranked by the bytes of the task's shards they hold.
fn preferred_hosts(shards: &[Shard]) -> Vec<String> {
    let mut by_host: std::collections::BTreeMap<&str, u64> = Default::default();
    for s in shards {
        for h in &s.hosts {
            *by_host.entry(h).or_default() += s.size.max(1);
        }
    }
    let mut hosts: Vec<(&str, u64)> = by_host.into_iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    hosts.into_iter().map(|(h, _)| h.to_string()).collect()
}

#[cfg(test)]
mod tests;
