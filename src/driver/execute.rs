//! The sequence both modes share, from a plan: run the map tasks, gather each partition's
//! run segments, run the reduce tasks, publish every partition and the rejects at once, write
//! the manifest, then the done-flag (`_SUCCESS`, taken down before the commit). On any failure
//! nothing is published (the [`Run`]'s drop cleans up). Only the outputs the cluster
//! accepted are used; what superseded attempts staged is discarded after each batch.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use super::run::Run;
use crate::cluster::{Cluster, ClusterError};
use crate::job::{time, Job, JobError};
use crate::manifest::{
    self, Manifest, ManifestPartition, ManifestWindow, RejectsFile, SourceSummary, Timeline,
    MANIFEST_DIR, REJECTS_DIR,
};
use crate::plan::Plan;
use crate::sort::GzipMembersWriter;
use crate::storage::{OutputStore, Scratch, StagedObject, StorageError};
use crate::task::{Counters, MapOutput, ReduceOutput, ReduceTask, RunSegment, Task, TaskOutput};

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
}

/// The result of a successful run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub manifest: Manifest,
    pub manifest_url: String,
}

/// Runs `plan` (made by [`Run::plan`]) on `cluster`: maps → reduces → publish → manifest.
pub fn execute(run: &Run, plan: Plan, cluster: &dyn Cluster) -> Result<RunReport, DriverError> {
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
    tracing::info!(
        shards = plan.total_shards(),
        bytes = plan.total_bytes(),
        map_tasks = plan.map_tasks.len(),
        "planned"
    );

    let t = Instant::now();
    progress.start_phase("map", plan.map_tasks.len() as u64);
    let maps: Vec<MapOutput> = cluster
        .run(plan.map_tasks.iter().cloned().map(Task::Map).collect())?
        .into_iter()
        .filter_map(|o| match o {
            TaskOutput::Map(m) => Some(m),
            TaskOutput::Reduce(_) => None,
        })
        .collect();
    timeline.map_ms = t.elapsed().as_millis() as u64;
    progress.event("maps done", None);
    discard_superseded(cluster, output, scratch);

    let reduces = reduce_tasks(job, &maps, cluster.slots());
    let expected_lines: u64 = reduces.iter().map(|r| r.records).sum();
    let t = Instant::now();
    progress.start_phase("reduce", reduces.len() as u64);
    cluster.last_batch();
    let outputs = cluster.run(reduces.iter().cloned().map(Task::Reduce).collect())?;
    let mut merged: Vec<(ReduceTask, ReduceOutput)> = reduces
        .into_iter()
        .zip(outputs)
        .filter_map(|(task, o)| match o {
            TaskOutput::Reduce(r) => Some((task, r)),
            TaskOutput::Map(_) => None,
        })
        .collect();
    timeline.reduce_ms = t.elapsed().as_millis() as u64;
    progress.event("reduces done", None);
    discard_superseded(cluster, output, scratch);
    merged.sort_by(|a, b| a.0.rel_path.cmp(&b.0.rel_path));

    let mut counters = Counters::default();
    let mut per_source = vec![Counters::default(); job.sources.len()];
    for m in &maps {
        for (i, c) in m.counters.iter().enumerate() {
            per_source[i].add(c);
            counters.add(c);
        }
    }
    let written: u64 = merged.iter().map(|(_, r)| r.lines).sum();
    if written != counters.lines_out || written != expected_lines || !counters.balanced() {
        return Err(DriverError::Inconsistent(format!(
            "lines_out {} but {} lines merged ({} expected); counters {:?}",
            counters.lines_out, written, expected_lines, counters
        )));
    }

    let t = Instant::now();
    progress.start_phase("commit", 1);
    let rejects_rel = format!("{REJECTS_DIR}/{}/{}.tsv.gz", job.name, job.window_id());
    let rejects_obj = stage_rejects(job, &maps, output, scratch, &rejects_rel)?;
    let mut staged: Vec<StagedObject> = merged.iter().flat_map(|(_, r)| published(r)).collect();
    staged.push(rejects_obj.clone());
    // A re-run takes the old done-flag down before it replaces a single file, so a crash
    // in the middle of the commit never leaves a window flagged complete.
    let marker = job.success_marker();
    if let Some(m) = &marker {
        output.remove(m)?;
    }
    output.commit(&staged)?;
    discard_superseded(cluster, output, scratch);

    let partitions = merged
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
    let sources = job
        .sources
        .iter()
        .zip(&plan.sources)
        .zip(per_source)
        .map(|((s, p), c)| SourceSummary {
            name: s.name.clone(),
            shards: p.shards,
            shard_bytes: p.bytes,
            counters: c,
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
        skipped_shards: maps.iter().flat_map(|m| m.skipped.clone()).collect(),
        duplicate_shards: plan.duplicate_shards.clone(),
        rejects: Some(RejectsFile {
            path: rejects_rel,
            lines: counters.rejected,
            bytes: rejects_obj.bytes,
            sha256: rejects_obj.sha256,
        }),
        warnings: plan.warnings.clone(),
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
    };
    let manifest_rel = format!("{MANIFEST_DIR}/{}/{}.json", job.name, job.window_id());
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| DriverError::Inconsistent(format!("manifest: {e}")))?;
    bytes.push(b'\n');
    output.put_atomic(&manifest_rel, &bytes)?;
    // The very last publication: the done-flag downstream jobs wait for.
    if let Some(m) = &marker {
        output.put_atomic(m, b"")?;
        tracing::info!(marker = %output.url(m), "done-flag written");
    }
    Ok(RunReport {
        manifest,
        manifest_url: output.url(&manifest_rel),
    })
}

/// The staged objects a merged partition publishes: its one file, or every part.
fn published(r: &ReduceOutput) -> Vec<StagedObject> {
    if r.parts.is_empty() {
        vec![r.staged.clone()]
    } else {
        r.parts.iter().map(|p| p.staged.clone()).collect()
    }
}

/// Groups the map outputs' segments by partition: one reduce task per partition, biggest
/// first so that the long ones start early.
fn reduce_tasks(job: &Job, maps: &[MapOutput], slots: usize) -> Vec<ReduceTask> {
    let mut by_path: BTreeMap<String, ReduceTask> = BTreeMap::new();
    for m in maps {
        for run in &m.runs {
            for seg in &run.index.segments {
                let Some(key) = m.partitions.get(seg.partition as usize) else {
                    continue;
                };
                let rel = job.output.template.render(&key.domain, key.bucket_ms);
                let task = by_path.entry(rel.clone()).or_insert_with(|| ReduceTask {
                    id: 0,
                    partition: key.clone(),
                    rel_path: rel,
                    inputs: Vec::new(),
                    records: 0,
                    line_bytes: 0,
                    gzip_threads: 1,
                });
                task.inputs.push(RunSegment {
                    file: run.name.clone(),
                    offset: seg.offset,
                    len: seg.len,
                });
                task.records += seg.records;
                task.line_bytes += seg.line_bytes;
            }
        }
    }
    let mut tasks: Vec<ReduceTask> = by_path.into_values().collect();
    tasks.sort_by(|a, b| {
        b.line_bytes
            .cmp(&a.line_bytes)
            .then(a.rel_path.cmp(&b.rel_path))
    });
    let gzip_threads = (slots / tasks.len().max(1)).max(1) as u32;
    for (i, t) in tasks.iter_mut().enumerate() {
        t.id = i as u32;
        t.gzip_threads = gzip_threads;
    }
    tasks
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
            TaskOutput::Map(m) => {
                let names = m.runs.iter().map(|r| &r.name).chain(m.rejects.as_ref());
                for name in names {
                    if let Err(e) = scratch.remove(name) {
                        tracing::warn!(name, error = %e, "could not remove a superseded run");
                    }
                }
            }
            TaskOutput::Reduce(r) => {
                tracing::info!(partition = %r.staged.rel, "discarding a superseded attempt's output");
                for staged in published(&r) {
                    if let Err(e) = output.discard(&staged) {
                        tracing::warn!(error = %e, "could not discard a superseded output");
                    }
                }
            }
        }
    }
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
    let mut gz = GzipMembersWriter::new(staged, job.output.gzip_level, 4 << 20, 1);
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
        };
        let cluster = Superseding(parking_lot::Mutex::new(vec![
            TaskOutput::Map(map),
            TaskOutput::Reduce(ReduceOutput {
                id: 0,
                staged: zombie.clone(),
                lines: 1,
                line_bytes: 1,
                parts: Vec::new(),
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
