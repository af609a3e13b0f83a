//! The map side's sort buffer: records collected in memory up to a byte budget, then sorted by
//! (partition, key) and written as one run file.
//!
//! Lines are copied (after a varint length) into an arena of large chunks and each record keeps
//! a fixed-size entry, so `push` does not allocate per record. A spill packs each entry into
//! one integer that also holds the line's arena position, sorts those, and writes from them
//! alone: one random memory access per record. The budget counts the arena, the entries and
//! the packed keys, so the buffer's memory is the budget plus a small constant (one arena
//! chunk, one chunk of entries, one run block). It does not merge runs; see `merge`.

use std::io::{self, Write};
use std::mem::size_of;

use super::key::{KeyRange, SortKey};
use super::run::SegmentWriter;
use super::{RunIndex, Segment};

/// Entries are stored in chunks of this many, so growing never copies (or doubles) them.
const ENTRIES_PER_CHUNK: usize = 1 << 13;
/// An arena position is `chunk << CHUNK_SHIFT | offset in chunk`.
const CHUNK_SHIFT: u32 = 20;
/// Largest arena chunk; smaller budgets get smaller chunks (a sixteenth of the budget).
const MAX_ARENA_CHUNK: usize = 1 << CHUNK_SHIFT;
const MIN_ARENA_CHUNK: usize = 4 << 10;

/// Memory a record costs besides its line and the line's length prefix in the arena: its
/// entry and its packed key during a spill.
pub const RECORD_OVERHEAD_BYTES: usize = size_of::<Entry>() + size_of::<u128>();

/// One record: its key, its partition and the arena position of its line.
#[derive(Debug, Clone, Copy)]
struct Entry {
    time_ms: i64,
    line: u64,
    at: u64,
    shard: u32,
    partition: u32,
}

impl Entry {
    #[inline]
    fn key(&self) -> SortKey {
        SortKey {
            time_ms: self.time_ms,
            shard: self.shard,
            line: self.line,
        }
    }
}

/// Length-prefixed lines, in chunks of `chunk_bytes`. A line longer than a quarter chunk gets a
/// chunk of its own, so little of a chunk is wasted. Chunks are kept for reuse after a spill.
struct Arena {
    chunks: Vec<Vec<u8>>,
    /// Index in `chunks` of the chunk that takes small lines, if any.
    open: Option<usize>,
    /// Emptied standard chunks, reused before allocating.
    spare: Vec<Vec<u8>>,
    chunk_bytes: usize,
    /// Capacity of every chunk but the open one.
    closed_bytes: usize,
}

impl Arena {
    fn new(chunk_bytes: usize) -> Self {
        Arena {
            chunks: Vec::new(),
            open: None,
            spare: Vec::new(),
            chunk_bytes,
            closed_bytes: 0,
        }
    }

    /// Bytes the arena holds, counting the unused tails of closed chunks.
    fn bytes(&self) -> usize {
        self.closed_bytes + self.open.map_or(0, |i| self.chunks[i].len())
    }

    /// Copies `line` in after its length; returns its position.
    fn push(&mut self, line: &[u8]) -> u64 {
        let mut prefix = [0u8; 10];
        let prefix = varint(&mut prefix, line.len() as u64);
        let need = prefix.len() + line.len();
        if need > self.chunk_bytes / 4 {
            let mut chunk = Vec::with_capacity(need);
            chunk.extend_from_slice(prefix);
            chunk.extend_from_slice(line);
            self.closed_bytes += need;
            self.chunks.push(chunk);
            return ((self.chunks.len() - 1) as u64) << CHUNK_SHIFT;
        }
        let open = match self.open {
            Some(i) if self.chunks[i].len() + need <= self.chunk_bytes => i,
            other => {
                if let Some(i) = other {
                    self.closed_bytes += self.chunks[i].capacity();
                }
                let chunk = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(self.chunk_bytes));
                self.chunks.push(chunk);
                self.open = Some(self.chunks.len() - 1);
                self.chunks.len() - 1
            }
        };
        let chunk = &mut self.chunks[open];
        let pos = chunk.len();
        chunk.extend_from_slice(prefix);
        chunk.extend_from_slice(line);
        ((open as u64) << CHUNK_SHIFT) | pos as u64
    }

    /// An upper bound of the positions handed out so far.
    fn max_position(&self) -> u64 {
        (self.chunks.len() as u64) << CHUNK_SHIFT
    }

    /// The line at `at`, a position returned by `push`.
    #[inline]
    fn line(&self, at: u64) -> &[u8] {
        let chunk = &self.chunks[(at >> CHUNK_SHIFT) as usize];
        let mut pos = (at & ((1 << CHUNK_SHIFT) - 1)) as usize;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = chunk[pos];
            pos += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        &chunk[pos..pos + len]
    }

    /// Forgets all lines; standard chunks are kept for reuse, lone-line chunks are freed.
    fn clear(&mut self) {
        for mut chunk in self.chunks.drain(..) {
            if chunk.capacity() == self.chunk_bytes {
                chunk.clear();
                self.spare.push(chunk);
            }
        }
        self.open = None;
        self.closed_bytes = 0;
    }
}

/// Collects (partition, key, line) records in memory up to a byte budget, then writes them
/// sorted by (partition, key) as one run file.
pub struct SortBuffer {
    budget: usize,
    arena: Arena,
    /// Record entries in chunks of [`ENTRIES_PER_CHUNK`]; chunks are kept after a spill.
    entries: Vec<Vec<Entry>>,
    len: usize,
    range: KeyRange,
}

impl SortBuffer {
    /// A buffer that reports full once its lines plus per-record overhead
    /// ([`RECORD_OVERHEAD_BYTES`] each) reach `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        let chunk = (budget_bytes / 16).clamp(MIN_ARENA_CHUNK, MAX_ARENA_CHUNK);
        SortBuffer {
            budget: budget_bytes,
            arena: Arena::new(chunk),
            entries: Vec::new(),
            len: 0,
            range: KeyRange::default(),
        }
    }

    /// Adds one record; `line` is the rendered output line including its `\n`. A line longer
    /// than [`MAX_BLOCK_BYTES`](super::run::MAX_BLOCK_BYTES) makes the next spill fail with
    /// `InvalidInput`.
    pub fn push(&mut self, partition: u32, key: SortKey, line: &[u8]) {
        let at = self.arena.push(line);
        let entry = Entry {
            time_ms: key.time_ms,
            line: key.line,
            at,
            shard: key.shard,
            partition,
        };
        let c = self.len / ENTRIES_PER_CHUNK;
        if c == self.entries.len() {
            self.entries.push(Vec::with_capacity(ENTRIES_PER_CHUNK));
        }
        self.entries[c].push(entry);
        self.len += 1;
        self.range.include(partition, &key);
    }

    /// True once the budget is reached (and there is something to spill): spill before
    /// pushing more.
    pub fn is_full(&self) -> bool {
        self.len > 0 && self.bytes_used() >= self.budget
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes counted against the budget: arena bytes (lines, their length prefixes and unused
    /// chunk tails) plus the per-record overhead.
    pub fn bytes_used(&self) -> usize {
        self.arena.bytes() + self.len * RECORD_OVERHEAD_BYTES
    }

    /// Sorts and writes all records as one run file to `out`, then empties the buffer. On error
    /// the records are kept. An empty buffer writes nothing and returns an empty index.
    ///
    /// Records with equal partition and key (which the engine never produces) are written in
    /// arena order, which is push order except around lines too long to share a chunk.
    pub fn spill(&mut self, out: &mut dyn Write) -> io::Result<RunIndex> {
        self.spill_with(out, SegmentWriter::new())
    }

    /// [`spill`](Self::spill) through `writer` (e.g. [`SegmentWriter::stored`]).
    pub fn spill_with(
        &mut self,
        out: &mut dyn Write,
        mut writer: SegmentWriter,
    ) -> io::Result<RunIndex> {
        let w = &mut writer;
        let index = match self.range.packer(self.arena.max_position()) {
            Some(p) if p.fits_u64() => {
                let mut keys: Vec<u64> = self
                    .iter_entries()
                    .map(|e| p.pack(e.partition, &e.key(), e.at) as u64)
                    .collect();
                keys.sort_unstable();
                self.write_sorted(out, w, keys.iter().map(|&k| p.unpack(u128::from(k))))?
            }
            Some(p) => {
                let mut keys: Vec<u128> = self
                    .iter_entries()
                    .map(|e| p.pack(e.partition, &e.key(), e.at))
                    .collect();
                keys.sort_unstable();
                self.write_sorted(out, w, keys.iter().map(|&k| p.unpack(k)))?
            }
            None => {
                // Fields too wide to pack (or no records): compare entries field by field.
                let mut order: Vec<&Entry> = self.iter_entries().collect();
                order.sort_unstable_by_key(|e| (e.partition, e.key(), e.at));
                let order = order.into_iter().map(|e| (e.partition, e.key(), e.at));
                self.write_sorted(out, w, order)?
            }
        };
        self.clear();
        Ok(index)
    }

    /// Writes records given as (partition, key, arena position) in order, one segment per
    /// partition.
    fn write_sorted(
        &self,
        out: &mut dyn Write,
        writer: &mut SegmentWriter,
        order: impl Iterator<Item = (u32, SortKey, u64)>,
    ) -> io::Result<RunIndex> {
        let mut segments = Vec::new();
        let mut offset = 0u64;
        let mut current: Option<u32> = None;
        for (partition, key, at) in order {
            if current != Some(partition) {
                if let Some(previous) = current {
                    let s = writer.finish(out)?;
                    segments.push(segment(previous, offset, &s));
                    offset += s.len;
                }
                current = Some(partition);
            }
            writer.push(out, &key, self.arena.line(at))?;
        }
        if let Some(partition) = current {
            let s = writer.finish(out)?;
            segments.push(segment(partition, offset, &s));
            offset += s.len;
        }
        Ok(RunIndex {
            segments,
            file_bytes: offset,
        })
    }

    fn iter_entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    fn clear(&mut self) {
        self.arena.clear();
        for chunk in &mut self.entries {
            chunk.clear();
        }
        self.len = 0;
        self.range = KeyRange::default();
    }
}

/// Writes `v` as a varint into `buf`; returns the bytes used.
fn varint(buf: &mut [u8; 10], mut v: u64) -> &[u8] {
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    &buf[..=n]
}

fn segment(partition: u32, offset: u64, s: &super::run::SegmentStats) -> Segment {
    Segment {
        partition,
        offset,
        len: s.len,
        records: s.records,
        line_bytes: s.line_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sort::run::SegmentReader;

    fn key(time_ms: i64, shard: u32, line: u64) -> SortKey {
        SortKey {
            time_ms,
            shard,
            line,
        }
    }

    fn read_segment(file: &[u8], s: &Segment) -> Vec<(SortKey, Vec<u8>)> {
        let range = &file[s.offset as usize..(s.offset + s.len) as usize];
        let mut r = SegmentReader::new(range);
        let mut got = Vec::new();
        while let Some((k, l)) = r.next_record().unwrap() {
            got.push((k, l.to_vec()));
        }
        got
    }

    #[test]
    fn spill_sorts_by_partition_then_key() {
        let mut buf = SortBuffer::new(1 << 20);
        let recs = [
            (7, key(30, 0, 1), "g\n"),
            (2, key(10, 1, 0), "b\n"),
            (7, key(-5, 3, 3), "f\n"),
            (2, key(10, 0, 9), "a\n"),
            (2, key(11, 0, 0), "c\n"),
        ];
        for (p, k, l) in recs {
            buf.push(p, k, l.as_bytes());
        }
        assert_eq!(buf.len(), 5);
        let mut file = Vec::new();
        let index = buf.spill(&mut file).unwrap();
        assert!(buf.is_empty());
        assert_eq!(index.file_bytes, file.len() as u64);
        let parts: Vec<(u32, u64, u64)> = index
            .segments
            .iter()
            .map(|s| (s.partition, s.records, s.line_bytes))
            .collect();
        assert_eq!(parts, [(2, 3, 6), (7, 2, 4)]);
        assert_eq!(index.segments[1].offset, index.segments[0].len);
        let lines = |s| -> String {
            read_segment(&file, s)
                .into_iter()
                .map(|(_, l)| String::from_utf8(l).unwrap())
                .collect()
        };
        assert_eq!(lines(&index.segments[0]), "a\nb\nc\n");
        assert_eq!(lines(&index.segments[1]), "f\ng\n");
    }

    #[test]
    fn unpackable_keys_still_sort() {
        let mut buf = SortBuffer::new(1 << 20);
        buf.push(u32::MAX, key(i64::MAX, u32::MAX, u64::MAX), b"z\n");
        buf.push(0, key(i64::MIN, 0, 0), b"a\n");
        buf.push(u32::MAX, key(i64::MIN, 0, 1), b"y\n");
        let mut file = Vec::new();
        let index = buf.spill(&mut file).unwrap();
        let got: Vec<_> = index
            .segments
            .iter()
            .flat_map(|s| read_segment(&file, s))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            got,
            [
                key(i64::MIN, 0, 0),
                key(i64::MIN, 0, 1),
                key(i64::MAX, u32::MAX, u64::MAX)
            ]
        );
    }

    #[test]
    fn empty_spill_writes_nothing() {
        let mut buf = SortBuffer::new(100);
        let mut file = Vec::new();
        let index = buf.spill(&mut file).unwrap();
        assert!(index.segments.is_empty());
        assert_eq!(index.file_bytes, 0);
        assert!(file.is_empty());
    }

    #[test]
    fn budget_counts_lines_and_overhead() {
        let line = [b'x'; 100];
        // Each line takes 101 arena bytes (one for its length).
        let budget = 10 * (101 + RECORD_OVERHEAD_BYTES);
        let mut buf = SortBuffer::new(budget);
        for i in 0..9 {
            buf.push(0, key(i, 0, 0), &line);
            assert!(!buf.is_full(), "full after {} records", i + 1);
        }
        buf.push(0, key(9, 0, 0), &line);
        assert!(buf.is_full());
        buf.spill(&mut io::sink()).unwrap();
        assert!(!buf.is_full());
        assert_eq!(buf.bytes_used(), 0);
    }

    #[test]
    fn long_lines_get_their_own_chunks() {
        let mut buf = SortBuffer::new(1 << 20);
        let long = vec![b'l'; MIN_ARENA_CHUNK * 3];
        buf.push(0, key(2, 0, 0), b"short\n");
        buf.push(0, key(1, 0, 0), &long);
        buf.push(0, key(3, 0, 0), b"after\n");
        let mut file = Vec::new();
        let index = buf.spill(&mut file).unwrap();
        let got = read_segment(&file, &index.segments[0]);
        assert_eq!(got[0].1, long);
        assert_eq!(got[1].1, b"short\n");
        assert_eq!(got[2].1, b"after\n");
    }
}
