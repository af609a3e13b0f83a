//! What an application that ended KILLED or FAILED leaves behind, and its removal: the
//! output's staging area `_temporary/<application id>` under the output root — on an
//! object-store output, the multipart uploads its markers name (opened by its workers, or by
//! the AM in uber mode, and left open when they were killed: `crate::storage::object::marker`)
//! — scratch of its own (when the job names a scratch directory) and its HDFS staging
//! directory. `filex submit` calls it when the application it follows ends badly, and before
//! it submits a new run of a window for every dead application of that window the
//! ResourceManager still knows (by the `filex-job:`/`filex-window:` tags); a running one's
//! staging or uploads are never touched. Not here: applications the RM has forgotten, and an
//! upload whose process was killed before its marker was written (see the marker module).
//! Kept: the staging of an application that died in the middle of its commit
//! (`crate::commit`), which the next run of the window finishes.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::staging::Staging;
use crate::commit;
use crate::driver::previous;
use crate::job::Job;
use crate::storage::{self, OutputStore};

/// What [`remove_leftovers`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// Everything the application left.
    All,
    /// All but what it staged under the output root: its commit did not finish, and the
    /// next run of the window finishes it from there.
    KeptUnfinishedCommit,
}

/// How often, and how far apart, [`remove_leftovers_of_just_ended`] looks again.
const SETTLE_LOOKS: u32 = 10;
const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// Looks in a row that found nothing, after which it is done.
const SETTLE_QUIET: u32 = 3;

/// [`remove_leftovers`] for an application the ResourceManager has just reported ended.
/// Its containers outlive that report: a NodeManager stops them at its next heartbeat,
/// SIGTERM and SIGKILL a moment later, and a task writing in between recreates what was
/// removed (the HDFS staging directory when it writes its sorted run, its staging area and
/// an upload marker under the output root when it starts an upload), or makes a removal
/// fail (an upload aborted while a part is written). So look again a few times and remove
/// what reappears; the last removal's outcome is the answer.
pub fn remove_leftovers_of_just_ended(job: &Job, application_id: &str) -> Result<Removed> {
    let mut last = remove_leftovers(job, application_id);
    let staging = Staging::of(application_id)?;
    let output = open_output(job, application_id)?;
    let mut quiet = 0;
    for _ in 0..SETTLE_LOOKS {
        std::thread::sleep(SETTLE_EVERY);
        let again = match &last {
            Err(e) => Some(format!("the last removal failed: {e:#}")),
            Ok(removed) => match reappeared(&staging, output.as_ref(), *removed) {
                Ok(what) => what.map(str::to_string),
                Err(e) => Some(format!("cannot tell: {e:#}")),
            },
        };
        match again {
            Some(why) => {
                tracing::info!(
                    application = application_id,
                    why = %why,
                    "removing what the application left again (a container still stopping)"
                );
                last = remove_leftovers(job, application_id);
                quiet = 0;
            }
            None => {
                quiet += 1;
                if quiet >= SETTLE_QUIET {
                    break;
                }
            }
        }
    }
    last
}

/// What of a dead application's leftovers is there again after a removal that left
/// `removed`; `None` when nothing is. What an unfinished commit keeps is meant to stay.
fn reappeared(
    staging: &Staging,
    output: &dyn OutputStore,
    removed: Removed,
) -> Result<Option<&'static str>> {
    if staging.exists()? {
        return Ok(Some("its staging directory reappeared"));
    }
    if removed == Removed::All && output.staged_left()? {
        return Ok(Some("something it staged under the output root reappeared"));
    }
    Ok(None)
}

/// The output store opened for the run `application_id` of `job`.
fn open_output(job: &Job, application_id: &str) -> Result<Arc<dyn OutputStore>> {
    job.output
        .spec
        .open(application_id)
        .with_context(|| format!("output {}", job.output.spec.root))
}

/// Removes what the dead application `application_id` of `job` left; safe to call when
/// nothing is left, and only for an application that is no longer running.
pub fn remove_leftovers(job: &Job, application_id: &str) -> Result<Removed> {
    // The output store opened for that run: aborting removes its staging area.
    let output = open_output(job, application_id)?;
    // Unless the application died in the middle of its commit: what it staged is what the
    // commit record publishes, and the next run of the window (or a later AM attempt)
    // finishes it from there.
    let record = commit::intent_rel(&previous::manifest_rel(job));
    let unfinished = match commit::pending(output.as_ref(), &record, &job.name, &job.window_id()) {
        Ok(Some(intent)) => intent.run_id == application_id,
        Ok(None) => false,
        // Unreadable: keep everything; the next run says what is wrong with it.
        Err(e) => {
            tracing::warn!(error = %e, "an unusable commit record of the window");
            true
        }
    };
    if unfinished {
        tracing::info!(
            application = application_id,
            record = %output.url(&record),
            "kept what the application staged under the output root: its commit did not \
             finish, and the next run of the window finishes it"
        );
    } else {
        output
            .abort()
            .with_context(|| format!("staging of {application_id} under the output root"))?;
    }
    if let Some(base) = &job.scratch {
        storage::scratch(Some(base), application_id)?
            .remove_all()
            .with_context(|| format!("scratch of {application_id} under {base}"))?;
    }
    Staging::of(application_id)?.remove()?;
    tracing::info!(
        application = application_id,
        "removed what the application left"
    );
    Ok(if unfinished {
        Removed::KeptUnfinishedCommit
    } else {
        Removed::All
    })
}
