//! The sorted-run file format: a segment writer and a segment reader.
//!
//! A run file is a concatenation of segments (one per partition, located by the spill's
//! [`RunIndex`](super::RunIndex)); nothing else is in the file. A segment is a sequence of
//! blocks closed by an end block:
//!
//! ```text
//! block   = header(20 bytes) payload
//! header  = magic[4] raw_len:u32 payload_len:u32 records:u32 crc:u32   (little-endian)
//! magic   = "FXRB" (data block: payload is lz4 block-compressed, raw_len bytes once decoded)
//!         | "FXRS" (data block stored as is: payload_len = raw_len; written for runs held in
//!           memory, where compression would only cost CPU)
//!         | "FXRE" (end block: payload is records:u64 line_bytes:u64, stored as is)
//! crc     = CRC-32 (gzip's) of header[0..16] ++ payload
//! records = record*   (raw data block)
//! record  = varint(zigzag(time_ms - previous time_ms in block, starting at 0))
//!           varint(shard) varint(line) varint(line_len) line_bytes
//! ```
//!
//! Blocks decode independently, so a reader holds one block at a time. Every length is checked
//! before it is used; damage shows up as an `InvalidData` error, never a panic. This module does
//! not sort and does not know about partitions.

use std::io::{self, Read, Write};

use libdeflater::Crc;

use super::key::SortKey;

/// Target uncompressed size of a data block; a block is closed once it reaches this size.
pub const BLOCK_TARGET_BYTES: usize = 256 * 1024;
/// Largest uncompressed block (and so largest record) a writer writes or a reader accepts.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;

const DATA_MAGIC: [u8; 4] = *b"FXRB";
const STORED_MAGIC: [u8; 4] = *b"FXRS";
const END_MAGIC: [u8; 4] = *b"FXRE";
const HEADER_BYTES: usize = 20;
const END_PAYLOAD_BYTES: usize = 16;
/// Worst-case encoded size of a record's key and length prefix (four varints).
const MAX_RECORD_PREFIX: usize = 4 * 10;

/// What a finished segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    /// Bytes of the segment in the file, end block included.
    pub len: u64,
    pub records: u64,
    /// Total bytes of the records' lines (uncompressed).
    pub line_bytes: u64,
}

/// Encodes records into compressed blocks. One writer writes any number of segments one after
/// the other (its buffers are reused); the destination is passed to each call.
pub struct SegmentWriter {
    /// Records of the open block, encoded but not compressed.
    raw: Vec<u8>,
    /// Compression output, reused across blocks.
    packed: Vec<u8>,
    block_records: u32,
    prev_time: i64,
    stats: SegmentStats,
    /// Blocks are written uncompressed ("FXRS").
    stored: bool,
}

impl Default for SegmentWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl SegmentWriter {
    pub fn new() -> Self {
        SegmentWriter {
            raw: Vec::with_capacity(BLOCK_TARGET_BYTES + 4096),
            packed: Vec::new(),
            block_records: 0,
            prev_time: 0,
            stats: SegmentStats {
                len: 0,
                records: 0,
                line_bytes: 0,
            },
            stored: false,
        }
    }

    /// A writer of uncompressed blocks, for runs that stay in memory.
    pub fn stored() -> Self {
        SegmentWriter {
            stored: true,
            ..Self::new()
        }
    }

    /// Appends one record to the open segment. Records must come in the order the segment is
    /// to be read in; the writer does not check it.
    pub fn push(&mut self, out: &mut dyn Write, key: &SortKey, line: &[u8]) -> io::Result<()> {
        let need = line.len() + MAX_RECORD_PREFIX;
        if need > MAX_BLOCK_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {}-byte line is larger than a run block ({MAX_BLOCK_BYTES} bytes)",
                    line.len()
                ),
            ));
        }
        if self.block_records > 0
            && (self.raw.len() + need > BLOCK_TARGET_BYTES || self.block_records == u32::MAX)
        {
            self.write_block(out)?;
        }
        let delta = key.time_ms.wrapping_sub(self.prev_time);
        put_varint(&mut self.raw, ((delta << 1) ^ (delta >> 63)) as u64);
        put_varint(&mut self.raw, u64::from(key.shard));
        put_varint(&mut self.raw, key.line);
        put_varint(&mut self.raw, line.len() as u64);
        self.raw.extend_from_slice(line);
        self.prev_time = key.time_ms;
        self.block_records += 1;
        self.stats.records += 1;
        self.stats.line_bytes += line.len() as u64;
        Ok(())
    }

    /// Closes the open segment (writes its last block and its end block) and returns what it
    /// holds; the writer is then ready for the next segment.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<SegmentStats> {
        if self.block_records > 0 {
            self.write_block(out)?;
        }
        let mut payload = [0u8; END_PAYLOAD_BYTES];
        payload[..8].copy_from_slice(&self.stats.records.to_le_bytes());
        payload[8..].copy_from_slice(&self.stats.line_bytes.to_le_bytes());
        let header = header(END_MAGIC, END_PAYLOAD_BYTES, END_PAYLOAD_BYTES, 0, &payload);
        out.write_all(&header)?;
        out.write_all(&payload)?;
        self.stats.len += (HEADER_BYTES + END_PAYLOAD_BYTES) as u64;
        let stats = self.stats;
        self.stats = SegmentStats {
            len: 0,
            records: 0,
            line_bytes: 0,
        };
        Ok(stats)
    }

    fn write_block(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.stored {
            let n = self.raw.len();
            let header = header(STORED_MAGIC, n, n, self.block_records, &self.raw);
            out.write_all(&header)?;
            out.write_all(&self.raw)?;
            self.stats.len += (HEADER_BYTES + n) as u64;
            self.raw.clear();
            self.block_records = 0;
            self.prev_time = 0;
            return Ok(());
        }
        let bound = lz4_flex::block::get_maximum_output_size(self.raw.len());
        self.packed.resize(bound, 0);
        let n = lz4_flex::block::compress_into(&self.raw, &mut self.packed)
            .map_err(|e| io::Error::other(format!("lz4 compression failed: {e}")))?;
        let payload = &self.packed[..n];
        let header = header(DATA_MAGIC, self.raw.len(), n, self.block_records, payload);
        out.write_all(&header)?;
        out.write_all(payload)?;
        self.stats.len += (HEADER_BYTES + n) as u64;
        self.raw.clear();
        self.block_records = 0;
        self.prev_time = 0;
        Ok(())
    }
}

/// Builds a block header; lengths are below [`MAX_BLOCK_BYTES`] (or the lz4 bound of it), so
/// they fit in `u32`.
fn header(
    magic: [u8; 4],
    raw_len: usize,
    payload_len: usize,
    records: u32,
    payload: &[u8],
) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(&magic);
    h[4..8].copy_from_slice(&(raw_len as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[12..16].copy_from_slice(&records.to_le_bytes());
    let sum = checksum(&h, payload);
    h[16..20].copy_from_slice(&sum.to_le_bytes());
    h
}

fn checksum(header: &[u8; HEADER_BYTES], payload: &[u8]) -> u32 {
    let mut crc = Crc::new();
    crc.update(&header[..16]);
    crc.update(payload);
    crc.sum()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the records of one segment in order, holding one decoded block at a time.
pub struct SegmentReader<R> {
    inner: R,
    /// The current block, decoded.
    raw: Vec<u8>,
    /// The current block's payload as read, reused across blocks.
    packed: Vec<u8>,
    /// Read position in `raw`.
    pos: usize,
    /// Records of the current block not read yet.
    block_left: u32,
    prev_time: i64,
    /// Byte offset of the next block header in the segment (for messages).
    offset: u64,
    records: u64,
    line_bytes: u64,
    done: bool,
    key: SortKey,
    line: (usize, usize),
}

impl<R: Read> SegmentReader<R> {
    /// A reader over `inner`, which must yield exactly the bytes of one segment.
    pub fn new(inner: R) -> Self {
        SegmentReader {
            inner,
            raw: Vec::new(),
            packed: Vec::new(),
            pos: 0,
            block_left: 0,
            prev_time: 0,
            offset: 0,
            records: 0,
            line_bytes: 0,
            done: false,
            key: SortKey {
                time_ms: 0,
                shard: 0,
                line: 0,
            },
            line: (0, 0),
        }
    }

    /// Moves to the next record; `Ok(false)` once the segment's end block has been checked.
    /// After `Ok(true)`, [`key`](Self::key) and [`line`](Self::line) describe the record.
    pub fn advance(&mut self) -> io::Result<bool> {
        while self.block_left == 0 {
            if self.done || !self.read_block()? {
                return Ok(false);
            }
        }
        self.decode_record()?;
        Ok(true)
    }

    /// The next record, or `None` at the end of the segment.
    pub fn next_record(&mut self) -> io::Result<Option<(SortKey, &[u8])>> {
        Ok(if self.advance()? {
            Some((self.key, self.line()))
        } else {
            None
        })
    }

    /// The key of the current record.
    #[inline]
    pub fn key(&self) -> &SortKey {
        &self.key
    }

    /// The line of the current record.
    #[inline]
    pub fn line(&self) -> &[u8] {
        &self.raw[self.line.0..self.line.1]
    }

    fn corrupt(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "corrupt run segment: {what} (block at segment offset {})",
                self.offset
            ),
        )
    }

    fn read_exact_or_corrupt(&mut self, n: usize) -> io::Result<()> {
        self.packed.resize(n, 0);
        match self.inner.read_exact(&mut self.packed) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.corrupt("segment is truncated"))
            }
            other => other,
        }
    }

    /// Reads and checks the next block; `Ok(false)` after the end block.
    fn read_block(&mut self) -> io::Result<bool> {
        let mut h = [0u8; HEADER_BYTES];
        match self.inner.read_exact(&mut h) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(self.corrupt("segment is truncated"))
            }
            other => other?,
        }
        let magic = [h[0], h[1], h[2], h[3]];
        let raw_len = u32_at(&h, 4) as usize;
        let payload_len = u32_at(&h, 8) as usize;
        let records = u32_at(&h, 12);
        let sum = u32_at(&h, 16);
        let (is_end, stored) = match magic {
            DATA_MAGIC => (false, false),
            STORED_MAGIC => (false, true),
            END_MAGIC => (true, false),
            _ => return Err(self.corrupt("bad block magic")),
        };
        if raw_len > MAX_BLOCK_BYTES
            || payload_len > lz4_flex::block::get_maximum_output_size(raw_len)
            || (stored && payload_len != raw_len)
            || (is_end && (raw_len != END_PAYLOAD_BYTES || payload_len != END_PAYLOAD_BYTES))
        {
            return Err(self.corrupt("impossible block lengths"));
        }
        self.read_exact_or_corrupt(payload_len)?;
        if checksum(&h, &self.packed) != sum {
            return Err(self.corrupt("checksum mismatch"));
        }
        if is_end {
            return self.check_end().map(|()| false);
        }
        if stored {
            // The payload is the block: take it, and reuse the old block's buffer for the next.
            std::mem::swap(&mut self.raw, &mut self.packed);
        } else {
            self.raw.resize(raw_len, 0);
            let n = lz4_flex::block::decompress_into(&self.packed, &mut self.raw)
                .map_err(|e| self.corrupt(&format!("lz4: {e}")))?;
            if n != raw_len {
                return Err(self.corrupt("block decodes to the wrong length"));
            }
        }
        if records == 0 {
            return Err(self.corrupt("empty data block"));
        }
        self.offset += (HEADER_BYTES + payload_len) as u64;
        self.pos = 0;
        self.prev_time = 0;
        self.block_left = records;
        Ok(true)
    }

    fn check_end(&mut self) -> io::Result<()> {
        let p = &self.packed;
        let records = u64::from_le_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]);
        let line_bytes = u64::from_le_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]);
        if records != self.records || line_bytes != self.line_bytes {
            return Err(self.corrupt("end block totals do not match the records read"));
        }
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(self.corrupt("bytes after the end block"));
        }
        self.done = true;
        self.line = (0, 0);
        self.raw = Vec::new();
        self.packed = Vec::new();
        Ok(())
    }

    fn decode_record(&mut self) -> io::Result<()> {
        let delta = self.varint()?;
        let shard = self.varint()?;
        let line = self.varint()?;
        let len = self.varint()?;
        let shard = u32::try_from(shard).map_err(|_| self.corrupt("shard out of range"))?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.raw.len())
            .ok_or_else(|| self.corrupt("record runs past its block"))?;
        self.block_left -= 1;
        if self.block_left == 0 && end != self.raw.len() {
            return Err(self.corrupt("bytes after the last record of a block"));
        }
        let delta = ((delta >> 1) as i64) ^ -((delta & 1) as i64);
        self.prev_time = self.prev_time.wrapping_add(delta);
        self.key = SortKey {
            time_ms: self.prev_time,
            shard,
            line,
        };
        self.line = (start, end);
        self.pos = end;
        self.records += 1;
        self.line_bytes += len;
        Ok(())
    }

    #[inline]
    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = self.raw.get(self.pos) else {
                return Err(self.corrupt("record runs past its block"));
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }
}

fn u32_at(h: &[u8; HEADER_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(records: &[(SortKey, Vec<u8>)]) -> (Vec<u8>, SegmentStats) {
        let mut out = Vec::new();
        let mut w = SegmentWriter::new();
        for (k, l) in records {
            w.push(&mut out, k, l).unwrap();
        }
        let stats = w.finish(&mut out).unwrap();
        (out, stats)
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<(SortKey, Vec<u8>)>> {
        let mut r = SegmentReader::new(bytes);
        let mut got = Vec::new();
        while let Some((k, l)) = r.next_record()? {
            got.push((k, l.to_vec()));
        }
        Ok(got)
    }

    fn sample(n: usize) -> Vec<(SortKey, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let key = SortKey {
                    time_ms: i64::MIN / 2 + (i as i64) * 7919 - 5,
                    shard: (i % 13) as u32,
                    line: (i as u64) << 33,
                };
                (
                    key,
                    format!("line {i} {}\n", "x".repeat(i % 700)).into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn round_trip_spans_many_blocks() {
        let recs = sample(3000);
        let (bytes, stats) = write_segment(&recs);
        assert_eq!(stats.len, bytes.len() as u64);
        assert_eq!(stats.records, 3000);
        assert_eq!(
            stats.line_bytes,
            recs.iter().map(|r| r.1.len() as u64).sum::<u64>()
        );
        assert_eq!(read_all(&bytes).unwrap(), recs);
    }

    #[test]
    fn stored_blocks_read_the_same_and_are_checked() {
        let recs = sample(3000);
        let mut stored = Vec::new();
        let mut w = SegmentWriter::stored();
        for (k, l) in &recs {
            w.push(&mut stored, k, l).unwrap();
        }
        let stats = w.finish(&mut stored).unwrap();
        assert_eq!(stats.len, stored.len() as u64);
        assert_eq!(&stored[..4], b"FXRS");
        assert_eq!(read_all(&stored).unwrap(), recs);
        let (packed, _) = write_segment(&recs);
        assert!(packed.len() < stored.len(), "the default writer compresses");
        for i in [5, HEADER_BYTES + 3, stored.len() / 2] {
            let mut bad = stored.clone();
            bad[i] ^= 0x10;
            let err = read_all(&bad).expect_err("corruption must be detected");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}: {err}");
        }
    }

    #[test]
    fn empty_segment_is_just_an_end_block() {
        let (bytes, stats) = write_segment(&[]);
        assert_eq!(stats.len as usize, HEADER_BYTES + END_PAYLOAD_BYTES);
        assert!(read_all(&bytes).unwrap().is_empty());
    }

    #[test]
    fn every_flipped_byte_is_invalid_data() {
        let (bytes, _) = write_segment(&sample(40));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let err = read_all(&bad).expect_err("corruption must be detected");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}: {err}");
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_invalid_data() {
        let (bytes, _) = write_segment(&sample(40));
        for cut in [0, 1, HEADER_BYTES, bytes.len() / 2, bytes.len() - 1] {
            let err = read_all(&bytes[..cut]).expect_err("truncation must be detected");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = read_all(&longer).expect_err("trailing bytes must be detected");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn oversized_line_is_rejected_by_the_writer() {
        let mut w = SegmentWriter::new();
        let line = vec![b'a'; MAX_BLOCK_BYTES];
        let key = SortKey {
            time_ms: 0,
            shard: 0,
            line: 0,
        };
        let err = w.push(&mut io::sink(), &key, &line).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
