//! The reuse decision from tables: a previous manifest, a new listing, the map outputs.

use std::path::Path;

use super::*;
use crate::job::JobFile;
use crate::manifest::{ManifestWindow, Timeline};
use crate::storage::location::Location;
use crate::task::{Counters, PartitionKey, ShardOutput};

const HOUR: i64 = 3_600_000;
/// 2026-11-05T00:00:00Z.
const T0: i64 = 1_793_836_800_000;

fn job() -> Job {
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
    JobFile::from_toml(text, Path::new("j.toml"), &[])
        .unwrap()
        .validate(Path::new("/"))
        .unwrap()
}

fn shard(ordinal: u32, name: &str, size: u64, modified: i64) -> Shard {
    Shard {
        ordinal,
        source: 0,
        location: Location::Local(format!("/in/{name}").into()),
        size,
        modified_ms: Some(modified),
        domain: None,
        slot_start_ms: None,
        hosts: vec![],
        same_size: None,
    }
}

fn record(name: &str, size: u64, modified: i64) -> ManifestShard {
    ManifestShard {
        url: Location::Local(format!("/in/{name}").into()).to_string(),
        source: 0,
        bytes: size,
        modified_ms: Some(modified),
        counters: Counters::default(),
        skipped: None,
        duplicate_of: None,
    }
}

fn partition(path: &str, inputs: &[u32]) -> ManifestPartition {
    ManifestPartition {
        path: path.into(),
        domain: "d".into(),
        start: String::new(),
        lines: 1,
        bytes: 10,
        sha256: String::new(),
        inputs: ShardSet::new(inputs.to_vec()),
        recomputed: vec![],
        kept_from: None,
        partition: None,
        part: None,
    }
}

/// A previous run over shards a (→ d/00), b (→ d/00, d/01), c (→ d/01), e (→ d/02).
fn previous(job: &Job) -> Manifest {
    Manifest {
        filex_version: env!("CARGO_PKG_VERSION").into(),
        job: job.name.clone(),
        window: ManifestWindow {
            start: "2026-11-05T00:00:00Z".into(),
            end: "2026-11-05T03:00:00+00:00".into(),
        },
        run_id: "run-1".into(),
        output_root: String::new(),
        started_at: String::new(),
        finished_at: String::new(),
        partitions: vec![
            partition("d/2026110500.gz", &[0, 1]),
            partition("d/2026110501.gz", &[1, 2]),
            partition("d/2026110502.gz", &[3]),
        ],
        counters: Counters::default(),
        sources: vec![],
        skipped_shards: vec![],
        duplicate_shards: vec![],
        rejects: None,
        warnings: vec![],
        removed: vec![],
        timeline: Timeline::default(),
        events: vec![],
        settings_digest: job.settings_digest(),
        shards: vec![
            record("a", 10, 1),
            record("b", 10, 1),
            record("c", 10, 1),
            record("e", 10, 1),
        ],
        incremental: None,
        tasks_recovered: 0,
    }
}

/// A map output of `shards`, each `(ordinal, hours it wrote to)`.
fn map_output(shards: &[(u32, &[i64])]) -> MapOutput {
    let mut partitions: Vec<PartitionKey> = Vec::new();
    let mut outputs = Vec::new();
    for (ordinal, hours) in shards {
        let mut pids = Vec::new();
        for h in *hours {
            let key = PartitionKey {
                domain: "d".into(),
                bucket_ms: T0 + h * HOUR,
            };
            let pid = match partitions.iter().position(|k| *k == key) {
                Some(p) => p,
                None => {
                    partitions.push(key);
                    partitions.len() - 1
                }
            };
            pids.push(pid as u32);
        }
        outputs.push(ShardOutput {
            ordinal: *ordinal,
            counters: Counters::default(),
            partitions: pids,
            ..ShardOutput::default()
        });
    }
    MapOutput {
        task: 0,
        runs: vec![],
        partitions,
        counters: vec![],
        rejects: None,
        skipped: vec![],
        input_bytes: 0,
        shards: outputs,
    }
}

#[test]
fn an_unchanged_window_reads_nothing_and_keeps_everything() {
    let job = job();
    let now = [
        shard(0, "a", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "c", 10, 1),
        shard(3, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(previous(&job), &refs);
    assert_eq!(r.kept_candidates().len(), 3);
    assert!(r.first_round().is_empty());
    assert!(r.after_first_round(&job, &[]).is_empty());
    assert_eq!(r.recompute("d/2026110500.gz"), None);
    let kept = r.kept();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|p| p.kept_from.as_deref() == Some("run-1")));
    let s = r.summary(3, 0);
    assert_eq!((s.shards_read, s.shards_new, s.shards_changed), (0, 0, 0));
}

#[test]
fn a_changed_shard_dirties_what_it_fed_before_and_what_it_feeds_now() {
    let job = job();
    // c grew; it used to feed d/01 and now also writes to d/02.
    let now = [
        shard(0, "a", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "c", 12, 2),
        shard(3, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(previous(&job), &refs);
    // Round 1: c itself, and b (d/01's other input).
    assert_eq!(r.first_round(), vec![1, 2]);
    let round1 = map_output(&[(1, &[0, 1]), (2, &[1, 2])]);
    // Round 2: e, the other input of d/02.
    assert_eq!(r.after_first_round(&job, &[round1]), vec![3]);
    assert_eq!(
        r.recompute("d/2026110500.gz"),
        None,
        "b's lines in d/00 are discarded"
    );
    assert_eq!(
        r.recompute("d/2026110501.gz"),
        Some(vec![RecomputeReason::ChangedShard])
    );
    assert_eq!(
        r.recompute("d/2026110502.gz"),
        Some(vec![RecomputeReason::ChangedShard])
    );
    assert_eq!(
        r.kept().iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["d/2026110500.gz"]
    );
    assert!(!r.was_read(0) && r.was_read(3));
    assert!(r.unchanged_record(0).is_some() && r.unchanged_record(2).is_none());
}

#[test]
fn a_new_shard_is_read_first_and_pulls_in_its_partitions_inputs() {
    let job = job();
    // A late shard (ordinal 2, between b and c in path order) writes to d/00.
    let now = [
        shard(0, "a", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "b-late", 5, 9),
        shard(3, "c", 10, 1),
        shard(4, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(previous(&job), &refs);
    assert_eq!(r.first_round(), vec![2]);
    let round2 = r.after_first_round(&job, &[map_output(&[(2, &[0])])]);
    assert_eq!(round2, vec![0, 1]);
    assert_eq!(
        r.recompute("d/2026110500.gz"),
        Some(vec![RecomputeReason::NewShard])
    );
    let kept = r.kept();
    assert_eq!(kept.len(), 2);
    // Inputs renumbered to the new plan: c is now 3, e is 4.
    assert_eq!(kept[0].inputs.indices(), [1, 3]);
    assert_eq!(kept[1].inputs.indices(), [4]);
    assert_eq!(r.summary(2, 1).shards_new, 1);
}

#[test]
fn a_vanished_shard_and_a_missing_file_dirty_their_partitions() {
    let job = job();
    // e is gone; d/00's file was deleted.
    let now = [
        shard(0, "a", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "c", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(previous(&job), &refs);
    assert_eq!(
        r.kept_candidates()
            .iter()
            .map(|p| p.path.as_str())
            .collect::<Vec<_>>(),
        ["d/2026110500.gz", "d/2026110501.gz"]
    );
    r.missing_output("d/2026110500.gz");
    assert_eq!(r.first_round(), vec![0, 1]);
    assert!(r.after_first_round(&job, &[]).is_empty());
    assert_eq!(
        r.recompute("d/2026110500.gz"),
        Some(vec![RecomputeReason::MissingOutput])
    );
    assert_eq!(
        r.recompute("d/2026110502.gz"),
        Some(vec![RecomputeReason::VanishedShard])
    );
    assert_eq!(r.kept().len(), 1);
    assert_eq!(r.summary(1, 2).shards_vanished, vec!["file:///in/e"]);
}

#[test]
fn a_shard_without_a_modification_time_counts_as_changed() {
    let job = job();
    let mut prev = previous(&job);
    prev.shards[3].modified_ms = None;
    let mut now = [
        shard(0, "a", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "c", 10, 1),
        shard(3, "e", 10, 1),
    ];
    now[3].modified_ms = None;
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(prev, &refs);
    assert_eq!(r.first_round(), vec![3]);
}

#[test]
fn everything_is_recomputed_without_a_previous_manifest() {
    let job = job();
    let mut r = Reuse::everything(RecomputeReason::NoPreviousManifest, 3);
    assert_eq!(r.first_round(), vec![0, 1, 2]);
    assert!(r
        .after_first_round(&job, &[map_output(&[(0, &[0])])])
        .is_empty());
    assert_eq!(
        r.recompute("anything"),
        Some(vec![RecomputeReason::NoPreviousManifest])
    );
    assert!(r.kept().is_empty() && r.kept_candidates().is_empty());
}

#[test]
fn a_previous_manifest_of_another_job_window_version_or_settings_is_not_used() {
    let job = job();
    let ok = previous(&job);
    assert_eq!(Reuse::check_previous(&job, &ok, "m"), Ok(None));
    type Change = fn(&mut Manifest);
    let cases: [(&str, Change); 5] = [
        ("filex", |m| m.filex_version = "0.0.0-other".into()),
        ("of job", |m| m.job = "other".into()),
        ("of window", |m| {
            m.window.end = "2026-11-05T04:00:00Z".into()
        }),
        ("fingerprints", |m| m.settings_digest.clear()),
        ("beyond", |m| {
            m.partitions[2].inputs = ShardSet::new(vec![9])
        }),
    ];
    for (want, change) in cases {
        let mut m = ok.clone();
        change(&mut m);
        let err = Reuse::check_previous(&job, &m, "m").unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
    let mut m = ok.clone();
    m.settings_digest = "0".repeat(64);
    assert_eq!(
        Reuse::check_previous(&job, &m, "m"),
        Ok(Some(RecomputeReason::SettingsChanged))
    );
}

/// The previous run, with a shard `a2` (index 4) delivered twice: a duplicate of `a`, fed
/// nothing.
fn previous_with_duplicate(job: &Job) -> Manifest {
    let mut m = previous(job);
    m.shards.push(ManifestShard {
        duplicate_of: Some(m.shards[0].url.clone()),
        ..record("a2", 10, 1)
    });
    m
}

#[test]
fn a_late_copy_is_read_with_its_group_and_dirties_nothing() {
    let job = job();
    // `a3` arrives: the same size as `a` (a group); the plan reads the group whole.
    let mut now = [
        shard(0, "a", 10, 1),
        shard(1, "a3", 10, 5),
        shard(2, "b", 10, 1),
        shard(3, "c", 10, 1),
        shard(4, "e", 10, 1),
    ];
    now[0].same_size = Some(0);
    now[1].same_size = Some(0);
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(previous(&job), &refs);
    assert_eq!(r.first_round(), vec![0, 1], "a3, and a with it");
    // The map task found a3 a copy of a: it wrote nothing, so nothing is dirty.
    let mut round1 = map_output(&[(0, &[0]), (1, &[])]);
    round1.shards[1].duplicate_of = Some("a".into());
    assert!(r.after_first_round(&job, &[round1]).is_empty());
    assert_eq!(r.kept().len(), 3);
    assert!(r.was_read(0) && r.was_read(1) && !r.was_read(2));
}

#[test]
fn an_earlier_copy_stays_unread_while_what_it_copied_is_unchanged() {
    let job = job();
    let now = [
        shard(0, "a", 10, 1),
        shard(1, "a2", 10, 1),
        shard(2, "b", 10, 1),
        shard(3, "c", 10, 1),
        shard(4, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let prev = previous_with_duplicate(&job);
    let mut r = Reuse::from_previous(prev.clone(), &refs);
    assert!(r.first_round().is_empty());
    assert_eq!(
        r.unchanged_record(1).unwrap().duplicate_of,
        prev.shards[4].duplicate_of
    );

    // `a` changed: its copy `a2` may hold lines no other shard has now, so it is read (and
    // writes to the partitions it does, as a changed shard would).
    let now = [
        shard(0, "a", 12, 2),
        shard(1, "a2", 10, 1),
        shard(2, "b", 10, 1),
        shard(3, "c", 10, 1),
        shard(4, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(prev.clone(), &refs);
    assert_eq!(r.unchanged_record(1), None);
    assert_eq!(
        r.first_round(),
        vec![0, 1, 2],
        "a, its copy, and b (d/00's other input)"
    );
    // `a` gone: the same.
    let now = [
        shard(0, "a2", 10, 1),
        shard(1, "b", 10, 1),
        shard(2, "c", 10, 1),
        shard(3, "e", 10, 1),
    ];
    let refs: Vec<&Shard> = now.iter().collect();
    let mut r = Reuse::from_previous(prev, &refs);
    assert_eq!(
        r.first_round(),
        vec![0, 1],
        "the copy, and b (d/00's other input)"
    );
}
