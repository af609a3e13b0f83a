use std::fs;
use std::io::Write;
use std::path::Path;

use super::*;
use crate::manifest::{Manifest, ManifestWindow, Timeline};
use crate::storage::local::LocalOutput;
use crate::storage::StagedObject;
use crate::task::Counters;

const JOB: &str = "t";
const WINDOW: &str = "w1";
const MANIFEST: &str = "_manifests/t/w1.json";
const RECORD: &str = "_manifests/t/w1.commit";

fn manifest(run: &str) -> Manifest {
    Manifest {
        filex_version: "0".into(),
        job: JOB.into(),
        window: ManifestWindow {
            start: "s".into(),
            end: "e".into(),
        },
        run_id: run.into(),
        output_root: "file:///out".into(),
        started_at: "a".into(),
        finished_at: "b".into(),
        partitions: Vec::new(),
        counters: Counters::default(),
        sources: Vec::new(),
        skipped_shards: Vec::new(),
        duplicate_shards: Vec::new(),
        rejects: None,
        warnings: Vec::new(),
        removed: vec!["old.log".into()],
        timeline: Timeline::default(),
        events: Vec::new(),
        settings_digest: String::new(),
        shards: Vec::new(),
        incremental: None,
        tasks_recovered: 0,
    }
}

fn stage(out: &LocalOutput, rel: &str, bytes: &[u8]) -> StagedObject {
    let mut w = out.stage_attempt(rel, "r00000.0").unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

/// A root holding the previous run's files and flag, and a run `run` with two partitions
/// staged: its intent replaces `a.log`, adds `b.log`, removes `old.log`.
fn setup(root: &Path, run: &str) -> (LocalOutput, Intent) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("a.log"), b"previous a").unwrap();
    fs::write(root.join("old.log"), b"previous only").unwrap();
    fs::write(root.join("_SUCCESS"), b"").unwrap();
    let out = LocalOutput::new(root.to_path_buf(), run);
    let a = stage(&out, "a.log", b"new a, longer");
    let b = stage(&out, "b.log", b"new b");
    let intent = Intent {
        version: INTENT_VERSION,
        run_id: run.into(),
        job: JOB.into(),
        window: WINDOW.into(),
        steps: vec![
            Step::Remove("_SUCCESS".into()),
            Step::Publish(a),
            Step::Publish(b),
            Step::Remove("old.log".into()),
        ],
        manifest_rel: MANIFEST.into(),
        manifest: manifest(run),
        done_flag: Some("_SUCCESS".into()),
    };
    (out, intent)
}

/// Every file below `root` but the staging area, with its bytes.
fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with("_temporary") {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_commit_publishes_everything_then_the_manifest_and_drops_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let (out, intent) = setup(dir.path(), "run1");
    let latch = CommitLatch::default();
    let counts = commit(&out, &latch, &intent).unwrap();
    assert_eq!(counts, StepCounts { now: 4, before: 0 });
    let got = files(dir.path());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["_SUCCESS", "_manifests/t/w1.json", "a.log", "b.log"]
    );
    assert_eq!(got[2].1, b"new a, longer");
    assert_eq!(got[1].1, intent.manifest.encode().unwrap());
    // Finished: the run's staging may go now.
    assert!(latch.discard_unless_decided(|| {}));
}

#[test]
fn a_commit_cut_short_after_any_step_rolls_forward_to_the_same_files() {
    let clean = tempfile::tempdir().unwrap();
    let (out, intent) = setup(clean.path(), "run1");
    commit(&out, &CommitLatch::default(), &intent).unwrap();
    let want = files(clean.path());
    for k in 0..=intent.steps.len() {
        let dir = tempfile::tempdir().unwrap();
        let (out, intent) = setup(dir.path(), "run1");
        // The record, then the first k steps: where a crash after k steps leaves the root.
        out.put_atomic(RECORD, &intent.encode().unwrap()).unwrap();
        let cut = Intent {
            steps: intent.steps[..k].to_vec(),
            ..intent.clone()
        };
        for step in &cut.steps {
            match step {
                Step::Publish(obj) => assert_eq!(out.publish(obj).unwrap(), Published::Now),
                Step::Remove(rel) => out.remove(rel).unwrap(),
            }
        }
        // The next run (another id) finds it and finishes it.
        let next = LocalOutput::new(dir.path().to_path_buf(), "run2");
        let done = roll_forward(&next, RECORD, JOB, WINDOW).unwrap().unwrap();
        assert_eq!(done, intent);
        assert_eq!(files(dir.path()), want, "cut after {k} steps");
        assert_eq!(roll_forward(&next, RECORD, JOB, WINDOW).unwrap(), None);
    }
}

#[test]
fn a_crash_after_the_manifest_rolls_forward_harmlessly() {
    let dir = tempfile::tempdir().unwrap();
    let (out, intent) = setup(dir.path(), "run1");
    commit(&out, &CommitLatch::default(), &intent).unwrap();
    let want = files(dir.path());
    // As if the process died before it removed its record: every step is found done.
    out.put_atomic(RECORD, &intent.encode().unwrap()).unwrap();
    assert!(roll_forward(&out, RECORD, JOB, WINDOW).unwrap().is_some());
    assert_eq!(files(dir.path()), want);
}

#[test]
fn a_rename_whose_source_is_gone_is_done_only_if_the_target_is_the_staged_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = LocalOutput::new(dir.path().to_path_buf(), "run1");
    let obj = stage(&out, "x/a.log", b"12345");
    assert_eq!(out.publish(&obj).unwrap(), Published::Now);
    assert_eq!(out.publish(&obj).unwrap(), Published::Already);
    // Another size at the final name: not this object.
    fs::write(dir.path().join("x/a.log"), b"1234").unwrap();
    let err = out.publish(&obj).unwrap_err().to_string();
    assert!(
        err.contains("x/a.log") && err.contains("4 bytes, not the 5 staged"),
        "{err}"
    );
    fs::remove_file(dir.path().join("x/a.log")).unwrap();
    let err = out.publish(&obj).unwrap_err().to_string();
    assert!(
        err.contains("does not exist") && err.contains(&obj.handle),
        "{err}"
    );
    // Removing what is not there is fine.
    out.remove("x/never.log").unwrap();
}

#[test]
fn a_failed_step_keeps_the_record_and_the_staging_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let (out, intent) = setup(dir.path(), "run1");
    // The second publication's staged file vanishes (and nothing is at its name).
    if let Step::Publish(obj) = &intent.steps[2] {
        fs::remove_file(&obj.handle).unwrap();
    }
    let latch = CommitLatch::default();
    let err = commit(&out, &latch, &intent).unwrap_err();
    assert!(
        matches!(
            err,
            CommitError::Interrupted {
                step: 3,
                steps: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("w1.commit"), "{err}");
    assert!(dir.path().join(RECORD).exists());
    // Decided and unfinished: the run's drop must not discard its staging.
    let mut discarded = false;
    assert!(!latch.discard_unless_decided(|| discarded = true));
    assert!(!discarded);
    // Rolling forward cannot finish it either: one error naming the record and the file.
    let err = roll_forward(&out, RECORD, JOB, WINDOW).unwrap_err();
    let text = format!("{err}: {}", crate::errors::chain(&err));
    assert!(
        text.contains("run run1") && text.contains("step 3 of 6"),
        "{text}"
    );
    assert!(
        text.contains("b.log") && text.contains("does not exist"),
        "{text}"
    );
    assert!(!dir.path().join(MANIFEST).exists());
}

#[test]
fn a_damaged_record_is_one_error_naming_it_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (out, intent) = setup(dir.path(), "run1");
    let before = files(dir.path());
    let bytes = intent.encode().unwrap();
    out.put_atomic(RECORD, &bytes[..bytes.len() - 40]).unwrap();
    let err = roll_forward(&out, RECORD, JOB, WINDOW).unwrap_err();
    assert!(matches!(err, CommitError::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&out.url(RECORD)), "{text}");
    assert!(text.contains("--full"), "{text}");
    let mut after = files(dir.path());
    after.retain(|(n, _)| n != RECORD);
    assert_eq!(after, before);
}

#[test]
fn the_decision_and_a_discard_never_interleave() {
    let latch = CommitLatch::default();
    assert!(latch.discard_unless_decided(|| {}));
    let failed: Result<(), ()> = latch.decide(|| Err(()));
    assert!(failed.is_err());
    assert!(latch.discard_unless_decided(|| {}), "nothing decided yet");
    latch.decide(|| Ok::<(), ()>(())).unwrap();
    assert!(!latch.discard_unless_decided(|| {}));
    latch.finish();
    assert!(latch.discard_unless_decided(|| {}));
}

#[test]
fn steps_run_in_waves_of_one_kind_in_order() {
    let obj = |rel: &str| {
        Step::Publish(StagedObject {
            rel: rel.into(),
            bytes: 0,
            sha256: String::new(),
            handle: String::new(),
        })
    };
    let rm = |rel: &str| Step::Remove(rel.into());
    let steps = [
        rm("_SUCCESS"),
        obj("a"),
        obj("b"),
        obj("c"),
        rm("x"),
        rm("y"),
    ];
    assert_eq!(waves(&steps), vec![0..1, 1..4, 4..6]);
    assert_eq!(waves(&steps[1..2]), vec![0..1]);
    assert_eq!(waves(&[]), Vec::<std::ops::Range<usize>>::new());
    assert_eq!(
        waves(&[obj("a"), rm("b"), obj("c")]),
        vec![0..1, 1..2, 2..3]
    );
}

/// Many partitions, published several at a time: every one lands once, and a failure is
/// reported at the lowest step that failed, with the flag still down.
#[test]
fn many_publications_at_once_land_every_file_and_report_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (out, mut intent) = setup(dir.path(), "run1");
    let old_remove = intent.steps.pop().unwrap();
    for i in 0..100 {
        let rel = format!("d{:02}/{i:03}.log", i % 7);
        intent
            .steps
            .push(Step::Publish(stage(&out, &rel, rel.as_bytes())));
    }
    intent.steps.push(old_remove);
    let counts = commit(&out, &CommitLatch::default(), &intent).unwrap();
    assert_eq!(
        counts,
        StepCounts {
            now: 104,
            before: 0
        }
    );
    let got = files(dir.path());
    for i in 0..100 {
        let rel = format!("d{:02}/{i:03}.log", i % 7);
        assert!(
            got.iter().any(|(n, b)| n == &rel && b == rel.as_bytes()),
            "{rel}"
        );
    }
    assert!(!dir.path().join("old.log").exists());
    assert!(dir.path().join("_SUCCESS").exists());

    // Again, with two staged files gone (steps 41 and 71): step 41 is reported, the old file
    // stays (its wave never starts), and the flag stays down.
    let dir = tempfile::tempdir().unwrap();
    let (out, mut intent) = setup(dir.path(), "run2");
    let old_remove = intent.steps.pop().unwrap();
    for i in 0..100 {
        intent
            .steps
            .push(Step::Publish(stage(&out, &format!("p{i:03}.log"), b"x")));
    }
    intent.steps.push(old_remove);
    for step in [40, 70] {
        if let Step::Publish(obj) = &intent.steps[step] {
            fs::remove_file(&obj.handle).unwrap();
        }
    }
    let err = commit(&out, &CommitLatch::default(), &intent).unwrap_err();
    assert!(
        matches!(
            err,
            CommitError::Interrupted {
                step: 41,
                steps: 106,
                ..
            }
        ),
        "{err}"
    );
    assert!(dir.path().join("old.log").exists());
    assert!(!dir.path().join("_SUCCESS").exists());
    // The next run finishes it once the files are back where they were staged.
    for step in [40, 70] {
        if let Step::Publish(obj) = &intent.steps[step] {
            fs::write(&obj.handle, b"x").unwrap();
        }
    }
    let rolled = roll_forward(&out, RECORD, JOB, WINDOW).unwrap();
    assert!(rolled.is_some());
    assert!(!dir.path().join("old.log").exists());
    assert_eq!(fs::read(dir.path().join("p070.log")).unwrap(), b"x");
    assert!(dir.path().join("_SUCCESS").exists());
}
