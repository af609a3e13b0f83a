//! The reduce task: k-way merge of every sorted run segment of one partition, gzip'd in
//! parallel members, written to the output's staging area. Publication happens later, for
//! all partitions at once, when every task has succeeded.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::parts::{PartPlan, PartSink, StagedPart};
use super::progress::Progress;
use super::{PartitionKey, TaskContext, TaskError};
use crate::sort::{gzip_bound, max_member_input, merge_segments, GzipMembersWriter, SegmentRef};
use crate::storage::StagedObject;

/// Decompressed block size of run files, used to size the merge fan-in.
const MERGE_BLOCK_BYTES: usize = 512 << 10;
/// Input bytes of one gzip member. Fixed, so that the output's bytes depend only on the data,
/// the level and the part size limit, never on the memory a task was given: a run in a
/// 512 MiB container and `filex run` on a laptop write the same files.
const MEMBER_BYTES: usize = 8 << 20;
/// Lines merged between two bumps of the progress (what the task timeout watches).
const PROGRESS_EVERY: u64 = 1 << 14;

/// One partition to merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceTask {
    pub id: u32,
    pub partition: PartitionKey,
    /// Output path relative to the root.
    pub rel_path: String,
    pub inputs: Vec<RunSegment>,
    /// Lines the map tasks wrote for this partition.
    pub records: u64,
    pub line_bytes: u64,
    /// Threads this task may use to compress.
    pub gzip_threads: u32,
}

/// One map task's run segment of the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSegment {
    /// Scratch name of the run file.
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

/// A merged partition, staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceOutput {
    pub id: u32,
    /// The partition's one file, or its first part when it was split.
    pub staged: StagedObject,
    pub lines: u64,
    pub line_bytes: u64,
    /// Every part in order (the first is `staged`) when the partition was split into
    /// numbered parts (`output.max_file_size`); empty when it is one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<StagedPart>,
}

struct Counting<W> {
    inner: W,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Compression threads for a task with `budget` bytes: half the budget holds the gzip members
/// in flight (input and output of each, two more than the threads), the other half the
/// merge's blocks. A small budget gets fewer threads, never smaller members (the bytes
/// written do not depend on the thread count).
fn gzip_threads(budget: usize, wanted: u32) -> usize {
    let fit = (budget / 2 / (2 * MEMBER_BYTES)).saturating_sub(2);
    (wanted as usize).min(fit).max(1)
}

/// A member's input size: [`MEMBER_BYTES`], or less when a part may hold at most
/// `max_file_size` bytes (a member must fit a part whatever the data).
fn member_bytes(max_file_size: Option<u64>, level: u32) -> usize {
    match max_file_size {
        Some(limit) => MEMBER_BYTES.min(max_member_input(limit, level)),
        None => MEMBER_BYTES,
    }
    .max(1)
}

/// Runs one reduce task.
pub fn execute_reduce(
    ctx: &TaskContext,
    task: &ReduceTask,
    attempt: u32,
) -> Result<ReduceOutput, TaskError> {
    let budget = ctx.memory_per_task.max(4 << 20);
    let threads = gzip_threads(budget, task.gzip_threads);
    let max_fan_in = (budget / 2 / (2 * MERGE_BLOCK_BYTES)).max(2);
    let merge_err = |source| TaskError::Merge {
        partition: task.rel_path.clone(),
        source,
    };

    let attempt_tag = format!("r{:05}.{attempt}", task.id);
    let limit = ctx.job.output.parts.as_ref();
    // With a size limit a member must fit a part whatever the data.
    let member_bytes = member_bytes(limit.map(|l| l.max_file_size), ctx.job.output.gzip_level);
    let mut lines = 0u64;
    let mut line_bytes = 0u64;
    // Intermediate merge runs are named per attempt, so that a retried attempt never meets
    // the leftovers of a lost one.
    let tmp_prefix = format!("r{:05}.{attempt}", task.id);
    let inputs: Vec<SegmentRef> = task
        .inputs
        .iter()
        .map(|s| SegmentRef {
            file: s.file.clone(),
            offset: s.offset,
            len: s.len,
        })
        .collect();
    let merge = |sink: &mut dyn FnMut(&[u8]) -> io::Result<()>| {
        merge_segments(
            ctx.scratch.as_ref(),
            &inputs,
            max_fan_in,
            &tmp_prefix,
            &mut |_key, line| sink(line),
        )
    };
    let level = ctx.job.output.gzip_level;
    let (staged, parts) = match limit {
        None => {
            // Staged where only this attempt writes: a zombie attempt cannot touch what
            // the coordinator accepted from another.
            let staged = ctx.output.stage_attempt(&task.rel_path, &attempt_tag)?;
            let mut gz =
                GzipMembersWriter::new(Counting { inner: staged }, level, member_bytes, threads);
            merge(&mut |line| {
                lines += 1;
                line_bytes += line.len() as u64;
                if lines % PROGRESS_EVERY == 0 {
                    Progress::add(&ctx.progress.merged_lines, PROGRESS_EVERY);
                }
                gz.write_all(line)
            })
            .map_err(merge_err)?;
            let counting = gz.finish().map_err(merge_err)?;
            (counting.inner.finish()?, Vec::new())
        }
        Some(l) => {
            // The partition surely fits when even incompressible members would: then the
            // first part's name is known from the start and nothing is spooled.
            let bound = gzip_bound(task.line_bytes, member_bytes);
            let spool = (!ctx.output.renames_staged() && bound > l.max_file_size)
                .then(|| format!("{tmp_prefix}.part1.gz"));
            let plan = PartPlan {
                limit: l.max_file_size,
                partition: task.rel_path.clone(),
                template: &l.template,
                domain: &task.partition.domain,
                bucket_ms: task.partition.bucket_ms,
                spool,
                attempt: &attempt_tag,
            };
            let sink = PartSink::new(plan, ctx.output.as_ref(), ctx.scratch.as_ref());
            let mut gz = GzipMembersWriter::new(sink, level, member_bytes, threads);
            merge(&mut |line| {
                lines += 1;
                line_bytes += line.len() as u64;
                if lines % PROGRESS_EVERY == 0 {
                    Progress::add(&ctx.progress.merged_lines, PROGRESS_EVERY);
                }
                gz.write_all(line)
            })
            .map_err(merge_err)?;
            let mut parts = gz
                .finish()
                .map_err(merge_err)?
                .finish()
                .map_err(merge_err)?;
            let in_parts: u64 = parts.iter().map(|p| p.lines).sum();
            if parts.is_empty() || in_parts != lines {
                return Err(merge_err(io::Error::other(format!(
                    "{} part(s) hold {in_parts} lines of the {lines} merged",
                    parts.len()
                ))));
            }
            let first = parts[0].staged.clone();
            if parts.len() == 1 {
                parts.clear();
            }
            (first, parts)
        }
    };
    Progress::add(&ctx.progress.merged_lines, lines % PROGRESS_EVERY);
    let bytes = if parts.is_empty() {
        staged.bytes
    } else {
        parts.iter().map(|p| p.staged.bytes).sum()
    };
    Progress::add(&ctx.progress.output_bytes, bytes);
    if lines != task.records {
        return Err(TaskError::LineCount {
            partition: task.rel_path.clone(),
            expected: task.records,
            got: lines,
        });
    }
    Ok(ReduceOutput {
        id: task.id,
        staged,
        lines,
        line_bytes,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_a_fixed_size_unless_a_part_limit_is_smaller() {
        assert_eq!(member_bytes(None, 6), MEMBER_BYTES);
        assert_eq!(member_bytes(Some(1 << 30), 6), MEMBER_BYTES);
        let small = member_bytes(Some(4 << 20), 6);
        assert!(small > 0 && small < 4 << 20, "{small}");
    }

    #[test]
    fn a_small_budget_gets_fewer_threads() {
        // (budget, threads wanted, threads given)
        let table = [
            (4usize << 20, 8u32, 1usize),
            (64 << 20, 8, 1),
            (128 << 20, 8, 2),
            (512 << 20, 8, 8),
            (512 << 20, 2, 2),
            (8 << 30, 0, 1),
        ];
        for (budget, wanted, given) in table {
            assert_eq!(gzip_threads(budget, wanted), given, "{budget} {wanted}");
        }
    }
}
