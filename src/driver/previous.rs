//! The previous run of the window, the I/O of incremental re-fusion
//! ([`crate::incremental`]): reading its manifest
//! of the window, checking the files of the partitions it would keep, reading its rejects
//! file. Whatever goes wrong here is a warning and a recomputation, never a failed run.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::run::Run;
use crate::incremental::rejects::RejectsByShard;
use crate::incremental::{partition_key, Reuse, Unusable};
use crate::manifest::{Manifest, RecomputeReason, MANIFEST_DIR};
use crate::plan::Plan;
use crate::storage::OutputStore;

/// Parallel size checks of kept files (HEAD requests on object stores).
const CHECK_THREADS: usize = 8;

/// Where the manifest of `job`'s window lives, relative to the output root.
pub fn manifest_rel(job: &crate::job::Job) -> String {
    format!("{MANIFEST_DIR}/{}/{}.json", job.name, job.window_id())
}

/// What a run starts from.
pub struct Start {
    pub reuse: Reuse,
    /// The previous rejects, by shard (when the previous manifest is used and has any).
    pub previous_rejects: RejectsByShard,
    /// Why the previous run was not (fully) used, for the log and the manifest.
    pub warnings: Vec<String>,
    /// The files the previous run of the window published (from its manifest, whenever one
    /// can be read, also with `--full`): those this run does not publish again are removed,
    /// so that the window holds what a run into an empty root would hold.
    pub previous_files: Vec<String>,
}

/// Decides what `run` recomputes of `plan`: everything with `--full` (`run.full`) or without
/// a usable previous manifest; else only what changed.
pub fn start(run: &Run, plan: &Plan) -> Start {
    let shards = plan.shards();
    let output = run.output.as_ref();
    let rel = manifest_rel(&run.job);
    let url = output.url(&rel);
    let read = read_manifest(output, &rel);
    let previous_files: Vec<String> = match &read {
        Ok(Some(m)) => m.partitions.iter().map(|p| p.path.clone()).collect(),
        _ => Vec::new(),
    };
    let everything = |reason, warnings| Start {
        reuse: Reuse::everything(reason, shards.len()),
        previous_rejects: RejectsByShard::default(),
        warnings,
        previous_files: previous_files.clone(),
    };
    if run.full {
        return everything(RecomputeReason::FullRequested, Vec::new());
    }
    let unusable = |reason: String| Unusable {
        url: url.clone(),
        reason,
    };
    let previous = match read {
        Ok(None) => return everything(RecomputeReason::NoPreviousManifest, Vec::new()),
        Ok(Some(m)) => m,
        Err(reason) => {
            return everything(
                RecomputeReason::PreviousManifestUnusable,
                vec![unusable(reason).to_string()],
            )
        }
    };
    match Reuse::check_previous(&run.job, &previous, &url) {
        Err(e) => {
            return everything(
                RecomputeReason::PreviousManifestUnusable,
                vec![e.to_string()],
            )
        }
        Ok(Some(reason)) => return everything(reason, Vec::new()),
        Ok(None) => {}
    }
    let previous_rejects = match read_rejects(output, &previous) {
        Ok(r) => r,
        Err(reason) => {
            return everything(
                RecomputeReason::PreviousManifestUnusable,
                vec![unusable(reason).to_string()],
            )
        }
    };
    let mut reuse = Reuse::from_previous(previous, &shards);
    let mut warnings = Vec::new();
    let candidates: Vec<(String, String, u64)> = reuse
        .kept_candidates()
        .into_iter()
        .map(|p| (partition_key(p).to_string(), p.path.clone(), p.bytes))
        .collect();
    for (key, problem) in check_kept(output, &candidates) {
        let w = format!("{problem}: recomputing it");
        tracing::warn!("{w}");
        warnings.push(w);
        reuse.missing_output(&key);
    }
    Start {
        reuse,
        previous_rejects,
        warnings,
        previous_files,
    }
}

/// The files of `previous` that a run publishing `published` leaves behind, to be removed:
/// relative paths below the root only (never `_`-names such as manifests and rejects, never
/// `..`), each once, in order.
pub fn stale_files<'a>(previous: &'a [String], published: &[&str]) -> Vec<&'a str> {
    let now: std::collections::HashSet<&str> = published.iter().copied().collect();
    let mut seen = std::collections::HashSet::new();
    previous
        .iter()
        .map(String::as_str)
        .filter(|p| {
            !p.is_empty()
                && !p.starts_with('/')
                && !p.starts_with('_')
                && !p.split('/').any(|seg| seg == ".." || seg.is_empty())
        })
        .filter(|p| !now.contains(p) && seen.insert(*p))
        .collect()
}

/// The previous manifest at `rel`; `Ok(None)` when there is none; `Err` says why it cannot
/// be read.
fn read_manifest(output: &dyn OutputStore, rel: &str) -> Result<Option<Manifest>, String> {
    let Some(bytes) = output.read(rel).map_err(|e| crate::errors::chain(&e))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("not a manifest: {e}"))
}

/// The previous run's rejects by shard, checked against the size and SHA-256 its manifest
/// records (read only when it rejected any line).
fn read_rejects(output: &dyn OutputStore, previous: &Manifest) -> Result<RejectsByShard, String> {
    let mut by_shard = RejectsByShard::default();
    let Some(rejects) = previous.rejects.as_ref().filter(|r| r.lines > 0) else {
        return Ok(by_shard);
    };
    let url = output.url(&rejects.path);
    let gz = output
        .read(&rejects.path)
        .map_err(|e| crate::errors::chain(&e))?
        .ok_or_else(|| format!("its rejects file {url} is gone"))?;
    let (n, sha) = digest(&gz);
    if n != rejects.bytes || sha != rejects.sha256 {
        return Err(format!(
            "its rejects file {url} has {n} bytes with SHA-256 {sha}, the manifest says {} with {}",
            rejects.bytes, rejects.sha256
        ));
    }
    let mut tsv = Vec::new();
    MultiGzDecoder::new(gz.as_slice())
        .read_to_end(&mut tsv)
        .map_err(|e| format!("its rejects file {url}: {e}"))?;
    by_shard
        .add(&tsv)
        .map_err(|e| format!("its rejects file {url}: {e}"))?;
    Ok(by_shard)
}

fn digest(bytes: &[u8]) -> (u64, String) {
    use std::io::Write;
    let mut h = crate::storage::HashingWriter::new(std::io::sink());
    let _ = h.write_all(bytes);
    let (_, n, sha) = h.into_parts();
    (n, sha)
}

/// Checks that each `(key, path, bytes)` file is there with that size, on a few threads;
/// returns the keys of those that are not, with what is wrong.
fn check_kept(output: &dyn OutputStore, kept: &[(String, String, u64)]) -> Vec<(String, String)> {
    if kept.is_empty() {
        return Vec::new();
    }
    let chunk = kept.len().div_ceil(CHECK_THREADS);
    let mut problems: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = kept
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (key, path, bytes) in part {
                        let url = output.url(path);
                        let problem = match output.size(path) {
                            Ok(Some(n)) if n == *bytes => continue,
                            Ok(Some(n)) => {
                                format!("{url} has {n} bytes, the manifest says {bytes}")
                            }
                            Ok(None) => format!("{url} is gone"),
                            Err(e) => format!("{url}: {}", crate::errors::chain(&e)),
                        };
                        out.push((key.clone(), problem));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    problems.sort();
    problems
}

#[cfg(test)]
mod tests {
    use super::stale_files;

    #[test]
    fn stale_files_are_the_previous_ones_not_published_again() {
        let previous: Vec<String> = [
            "a/00.part-00001.gz",
            "a/00.part-00002.gz",
            "a/00.part-00003.gz",
            "b/00.gz",
            "b/00.gz",
            "_rejects/j/w.tsv.gz",
            "../escape.gz",
            "/abs.gz",
            "x//y.gz",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let published = ["a/00.part-00001.gz", "a/00.part-00002.gz"];
        assert_eq!(
            stale_files(&previous, &published),
            ["a/00.part-00003.gz", "b/00.gz"]
        );
        assert!(stale_files(&previous[..2], &published).is_empty());
    }
}
