//! Duplicate deliveries: the same shard delivered twice under another name (a vendor's retry,
//! `part-1.gz` and `part-1-redelivered.gz`, a re-pushed directory) is read once.
//!
//! Hashing every shard at plan time would read the whole input twice. Identical shards have
//! the same size, so only shards whose listed sizes collide (over all the job's sources) are
//! read and hashed; shards whose paths name different `{domain}`s are never compared, as the
//! host of their lines differs (SHA-256 of their bytes, through the source's [`InputStore`]). Of shards
//! with the same digest the first in the plan's tie order (source order, then path bytewise)
//! is kept; the others leave the plan and are listed in the manifest. Empty files are never
//! duplicates: they hold no line to double. The colliding shards are read as many at a time
//! as directories are listed.
//!
//! Under `on_duplicate_shard = "keep"` nothing is hashed and every shard is read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DiscoveredShard;
use super::STORE_CONCURRENCY;
use crate::parallel;
use crate::storage::location::Location;
use crate::storage::{HashingWriter, InputStore, StorageError};

/// A shard left out of the plan because another one has the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateShard {
    /// The shard not read.
    pub url: String,
    /// The shard read instead (same bytes, earlier in the tie order).
    pub duplicate_of: String,
    pub bytes: u64,
}

/// A shard's place in the discovery lists: (source index, index in that source's list).
type Slot = (usize, usize);

/// Groups of shards with the same non-zero size and `{domain}` (two or more each), every
/// group in the tie order (source, then path bytewise); groups ordered by (size, domain).
fn size_collisions(found: &[Vec<DiscoveredShard>]) -> Vec<Vec<Slot>> {
    let mut by_size: BTreeMap<(u64, Option<&str>), Vec<Slot>> = BTreeMap::new();
    for (si, list) in found.iter().enumerate() {
        for (i, s) in list.iter().enumerate().filter(|(_, s)| s.size > 0) {
            by_size
                .entry((s.size, s.domain.as_deref()))
                .or_default()
                .push((si, i));
        }
    }
    let path = |&(si, i): &Slot| found[si][i].location.path_str();
    by_size
        .into_values()
        .filter(|g| g.len() > 1)
        .map(|mut g| {
            g.sort_by(|a, b| (a.0, path(a).as_bytes()).cmp(&(b.0, path(b).as_bytes())));
            g
        })
        .collect()
}

/// For one group in tie order and the digest of each member: (duplicate, keeper) pairs, the
/// keeper being the first member with the same digest.
fn duplicates_in<D: PartialEq>(group: &[Slot], digests: &[D]) -> Vec<(Slot, Slot)> {
    let mut out = Vec::new();
    for (k, d) in digests.iter().enumerate() {
        if let Some(first) = digests[..k].iter().position(|e| e == d) {
            out.push((group[k], group[first]));
        }
    }
    out
}

/// The hex SHA-256 of a shard's bytes.
fn digest(store: &dyn InputStore, file: &Location) -> Result<String, StorageError> {
    let mut reader = store.open(file)?;
    let mut hasher = HashingWriter::new(std::io::sink());
    std::io::copy(&mut reader, &mut hasher).map_err(|e| StorageError::io("read", file, e))?;
    Ok(hasher.into_parts().2)
}

/// Removes from `found` every shard whose bytes equal an earlier one's (hashing only shards
/// whose sizes collide; `stores[i]` reads source `i`) and returns them, in tie order.
pub(super) fn remove_duplicates(
    found: &mut [Vec<DiscoveredShard>],
    stores: &[std::sync::Arc<dyn InputStore>],
) -> Result<Vec<DuplicateShard>, StorageError> {
    let groups = size_collisions(found);
    // Thousands of small shards collide by size in a customer-day: each read is a round trip
    // to the store, so they are hashed several at a time.
    let members: Vec<Slot> = groups.iter().flatten().copied().collect();
    let mut digests = parallel::map(&members, STORE_CONCURRENCY, |&(si, i)| {
        digest(stores[si].as_ref(), &found[si][i].location)
    })
    .into_iter();
    let mut pairs = Vec::new();
    for group in &groups {
        let group_digests = digests
            .by_ref()
            .take(group.len())
            .collect::<Result<Vec<_>, _>>()?;
        pairs.extend(duplicates_in(group, &group_digests));
    }
    pairs.sort();
    let duplicates = pairs
        .iter()
        .map(|&((si, i), (ki, k))| DuplicateShard {
            url: found[si][i].location.to_string(),
            duplicate_of: found[ki][k].location.to_string(),
            bytes: found[si][i].size,
        })
        .collect();
    for &((si, i), _) in pairs.iter().rev() {
        found[si].remove(i);
    }
    Ok(duplicates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(path: &str, size: u64) -> DiscoveredShard {
        DiscoveredShard {
            location: Location::Local(path.into()),
            size,
            modified_ms: None,
            domain: path.strip_prefix("/d/").map(|p| p[..1].to_string()),
            slot_start_ms: None,
            hosts: Vec::new(),
        }
    }

    #[test]
    fn only_equal_nonzero_sizes_collide_and_groups_follow_the_tie_order() {
        let found = vec![
            vec![shard("/a/2.gz", 10), shard("/a/1.gz", 10), shard("/a/e", 0)],
            vec![
                shard("/b/0.gz", 10),
                shard("/b/x.gz", 7),
                shard("/b/e", 0),
                shard("/b/y.gz", 8),
            ],
            vec![shard("/c/0.gz", 7)],
        ];
        assert_eq!(
            size_collisions(&found),
            vec![vec![(1, 1), (2, 0)], vec![(0, 1), (0, 0), (1, 0)]]
        );
        assert!(size_collisions(&[vec![shard("/a", 1), shard("/b", 2)]]).is_empty());
        // The same size under two `{domain}`s: not compared.
        let two_domains = [vec![shard("/d/x/0.gz", 5), shard("/d/y/0.gz", 5)]];
        assert!(size_collisions(&two_domains).is_empty());
    }

    #[test]
    fn the_first_of_equal_digests_is_kept() {
        let g = [(0, 0), (0, 1), (1, 0), (1, 1)];
        let cases = [
            (["x", "y", "z", "w"], vec![]),
            (
                ["x", "x", "x", "y"],
                vec![((0, 1), (0, 0)), ((1, 0), (0, 0))],
            ),
            (
                ["x", "y", "y", "x"],
                vec![((1, 0), (0, 1)), ((1, 1), (0, 0))],
            ),
            (
                ["x", "y", "x", "y"],
                vec![((1, 0), (0, 0)), ((1, 1), (0, 1))],
            ),
        ];
        for (digests, want) in cases {
            assert_eq!(duplicates_in(&g, &digests), want, "{digests:?}");
        }
    }
}
