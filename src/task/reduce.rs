//! The reduce task: for each of its partitions (one, or many small ones: `batch`), k-way
//! merge of every sorted run segment of the partition, gzip'd in parallel members, written
//! to the output's staging area. The segments of the partitions are read ahead (`fetch`),
//! each run file once for the whole task, as far as the task's memory allows. Publication
//! happens later, for all partitions at once, when every task has succeeded.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::fetch::{Fetched, RunSegment};
use super::parts::{PartPlan, PartSink, StagedPart};
use super::progress::Progress;
use super::{PartitionKey, TaskContext, TaskError};
use crate::parallel;
use crate::sort::{gzip_bound, max_member_input, merge_segments, GzipMembersWriter, SegmentRef};
use crate::storage::{Scratch, StagedObject};

/// Decompressed block size of run files, used to size the merge fan-in.
const MERGE_BLOCK_BYTES: usize = 512 << 10;
/// Input bytes of one gzip member. Fixed, so that the output's bytes depend only on the data,
/// the level and the part size limit, never on the memory a task was given: a run in a
/// 512 MiB container and `filex run` on a laptop write the same files.
const MEMBER_BYTES: usize = 8 << 20;
/// Lines merged between two bumps of the progress (what the task timeout watches).
const PROGRESS_EVERY: u64 = 1 << 14;
/// Small partitions of a task merged at once: they spend much of their time creating and
/// finishing their output file, which overlaps.
const MERGE_THREADS: usize = 4;
/// Share of the task's memory the read-ahead of run segments may hold (beyond what the
/// merge and the gzip members use).
const FETCH_SHARE: usize = 4;

/// One reduce task: the partitions it merges, in path order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceTask {
    pub id: u32,
    pub partitions: Vec<ReducePartition>,
    /// Threads this task may use to compress.
    pub gzip_threads: u32,
}

/// One partition to merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducePartition {
    pub partition: PartitionKey,
    /// Output path relative to the root.
    pub rel_path: String,
    pub inputs: Vec<RunSegment>,
    /// Lines the map tasks wrote for this partition.
    pub records: u64,
    pub line_bytes: u64,
}

/// What a reduce task staged: each of its partitions, in task order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceOutput {
    pub id: u32,
    pub partitions: Vec<MergedPartition>,
}

/// A merged partition, staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedPartition {
    /// The partition's one file, or its first part when it was split.
    pub staged: StagedObject,
    pub lines: u64,
    pub line_bytes: u64,
    /// Every part in order (the first is `staged`) when the partition was split into
    /// numbered parts (`output.max_file_size`); empty when it is one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<StagedPart>,
}

impl MergedPartition {
    /// The staged objects it publishes: its one file, or every part.
    pub fn published(&self) -> Vec<&StagedObject> {
        if self.parts.is_empty() {
            vec![&self.staged]
        } else {
            self.parts.iter().map(|p| &p.staged).collect()
        }
    }
}

impl ReduceOutput {
    /// Every staged object of every partition.
    pub fn published(&self) -> Vec<&StagedObject> {
        self.partitions.iter().flat_map(|p| p.published()).collect()
    }
}

impl ReduceTask {
    /// `a.com/2025110502.gz`, or `a.com/2025110502.gz and 41 more`, for messages.
    pub fn describe_partitions(&self) -> String {
        match self.partitions.as_slice() {
            [] => "no partition".to_string(),
            [one] => one.rel_path.clone(),
            [first, rest @ ..] => format!("{} and {} more", first.rel_path, rest.len()),
        }
    }
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

/// Buffer sizes of one task's merges, from its memory and gzip threads (the same for every
/// partition, whichever task it is in: the member size shapes the output bytes).
struct Sizes {
    member_bytes: usize,
    max_fan_in: usize,
    threads: usize,
    /// Segment bytes read ahead at once.
    fetch_bytes: u64,
}

impl Sizes {
    fn new(ctx: &TaskContext, wanted_threads: u32) -> Sizes {
        let budget = ctx.memory_per_task.max(4 << 20);
        let threads = gzip_threads(budget, wanted_threads);
        // With a size limit a member must fit a part whatever the data.
        let member_bytes = member_bytes(
            ctx.job.output.parts.as_ref().map(|l| l.max_file_size),
            ctx.job.output.gzip_level,
        );
        Sizes {
            member_bytes,
            max_fan_in: (budget / 2 / (2 * MERGE_BLOCK_BYTES)).max(2),
            threads,
            fetch_bytes: (budget / FETCH_SHARE) as u64,
        }
    }
}

/// The segment bytes a partition reads.
fn segment_bytes(p: &ReducePartition) -> u64 {
    p.inputs.iter().map(|s| s.len).sum()
}

/// Runs one reduce task: its partitions in order, their segments read ahead in windows of
/// consecutive partitions whose segments fit a share of the task's memory
/// (`1 / FETCH_SHARE`; a partition bigger than that alone is read as it merges).
pub fn execute_reduce(
    ctx: &TaskContext,
    task: &ReduceTask,
    attempt: u32,
) -> Result<ReduceOutput, TaskError> {
    let sizes = Sizes::new(ctx, task.gzip_threads);
    let mut merged = Vec::with_capacity(task.partitions.len());
    let mut start = 0;
    while start < task.partitions.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while let Some(p) = task.partitions.get(end) {
            let b = segment_bytes(p);
            if end > start && bytes + b > sizes.fetch_bytes {
                break;
            }
            bytes += b;
            end += 1;
        }
        let window = &task.partitions[start..end];
        let fetched = if bytes <= sizes.fetch_bytes {
            let segments: Vec<&RunSegment> = window.iter().flat_map(|p| &p.inputs).collect();
            Fetched::fetch(ctx.scratch.as_ref(), &segments).map_err(|source| {
                TaskError::Scratch {
                    what: format!(
                        "read the run segments of reduce task {} ({} partitions from {})",
                        task.id,
                        window.len(),
                        window[0].rel_path
                    ),
                    source,
                }
            })?
        } else {
            Fetched::empty(ctx.scratch.as_ref())
        };
        let merge = |i: usize| {
            merge_partition(
                ctx,
                &fetched,
                task.id,
                start + i,
                &window[i],
                attempt,
                &sizes,
            )
        };
        // Partitions that fit one gzip member each hold little memory: several at once.
        let small = window
            .iter()
            .all(|p| p.line_bytes <= sizes.member_bytes as u64);
        let threads = if small { MERGE_THREADS } else { 1 };
        let window_merged = parallel::try_each(window.len(), threads, merge).map_err(|(_, e)| e)?;
        merged.extend(window_merged);
        start = end;
    }
    Ok(ReduceOutput {
        id: task.id,
        partitions: merged,
    })
}

/// Merges partition `index` of reduce task `id` into the output's staging area, reading
/// its segments from `scratch`.
fn merge_partition(
    ctx: &TaskContext,
    scratch: &dyn Scratch,
    id: u32,
    index: usize,
    task: &ReducePartition,
    attempt: u32,
    sizes: &Sizes,
) -> Result<MergedPartition, TaskError> {
    let merge_err = |source| TaskError::Merge {
        partition: task.rel_path.clone(),
        source,
    };
    // Staged where only this attempt writes (each partition at its own path): a zombie
    // attempt cannot touch what the coordinator accepted from another.
    let attempt_tag = format!("r{id:05}.{attempt}");
    let limit = ctx.job.output.parts.as_ref();
    let (member_bytes, threads) = (sizes.member_bytes, sizes.threads);
    let mut lines = 0u64;
    let mut line_bytes = 0u64;
    // Intermediate merge runs are named per attempt and partition, so that a retried
    // attempt never meets the leftovers of a lost one.
    let tmp_prefix = format!("r{id:05}.{attempt}/p{index:04}");
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
            scratch,
            &inputs,
            sizes.max_fan_in,
            &tmp_prefix,
            &mut |_key, line| sink(line),
        )
    };
    let level = ctx.job.output.gzip_level;
    let (staged, parts) = match limit {
        None => {
            let staged = ctx.output.stage_attempt(&task.rel_path, &attempt_tag)?;
            let mut gz =
                GzipMembersWriter::new(Counting { inner: staged }, level, member_bytes, threads);
            merge(&mut |line| {
                lines += 1;
                line_bytes += line.len() as u64;
                if lines.is_multiple_of(PROGRESS_EVERY) {
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
            let sink = PartSink::new(plan, ctx.output.as_ref(), scratch);
            let mut gz = GzipMembersWriter::new(sink, level, member_bytes, threads);
            merge(&mut |line| {
                lines += 1;
                line_bytes += line.len() as u64;
                if lines.is_multiple_of(PROGRESS_EVERY) {
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
    Ok(MergedPartition {
        staged,
        lines,
        line_bytes,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::job::JobFile;
    use crate::sort::{SortBuffer, SortKey};
    use crate::storage::local::LocalOutput;
    use crate::storage::memory::MemoryScratch;

    const HOUR: i64 = 3_600_000;
    /// 2026-11-05T00:00:00Z.
    const T0: i64 = 1_793_836_800_000;

    fn ctx(out: &Path, scratch: Arc<MemoryScratch>) -> TaskContext {
        let text = r#"
name = "j"
[window]
start = "2026-11-05T00:00:00Z"
end = "2026-11-05T03:00:00Z"
[[source]]
name = "up"
format = "upyun"
shards = "/in/%Y%m%d/%H%M/*.gz"
[output]
root = "/out"
path = "{domain}/%Y%m%d%H.gz"
"#;
        let job = JobFile::from_toml(text, Path::new("j.toml"), &[])
            .unwrap()
            .validate(Path::new("/"))
            .unwrap();
        TaskContext {
            job: Arc::new(job),
            scratch,
            output: Arc::new(LocalOutput::new(out.to_path_buf(), "run1")),
            memory_per_task: 64 << 20,
            progress: Arc::new(Progress::default()),
        }
    }

    /// Two map tasks' runs of `partitions` partitions each (lines interleaved in time), and
    /// each partition as the driver describes it.
    fn runs(scratch: &MemoryScratch, partitions: u32) -> Vec<ReducePartition> {
        let mut out: Vec<ReducePartition> = (0..partitions)
            .map(|p| ReducePartition {
                partition: PartitionKey {
                    domain: format!("d{p}.example.com"),
                    bucket_ms: T0 + HOUR,
                },
                rel_path: format!("d{p}.example.com/2026110501.gz"),
                inputs: Vec::new(),
                records: 0,
                line_bytes: 0,
            })
            .collect();
        for map in 0..2u32 {
            let mut buffer = SortBuffer::new(1 << 20);
            for i in 0..300u64 {
                let p = (i % partitions as u64) as u32;
                let line = format!("map {map} line {i} of d{p}\n");
                let key = SortKey {
                    time_ms: T0 + HOUR + (i * 997 + map as u64 * 13) as i64 % 1000,
                    shard: map,
                    line: i,
                };
                buffer.push(p, key, line.as_bytes());
            }
            let name = format!("m{map:05}.0/spill-0000.run");
            let mut file = scratch.create(&name).unwrap();
            let index = buffer.spill(&mut file).unwrap();
            file.close().unwrap();
            for seg in index.segments {
                let p = &mut out[seg.partition as usize];
                p.inputs.push(RunSegment {
                    file: name.clone(),
                    offset: seg.offset,
                    len: seg.len,
                });
                p.records += seg.records;
                p.line_bytes += seg.line_bytes;
            }
        }
        out
    }

    /// The staged bytes of each partition of `outputs`, by path.
    fn staged_bytes(outputs: &[ReduceOutput]) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<(String, Vec<u8>)> = outputs
            .iter()
            .flat_map(|o| &o.partitions)
            .map(|p| {
                (
                    p.staged.rel.clone(),
                    std::fs::read(&p.staged.handle).unwrap(),
                )
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_task_of_many_partitions_stages_the_bytes_one_task_each_would() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(MemoryScratch::default());
        let partitions = runs(&scratch, 9);
        let ctx = ctx(&dir.path().join("out"), scratch.clone());
        let alone: Vec<ReduceOutput> = partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let task = ReduceTask {
                    id: i as u32,
                    partitions: vec![p.clone()],
                    gzip_threads: 1,
                };
                execute_reduce(&ctx, &task, 0).unwrap()
            })
            .collect();
        let batch = ReduceTask {
            id: 20,
            partitions: partitions.clone(),
            gzip_threads: 1,
        };
        let together = execute_reduce(&ctx, &batch, 3).unwrap();
        assert_eq!(together.id, 20);
        assert_eq!(together.partitions.len(), 9);
        // In task order, each with its lines; staged under this attempt's name.
        for (p, m) in partitions.iter().zip(&together.partitions) {
            assert_eq!(m.staged.rel, p.rel_path);
            assert_eq!(m.lines, p.records);
            assert!(m.staged.handle.contains("r00020.3"), "{}", m.staged.handle);
        }
        let together = [together];
        assert_eq!(staged_bytes(&together), staged_bytes(&alone));
        assert_eq!(
            batch.describe_partitions(),
            "d0.example.com/2026110501.gz and 8 more"
        );
        // Nothing left in scratch but the runs.
        assert_eq!(scratch.names().len(), 2, "{:?}", scratch.names());
        // Every partition is published from the one task.
        ctx.output
            .commit(
                &together[0]
                    .published()
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        assert!(dir.path().join("out/d8.example.com/2026110501.gz").exists());
    }

    #[test]
    fn a_partition_that_fails_fails_its_task_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(MemoryScratch::default());
        let mut partitions = runs(&scratch, 6);
        // The map tasks wrote one line more than the runs hold.
        partitions[4].records += 1;
        let ctx = ctx(&dir.path().join("out"), scratch);
        let task = ReduceTask {
            id: 1,
            partitions,
            gzip_threads: 1,
        };
        let err = execute_reduce(&ctx, &task, 0).unwrap_err();
        assert!(
            matches!(&err, TaskError::LineCount { partition, .. } if partition == "d4.example.com/2026110501.gz"),
            "{err}"
        );
    }

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
