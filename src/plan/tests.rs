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
    for slot in ["0050", "0055", "0100", "0155", "0200", "0205"] {
        write(r, &format!("up/20261105/{slot}/a.gz"), 10);
    }
    write(r, "up/20261105/0100/b.gz", 20);
    write(r, "up/20261105/0100/_b.gz", 20); // hidden
    write(r, "up/20261105/0100/b.txt", 20); // no match
    write(r, "up/20261104/0100/a.gz", 10); // another day: pruned
    write(r, "ng/a.example.com/20261105/0130.log.gz", 5);
    write(r, "ng/b.example.com/20261105/0130.log.gz", 5);
    let job = job(r, "");
    let found = discover(&job).unwrap();
    assert!(found.duplicates.is_empty());
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
    for slot in ["0100", "0105", "0110", "0115", "0120", "0125"] {
        write(dir.path(), &format!("up/20261105/{slot}/a.gz"), 100);
    }
    let job = job(dir.path(), "");
    let one = plan(&job, discover(&job).unwrap(), DEFAULT_MAP_TASK_BYTES, 1);
    assert_eq!(one.map_tasks.len(), 1);
    let three = plan(&job, discover(&job).unwrap(), DEFAULT_MAP_TASK_BYTES, 3);
    assert_eq!(three.map_tasks.len(), 3);
    assert!(three.map_tasks.iter().all(|t| t.shards.len() == 2));
}

#[test]
fn duplicate_deliveries_are_read_once_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write_bytes(r, "up/20261105/0100/part-1.gz", b"same bytes");
    write_bytes(r, "up/20261105/0100/part-1-redelivered.gz", b"same bytes");
    write_bytes(r, "up/20261105/0105/part-1.gz", b"other byte"); // same size, other bytes
                                                                 // The same bytes in a source whose path names the host: other lines, not a duplicate.
    write_bytes(r, "ng/a.example.com/20261105/0130.log.gz", b"same bytes");
    write_bytes(r, "up/20261105/0110/empty.gz", b"");
    write_bytes(r, "up/20261105/0110/empty2.gz", b"");
    let skip = job(r, "");
    let found = discover(&skip).unwrap();
    let names = |v: &[DuplicateShard]| -> Vec<(String, String, u64)> {
        let short = |u: &str| {
            u.replace(&r.display().to_string(), "")
                .replace("file://", "")
        };
        v.iter()
            .map(|d| (short(&d.url), short(&d.duplicate_of), d.bytes))
            .collect()
    };
    // The keeper is first in source order, then path bytewise: `part-1-redelivered.gz`
    // sorts before `part-1.gz`.
    assert_eq!(
        names(&found.duplicates),
        [(
            "/up/20261105/0100/part-1.gz".to_string(),
            "/up/20261105/0100/part-1-redelivered.gz".to_string(),
            10
        )]
    );
    let p = plan(&skip, found, DEFAULT_MAP_TASK_BYTES, 1);
    assert_eq!(p.total_shards(), 5, "one copy and the four others");
    assert_eq!((p.sources[0].shards, p.sources[1].shards), (4, 1));
    assert_eq!(p.duplicate_shards.len(), 1);

    let keep = job(r, "on_duplicate_shard = \"keep\"");
    let found = discover(&keep).unwrap();
    assert!(found.duplicates.is_empty());
    assert_eq!(
        plan(&keep, found, DEFAULT_MAP_TASK_BYTES, 1).total_shards(),
        6
    );
}
