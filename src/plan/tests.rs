use std::fs;
use std::path::Path;

use super::*;
use crate::job::JobFile;

/// Writes `bytes` bytes at `rel`, different for every path (so that no two are duplicates).
fn write(root: &Path, rel: &str, bytes: usize) {
    let seed = rel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let content: Vec<u8> = (0..bytes).map(|i| (seed >> (i % 8 * 8)) as u8).collect();
    write_bytes(root, rel, &content);
}

fn write_bytes(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn job(root: &Path, extra: &str) -> Job {
    let text = format!(
        r#"
name = "t"
{extra}
[window]
start = "2026-11-05T01:00:00+08:00"
end = "2026-11-05T02:00:00+08:00"
slack = "5m"
[[source]]
name = "up"
format = "upyun"
shards = "up/%Y%m%d/%H%M/*.gz"
timezone = "+08:00"
[[source]]
name = "ng"
format = "nginx"
shards = "ng/{{domain}}/%Y%m%d/%H%M.log.gz"
timezone = "+08:00"
[output]
root = "out"
path = "{{domain}}/%Y%m%d/{{domain}}_%Y%m%d%H.log.gz"
timezone = "+08:00"
"#
    );
    JobFile::from_toml(&text, Path::new("job.toml"), &[])
        .unwrap()
        .validate(root)
        .unwrap()
}

#[test]
fn discovers_slots_in_the_read_range_only() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    // 00:50 is outside [00:55, 02:05); 00:55 and 02:00 are inside thanks to the slack.
    // Sizes all different: no same-size group changes the packing.
    for (i, slot) in ["0050", "0055", "0100", "0155", "0200", "0205"]
        .iter()
        .enumerate()
    {
        write(r, &format!("up/20261105/{slot}/a.gz"), 10 + i);
    }
    write(r, "up/20261105/0100/b.gz", 20);
    write(r, "up/20261105/0100/_b.gz", 20); // hidden
    write(r, "up/20261105/0100/b.txt", 20); // no match
    write(r, "up/20261104/0100/a.gz", 10); // another day: pruned
    write(r, "ng/a.example.com/20261105/0130.log.gz", 5);
    write(r, "ng/b.example.com/20261105/0130.log.gz", 5);
    let job = job(r, "");
    let found = discover(&job).unwrap();
    let up: Vec<String> = found.sources[0]
        .iter()
        .map(|s| s.location.path_str().replace(&r.display().to_string(), ""))
        .collect();
    let mut sorted = up.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "/up/20261105/0055/a.gz",
            "/up/20261105/0100/a.gz",
            "/up/20261105/0100/b.gz",
            "/up/20261105/0155/a.gz",
            "/up/20261105/0200/a.gz",
        ]
    );
    let domains: Vec<_> = found.sources[1]
        .iter()
        .map(|s| s.domain.clone().unwrap())
        .collect();
    assert_eq!(domains.len(), 2);
    assert!(domains.contains(&"a.example.com".to_string()));

    let p = plan(&job, found, 25, 1);
    assert_eq!(p.total_shards(), 7);
    // Ordinals follow source order, then path bytewise.
    let ordered: Vec<(u32, u32)> = p
        .map_tasks
        .iter()
        .flat_map(|t| t.shards.iter().map(|s| (s.ordinal, s.source)))
        .collect();
    assert_eq!(
        ordered,
        (0..7).map(|i| (i, u32::from(i >= 5))).collect::<Vec<_>>()
    );
    // Small shards are combined up to the task size.
    assert!(p
        .map_tasks
        .iter()
        .all(|t| t.bytes <= 25 || t.shards.len() == 1));
    assert!(p.map_tasks.len() < 7);
    assert_eq!(p.sources[0].slots.len(), 4);
    assert!(p.warnings.is_empty());
}

#[test]
fn a_source_without_shards_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "up/20261105/0100/a.gz", 10);
    let job = job(dir.path(), "");
    let p = plan(&job, discover(&job).unwrap(), DEFAULT_MAP_TASK_BYTES, 4);
    assert_eq!(p.total_shards(), 1);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].contains("'ng'"), "{:?}", p.warnings);
}

#[test]
fn small_inputs_are_split_for_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    // Sizes all different (no same-size group), two by two of the same sum.
    let slots = ["0100", "0105", "0110", "0115", "0120", "0125"];
    for (slot, size) in slots.iter().zip([100, 105, 101, 104, 102, 103]) {
        write(dir.path(), &format!("up/20261105/{slot}/a.gz"), size);
    }
    let job = job(dir.path(), "");
    let one = plan(&job, discover(&job).unwrap(), DEFAULT_MAP_TASK_BYTES, 1);
    assert_eq!(one.map_tasks.len(), 1);
    let three = plan(&job, discover(&job).unwrap(), DEFAULT_MAP_TASK_BYTES, 3);
    assert_eq!(three.map_tasks.len(), 3);
    assert!(three.map_tasks.iter().all(|t| t.shards.len() == 2));
}

#[test]
fn shards_that_may_be_duplicates_are_grouped_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write_bytes(r, "up/20261105/0100/part-1.gz", b"same bytes");
    write_bytes(r, "up/20261105/0100/part-1-redelivered.gz", b"same bytes");
    write_bytes(r, "up/20261105/0105/part-1.gz", b"other byte"); // same size, other bytes
    write(r, "up/20261105/0105/part-2.gz", 11);
    // The same bytes in a source whose path names the host: other lines, not compared.
    write_bytes(r, "ng/a.example.com/20261105/0130.log.gz", b"same bytes");
    write_bytes(r, "up/20261105/0110/empty.gz", b"");
    write_bytes(r, "up/20261105/0110/empty2.gz", b"");
    let skip = job(r, "");
    let p = plan(&skip, discover(&skip).unwrap(), 10, 1);
    assert_eq!(p.total_shards(), 7, "nothing is left out at plan time");
    assert_eq!(p.same_size_shards, 3);
    let name = |s: &Shard| s.location.path_str().replace(&r.display().to_string(), "");
    let grouped: Vec<(u32, String, Option<u32>)> = p
        .shards()
        .iter()
        .map(|s| (s.ordinal, name(s), s.same_size))
        .collect();
    // Ordinals: source order, then path bytewise (`part-1-redelivered.gz` before
    // `part-1.gz`); only the three 10-byte `up` shards form a group.
    assert_eq!(
        grouped,
        [
            (0, "/up/20261105/0100/part-1-redelivered.gz".into(), Some(0)),
            (1, "/up/20261105/0100/part-1.gz".into(), Some(0)),
            (2, "/up/20261105/0105/part-1.gz".into(), Some(0)),
            (3, "/up/20261105/0105/part-2.gz".into(), None),
            (4, "/up/20261105/0110/empty.gz".into(), None),
            (5, "/up/20261105/0110/empty2.gz".into(), None),
            (6, "/ng/a.example.com/20261105/0130.log.gz".into(), None),
        ]
    );
    // The packing ignores the groups.
    let keep = job(r, "on_duplicate_shard = \"keep\"");
    let kept = plan(&keep, discover(&keep).unwrap(), 10, 1);
    assert_eq!(kept.same_size_shards, 0);
    assert!(kept.shards().iter().all(|s| s.same_size.is_none()));
    let layout = |p: &Plan| -> Vec<Vec<u32>> {
        p.map_tasks
            .iter()
            .map(|t| t.shards.iter().map(|s| s.ordinal).collect())
            .collect()
    };
    assert_eq!(layout(&p), layout(&kept));
}
