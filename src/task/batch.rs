//! How the partitions of a reduce phase are grouped into reduce tasks. A customer-day of
//! small domains has thousands of partitions of a few dozen kilobytes each; one task per
//! partition spends its time on the task round trip and on opening every run file again
//! (MapReduce's reducers hold many keys for the same reason). So small partitions share a
//! task, which reads each run file once for all of them (`fetch`), while a big partition
//! keeps a task of its own.
//!
//! The decision is by bytes (the lines a partition merges, plus a fixed cost per partition
//! for its output file), aims at [`TASKS_PER_SLOT`] tasks per slot so that the phase still
//! balances over the workers, holds at most [`MAX_PARTITIONS`] partitions and
//! [`MAX_TASK_BYTES`] bytes in one task, and is deterministic: partitions are taken in path
//! order, so the same maps give the same tasks (what a recovering application master's
//! journal compares), whoever plans them.

/// Reduce tasks per slot the grouping aims at: few enough that each task amortises its
/// fixed costs, enough that the last ones to finish do not hold the phase up.
pub const TASKS_PER_SLOT: u64 = 4;
/// Partitions in one task, at most.
pub const MAX_PARTITIONS: usize = 256;
/// Bytes (as [`cost`] counts them) of the small partitions grouped into one task, at most.
pub const MAX_TASK_BYTES: u64 = 128 << 20;
/// A phase of at most this many partitions per slot keeps one task per partition: their
/// fixed costs (about 15 ms a task on YARN) add up to a fraction of a second per slot, and one
/// task per partition keeps the finest retries (a failed task re-runs only its partition)
/// and the best balance.
pub const ALONE_PER_SLOT: usize = 16;
/// What a partition costs beyond its lines, in bytes of lines: its output file is created,
/// finished and published whatever its size.
pub const PARTITION_COST: u64 = 64 << 10;

/// What a partition weighs in the grouping.
pub fn cost(line_bytes: u64) -> u64 {
    line_bytes.saturating_add(PARTITION_COST)
}

/// The grouping of one reduce phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping {
    /// A group is closed before it passes this many bytes; a partition of at least as many
    /// is a group of its own.
    pub target_bytes: u64,
    pub max_partitions: usize,
}

impl Grouping {
    /// Every partition a task of its own.
    pub const ALONE: Grouping = Grouping {
        target_bytes: 1,
        max_partitions: 1,
    };

    /// The grouping for `partitions` partitions weighing `total` bytes in all, run on
    /// `slots` slots.
    pub fn for_phase(total: u64, partitions: usize, slots: usize) -> Grouping {
        if partitions <= ALONE_PER_SLOT.saturating_mul(slots.max(1)) {
            return Grouping::ALONE;
        }
        let tasks = (slots.max(1) as u64).saturating_mul(TASKS_PER_SLOT);
        Grouping {
            target_bytes: (total / tasks).clamp(1, MAX_TASK_BYTES),
            max_partitions: MAX_PARTITIONS,
        }
    }

    /// Groups partitions given by their weights ([`cost`]), in the order given (path
    /// order): each group is a list of indices into `weights`, in increasing order. Groups
    /// come biggest first (ties: the one whose first partition comes first), so that the
    /// long tasks start early.
    pub fn group(&self, weights: &[u64]) -> Vec<Vec<usize>> {
        let mut groups: Vec<(u64, Vec<usize>)> = Vec::new();
        let mut open: (u64, Vec<usize>) = (0, Vec::new());
        for (i, &w) in weights.iter().enumerate() {
            if w >= self.target_bytes {
                groups.push((w, vec![i]));
                continue;
            }
            let full = open.1.len() >= self.max_partitions
                || (!open.1.is_empty() && open.0.saturating_add(w) > self.target_bytes);
            if full {
                groups.push(std::mem::take(&mut open));
            }
            open.0 = open.0.saturating_add(w);
            open.1.push(i);
        }
        if !open.1.is_empty() {
            groups.push(open);
        }
        groups.sort_by(|a, b| b.0.cmp(&a.0).then(a.1[0].cmp(&b.1[0])));
        groups.into_iter().map(|(_, g)| g).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_follows_the_bytes_and_the_slots_within_bounds() {
        // (total bytes, slots, target)
        let many = 10_000;
        let table: [(u64, usize, u64); 6] = [
            (800, 2, 100),
            (800, 0, 200), // no slots counts as one
            (3, 4, 1),     // never zero
            (0, 1, 1),
            (u64::MAX, 1, MAX_TASK_BYTES),
            (8 * MAX_TASK_BYTES, 2, MAX_TASK_BYTES),
        ];
        for (total, slots, want) in table {
            let g = Grouping::for_phase(total, many, slots);
            assert_eq!(g.target_bytes, want, "total {total}, slots {slots}");
            assert_eq!(g.max_partitions, MAX_PARTITIONS);
        }
    }

    #[test]
    fn few_partitions_per_slot_keep_a_task_each() {
        // (partitions, slots): at most ALONE_PER_SLOT per slot (no slots counts as one).
        for (partitions, slots) in [(32, 2), (1, 1), (16, 0), (0, 4)] {
            let g = Grouping::for_phase(1 << 30, partitions, slots);
            assert_eq!(g, Grouping::ALONE, "{partitions} on {slots}");
            let weights = vec![cost(10); partitions];
            assert_eq!(g.group(&weights).len(), partitions);
        }
        assert_ne!(Grouping::for_phase(1 << 30, 33, 2), Grouping::ALONE);
    }

    #[test]
    fn partitions_are_grouped_by_bytes_with_a_cap() {
        let g = |target_bytes, max_partitions| Grouping {
            target_bytes,
            max_partitions,
        };
        // (grouping, weights in path order, groups biggest first)
        #[allow(clippy::type_complexity)]
        let table: Vec<(Grouping, Vec<u64>, Vec<Vec<usize>>)> = vec![
            // Small partitions fill a group up to the target, in path order.
            (
                g(10, 100),
                vec![3, 3, 3, 3, 3, 3],
                vec![vec![0, 1, 2], vec![3, 4, 5]],
            ),
            // Exactly the target fits; one more byte opens the next group.
            (g(10, 100), vec![5, 5, 1], vec![vec![0, 1], vec![2]]),
            // A partition of the target or more is alone; the small ones around it group.
            (
                g(10, 100),
                vec![2, 10, 2, 30, 2],
                vec![vec![3], vec![1], vec![0, 2, 4]],
            ),
            // The cap on partitions closes a group before its bytes do.
            (
                g(1000, 2),
                vec![1, 1, 1, 1, 1],
                vec![vec![0, 1], vec![2, 3], vec![4]],
            ),
            // Equal weights: the group whose first partition comes first, first.
            (g(4, 100), vec![4, 4, 4], vec![vec![0], vec![1], vec![2]]),
            // Biggest first across singles and groups.
            (
                g(10, 100),
                vec![1, 1, 12, 9, 1],
                vec![vec![2], vec![3, 4], vec![0, 1]],
            ),
            (g(10, 100), vec![], vec![]),
        ];
        for (grouping, weights, want) in table {
            let got = grouping.group(&weights);
            assert_eq!(got, want, "{grouping:?} {weights:?}");
            // Every partition is in exactly one group.
            let mut all: Vec<usize> = got.concat();
            all.sort_unstable();
            assert_eq!(all, (0..weights.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn grouping_is_deterministic_and_balances_many_small_partitions() {
        // 1,800 partitions of 20–120 KiB of lines on 2 slots: about 8 tasks, none above the
        // target by more than one partition, the same every time.
        let weights: Vec<u64> = (0..1800u64)
            .map(|i| cost(20_000 + (i * 7919) % 100_000))
            .collect();
        let grouping = Grouping::for_phase(weights.iter().sum(), weights.len(), 2);
        let groups = grouping.group(&weights);
        assert_eq!(groups, grouping.group(&weights));
        assert!((8..=9).contains(&groups.len()), "{} groups", groups.len());
        for g in &groups {
            let bytes: u64 = g.iter().map(|&i| weights[i]).sum();
            assert!(bytes <= grouping.target_bytes, "{bytes}");
            assert!(g.len() <= MAX_PARTITIONS);
            assert!(
                g.windows(2).all(|w| w[0] < w[1]),
                "path order within a group"
            );
        }
    }
}
