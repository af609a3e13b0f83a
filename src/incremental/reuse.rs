//! The reuse decision: from the previous manifest and the new plan's shards, which shards to
//! read, which partitions to recompute (and why) and which to keep.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::job::Job;
use crate::manifest::{
    IncrementalSummary, Manifest, ManifestPartition, ManifestShard, RecomputeReason, ShardSet,
};
use crate::plan::Shard;
use crate::task::MapOutput;

/// How a shard of the new plan compares with the previous run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardStatus {
    /// Not in the previous run.
    New,
    /// Same URL, another size or modification time (the previous index).
    Changed(usize),
    /// Same URL, size and modification time (the previous index).
    Unchanged(usize),
}

/// Why the previous manifest cannot be used: the warning the run logs and lists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("previous manifest {url}: {reason}; recomputing every partition")]
pub struct Unusable {
    pub url: String,
    pub reason: String,
}

/// The key that tells a partition apart in the manifest: its path. (With numbered parts, the
/// unsplit partition's path, so that all its parts are kept or recomputed together.)
pub fn partition_key(p: &ManifestPartition) -> &str {
    p.partition.as_deref().unwrap_or(&p.path)
}

/// The decision for one run. Built with [`Reuse::everything`] (no previous manifest to use)
/// or [`Reuse::from_previous`], refined with [`Reuse::missing_output`] and
/// [`Reuse::after_first_round`].
#[derive(Debug, Clone)]
pub struct Reuse {
    /// The previous run's manifest, when used.
    previous: Option<Manifest>,
    /// `Some`: every partition is recomputed, for this reason.
    all: Option<RecomputeReason>,
    /// Per shard of the new plan (by ordinal).
    status: Vec<ShardStatus>,
    /// Previous shard index → new ordinal (`None`: vanished).
    now: Vec<Option<u32>>,
    /// Partitions (by [`partition_key`]) to recompute, with why.
    dirty: BTreeMap<String, BTreeSet<RecomputeReason>>,
    /// The previous run's partitions (by [`partition_key`]).
    known: HashSet<String>,
    /// Per ordinal: read by a round so far.
    read: Vec<bool>,
    /// The ordinals of each same-size group (`plan::duplicates`): a round reads a group whole,
    /// so that its map task can tell duplicate deliveries apart.
    groups: HashMap<u32, Vec<u32>>,
    /// Per ordinal: its same-size group.
    group_of: Vec<Option<u32>>,
}

impl Reuse {
    /// Recomputes every partition of `shards` shards for `reason`.
    pub fn everything(reason: RecomputeReason, shards: usize) -> Reuse {
        Reuse {
            previous: None,
            all: Some(reason),
            status: vec![ShardStatus::New; shards],
            now: Vec::new(),
            dirty: BTreeMap::new(),
            known: HashSet::new(),
            read: vec![false; shards],
            groups: HashMap::new(),
            group_of: Vec::new(),
        }
    }

    /// Checks that `previous` (at `url`) is a record of this job and window from this
    /// version of filex with a shard table. `Ok(None)`: usable, but written under other
    /// byte-changing settings.
    pub fn check_previous(
        job: &Job,
        previous: &Manifest,
        url: &str,
    ) -> Result<Option<RecomputeReason>, Unusable> {
        let unusable = |reason: String| Unusable {
            url: url.to_string(),
            reason,
        };
        let version = env!("CARGO_PKG_VERSION");
        if previous.filex_version != version {
            return Err(unusable(format!(
                "written by filex {}, this is {version}",
                previous.filex_version
            )));
        }
        if previous.job != job.name {
            return Err(unusable(format!("of job '{}'", previous.job)));
        }
        let instant = |t: &str| crate::job::time::parse_instant("window", t).ok();
        if instant(&previous.window.start) != Some(job.window.start_ms)
            || instant(&previous.window.end) != Some(job.window.end_ms)
        {
            return Err(unusable(format!(
                "of window {} – {}",
                previous.window.start, previous.window.end
            )));
        }
        if previous.settings_digest.is_empty() {
            return Err(unusable("written without input fingerprints".into()));
        }
        let n = previous.shards.len();
        if let Some(p) = previous
            .partitions
            .iter()
            .find(|p| p.inputs.indices().last().is_some_and(|&i| i as usize >= n))
        {
            return Err(unusable(format!(
                "partition {} names a shard beyond its shard table",
                p.path
            )));
        }
        if previous.settings_digest != job.settings_digest() {
            return Ok(Some(RecomputeReason::SettingsChanged));
        }
        Ok(None)
    }

    /// Compares the new plan's `shards` (in ordinal order) with `previous` (checked by
    /// [`Reuse::check_previous`]): partitions fed by a changed or vanished shard are dirty.
    /// A duplicate delivery of the previous run counts as changed unless the shard it
    /// duplicated is unchanged: its lines may be needed now.
    pub fn from_previous(previous: Manifest, shards: &[&Shard]) -> Reuse {
        let by_url: HashMap<&str, usize> = previous
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| (s.url.as_str(), i))
            .collect();
        let mut now = vec![None; previous.shards.len()];
        let status: Vec<ShardStatus> = shards
            .iter()
            .map(|s| match by_url.get(s.location.to_string().as_str()) {
                None => ShardStatus::New,
                Some(&i) => {
                    now[i] = Some(s.ordinal);
                    let p = &previous.shards[i];
                    if p.bytes == s.size
                        && p.modified_ms.is_some()
                        && p.modified_ms == s.modified_ms
                    {
                        ShardStatus::Unchanged(i)
                    } else {
                        ShardStatus::Changed(i)
                    }
                }
            })
            .collect();
        let status: Vec<ShardStatus> = status
            .iter()
            .map(|&st| match st {
                ShardStatus::Unchanged(i) => {
                    let first_unchanged = |url: &String| {
                        let now_of = by_url.get(url.as_str()).and_then(|&j| now[j]);
                        now_of.is_some_and(|o| {
                            matches!(status.get(o as usize), Some(ShardStatus::Unchanged(_)))
                        })
                    };
                    match &previous.shards[i].duplicate_of {
                        Some(first) if !first_unchanged(first) => ShardStatus::Changed(i),
                        _ => st,
                    }
                }
                _ => st,
            })
            .collect();
        let changed: BTreeSet<usize> = status
            .iter()
            .filter_map(|s| match s {
                ShardStatus::Changed(i) => Some(*i),
                _ => None,
            })
            .collect();
        let mut dirty: BTreeMap<String, BTreeSet<RecomputeReason>> = BTreeMap::new();
        for p in &previous.partitions {
            for &i in p.inputs.indices() {
                let reason = if now[i as usize].is_none() {
                    RecomputeReason::VanishedShard
                } else if changed.contains(&(i as usize)) {
                    RecomputeReason::ChangedShard
                } else {
                    continue;
                };
                dirty
                    .entry(partition_key(p).to_string())
                    .or_default()
                    .insert(reason);
            }
        }
        let known = previous
            .partitions
            .iter()
            .map(|p| partition_key(p).to_string())
            .collect();
        let group_of: Vec<Option<u32>> = shards.iter().map(|s| s.same_size).collect();
        let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for s in shards {
            if let Some(g) = s.same_size {
                groups.entry(g).or_default().push(s.ordinal);
            }
        }
        Reuse {
            known,
            previous: Some(previous),
            all: None,
            read: vec![false; status.len()],
            status,
            now,
            dirty,
            groups,
            group_of,
        }
    }

    /// The previous manifest in use, if any.
    pub fn previous(&self) -> Option<&Manifest> {
        self.previous.as_ref()
    }

    /// Whether every partition is recomputed (and every shard read).
    pub fn is_full(&self) -> bool {
        self.all.is_some()
    }

    /// The previous run's partitions still meant to be kept: the driver checks their files
    /// and reports each one gone or resized through [`Reuse::missing_output`].
    pub fn kept_candidates(&self) -> Vec<&ManifestPartition> {
        match (&self.previous, self.all) {
            (Some(prev), None) => prev
                .partitions
                .iter()
                .filter(|p| !self.dirty.contains_key(partition_key(p)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The file of the partition `key` is missing or has another size: recompute it.
    pub fn missing_output(&mut self, key: &str) {
        self.dirty
            .entry(key.to_string())
            .or_default()
            .insert(RecomputeReason::MissingOutput);
    }

    /// The ordinals of the first round: every shard when recomputing everything; else the
    /// new and changed shards and the unchanged ones feeding a dirty partition.
    pub fn first_round(&mut self) -> Vec<u32> {
        let wanted: Vec<u32> = match (&self.previous, self.all) {
            (Some(_), None) => {
                let feeding = self.feeding_dirty();
                (0..self.status.len() as u32)
                    .filter(|&o| {
                        !matches!(self.status[o as usize], ShardStatus::Unchanged(_))
                            || feeding.contains(&o)
                    })
                    .collect()
            }
            _ => (0..self.status.len() as u32).collect(),
        };
        self.mark_read(&wanted)
    }

    /// After the first round's `maps`: the partitions new and changed shards wrote to become
    /// dirty; returns the ordinals of the unchanged shards feeding them, not read yet.
    pub fn after_first_round(&mut self, job: &Job, maps: &[MapOutput]) -> Vec<u32> {
        if self.all.is_some() || self.previous.is_none() {
            return Vec::new();
        }
        for m in maps {
            for s in &m.shards {
                let reason = match self.status.get(s.ordinal as usize) {
                    Some(ShardStatus::New) => RecomputeReason::NewShard,
                    Some(ShardStatus::Changed(_)) => RecomputeReason::ChangedShard,
                    _ => continue,
                };
                for &pid in &s.partitions {
                    if let Some(key) = m.partitions.get(pid as usize) {
                        let path = job.output.template.render(&key.domain, key.bucket_ms);
                        self.dirty.entry(path).or_default().insert(reason);
                    }
                }
            }
        }
        let wanted: Vec<u32> = self.feeding_dirty().into_iter().collect();
        self.mark_read(&wanted)
    }

    /// Keeps the ordinals of `wanted` not read yet, with the rest of their same-size groups,
    /// and marks them read; in ordinal order.
    fn mark_read(&mut self, wanted: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &o in wanted {
            let group = self.group_of.get(o as usize).copied().flatten();
            let members = group.and_then(|g| self.groups.get(&g));
            for &m in members.map_or(std::slice::from_ref(&o), Vec::as_slice) {
                if let Some(r) = self.read.get_mut(m as usize) {
                    if !*r {
                        *r = true;
                        out.push(m);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// New ordinals of the unchanged shards that fed a dirty partition.
    fn feeding_dirty(&self) -> BTreeSet<u32> {
        let Some(prev) = &self.previous else {
            return BTreeSet::new();
        };
        prev.partitions
            .iter()
            .filter(|p| self.dirty.contains_key(partition_key(p)))
            .flat_map(|p| p.inputs.indices())
            .filter_map(|&i| self.now.get(i as usize).copied().flatten())
            .filter(|&o| matches!(self.status[o as usize], ShardStatus::Unchanged(_)))
            .collect()
    }

    /// Whether a round read the shard `ordinal`.
    pub fn was_read(&self, ordinal: u32) -> bool {
        self.read.get(ordinal as usize).copied().unwrap_or(false)
    }

    /// Why the partition `key` is recomputed; `None`: it is kept.
    pub fn recompute(&self, key: &str) -> Option<Vec<RecomputeReason>> {
        if let Some(all) = self.all {
            return Some(vec![all]);
        }
        if let Some(reasons) = self.dirty.get(key) {
            return Some(reasons.iter().copied().collect());
        }
        // A partition neither in the previous manifest nor written to by a new shard cannot
        // have lines; should one appear, it is computed.
        (!self.known.contains(key)).then(|| vec![RecomputeReason::NewShard])
    }

    /// The previous manifest's record of a shard of the new plan that was not changed.
    pub fn unchanged_record(&self, ordinal: u32) -> Option<&ManifestShard> {
        match (self.status.get(ordinal as usize), &self.previous) {
            (Some(ShardStatus::Unchanged(i)), Some(prev)) => prev.shards.get(*i),
            _ => None,
        }
    }

    /// The previous run's partitions kept as published, with their inputs renumbered to the
    /// new plan and the run that published them.
    pub fn kept(&self) -> Vec<ManifestPartition> {
        let (Some(prev), None) = (&self.previous, self.all) else {
            return Vec::new();
        };
        prev.partitions
            .iter()
            .filter(|p| !self.dirty.contains_key(partition_key(p)))
            .map(|p| ManifestPartition {
                inputs: ShardSet::new(
                    p.inputs
                        .indices()
                        .iter()
                        .filter_map(|&i| self.now.get(i as usize).copied().flatten())
                        .collect(),
                ),
                recomputed: Vec::new(),
                kept_from: Some(p.kept_from.clone().unwrap_or_else(|| prev.run_id.clone())),
                ..p.clone()
            })
            .collect()
    }

    /// The figures for the manifest; `recomputed` and `read` as the run ended.
    pub fn summary(&self, kept: usize, recomputed: usize) -> IncrementalSummary {
        let count = |f: fn(&ShardStatus) -> bool| self.status.iter().filter(|s| f(s)).count();
        let (new, changed) = match self.previous {
            Some(_) => (
                count(|s| matches!(s, ShardStatus::New)),
                count(|s| matches!(s, ShardStatus::Changed(_))),
            ),
            None => (0, 0),
        };
        IncrementalSummary {
            previous_run_id: self.previous.as_ref().map(|p| p.run_id.clone()),
            partitions_kept: kept as u64,
            partitions_recomputed: recomputed as u64,
            shards_read: self.read.iter().filter(|r| **r).count() as u64,
            shards_new: new as u64,
            shards_changed: changed as u64,
            shards_vanished: match &self.previous {
                Some(prev) => self
                    .now
                    .iter()
                    .zip(&prev.shards)
                    .filter(|(n, _)| n.is_none())
                    .map(|(_, s)| s.url.clone())
                    .collect(),
                None => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
