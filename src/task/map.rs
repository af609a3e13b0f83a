//! The map task: for each shard of the task, decompress, split lines, parse, drop lines
//! outside the window, route to a partition (domain, hour or day), render the output line
//! and add it to the sort buffer; spill a sorted run to scratch whenever the buffer is full.

use std::collections::HashMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::counters::Counters;
use super::progress::Progress;
use super::read_ahead::ReadAhead;
use super::same_bytes;
use super::shard::{open_checked, open_shard, shard_from_bytes, ShardError};
use super::{TaskContext, TaskError};
use crate::formats::{ParseContext, Renderer};
use crate::job::CorruptShardPolicy;
use crate::plan::MapTask;
use crate::sort::{RunIndex, SegmentWriter, SortBuffer, SortKey};
use crate::storage::{input_store, ScratchFile};

/// Share of a task's memory given to the sort buffer; the rest covers read and
/// decompression buffers and the line being rendered.
const SORT_BUFFER_SHARE: f64 = 0.75;
/// Share of a task's memory a shard may take to be inflated in one piece (compressed plus
/// decompressed bytes); bigger shards are streamed. Part of the share the sort buffer leaves.
const WHOLE_SHARD_SHARE: f64 = 0.15;
/// Room for block and segment headers of a run held in memory, beyond the sort buffer's bytes.
const HELD_RUN_SLACK: usize = 1 << 20;
/// Report progress every this many lines.
const PROGRESS_EVERY: u64 = 8192;

/// One partition: the domain and the start of its time bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PartitionKey {
    pub domain: String,
    pub bucket_ms: i64,
}

/// A sorted run written by a map task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFile {
    /// Scratch name.
    pub name: String,
    pub index: RunIndex,
}

/// A shard skipped under `on_corrupt_shard = "skip"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedShard {
    pub url: String,
    pub reason: String,
}

/// What one shard of a map task gave: its counters and the partitions its lines went to
/// (what the manifest records for incremental re-fusion).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOutput {
    /// The shard's ordinal in the plan.
    pub ordinal: u32,
    pub counters: Counters,
    /// Task-local partition ids (as in [`MapOutput::partitions`]) the shard wrote lines to,
    /// in first-line order.
    pub partitions: Vec<u32>,
    /// Skipped as corrupt (`on_corrupt_shard = "skip"`): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Not parsed: the same bytes as this shard (its URL), read instead
    /// (`on_duplicate_shard = "skip"`, `MapTask::duplicates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Hex SHA-256 of its bytes as stored, for a shard of a same-size group
    /// (`Shard::same_size`): what tells duplicate deliveries apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a map task produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapOutput {
    pub task: u32,
    pub runs: Vec<RunFile>,
    /// Partitions by their task-local id (the `partition` of the run segments).
    pub partitions: Vec<PartitionKey>,
    /// Counters per source of the job, in job order.
    pub counters: Vec<Counters>,
    /// Scratch name of this task's rejects (TSV: source, shard, line, reason, raw line).
    pub rejects: Option<String>,
    pub skipped: Vec<SkippedShard>,
    pub input_bytes: u64,
    /// Per shard of the task, in task order.
    #[serde(default)]
    pub shards: Vec<ShardOutput>,
}

/// Maps partitions to task-local ids without allocating on the common path.
#[derive(Default)]
struct PartitionTable {
    by_domain: HashMap<String, Vec<(i64, u32)>>,
    keys: Vec<PartitionKey>,
    last: Option<(usize, i64, u32)>,
}

impl PartitionTable {
    fn id(&mut self, domain: &str, bucket_ms: i64) -> u32 {
        if let Some((len, b, id)) = self.last {
            if b == bucket_ms
                && len == domain.len()
                && self.keys[id as usize].domain.as_str() == domain
            {
                return id;
            }
        }
        let next = self.keys.len() as u32;
        let buckets = match self.by_domain.get_mut(domain) {
            Some(b) => b,
            None => self.by_domain.entry(domain.to_string()).or_default(),
        };
        let id = match buckets.iter().find(|(b, _)| *b == bucket_ms) {
            Some((_, id)) => *id,
            None => {
                buckets.push((bucket_ms, next));
                self.keys.push(PartitionKey {
                    domain: domain.to_string(),
                    bucket_ms,
                });
                next
            }
        };
        self.last = Some((domain.len(), bucket_ms, id));
        id
    }
}

struct Rejects {
    name: String,
    file: Option<Box<dyn ScratchFile>>,
}

impl Rejects {
    fn write(
        &mut self,
        ctx: &TaskContext,
        source: &str,
        shard: &str,
        line_no: u64,
        reason: &str,
        raw: &[u8],
    ) -> Result<(), TaskError> {
        let scratch_err = |source| TaskError::Scratch {
            what: format!("write {}", self.name),
            source,
        };
        if self.file.is_none() {
            self.file = Some(ctx.scratch.create(&self.name).map_err(scratch_err)?);
        }
        if let Some(f) = self.file.as_mut() {
            let reason = reason.replace(['\t', '\n', '\r'], " ");
            write!(f, "{source}\t{shard}\t{line_no}\t{reason}\t")
                .and_then(|_| f.write_all(raw))
                .and_then(|_| f.write_all(b"\n"))
                .map_err(|source| TaskError::Scratch {
                    what: format!("write {}", self.name),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Runs one map task.
pub fn execute_map(
    ctx: &TaskContext,
    task: &MapTask,
    attempt: u32,
) -> Result<MapOutput, TaskError> {
    let job = &ctx.job;
    let prefix = format!("m{:05}.{attempt}", task.id);
    let budget = ((ctx.memory_per_task as f64) * SORT_BUFFER_SHARE) as usize;
    let mut buffer = SortBuffer::new(budget.max(64 << 10));
    let whole_limit = ((ctx.memory_per_task as f64) * WHOLE_SHARD_SHARE) as usize;
    let mut partitions = PartitionTable::default();
    let mut counters = vec![Counters::default(); job.sources.len()];
    let mut rejects = Rejects {
        name: format!("{prefix}/rejects.tsv"),
        file: None,
    };
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut rendered = Vec::with_capacity(4096);
    let renderer = Renderer {
        format: job.output.format,
        tz_offset_secs: job.output.tz_offset_secs,
    };
    let template = &job.output.template;
    let window = job.window;
    let mut input_bytes = 0u64;
    let mut shard_outputs = Vec::with_capacity(task.shards.len());

    let spill = |buffer: &mut SortBuffer, runs: &mut Vec<RunFile>| -> Result<(), TaskError> {
        let name = format!("{prefix}/spill-{:04}.run", runs.len());
        let scratch_err = |source| TaskError::Scratch {
            what: format!("spill {name}"),
            source,
        };
        // A run kept in memory (when the scratch has room) is stored uncompressed: lz4 would
        // only cost CPU there. Its size is the buffer's bytes plus block and segment headers.
        let held_bytes = buffer.bytes_used() + HELD_RUN_SLACK;
        let (mut file, writer) = match ctx.scratch.create_in_memory(&name, held_bytes) {
            Some(f) => (f, SegmentWriter::stored()),
            None => (
                ctx.scratch.create(&name).map_err(scratch_err)?,
                SegmentWriter::new(),
            ),
        };
        let index = buffer.spill_with(&mut file, writer).map_err(scratch_err)?;
        file.close().map_err(scratch_err)?;
        runs.push(RunFile { name, index });
        Ok(())
    };

    let shards = ReadAhead::run(&task.shards, |ahead| -> Result<(), TaskError> {
        // One shard's decompressed bytes at a time; each reuses the previous one's allocation.
        let mut spare = Vec::new();
        for (i, shard) in task.shards.iter().enumerate() {
            let source = &job.sources[shard.source as usize];
            let store = input_store(&shard.location)?;
            let url = shard.location.to_string();
            let mut ahead_bytes = ahead.take(i).transpose()?;
            if let Some(d) = task.duplicates.iter().find(|d| d.ordinal == shard.ordinal) {
                tracing::info!(shard = %url, same_bytes_as = %d.of, "duplicate delivery not parsed");
                shard_outputs.push(ShardOutput {
                    ordinal: shard.ordinal,
                    duplicate_of: Some(d.of.clone()),
                    ..ShardOutput::default()
                });
                continue;
            }
            let mut sha256 = None;
            if shard.same_size.is_some() {
                let (digest, held) =
                    same_bytes::digest(ahead_bytes, store.as_ref(), shard, whole_limit)?;
                sha256 = Some(hex::encode(digest));
                ahead_bytes = held;
            }
            let opened = if job.on_corrupt_shard == CorruptShardPolicy::Skip {
                match open_checked(
                    ahead_bytes,
                    store.as_ref(),
                    &shard.location,
                    whole_limit,
                    &mut spare,
                ) {
                    Ok(opened) => opened,
                    Err(e @ ShardError::Storage(_)) => return Err(e.into()),
                    Err(e) => {
                        tracing::warn!(shard = %url, error = %e, "skipping corrupt shard");
                        let reason = crate::errors::chain(&e);
                        shard_outputs.push(ShardOutput {
                            ordinal: shard.ordinal,
                            counters: Counters::default(),
                            partitions: Vec::new(),
                            skipped: Some(reason.clone()),
                            sha256,
                            ..ShardOutput::default()
                        });
                        skipped.push(SkippedShard { url, reason });
                        continue;
                    }
                }
            } else {
                match ahead_bytes {
                    Some(bytes) => {
                        shard_from_bytes(bytes, &shard.location, whole_limit, &mut spare)?
                    }
                    None => open_shard(store.as_ref(), &shard.location, whole_limit, &mut spare)?,
                }
            };
            let mut lines = opened.lines();
            let pctx = ParseContext {
                domain: shard.domain.as_deref(),
                tz_offset_secs: source.tz_offset_secs,
            };
            let mut c = Counters::default();
            let mut fed: Vec<u32> = Vec::new();
            let mut line_no = 0u64;
            let mut bytes_since = 0u64;
            loop {
                let line = match lines.next_line() {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(ShardError::Corrupt {
                            url,
                            line: line_no + 1,
                            source: e,
                        }
                        .into())
                    }
                };
                line_no += 1;
                bytes_since += line.len() as u64 + 1;
                if line_no.is_multiple_of(PROGRESS_EVERY) {
                    Progress::add(&ctx.progress.lines, PROGRESS_EVERY);
                    Progress::add(&ctx.progress.input_bytes, bytes_since);
                    input_bytes += bytes_since;
                    bytes_since = 0;
                }
                let rec = match source.format.parse(line, &pctx) {
                    Ok(Some(rec)) => rec,
                    Ok(None) => continue,
                    Err(reason) => {
                        c.rejected();
                        rejects.write(
                            ctx,
                            &source.name,
                            &url,
                            line_no,
                            &reason.to_string(),
                            line,
                        )?;
                        continue;
                    }
                };
                if !window.contains(rec.time_ms) {
                    c.outside_window();
                    continue;
                }
                c.accepted();
                // The formats only accept hosts that are safe as a path segment.
                let pid = partitions.id(&rec.host, template.bucket_of(rec.time_ms));
                if fed.last() != Some(&pid) && !fed.contains(&pid) {
                    fed.push(pid);
                }
                rendered.clear();
                renderer.render(&rec, &source.name, line, &mut rendered);
                buffer.push(
                    pid,
                    SortKey {
                        time_ms: rec.time_ms,
                        shard: shard.ordinal,
                        line: line_no,
                    },
                    &rendered,
                );
                if buffer.is_full() {
                    spill(&mut buffer, &mut runs)?;
                }
            }
            spare = lines.into_buffer();
            Progress::add(&ctx.progress.lines, line_no % PROGRESS_EVERY);
            Progress::add(&ctx.progress.input_bytes, bytes_since);
            input_bytes += bytes_since;
            counters[shard.source as usize].add(&c);
            shard_outputs.push(ShardOutput {
                ordinal: shard.ordinal,
                counters: c,
                partitions: fed,
                sha256,
                ..ShardOutput::default()
            });
        }
        Ok(())
    });
    shards?;
    if !buffer.is_empty() {
        spill(&mut buffer, &mut runs)?;
    }
    let rejects_name = match rejects.file.take() {
        Some(f) => {
            f.close().map_err(|source| TaskError::Scratch {
                what: format!("close {}", rejects.name),
                source,
            })?;
            Some(rejects.name)
        }
        None => None,
    };
    Ok(MapOutput {
        task: task.id,
        runs,
        partitions: partitions.keys,
        counters,
        rejects: rejects_name,
        skipped,
        input_bytes,
        shards: shard_outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_are_stable_per_domain_and_bucket() {
        let mut t = PartitionTable::default();
        let a = t.id("a", 0);
        let b = t.id("b", 0);
        assert_ne!(a, b);
        assert_eq!(t.id("a", 0), a);
        let a2 = t.id("a", 3_600_000);
        assert_ne!(a2, a);
        assert_eq!(t.id("b", 0), b);
        assert_eq!(t.keys.len(), 3);
    }
}
