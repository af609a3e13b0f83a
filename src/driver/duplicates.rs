//! Duplicate deliveries, told apart after the map tasks (see `plan::duplicates`): every shard
//! of a same-size group was parsed and hashed by its task; of the shards of a group with
//! equal digests the first in ordinal order (source order, then path bytewise) is kept. The
//! tasks holding one of the others run again, with those shards marked not to read, and
//! their first outputs are dropped. Duplicates are rare: most runs find none and redo nothing.

use std::collections::{BTreeMap, HashMap};

use crate::plan::{KnownDuplicate, MapTask, Shard};
use crate::task::MapOutput;

/// The shards of `maps` with the same bytes as an earlier shard of their group (by ordinal:
/// the URL of the shard kept). `shards` is the plan's, indexed by ordinal.
pub fn find(shards: &[&Shard], maps: &[MapOutput]) -> BTreeMap<u32, String> {
    let mut hashed: Vec<(u32, u32, &str)> = maps
        .iter()
        .flat_map(|m| &m.shards)
        .filter_map(|s| {
            let group = shards.get(s.ordinal as usize)?.same_size?;
            Some((s.ordinal, group, s.sha256.as_deref()?))
        })
        .collect();
    hashed.sort_unstable();
    let mut first: HashMap<(u32, &str), u32> = HashMap::new();
    let mut duplicates = BTreeMap::new();
    for (ordinal, group, digest) in hashed {
        match first.get(&(group, digest)) {
            Some(&kept) => {
                duplicates.insert(ordinal, shards[kept as usize].location.to_string());
            }
            None => {
                first.insert((group, digest), ordinal);
            }
        }
    }
    duplicates
}

/// The tasks of `tasks` holding a shard of `duplicates`, to run again without reading those
/// shards: (the old task's id, the new task, numbered from `*next_id`).
pub fn redo(
    tasks: &[MapTask],
    duplicates: &BTreeMap<u32, String>,
    next_id: &mut u32,
) -> Vec<(u32, MapTask)> {
    let mut out = Vec::new();
    for t in tasks {
        let known: Vec<KnownDuplicate> = t
            .shards
            .iter()
            .filter_map(|s| {
                duplicates.get(&s.ordinal).map(|of| KnownDuplicate {
                    ordinal: s.ordinal,
                    of: of.clone(),
                })
            })
            .collect();
        if known.is_empty() {
            continue;
        }
        let task = MapTask {
            id: *next_id,
            duplicates: known,
            ..t.clone()
        };
        *next_id += 1;
        out.push((t.id, task));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::location::Location;
    use crate::task::ShardOutput;

    fn shard(ordinal: u32, group: Option<u32>) -> Shard {
        Shard {
            ordinal,
            source: 0,
            location: Location::Local(format!("/s/{ordinal}.gz").into()),
            size: 10,
            modified_ms: None,
            domain: None,
            slot_start_ms: None,
            hosts: Vec::new(),
            same_size: group,
        }
    }

    fn output(task: u32, shards: &[(u32, Option<&str>)]) -> MapOutput {
        MapOutput {
            task,
            runs: vec![],
            partitions: vec![],
            counters: vec![],
            rejects: None,
            skipped: vec![],
            input_bytes: 0,
            shards: shards
                .iter()
                .map(|&(ordinal, d)| ShardOutput {
                    ordinal,
                    sha256: d.map(str::to_string),
                    ..ShardOutput::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_of_equal_digests_in_a_group_is_kept_and_only_tasks_with_copies_run_again() {
        // Groups: 0 = {0, 2, 3, 5}, 1 = {1, 4}; shard 6 alone.
        let plan: Vec<Shard> = [Some(0), Some(1), Some(0), Some(0), Some(1), Some(0), None]
            .into_iter()
            .enumerate()
            .map(|(i, g)| shard(i as u32, g))
            .collect();
        let shards: Vec<&Shard> = plan.iter().collect();
        // Tasks' outputs in any order; 4 has 2's digest but another group's: not compared.
        let maps = [
            output(1, &[(3, Some("x")), (4, Some("y")), (5, Some("x"))]),
            output(0, &[(0, Some("y")), (1, Some("y")), (2, Some("x"))]),
            output(2, &[(6, None)]),
        ];
        let dups = find(&shards, &maps);
        let url = |o: usize| plan[o].location.to_string();
        assert_eq!(
            dups,
            BTreeMap::from([(3, url(2)), (4, url(1)), (5, url(2))])
        );
        let tasks = [
            MapTask {
                id: 0,
                shards: plan[0..3].to_vec(),
                bytes: 30,
                preferred_hosts: vec![],
                duplicates: vec![],
            },
            MapTask {
                id: 1,
                shards: plan[3..6].to_vec(),
                bytes: 30,
                preferred_hosts: vec!["h".into()],
                duplicates: vec![],
            },
            MapTask {
                id: 2,
                shards: plan[6..].to_vec(),
                bytes: 10,
                preferred_hosts: vec![],
                duplicates: vec![],
            },
        ];
        let mut next = 7;
        let again = redo(&tasks, &dups, &mut next);
        assert_eq!(next, 8);
        assert_eq!(again.len(), 1);
        let (old, t) = &again[0];
        assert_eq!((*old, t.id), (1, 7));
        assert_eq!((&t.shards, t.bytes), (&tasks[1].shards, 30));
        assert_eq!(t.preferred_hosts, ["h"]);
        let known: Vec<(u32, String)> = t
            .duplicates
            .iter()
            .map(|d| (d.ordinal, d.of.clone()))
            .collect();
        assert_eq!(known, [(3, url(2)), (4, url(1)), (5, url(2))]);
        // No duplicate: nothing runs again.
        assert!(find(&shards, &maps[2..]).is_empty());
        assert!(redo(&tasks, &BTreeMap::new(), &mut next).is_empty());
    }
}
