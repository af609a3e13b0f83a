//! The reduce side's read-ahead: the run segments of the partitions a reduce task is about
//! to merge, read into memory before the merge starts — each run file once, its ranges in
//! offset order (close ones read as one), several files at once so that the latency of
//! opening each (a NameNode round trip on HDFS) is paid in parallel, not once per segment.
//! The merge then reads the segments from [`Fetched`], a scratch that serves the fetched
//! ranges from memory and passes everything else (intermediate merges, spooled parts) on.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::storage::{Scratch, ScratchFile};

/// One map task's run segment of a partition: a range of a run file in scratch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSegment {
    /// Scratch name of the run file.
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

/// Files read at once.
pub const FETCH_THREADS: usize = 8;
/// Two ranges of a file closer than this are read as one (the gap is read and dropped).
pub const COALESCE_GAP: u64 = 64 << 10;

/// One read of a file: `(offset, len)` and the segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read1 {
    pub offset: u64,
    pub len: u64,
    pub segments: Vec<(u64, u64)>,
}

/// The reads that fetch `segments` of one file: sorted by offset, duplicates once, ranges
/// closer than `gap` joined.
pub fn plan_reads(segments: &[(u64, u64)], gap: u64) -> Vec<Read1> {
    let mut sorted: Vec<(u64, u64)> = segments.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut reads: Vec<Read1> = Vec::new();
    for (offset, len) in sorted {
        let end = offset.saturating_add(len);
        if let Some(last) = reads.last_mut() {
            let last_end = last.offset + last.len;
            if offset <= last_end.saturating_add(gap) {
                last.len = last.len.max(end - last.offset);
                last.segments.push((offset, len));
                continue;
            }
        }
        reads.push(Read1 {
            offset,
            len,
            segments: vec![(offset, len)],
        });
    }
    reads
}

/// A scratch whose fetched ranges are served from memory; everything else goes to `inner`.
pub struct Fetched<'a> {
    inner: &'a dyn Scratch,
    held: HashMap<(String, u64, u64), Bytes>,
}

impl<'a> Fetched<'a> {
    /// Nothing fetched: every read goes to `inner`.
    pub fn empty(inner: &'a dyn Scratch) -> Fetched<'a> {
        Fetched {
            inner,
            held: HashMap::new(),
        }
    }

    /// Reads `segments` from `inner`: each file once, [`FETCH_THREADS`] files at once.
    pub fn fetch(inner: &'a dyn Scratch, segments: &[&RunSegment]) -> io::Result<Fetched<'a>> {
        let mut by_file: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        for s in segments {
            by_file
                .entry(s.file.as_str())
                .or_default()
                .push((s.offset, s.len));
        }
        let files: Vec<(&str, Vec<Read1>)> = by_file
            .into_iter()
            .map(|(f, segs)| (f, plan_reads(&segs, COALESCE_GAP)))
            .collect();
        let next = AtomicUsize::new(0);
        let held = Mutex::new(HashMap::new());
        let failed: Mutex<Option<io::Error>> = Mutex::new(None);
        let threads = FETCH_THREADS.min(files.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    if failed.lock().is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((file, reads)) = files.get(i) else {
                        return;
                    };
                    let ranges: Vec<(u64, u64)> = reads.iter().map(|r| (r.offset, r.len)).collect();
                    match inner.read_ranges(file, &ranges) {
                        Ok(bufs) => {
                            let mut held = held.lock();
                            for (read, buf) in reads.iter().zip(bufs) {
                                for &(offset, len) in &read.segments {
                                    let at = (offset - read.offset) as usize;
                                    let slice = buf.slice(at..at + len as usize);
                                    held.insert((file.to_string(), offset, len), slice);
                                }
                            }
                        }
                        Err(e) => {
                            failed.lock().get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner() {
            return Err(e);
        }
        Ok(Fetched {
            inner,
            held: held.into_inner(),
        })
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.held.values().map(|b| b.len() as u64).sum()
    }
}

impl Scratch for Fetched<'_> {
    fn create(&self, name: &str) -> io::Result<Box<dyn ScratchFile>> {
        self.inner.create(name)
    }
    fn open_range(&self, name: &str, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        match self.held.get(&(name.to_string(), offset, len)) {
            Some(bytes) => Ok(Box::new(io::Cursor::new(bytes.clone()))),
            None => self.inner.open_range(name, offset, len),
        }
    }
    fn read_ranges(&self, name: &str, ranges: &[(u64, u64)]) -> io::Result<Vec<Bytes>> {
        self.inner.read_ranges(name, ranges)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn remove_all(&self) -> io::Result<()> {
        self.inner.remove_all()
    }
    fn size(&self, name: &str) -> io::Result<u64> {
        self.inner.size(name)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::storage::memory::MemoryScratch;

    #[test]
    fn reads_are_sorted_deduplicated_and_joined_across_small_gaps() {
        // (segments, gap, reads as (offset, len, segments covered))
        #[allow(clippy::type_complexity)]
        let table: Vec<(Vec<(u64, u64)>, u64, Vec<(u64, u64, usize)>)> = vec![
            (vec![], 10, vec![]),
            (vec![(0, 5)], 10, vec![(0, 5, 1)]),
            // Out of order, a duplicate, a gap of 10 joined, one of 11 not.
            (
                vec![(31, 5), (0, 5), (15, 5), (0, 5)],
                10,
                vec![(0, 20, 2), (31, 5, 1)],
            ),
            (vec![(0, 5), (16, 4)], 10, vec![(0, 5, 1), (16, 4, 1)]),
            // Adjacent with no gap allowed.
            (vec![(0, 5), (5, 5)], 0, vec![(0, 10, 2)]),
        ];
        for (segments, gap, want) in table {
            let got: Vec<(u64, u64, usize)> = plan_reads(&segments, gap)
                .iter()
                .map(|r| (r.offset, r.len, r.segments.len()))
                .collect();
            assert_eq!(got, want, "{segments:?} gap {gap}");
        }
    }

    fn read_all(s: &dyn Scratch, name: &str, offset: u64, len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        s.open_range(name, offset, len)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn fetched_segments_read_as_the_scratch_would_and_the_rest_passes_through() {
        let scratch = MemoryScratch::default();
        let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        for name in ["a.run", "b.run"] {
            let mut f = scratch.create(name).unwrap();
            f.write_all(&data).unwrap();
            f.close().unwrap();
        }
        let segs: Vec<RunSegment> = [("a.run", 10, 100), ("a.run", 200_000, 50), ("b.run", 7, 0)]
            .iter()
            .map(|&(file, offset, len)| RunSegment {
                file: file.into(),
                offset,
                len,
            })
            .collect();
        let refs: Vec<&RunSegment> = segs.iter().collect();
        let fetched = Fetched::fetch(&scratch, &refs).unwrap();
        assert_eq!(fetched.bytes(), 150);
        for s in &segs {
            assert_eq!(
                read_all(&fetched, &s.file, s.offset, s.len),
                read_all(&scratch, &s.file, s.offset, s.len)
            );
        }
        // Not fetched: read from the scratch underneath.
        assert_eq!(read_all(&fetched, "b.run", 1, 3), data[1..4].to_vec());
        // A segment past the end of its file fails the fetch, naming the file.
        let bad = RunSegment {
            file: "b.run".into(),
            offset: 299_990,
            len: 20,
        };
        let err = Fetched::fetch(&scratch, &[&bad]).err().expect("an error");
        assert!(err.to_string().contains("b.run"), "{err}");
    }
}
