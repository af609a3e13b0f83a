//! The commit's intent: the record, written before the first publication step, of everything
//! a run's commit does (steps, then the manifest, then the done-flag), so that a commit cut
//! short can be finished by the next run. Pure: encoding, decoding and checking; the I/O is
//! in the parent module.
//!
//! It lives beside the manifest it promises, at `_manifests/<job>/<window>.commit`: one read
//! at a path known from the job and the window finds it on every backend (the output stores
//! have no listing, and object-store roots keep only their upload markers under
//! `_temporary/`); it outlives the removal of a dead run's `_temporary/<run>`; and, without the `.json` of manifests, a
//! consumer watching the manifests directory for `*.json` never mistakes it for one.

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::storage::StagedObject;

/// The version of the document this build writes and reads.
pub const INTENT_VERSION: u32 = 1;
/// The suffix that makes a manifest's path its intent's.
const INTENT_SUFFIX: &str = ".commit";

/// Where the intent of the commit writing the manifest `manifest_rel`
/// (`_manifests/<job>/<window>.json`) lives: `_manifests/<job>/<window>.commit`.
pub fn intent_rel(manifest_rel: &str) -> String {
    let stem = manifest_rel.strip_suffix(".json").unwrap_or(manifest_rel);
    format!("{stem}{INTENT_SUFFIX}")
}

/// One step of a commit, before the manifest. Each is idempotent
/// ([`crate::storage::OutputStore::publish`], [`crate::storage::OutputStore::remove`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Publish a staged object under its final name (a rename, or the completion of a
    /// multipart upload with its parts and ETags, both in the object's handle).
    Publish(StagedObject),
    /// Remove the published object at this path: the done-flag before anything is
    /// replaced, the files of the previous run this one no longer publishes.
    Remove(String),
}

impl Step {
    /// The path below the output root the step changes.
    pub fn rel(&self) -> &str {
        match self {
            Step::Publish(obj) => &obj.rel,
            Step::Remove(rel) => rel,
        }
    }
}

/// A commit, decided: what its run will have published once it is finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub version: u32,
    /// The run (application id on YARN) whose commit this is.
    pub run_id: String,
    pub job: String,
    /// The window's id (`Job::window_id`).
    pub window: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Where the manifest goes, after every step.
    pub manifest_rel: String,
    pub manifest: Manifest,
    /// The done-flag written after the manifest (`output.success_marker`), if any.
    pub done_flag: Option<String>,
}

/// Why bytes found at an intent's path are not a usable intent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    #[error("not a commit record: {0}")]
    Syntax(String),
    #[error("version {found}, this filex reads version {INTENT_VERSION}")]
    Version { found: u32 },
    #[error("it records the commit of job '{job}' window {window}, not of job '{want_job}' window {want_window}")]
    OtherWindow {
        job: String,
        window: String,
        want_job: String,
        want_window: String,
    },
    #[error("step {step} names `{rel}`, not a path below the output root")]
    Path { step: usize, rel: String },
    #[error("it has no run id")]
    NoRun,
}

impl Intent {
    /// The document, as written to the store.
    pub fn encode(&self) -> Result<Vec<u8>, IntentError> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| IntentError::Syntax(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads an intent of job `job`'s window `window` and checks it: version, job and
    /// window, and every path relative and below the root (a damaged record must not make a
    /// commit rename or remove anything elsewhere).
    pub fn decode(bytes: &[u8], job: &str, window: &str) -> Result<Intent, IntentError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned =
            serde_json::from_slice(bytes).map_err(|e| IntentError::Syntax(e.to_string()))?;
        if v.version != INTENT_VERSION {
            return Err(IntentError::Version { found: v.version });
        }
        let intent: Intent =
            serde_json::from_slice(bytes).map_err(|e| IntentError::Syntax(e.to_string()))?;
        if intent.job != job || intent.window != window {
            return Err(IntentError::OtherWindow {
                job: intent.job,
                window: intent.window,
                want_job: job.to_string(),
                want_window: window.to_string(),
            });
        }
        if intent.run_id.is_empty() {
            return Err(IntentError::NoRun);
        }
        let paths = intent
            .steps
            .iter()
            .map(Step::rel)
            .chain([intent.manifest_rel.as_str()])
            .chain(intent.done_flag.as_deref());
        for (step, rel) in paths.enumerate() {
            if !below_root(rel) {
                return Err(IntentError::Path {
                    step: step + 1,
                    rel: rel.to_string(),
                });
            }
        }
        Ok(intent)
    }

    /// The number of steps the commit makes in all: its steps, the manifest, the done-flag.
    pub fn total_steps(&self) -> usize {
        self.steps.len() + 1 + usize::from(self.done_flag.is_some())
    }
}

/// Whether `rel` is a relative path with no empty, `.` or `..` segment.
fn below_root(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && !rel
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ManifestWindow, Timeline};
    use crate::task::Counters;

    fn manifest() -> Manifest {
        Manifest {
            filex_version: "0".into(),
            job: "t".into(),
            window: ManifestWindow {
                start: "2026-11-05T00:00:00+08:00".into(),
                end: "2026-11-05T01:00:00+08:00".into(),
            },
            run_id: "run1".into(),
            output_root: "file:///out".into(),
            started_at: "2026-11-05T02:00:00Z".into(),
            finished_at: "2026-11-05T02:01:00Z".into(),
            partitions: Vec::new(),
            counters: Counters::default(),
            sources: Vec::new(),
            skipped_shards: Vec::new(),
            duplicate_shards: Vec::new(),
            rejects: None,
            warnings: Vec::new(),
            removed: vec!["a/old.log.gz".into()],
            timeline: Timeline::default(),
            events: Vec::new(),
            settings_digest: String::new(),
            shards: Vec::new(),
            incremental: None,
            tasks_recovered: 0,
        }
    }

    fn intent() -> Intent {
        let staged = |rel: &str, handle: &str| StagedObject {
            rel: rel.into(),
            bytes: 42,
            sha256: "ab".repeat(32),
            handle: handle.into(),
        };
        Intent {
            version: INTENT_VERSION,
            run_id: "application_1_0001".into(),
            job: "t".into(),
            window: "20261104T160000Z-20261104T170000Z".into(),
            steps: vec![
                Step::Remove("2026/11/05/_SUCCESS".into()),
                Step::Publish(staged("a/00.log.gz", "/out/_temporary/r/_attempts/r0.0/a")),
                Step::Publish(staged(
                    "b/00.log.gz",
                    r#"{"key":"p/b/00.log.gz","upload_id":"u1","parts":[{"n":1,"etag":"\"e\"","md5":"m"}],"etag":"x-1"}"#,
                )),
                Step::Remove("a/old.log.gz".into()),
            ],
            manifest_rel: "_manifests/t/20261104T160000Z-20261104T170000Z.json".into(),
            manifest: manifest(),
            done_flag: Some("2026/11/05/_SUCCESS".into()),
        }
    }

    const JOB: &str = "t";
    const WINDOW: &str = "20261104T160000Z-20261104T170000Z";

    #[test]
    fn an_intent_reads_back_as_written() {
        let i = intent();
        let bytes = i.encode().unwrap();
        assert_eq!(Intent::decode(&bytes, JOB, WINDOW).unwrap(), i);
        assert_eq!(i.total_steps(), 6);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"remove\": \"a/old.log.gz\""), "{text}");
        assert!(text.contains("\"upload_id\\\":\\\"u1\\\""), "{text}");
    }

    #[test]
    fn its_path_is_beside_the_manifest_without_the_json_suffix() {
        assert_eq!(
            intent_rel("_manifests/t/20261104T160000Z-20261104T170000Z.json"),
            "_manifests/t/20261104T160000Z-20261104T170000Z.commit"
        );
    }

    #[test]
    fn damaged_or_foreign_intents_are_refused_with_the_reason() {
        let good = intent().encode().unwrap();
        let cut = &good[..good.len() / 2];
        assert!(matches!(
            Intent::decode(cut, JOB, WINDOW),
            Err(IntentError::Syntax(_))
        ));
        assert!(matches!(
            Intent::decode(b"", JOB, WINDOW),
            Err(IntentError::Syntax(_))
        ));
        let mut newer = intent();
        newer.version = 2;
        assert_eq!(
            Intent::decode(&newer.encode().unwrap(), JOB, WINDOW).unwrap_err(),
            IntentError::Version { found: 2 }
        );
        let err = Intent::decode(&good, JOB, "20261104T170000Z-20261104T180000Z").unwrap_err();
        assert!(matches!(err, IntentError::OtherWindow { .. }), "{err}");
        assert!(err.to_string().contains("window 20261104T160000Z"), "{err}");
        for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", ""] {
            let mut i = intent();
            i.steps.push(Step::Remove(bad.into()));
            let err = Intent::decode(&i.encode().unwrap(), JOB, WINDOW).unwrap_err();
            assert_eq!(
                err,
                IntentError::Path {
                    step: 5,
                    rel: bad.into()
                }
            );
        }
        let mut flag = intent();
        flag.done_flag = Some("../_SUCCESS".into());
        assert!(matches!(
            Intent::decode(&flag.encode().unwrap(), JOB, WINDOW),
            Err(IntentError::Path { step: 6, .. })
        ));
        let mut anonymous = intent();
        anonymous.run_id.clear();
        assert_eq!(
            Intent::decode(&anonymous.encode().unwrap(), JOB, WINDOW).unwrap_err(),
            IntentError::NoRun
        );
        // An unknown step kind or field is damage too, not something to skip.
        let text = String::from_utf8(good).unwrap();
        let odd = text.replacen("\"remove\"", "\"truncate\"", 1);
        assert!(matches!(
            Intent::decode(odd.as_bytes(), JOB, WINDOW),
            Err(IntentError::Syntax(_))
        ));
    }
}
