//! Test helpers for the sort module: a seeded record generator, and [`SortTester`], which
//! pushes the same records through every buffer size and merge fan-in and checks that the
//! merged output is always the same (and correct). Scratch is
//! [`MemoryScratch`](crate::storage::memory::MemoryScratch).

use std::collections::BTreeMap;
use std::io;

use super::{merge_segments, RunIndex, SegmentRef, SortBuffer, SortKey};
use crate::storage::memory::MemoryScratch;
use crate::storage::Scratch;

/// A small seeded PRNG (splitmix64), so failures reproduce.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One record as the map side pushes it.
pub(crate) type Record = (u32, SortKey, Vec<u8>);

/// `n` records over `partitions` partitions and `shards` shards, times within a few seconds
/// (so many share a millisecond), in shard order like a map task reads them, with lines of
/// 1 to 400 bytes and a few of up to 6000.
pub(crate) fn records(seed: u64, n: usize, partitions: u32, shards: u32) -> Vec<Record> {
    let mut rng = Rng::new(seed);
    let mut next_line = vec![0u64; shards as usize];
    (0..n)
        .map(|i| {
            let shard = (i as u64 * u64::from(shards) / n.max(1) as u64) as u32;
            let line = next_line[shard as usize];
            next_line[shard as usize] += 1;
            let key = SortKey {
                time_ms: 1_700_000_000_000 + rng.below(3_000) as i64,
                shard,
                line,
            };
            // One line in 64 is long enough to need an arena chunk of its own.
            let len = if rng.below(64) == 0 {
                1 + rng.below(6_000) as usize
            } else {
                1 + rng.below(400) as usize
            };
            let mut text: Vec<u8> = (0..len - 1).map(|_| b'a' + rng.below(26) as u8).collect();
            text.push(b'\n');
            (rng.below(u64::from(partitions)) as u32, key, text)
        })
        .collect()
}

/// What a merge emitted for one partition: every key and line, in order.
pub(crate) type Output = BTreeMap<u32, Vec<(SortKey, Vec<u8>)>>;

/// The records of each partition sorted by key: what every path must produce.
pub(crate) fn expected(records: &[Record]) -> Output {
    let mut out = Output::new();
    for (p, k, l) in records {
        out.entry(*p).or_default().push((*k, l.clone()));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Runs records through the map side (spilling to `scratch` whenever the buffer is full) and
/// the reduce side (one merge per partition at the given fan-in).
pub(crate) struct SortTester {
    pub(crate) budget: usize,
    pub(crate) fan_in: usize,
}

impl SortTester {
    /// Spills all records; returns the run files' names and indexes.
    pub(crate) fn map(
        &self,
        scratch: &dyn Scratch,
        records: &[Record],
    ) -> io::Result<Vec<(String, RunIndex)>> {
        let mut buf = SortBuffer::new(self.budget);
        let mut runs = Vec::new();
        let mut spill = |buf: &mut SortBuffer| -> io::Result<()> {
            let name = format!("map/run-{:05}", runs.len());
            let mut file = scratch.create(&name)?;
            let index = buf.spill(&mut file)?;
            assert_eq!(file.close()?, index.file_bytes);
            runs.push((name, index));
            Ok(())
        };
        for (p, k, l) in records {
            buf.push(*p, *k, l);
            if buf.is_full() {
                spill(&mut buf)?;
            }
        }
        if !buf.is_empty() {
            spill(&mut buf)?;
        }
        Ok(runs)
    }

    /// Merges every partition's segments, in run order.
    pub(crate) fn reduce(
        &self,
        scratch: &dyn Scratch,
        runs: &[(String, RunIndex)],
    ) -> io::Result<Output> {
        let mut inputs: BTreeMap<u32, Vec<SegmentRef>> = BTreeMap::new();
        for (file, index) in runs {
            for s in &index.segments {
                inputs.entry(s.partition).or_default().push(SegmentRef {
                    file: file.clone(),
                    offset: s.offset,
                    len: s.len,
                });
            }
        }
        let mut out = Output::new();
        for (p, refs) in inputs {
            let mut got = Vec::new();
            let n = merge_segments(
                scratch,
                &refs,
                self.fan_in,
                &format!("reduce/p{p}/"),
                &mut |k, l| {
                    got.push((*k, l.to_vec()));
                    Ok(())
                },
            )?;
            assert_eq!(n, got.len() as u64);
            out.insert(p, got);
        }
        Ok(out)
    }

    /// Map then reduce; also checks that the merge left only the map's run files behind.
    pub(crate) fn run(&self, records: &[Record]) -> (Output, usize) {
        let scratch = MemoryScratch::default();
        let runs = self.map(&scratch, records).unwrap();
        let out = self.reduce(&scratch, &runs).unwrap();
        let run_names: Vec<String> = runs.iter().map(|r| r.0.clone()).collect();
        assert_eq!(scratch.names(), run_names, "intermediates left in scratch");
        (out, runs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_budget_and_fan_in_gives_the_same_output() {
        let recs = records(42, 20_000, 5, 7);
        let want = expected(&recs);
        let one_run = SortTester {
            budget: 1 << 30,
            fan_in: 64,
        };
        let (got, runs) = one_run.run(&recs);
        assert_eq!(runs, 1);
        assert!(got == want, "one big run differs from the reference");
        for (budget, fan_in) in [
            (64 << 10, 1000),
            (64 << 10, 2),
            (16 << 10, 3),
            (16 << 10, 7),
        ] {
            let tester = SortTester { budget, fan_in };
            let (got, runs) = tester.run(&recs);
            assert!(runs > 20, "budget {budget} spilled only {runs} runs");
            assert!(got == want, "budget {budget}, fan-in {fan_in} differs");
        }
    }

    #[test]
    fn local_disk_scratch_gives_the_same_output() {
        let recs = records(3, 8_000, 3, 4);
        let dir = tempfile::tempdir().unwrap();
        let scratch = crate::storage::local::LocalScratch::new(dir.path().to_path_buf());
        let tester = SortTester {
            budget: 32 << 10,
            fan_in: 3,
        };
        let runs = tester.map(&scratch, &recs).unwrap();
        assert!(runs.len() > 10);
        assert!(tester.reduce(&scratch, &runs).unwrap() == expected(&recs));
        let left: Vec<_> = walk(dir.path());
        assert_eq!(left.len(), runs.len(), "intermediates left: {left:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn small_fan_in_merges_in_several_passes() {
        let recs = records(7, 5_000, 1, 3);
        let tester = SortTester {
            budget: 8 << 10,
            fan_in: 2,
        };
        let scratch = MemoryScratch::default();
        let runs = tester.map(&scratch, &recs).unwrap();
        let map_files = scratch.created();
        assert!(runs.len() > 16);
        let got = tester.reduce(&scratch, &runs).unwrap();
        assert!(got == expected(&recs));
        // A fan-in of 2 over r runs writes r - 2 intermediate runs.
        assert_eq!(scratch.created() - map_files, runs.len() - 2);
    }

    #[test]
    fn a_flipped_byte_in_a_run_file_is_invalid_data() {
        let recs = records(9, 3_000, 2, 2);
        let tester = SortTester {
            budget: 32 << 10,
            fan_in: 2,
        };
        let scratch = MemoryScratch::default();
        let runs = tester.map(&scratch, &recs).unwrap();
        let (name, index) = &runs[runs.len() / 2];
        let at = (index.file_bytes / 2) as usize;
        assert!(scratch.edit(name, |bytes| bytes[at] ^= 0x01));
        let err = tester.reduce(&scratch, &runs).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains(name.as_str()), "{err}");
        let run_names: Vec<String> = runs.iter().map(|r| r.0.clone()).collect();
        assert_eq!(
            scratch.names(),
            run_names,
            "intermediates left after an error"
        );
    }

    #[test]
    fn emit_errors_stop_the_merge_and_clean_up() {
        let recs = records(5, 2_000, 1, 1);
        let tester = SortTester {
            budget: 8 << 10,
            fan_in: 2,
        };
        let scratch = MemoryScratch::default();
        let runs = tester.map(&scratch, &recs).unwrap();
        let refs: Vec<SegmentRef> = runs
            .iter()
            .map(|(f, i)| SegmentRef {
                file: f.clone(),
                offset: i.segments[0].offset,
                len: i.segments[0].len,
            })
            .collect();
        let mut seen = 0;
        let err = merge_segments(&scratch, &refs, 2, "tmp", &mut |_, _| {
            seen += 1;
            if seen == 100 {
                Err(io::Error::other("upload failed"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "upload failed");
        assert_eq!(scratch.names().len(), runs.len());
    }

    #[test]
    fn unsorted_input_is_invalid_data() {
        let scratch = MemoryScratch::default();
        let mut file = scratch.create("bad").unwrap();
        let mut w = super::super::SegmentWriter::new();
        for t in [5, 3] {
            let key = SortKey {
                time_ms: t,
                shard: 0,
                line: 0,
            };
            w.push(&mut file, &key, b"x\n").unwrap();
        }
        let len = w.finish(&mut file).unwrap().len;
        file.close().unwrap();
        let input = SegmentRef {
            file: "bad".into(),
            offset: 0,
            len,
        };
        let err = merge_segments(&scratch, &[input], 8, "tmp", &mut |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn no_inputs_emit_nothing() {
        let scratch = MemoryScratch::default();
        let n = merge_segments(&scratch, &[], 2, "tmp", &mut |_, _| Ok(())).unwrap();
        assert_eq!(n, 0);
    }
}
