//! The sequence both modes share, from a plan: finish a commit an earlier run of the window
//! left unfinished, run the map tasks, gather each partition's run segments, run the reduce
//! tasks, then commit (`crate::commit`): every partition and the rejects, the removal of
//! stale files, the manifest, then the done-flag (`_SUCCESS`, taken down first). On any
//! failure before the commit nothing is published (the [`Run`]'s drop cleans up). Only the outputs the cluster
//! accepted are used; what superseded attempts staged is discarded after each batch.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use std::io::Read;

use super::previous::{self, Start};
use super::run::Run;
use crate::cluster::{Cluster, ClusterError};
use crate::commit::{self, CommitError, Intent, Step, INTENT_VERSION};
use crate::incremental::rejects::RejectsByShard;
use crate::incremental::Reuse;
use crate::job::{time, Job, JobError};
use crate::manifest::{
    self, Manifest, ManifestPartition, ManifestShard, ManifestWindow, RejectsFile, ShardSet,
    SourceSummary, Timeline, REJECTS_DIR,
};
use crate::plan::{self, DuplicateShard, MapTask, Plan, Shard};
use crate::sort::GzipMembersWriter;
use crate::storage::{OutputStore, Scratch, StagedObject, StorageError};
use crate::task::{
    batch, Counters, MapOutput, MergedPartition, Progress, ReducePartition, ReduceTask, RunSegment,
    ShardOutput, SkippedShard, Task, TaskOutput,
};

/// Input bytes of a gzip member of the rejects file.
const REJECTS_MEMBER_BYTES: usize = 4 << 20;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("scratch {what}")]
    Scratch {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start worker processes: {0}")]
    Workers(#[source] std::io::Error),
    #[error("internal inconsistency: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// The result of a successful run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub manifest: Manifest,
    pub manifest_url: String,
}

/// Runs `plan` (made by [`Run::plan`]) on `cluster`: maps → reduces → publish → manifest.
/// With a usable previous manifest of the window (and without `--full`), only the
/// partitions whose inputs changed are recomputed (`crate::incremental`).
pub fn execute(run: &Run, plan: Plan, cluster: &dyn Cluster) -> Result<RunReport, DriverError> {
    if let Some(report) = finish_unfinished(run)? {
        return Ok(report);
    }
    let (job, progress) = (run.job.as_ref(), run.progress.as_ref());
    let (output, scratch) = (run.output.as_ref(), run.scratch.as_ref());
    let started_at = manifest::now_rfc3339();
    let mut timeline = Timeline {
        plan_ms: run.plan_ms,
        ..Timeline::default()
    };
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let Start {
        mut reuse,
        previous_rejects,
        warnings: reuse_warnings,
        previous_files,
    } = previous::start(run, &plan);
    for w in &reuse_warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        shards = plan.total_shards(),
        bytes = plan.total_bytes(),
        map_tasks = plan.map_tasks.len(),
        "planned"
    );

    let t = Instant::now();
    let shards: Vec<&Shard> = plan.shards();
    let first = reuse.first_round();
    let first_tasks = if first.len() == shards.len() {
        plan.map_tasks.clone()
    } else {
        let selected = first.iter().map(|&o| shards[o as usize].clone()).collect();
        plan::pack(selected, plan.task_bytes, 0)
    };
    if !reuse.is_full() {
        tracing::info!(
            shards = first.len(),
            map_tasks = first_tasks.len(),
            "re-run: reading new and changed shards and those of dirty partitions"
        );
    }
    progress.start_phase("map", first_tasks.len() as u64);
    let mut next_id = first_tasks.len() as u32;
    let mut maps = run_maps(cluster, first_tasks.clone())?;
    drop_duplicates(run, cluster, &shards, &first_tasks, &mut maps, &mut next_id)?;
    let second = reuse.after_first_round(job, &maps);
    if !second.is_empty() {
        let selected = second.iter().map(|&o| shards[o as usize].clone()).collect();
        let tasks = plan::pack(selected, plan.task_bytes, next_id);
        next_id += tasks.len() as u32;
        tracing::info!(
            shards = second.len(),
            map_tasks = tasks.len(),
            "re-run: reading the unchanged shards of partitions new shards write to"
        );
        Progress::add(&progress.tasks_total, tasks.len() as u64);
        let mut more = run_maps(cluster, tasks.clone())?;
        drop_duplicates(run, cluster, &shards, &tasks, &mut more, &mut next_id)?;
        maps.extend(more);
    }
    timeline.map_ms = t.elapsed().as_millis() as u64;
    progress.event("maps done", None);
    discard_superseded(cluster, output, scratch);

    let kept = reuse.kept();
    let reduces = reduce_tasks(job, &maps, cluster.slots(), &reuse, kept.len());
    let expected_lines: u64 = reduces
        .iter()
        .flat_map(|r| &r.partitions)
        .map(|p| p.records)
        .sum();
    let t = Instant::now();
    progress.start_phase("reduce", reduces.len() as u64);
    cluster.last_batch();
    let outputs = cluster.run(reduces.iter().cloned().map(Task::Reduce).collect())?;
    let mut merged = merged_partitions(reduces, outputs)?;
    timeline.reduce_ms = t.elapsed().as_millis() as u64;
    progress.event("reduces done", None);
    discard_superseded(cluster, output, scratch);
    merged.sort_by(|a, b| a.0.rel_path.cmp(&b.0.rel_path));

    let table = shard_table(&shards, &maps, &reuse)?;
    let mut counters = Counters::default();
    let mut per_source = vec![Counters::default(); job.sources.len()];
    for s in &table {
        per_source[s.source as usize].add(&s.counters);
        counters.add(&s.counters);
    }
    let written: u64 = merged.iter().map(|(_, r)| r.lines).sum();
    let kept_lines: u64 = kept.iter().map(|p| p.lines).sum();
    if written + kept_lines != counters.lines_out
        || written != expected_lines
        || !counters.balanced()
    {
        return Err(DriverError::Inconsistent(format!(
            "lines_out {} but {} lines merged ({} expected) and {} kept; counters {:?}",
            counters.lines_out, written, expected_lines, kept_lines, counters
        )));
    }

    let t = Instant::now();
    progress.start_phase("commit", 1);
    let rejects_rel = format!("{REJECTS_DIR}/{}/{}.tsv.gz", job.name, job.window_id());
    let rejects_obj = if reuse.previous().is_some() {
        stage_rejects_merged(
            job,
            &maps,
            &table,
            &previous_rejects,
            output,
            scratch,
            &rejects_rel,
        )?
    } else {
        stage_rejects(job, &maps, output, scratch, &rejects_rel)?
    };
    let mut staged: Vec<StagedObject> = merged.iter().flat_map(|(_, r)| published(r)).collect();
    staged.push(rejects_obj.clone());

    let inputs = partition_inputs(job, &maps);
    let mut partitions: Vec<ManifestPartition> = merged
        .iter()
        .flat_map(|(task, r)| {
            let start = time::format_rfc3339(task.partition.bucket_ms, job.output.tz_offset_secs);
            let entry = |path: &str, lines: u64, obj: &StagedObject| ManifestPartition {
                path: path.to_string(),
                domain: task.partition.domain.clone(),
                start: start.clone(),
                lines,
                bytes: obj.bytes,
                sha256: obj.sha256.clone(),
                partition: None,
                part: None,
                inputs: ShardSet::new(inputs.get(&task.rel_path).cloned().unwrap_or_default()),
                recomputed: reuse.recompute(&task.rel_path).unwrap_or_default(),
                kept_from: None,
            };
            if r.parts.is_empty() {
                return vec![entry(&task.rel_path, r.lines, &r.staged)];
            }
            (1..)
                .zip(&r.parts)
                .map(|(n, p)| ManifestPartition {
                    partition: Some(task.rel_path.clone()),
                    part: Some(n),
                    ..entry(&p.staged.rel, p.lines, &p.staged)
                })
                .collect()
        })
        .collect();
    let recomputed = partitions.len();
    let mut warnings = plan.warnings.clone();
    warnings.extend(reuse_warnings);
    partitions.extend(kept);
    partitions.sort_by(|a, b| a.path.cmp(&b.path));
    // What the previous run of the window published and this one does not (a partition
    // whose shards are gone, parts beyond the new last one) goes, before the manifest
    // says the window is complete: the root then holds what a run into an empty one would.
    let published_paths: Vec<&str> = partitions.iter().map(|p| p.path.as_str()).collect();
    let removed: Vec<String> = previous::stale_files(&previous_files, &published_paths)
        .into_iter()
        .map(str::to_string)
        .collect();
    for rel in &removed {
        tracing::info!(file = %output.url(rel), "removing a file of the previous run this run does not publish");
    }
    let summary = reuse.summary(partitions.len() - recomputed, recomputed);
    if summary.previous_run_id.is_some() {
        tracing::info!(
            kept = summary.partitions_kept,
            recomputed = summary.partitions_recomputed,
            shards_read = summary.shards_read,
            "re-run"
        );
    }
    // A source's shards and bytes are those it had read: duplicate deliveries not counted.
    let sources = job
        .sources
        .iter()
        .enumerate()
        .zip(per_source)
        .map(|((i, s), c)| {
            let read = table
                .iter()
                .filter(|t| t.source as usize == i && t.duplicate_of.is_none());
            let (shards, shard_bytes) = read.fold((0, 0), |(n, b), t| (n + 1, b + t.bytes));
            SourceSummary {
                name: s.name.clone(),
                shards,
                shard_bytes,
                counters: c,
            }
        })
        .collect();
    timeline.commit_ms = t.elapsed().as_millis() as u64;
    let manifest = Manifest {
        filex_version: env!("CARGO_PKG_VERSION").to_string(),
        job: job.name.clone(),
        window: ManifestWindow {
            start: time::format_rfc3339(job.window.start_ms, job.output.tz_offset_secs),
            end: time::format_rfc3339(job.window.end_ms, job.output.tz_offset_secs),
        },
        run_id: run.id.clone(),
        output_root: output.url(""),
        started_at,
        finished_at: manifest::now_rfc3339(),
        partitions,
        counters,
        sources,
        skipped_shards: table
            .iter()
            .filter_map(|s| {
                s.skipped.as_ref().map(|reason| SkippedShard {
                    url: s.url.clone(),
                    reason: reason.clone(),
                })
            })
            .collect(),
        duplicate_shards: table
            .iter()
            .filter_map(|s| {
                s.duplicate_of.as_ref().map(|first| DuplicateShard {
                    url: s.url.clone(),
                    duplicate_of: first.clone(),
                    bytes: s.bytes,
                })
            })
            .collect(),
        rejects: Some(RejectsFile {
            path: rejects_rel,
            lines: counters.rejected,
            bytes: rejects_obj.bytes,
            sha256: rejects_obj.sha256,
        }),
        warnings,
        removed,
        timeline,
        events: progress
            .events
            .lock()
            .iter()
            .map(|(event, at)| manifest::Event {
                event: event.clone(),
                at: time::format_rfc3339(*at, 0),
            })
            .collect(),
        settings_digest: job.settings_digest(),
        shards: table,
        incremental: Some(summary),
        tasks_recovered: Progress::get(&progress.tasks_recovered),
    };
    let manifest_rel = previous::manifest_rel(job);
    // The commit, written down first: a re-run takes the old done-flag down before it
    // replaces a single file (so a crash in the middle never leaves a window flagged
    // complete), publishes, removes what it no longer publishes, then writes the manifest
    // and the flag. Cut short, it is finished by the next run of the window.
    let marker = job.success_marker();
    let steps = marker
        .iter()
        .cloned()
        .map(Step::Remove)
        .chain(staged.into_iter().map(Step::Publish))
        .chain(manifest.removed.iter().cloned().map(Step::Remove))
        .collect();
    let intent = Intent {
        version: INTENT_VERSION,
        run_id: run.id.clone(),
        job: job.name.clone(),
        window: job.window_id(),
        steps,
        manifest_rel,
        manifest,
        done_flag: marker,
    };
    commit::commit(output, &run.latch, &intent)?;
    discard_superseded(cluster, output, scratch);
    Ok(RunReport {
        manifest_url: output.url(&intent.manifest_rel),
        manifest: intent.manifest,
    })
}

/// Finishes the commit of this window that a run left unfinished (a crash, a kill, a
/// storage error in the middle of its publication), before anything else. When that run
/// was this one (a new attempt of the same application), its commit is the result;
/// otherwise the dead run's staging area goes and this run proceeds, as a re-run of a
/// complete window.
fn finish_unfinished(run: &Run) -> Result<Option<RunReport>, DriverError> {
    let output = run.output.as_ref();
    let manifest_rel = previous::manifest_rel(&run.job);
    let rel = commit::intent_rel(&manifest_rel);
    let window = run.job.window_id();
    let Some(intent) = commit::roll_forward(output, &rel, &run.job.name, &window)? else {
        return Ok(None);
    };
    if intent.run_id == run.id {
        return Ok(Some(RunReport {
            manifest_url: output.url(&intent.manifest_rel),
            manifest: intent.manifest,
        }));
    }
    // Left in its staging area: empty directories, superseded attempts' files.
    match run.job.output.spec.open(&intent.run_id) {
        Ok(dead) => {
            if let Err(e) = dead.abort() {
                tracing::warn!(run = %intent.run_id, error = %e, "could not remove the staging area of the run whose commit was finished");
            }
        }
        Err(e) => {
            tracing::warn!(run = %intent.run_id, error = %e, "could not open the staging area of the run whose commit was finished")
        }
    }
    Ok(None)
}

/// The staged objects a merged partition publishes: its one file, or every part.
fn published(r: &MergedPartition) -> Vec<StagedObject> {
    r.published().into_iter().cloned().collect()
}

/// Each partition of the reduce tasks with what its task merged and staged, in task order.
fn merged_partitions(
    tasks: Vec<ReduceTask>,
    outputs: Vec<TaskOutput>,
) -> Result<Vec<(ReducePartition, MergedPartition)>, DriverError> {
    let mut merged = Vec::new();
    for (task, output) in tasks.into_iter().zip(outputs) {
        let TaskOutput::Reduce(out) = output else {
            return Err(DriverError::Inconsistent(format!(
                "reduce task {} gave a map output",
                task.id
            )));
        };
        if out.id != task.id || out.partitions.len() != task.partitions.len() {
            return Err(DriverError::Inconsistent(format!(
                "reduce task {} of {} partitions gave the output of task {} with {}",
                task.id,
                task.partitions.len(),
                out.id,
                out.partitions.len()
            )));
        }
        merged.extend(task.partitions.into_iter().zip(out.partitions));
    }
    Ok(merged)
}

/// Finds the duplicate deliveries among the shards of `maps`, the outputs of `tasks`
/// (`super::duplicates`), runs again the tasks that read one, without it, and puts their
/// outputs in the place of the first ones (whose files are removed).
fn drop_duplicates(
    run: &Run,
    cluster: &dyn Cluster,
    shards: &[&Shard],
    tasks: &[MapTask],
    maps: &mut [MapOutput],
    next_id: &mut u32,
) -> Result<(), DriverError> {
    let duplicates = super::duplicates::find(shards, maps);
    if duplicates.is_empty() {
        return Ok(());
    }
    let again = super::duplicates::redo(tasks, &duplicates, next_id);
    tracing::info!(
        duplicates = duplicates.len(),
        map_tasks = again.len(),
        "duplicate deliveries found: running the tasks that read them again without them"
    );
    Progress::add(&run.progress.tasks_total, again.len() as u64);
    let (old_ids, new_tasks): (Vec<u32>, Vec<MapTask>) = again.into_iter().unzip();
    let outputs = run_maps(cluster, new_tasks)?;
    for (old, new) in old_ids.iter().zip(outputs) {
        let Some(slot) = maps.iter_mut().find(|m| m.task == *old) else {
            return Err(DriverError::Inconsistent(format!(
                "no output of map task {old} to replace"
            )));
        };
        let first = std::mem::replace(slot, new);
        discard_map_files(run.scratch.as_ref(), &first);
    }
    Ok(())
}

/// Removes a map output's run files and rejects from scratch. Best effort: what is left
/// goes with the run's scratch.
fn discard_map_files(scratch: &dyn Scratch, m: &MapOutput) {
    for name in m.runs.iter().map(|r| &r.name).chain(m.rejects.as_ref()) {
        if let Err(e) = scratch.remove(name) {
            tracing::warn!(name, error = %e, "could not remove a map output that is not used");
        }
    }
}

/// Runs map tasks and keeps their outputs.
fn run_maps(cluster: &dyn Cluster, tasks: Vec<MapTask>) -> Result<Vec<MapOutput>, DriverError> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    Ok(cluster
        .run(tasks.into_iter().map(Task::Map).collect())?
        .into_iter()
        .filter_map(|o| match o {
            TaskOutput::Map(m) => Some(m),
            TaskOutput::Reduce(_) => None,
        })
        .collect())
}

/// The manifest's shard table, in plan order: fingerprints from the plan, figures from this
/// run's map tasks for the shards read and from the previous manifest for the others.
fn shard_table(
    shards: &[&Shard],
    maps: &[MapOutput],
    reuse: &Reuse,
) -> Result<Vec<ManifestShard>, DriverError> {
    let mut read: BTreeMap<u32, &ShardOutput> = BTreeMap::new();
    for m in maps {
        for s in &m.shards {
            read.insert(s.ordinal, s);
        }
    }
    shards
        .iter()
        .map(|s| {
            let (counters, skipped, duplicate_of) =
                match (read.get(&s.ordinal), reuse.unchanged_record(s.ordinal)) {
                    (Some(out), _) => (out.counters, out.skipped.clone(), out.duplicate_of.clone()),
                    (None, Some(prev)) if !reuse.was_read(s.ordinal) => (
                        prev.counters,
                        prev.skipped.clone(),
                        prev.duplicate_of.clone(),
                    ),
                    _ => {
                        return Err(DriverError::Inconsistent(format!(
                            "no figures for shard {}",
                            s.location
                        )))
                    }
                };
            Ok(ManifestShard {
                url: s.location.to_string(),
                source: s.source,
                bytes: s.size,
                modified_ms: s.modified_ms,
                counters,
                skipped,
                duplicate_of,
            })
        })
        .collect()
}

/// The ordinals of the shards that wrote lines to each partition (by path), over `maps`.
fn partition_inputs(job: &Job, maps: &[MapOutput]) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for m in maps {
        for s in &m.shards {
            for &pid in &s.partitions {
                if let Some(key) = m.partitions.get(pid as usize) {
                    let rel = job.output.template.render(&key.domain, key.bucket_ms);
                    out.entry(rel).or_default().push(s.ordinal);
                }
            }
        }
    }
    out
}

/// Groups the map outputs' segments by partition (those `reuse` recomputes), and the
/// partitions into reduce tasks (`task::batch`: small ones share a task, biggest tasks
/// first, so that the long ones start early). The gzip threads (which set the gzip member
/// size, so the bytes) are those of a full run over the window: `slots` shared by these
/// partitions and the `kept` ones — whatever task a partition is in.
fn reduce_tasks(
    job: &Job,
    maps: &[MapOutput],
    slots: usize,
    reuse: &Reuse,
    kept: usize,
) -> Vec<ReduceTask> {
    let mut by_path: BTreeMap<String, ReducePartition> = BTreeMap::new();
    let mut clean: std::collections::BTreeSet<String> = Default::default();
    for m in maps {
        for run in &m.runs {
            for seg in &run.index.segments {
                let Some(key) = m.partitions.get(seg.partition as usize) else {
                    continue;
                };
                let rel = job.output.template.render(&key.domain, key.bucket_ms);
                if clean.contains(&rel) {
                    continue;
                }
                if !by_path.contains_key(&rel) && reuse.recompute(&rel).is_none() {
                    // Map output of a partition kept as published: discarded.
                    clean.insert(rel);
                    continue;
                }
                let p = by_path
                    .entry(rel.clone())
                    .or_insert_with(|| ReducePartition {
                        partition: key.clone(),
                        rel_path: rel,
                        inputs: Vec::new(),
                        records: 0,
                        line_bytes: 0,
                    });
                p.inputs.push(RunSegment {
                    file: run.name.clone(),
                    offset: seg.offset,
                    len: seg.len,
                });
                p.records += seg.records;
                p.line_bytes += seg.line_bytes;
            }
        }
    }
    let partitions: Vec<ReducePartition> = by_path.into_values().collect();
    let gzip_threads = (slots / (partitions.len() + kept).max(1)).max(1) as u32;
    let weights: Vec<u64> = partitions
        .iter()
        .map(|p| batch::cost(p.line_bytes))
        .collect();
    let groups =
        batch::Grouping::for_phase(weights.iter().sum(), weights.len(), slots).group(&weights);
    let mut slots_of: Vec<Option<ReducePartition>> = partitions.into_iter().map(Some).collect();
    groups
        .into_iter()
        .enumerate()
        .map(|(id, group)| ReduceTask {
            id: id as u32,
            partitions: group
                .into_iter()
                .filter_map(|i| slots_of[i].take())
                .collect(),
            gzip_threads,
        })
        .collect()
}

/// Discards what superseded attempts staged: a map attempt's run files and rejects in
/// scratch, a reduce attempt's staged object. Best effort: what is left goes with the run's
/// scratch and staging.
pub(crate) fn discard_superseded(
    cluster: &dyn Cluster,
    output: &dyn OutputStore,
    scratch: &dyn Scratch,
) {
    for o in cluster.take_superseded() {
        match o {
            TaskOutput::Map(m) => discard_map_files(scratch, &m),
            TaskOutput::Reduce(r) => {
                tracing::info!(
                    task = r.id,
                    partitions = r.partitions.len(),
                    "discarding a superseded attempt's output"
                );
                for staged in r.published() {
                    if let Err(e) = output.discard(staged) {
                        tracing::warn!(error = %e, "could not discard a superseded output");
                    }
                }
            }
        }
    }
}

/// The rejects file of a re-run: in plan order, each shard's rejected lines from this run's
/// map tasks if it was read, else from the previous run's rejects file (see
/// `incremental::rejects`), gzip'd as [`stage_rejects`] does.
fn stage_rejects_merged(
    job: &Job,
    maps: &[MapOutput],
    table: &[ManifestShard],
    previous: &RejectsByShard,
    output: &dyn OutputStore,
    scratch: &dyn Scratch,
    rel: &str,
) -> Result<StagedObject, DriverError> {
    let mut current = RejectsByShard::default();
    let mut read_urls: std::collections::HashSet<&str> = Default::default();
    let by_ordinal: BTreeMap<u32, &str> = table
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32, s.url.as_str()))
        .collect();
    for m in maps {
        for s in &m.shards {
            if let Some(url) = by_ordinal.get(&s.ordinal) {
                read_urls.insert(url);
            }
        }
        let Some(name) = &m.rejects else { continue };
        let scratch_err = |source| DriverError::Scratch {
            what: format!("read {name}"),
            source,
        };
        let mut tsv = Vec::new();
        scratch
            .open_range(name, 0, u64::MAX)
            .map_err(scratch_err)?
            .read_to_end(&mut tsv)
            .map_err(scratch_err)?;
        current.add(&tsv).map_err(DriverError::Inconsistent)?;
    }
    let staged = output.stage(rel)?;
    let mut gz = GzipMembersWriter::new(staged, job.output.gzip_level, REJECTS_MEMBER_BYTES, 1);
    let write_err = |source| DriverError::Scratch {
        what: "write rejects".into(),
        source,
    };
    for s in table {
        let source = if read_urls.contains(s.url.as_str()) {
            &current
        } else {
            previous
        };
        let lines = s.counters.rejected;
        if source.lines_of(&s.url) != lines {
            return Err(DriverError::Inconsistent(format!(
                "shard {} rejected {lines} lines but {} are in the rejects",
                s.url,
                source.lines_of(&s.url)
            )));
        }
        gz.write_all(source.of(&s.url)).map_err(write_err)?;
    }
    gz.flush().map_err(write_err)?;
    Ok(gz.finish().map_err(write_err)?.finish()?)
}

/// Concatenates the map tasks' rejects, in task order, into one gzip file in staging.
fn stage_rejects(
    job: &Job,
    maps: &[MapOutput],
    output: &dyn OutputStore,
    scratch: &dyn Scratch,
    rel: &str,
) -> Result<StagedObject, DriverError> {
    let staged = output.stage(rel)?;
    let mut gz = GzipMembersWriter::new(staged, job.output.gzip_level, REJECTS_MEMBER_BYTES, 1);
    for m in maps {
        let Some(name) = &m.rejects else { continue };
        let scratch_err = |source| DriverError::Scratch {
            what: format!("read {name}"),
            source,
        };
        let mut r = scratch.open_range(name, 0, u64::MAX).map_err(scratch_err)?;
        std::io::copy(&mut r, &mut gz).map_err(scratch_err)?;
    }
    let write_err = |source| DriverError::Scratch {
        what: "write rejects".into(),
        source,
    };
    gz.flush().map_err(write_err)?;
    Ok(gz.finish().map_err(write_err)?.finish()?)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::storage::local::{LocalOutput, LocalScratch};
    use crate::task::RunFile;

    /// A cluster whose only behaviour is to hand back superseded outputs.
    struct Superseding(parking_lot::Mutex<Vec<TaskOutput>>);

    impl Cluster for Superseding {
        fn run(&self, _: Vec<Task>) -> Result<Vec<TaskOutput>, ClusterError> {
            Ok(Vec::new())
        }
        fn slots(&self) -> usize {
            1
        }
        fn take_superseded(&self) -> Vec<TaskOutput> {
            std::mem::take(&mut *self.0.lock())
        }
    }

    fn staged(out: &LocalOutput, rel: &str, attempt: &str, bytes: &[u8]) -> StagedObject {
        let mut w = out.stage_attempt(rel, attempt).unwrap();
        w.write_all(bytes).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn what_superseded_attempts_staged_is_discarded_and_the_accepted_output_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = LocalOutput::new(dir.path().join("out"), "run1");
        let scratch = LocalScratch::new(dir.path().join("scratch"));
        // Two attempts of one reduce task stage the same partition, each at its own name.
        let accepted = staged(&out, "a/00.log.gz", "r00000.1", b"accepted");
        let zombie = staged(&out, "a/00.log.gz", "r00000.0", b"zombie, late");
        assert_ne!(accepted.handle, zombie.handle);
        // A superseded map attempt's run file and rejects.
        for name in ["m00003.0.run", "m00003.0.rej", "m00003.1.run"] {
            scratch.create(name).unwrap().close().unwrap();
        }
        let map = MapOutput {
            task: 3,
            runs: vec![RunFile {
                name: "m00003.0.run".into(),
                index: crate::sort::RunIndex {
                    segments: vec![],
                    file_bytes: 0,
                },
            }],
            partitions: vec![],
            counters: vec![],
            rejects: Some("m00003.0.rej".into()),
            skipped: vec![],
            input_bytes: 0,
            shards: vec![],
        };
        let cluster = Superseding(parking_lot::Mutex::new(vec![
            TaskOutput::Map(map),
            TaskOutput::Reduce(crate::task::ReduceOutput {
                id: 0,
                partitions: vec![MergedPartition {
                    staged: zombie.clone(),
                    lines: 1,
                    line_bytes: 1,
                    parts: Vec::new(),
                }],
            }),
        ]));
        discard_superseded(&cluster, &out, &scratch);
        assert!(!std::path::Path::new(&zombie.handle).exists());
        let scratch_dir = dir.path().join("scratch");
        assert!(!scratch_dir.join("m00003.0.run").exists());
        assert!(!scratch_dir.join("m00003.0.rej").exists());
        assert!(scratch_dir.join("m00003.1.run").exists());
        // The accepted output is untouched and publishes its own bytes.
        out.commit(&[accepted]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/a/00.log.gz")).unwrap(),
            b"accepted"
        );
    }
}
