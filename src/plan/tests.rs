use std::fs;
use std::path::Path;

use super::*;
use crate::job::JobFile;

fn write(root: &Path, rel: &str, bytes: usize) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, vec![b'x'; bytes]).unwrap();
}

fn job(root: &Path, extra: &str) -> Job {
    let text = format!(
        r#"
name = "t"
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
{extra}
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
    let up: Vec<String> = found[0]
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
    let domains: Vec<_> = found[1].iter().map(|s| s.domain.clone().unwrap()).collect();
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
