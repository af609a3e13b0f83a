//! The reduce side's k-way merge of sorted run segments.
//!
//! Each input is read one decoded block at a time, so a merge of k inputs holds about
//! k × 2 × [`BLOCK_TARGET_BYTES`](super::run::BLOCK_TARGET_BYTES). When there are more inputs
//! than the fan-in allows, contiguous groups are first merged into intermediate runs in
//! scratch; keeping groups contiguous keeps ties (which keys should not have) in input order,
//! so every fan-in gives the same output.

use std::cmp::Reverse;
use std::collections::binary_heap::{BinaryHeap, PeekMut};
use std::io;
use std::ops::Range;

use super::key::SortKey;
use super::run::{SegmentReader, SegmentWriter};
use super::SegmentRef;
use crate::storage::Scratch;

/// Merges the given segments (each sorted by key) into one key-ordered stream, calling `emit`
/// for every record. If there are more segments than `max_fan_in` (taken as at least 2),
/// intermediate runs are written to `scratch` under `tmp_prefix` first (as few bytes as
/// possible are re-merged) and removed afterwards, also on error. Returns the number of
/// records emitted. An input whose keys go backwards is an `InvalidData` error.
pub fn merge_segments(
    scratch: &dyn Scratch,
    inputs: &[SegmentRef],
    max_fan_in: usize,
    tmp_prefix: &str,
    emit: &mut dyn FnMut(&SortKey, &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut intermediates = Vec::new();
    let result = merge_passes(
        scratch,
        inputs,
        max_fan_in.max(2),
        tmp_prefix,
        emit,
        &mut intermediates,
    );
    let mut cleanup = Ok(());
    for name in &intermediates {
        if let Err(e) = scratch.remove(name) {
            cleanup = cleanup.and(Err(e));
        }
    }
    let emitted = result?;
    cleanup.map(|()| emitted)
}

/// Reduces the inputs to at most `fan_in` with intermediate merges, then merges into `emit`.
/// `intermediates` lists the intermediate files that still exist.
fn merge_passes(
    scratch: &dyn Scratch,
    inputs: &[SegmentRef],
    fan_in: usize,
    tmp_prefix: &str,
    emit: &mut dyn FnMut(&SortKey, &[u8]) -> io::Result<()>,
    intermediates: &mut Vec<String>,
) -> io::Result<u64> {
    let mut current = inputs.to_vec();
    let mut pass = 0;
    while current.len() > fan_in {
        pass += 1;
        let mut next = Vec::new();
        let mut cursor = 0;
        for (group, range) in plan_pass(&current, fan_in).into_iter().enumerate() {
            next.extend_from_slice(&current[cursor..range.start]);
            cursor = range.end;
            let name = intermediate_name(tmp_prefix, pass, group);
            intermediates.push(name.clone());
            let mut file = scratch.create(&name)?;
            let mut writer = SegmentWriter::new();
            merge_into(scratch, &current[range], &mut |key, line| {
                writer.push(&mut file, key, line)
            })?;
            writer.finish(&mut file)?;
            let len = file.close()?;
            next.push(SegmentRef {
                file: name,
                offset: 0,
                len,
            });
        }
        next.extend_from_slice(&current[cursor..]);
        // Intermediates of the previous pass that were merged again are no longer needed.
        for consumed in current.iter().filter(|s| !next.contains(s)) {
            if let Some(i) = intermediates.iter().position(|n| *n == consumed.file) {
                scratch.remove(&consumed.file)?;
                intermediates.swap_remove(i);
            }
        }
        current = next;
    }
    merge_into(scratch, &current, emit)
}

/// The contiguous groups (of at least two inputs) to merge in one pass. If one group of at
/// most `fan_in` inputs brings the count down to `fan_in`, only that group is merged, choosing
/// the window with the fewest bytes; otherwise everything is merged in groups of `fan_in`.
fn plan_pass(inputs: &[SegmentRef], fan_in: usize) -> Vec<Range<usize>> {
    let excess = inputs.len().saturating_sub(fan_in);
    if excess == 0 {
        return Vec::new();
    }
    if excess < fan_in {
        let width = excess + 1;
        let start = (0..=inputs.len() - width)
            .min_by_key(|&s| inputs[s..s + width].iter().map(|i| i.len).sum::<u64>())
            .unwrap_or(0);
        return std::iter::once(start..start + width).collect();
    }
    (0..inputs.len())
        .step_by(fan_in)
        .map(|s| s..(s + fan_in).min(inputs.len()))
        .filter(|r| r.len() > 1)
        .collect()
}

fn intermediate_name(tmp_prefix: &str, pass: usize, group: usize) -> String {
    let prefix = tmp_prefix.trim_end_matches('/');
    if prefix.is_empty() {
        format!("merge-{pass}-{group}.run")
    } else {
        format!("{prefix}/merge-{pass}-{group}.run")
    }
}

/// One input of a merge: its reader and where it comes from (for messages).
struct Input<'a> {
    reader: SegmentReader<Box<dyn io::Read + Send>>,
    source: &'a SegmentRef,
}

impl Input<'_> {
    /// Advances to the next record, checking that keys do not go backwards.
    fn advance(&mut self, previous: Option<&SortKey>) -> io::Result<bool> {
        let more = self.reader.advance().map_err(|e| self.context(e))?;
        if let (true, Some(previous)) = (more, previous) {
            if self.reader.key() < previous {
                let e = io::Error::new(io::ErrorKind::InvalidData, "segment is not sorted");
                return Err(self.context(e));
            }
        }
        Ok(more)
    }

    fn context(&self, e: io::Error) -> io::Error {
        let s = self.source;
        io::Error::new(
            e.kind(),
            format!("{} (bytes {}+{}): {e}", s.file, s.offset, s.len),
        )
    }
}

/// Single-pass k-way merge of `inputs` into `emit`, ties broken by input position.
fn merge_into(
    scratch: &dyn Scratch,
    inputs: &[SegmentRef],
    emit: &mut dyn FnMut(&SortKey, &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut open = Vec::with_capacity(inputs.len());
    let mut heap = BinaryHeap::with_capacity(inputs.len());
    for (i, source) in inputs.iter().enumerate() {
        let reader = scratch.open_range(&source.file, source.offset, source.len)?;
        let mut input = Input {
            reader: SegmentReader::new(reader),
            source,
        };
        if input.advance(None)? {
            heap.push(Reverse((*input.reader.key(), i)));
        }
        open.push(input);
    }
    let mut emitted = 0u64;
    while let Some(mut top) = heap.peek_mut() {
        let input = &mut open[top.0 .1];
        let key = *input.reader.key();
        emit(&key, input.reader.line())?;
        emitted += 1;
        if input.advance(Some(&key))? {
            top.0 .0 = *input.reader.key();
        } else {
            PeekMut::pop(top);
        }
    }
    Ok(emitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(len: u64) -> SegmentRef {
        SegmentRef {
            file: String::new(),
            offset: 0,
            len,
        }
    }

    #[test]
    fn small_excess_merges_one_cheapest_window() {
        let inputs: Vec<_> = [9, 1, 1, 1, 9, 9].into_iter().map(seg).collect();
        assert_eq!(
            plan_pass(&inputs, 4),
            std::iter::once(1..4).collect::<Vec<_>>()
        );
        assert_eq!(plan_pass(&inputs, 6), Vec::<Range<usize>>::new());
    }

    #[test]
    fn large_excess_merges_everything_in_groups() {
        let inputs: Vec<_> = (0..10).map(seg).collect();
        assert_eq!(plan_pass(&inputs, 3), vec![0..3, 3..6, 6..9]);
        assert_eq!(plan_pass(&inputs, 2), vec![0..2, 2..4, 4..6, 6..8, 8..10]);
    }

    #[test]
    fn intermediate_names_stay_under_the_prefix() {
        assert_eq!(intermediate_name("r7/tmp/", 2, 3), "r7/tmp/merge-2-3.run");
        assert_eq!(intermediate_name("", 1, 0), "merge-1-0.run");
    }
}
