//! The sort key of an output line, and its packing into one integer for the in-memory sort.
//!
//! Comparing a `(partition, SortKey, position)` tuple field by field is several times slower
//! than comparing one integer, so a spill packs each record's fields, offset by the buffer's
//! minima, into a `u64` or `u128` (whichever is wide enough) with the record's arena position
//! in the low bits. Packed keys are unique, so an unstable sort is enough, and the packing is
//! lossless, so the sorted keys alone say what to write.

/// The total order of output lines: event time, then the shard's ordinal in the plan (which
/// encodes source order, then shard path bytewise), then the line number in the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SortKey {
    pub time_ms: i64,
    pub shard: u32,
    pub line: u64,
}

/// Running minima and maxima of the fields of the records in a buffer; they decide how many
/// bits each field needs in a packed key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRange {
    min_partition: u32,
    max_partition: u32,
    min_time: i64,
    max_time: i64,
    min_shard: u32,
    max_shard: u32,
    min_line: u64,
    max_line: u64,
}

impl Default for KeyRange {
    fn default() -> Self {
        KeyRange {
            min_partition: u32::MAX,
            max_partition: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
            min_shard: u32::MAX,
            max_shard: 0,
            min_line: u64::MAX,
            max_line: 0,
        }
    }
}

impl KeyRange {
    /// Widens the range to include one record.
    #[inline]
    pub(crate) fn include(&mut self, partition: u32, key: &SortKey) {
        self.min_partition = self.min_partition.min(partition);
        self.max_partition = self.max_partition.max(partition);
        self.min_time = self.min_time.min(key.time_ms);
        self.max_time = self.max_time.max(key.time_ms);
        self.min_shard = self.min_shard.min(key.shard);
        self.max_shard = self.max_shard.max(key.shard);
        self.min_line = self.min_line.min(key.line);
        self.max_line = self.max_line.max(key.line);
    }

    /// The packing layout for this range with positions up to `max_position`, or `None` if
    /// the range is empty or the fields and the position together need more than 128 bits.
    pub(crate) fn packer(&self, max_position: u64) -> Option<KeyPacker> {
        if self.min_partition > self.max_partition {
            return None;
        }
        let partition_bits = bits(u64::from(self.max_partition - self.min_partition));
        let time_bits = bits(self.max_time.wrapping_sub(self.min_time) as u64);
        let shard_bits = bits(u64::from(self.max_shard - self.min_shard));
        let line_bits = bits(self.max_line - self.min_line);
        let position_bits = bits(max_position);
        let total = partition_bits + time_bits + shard_bits + line_bits + position_bits;
        if total > 128 {
            return None;
        }
        Some(KeyPacker {
            range: *self,
            time_bits,
            shard_bits,
            line_bits,
            position_bits,
            total_bits: total,
        })
    }
}

/// How one buffer's records are packed into integers: from the high bits down, partition,
/// time, shard and line, each offset by its minimum in the buffer, then the record's
/// position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyPacker {
    range: KeyRange,
    time_bits: u32,
    shard_bits: u32,
    line_bits: u32,
    position_bits: u32,
    total_bits: u32,
}

impl KeyPacker {
    /// True if packed keys fit in a `u64`.
    pub(crate) fn fits_u64(&self) -> bool {
        self.total_bits <= 64
    }

    /// The packed key of a record; its order is the order of `(partition, key, position)`.
    #[inline]
    pub(crate) fn pack(&self, partition: u32, key: &SortKey, position: u64) -> u128 {
        let r = &self.range;
        let mut acc = u128::from(partition - r.min_partition);
        acc = shl(acc, self.time_bits) | u128::from(key.time_ms.wrapping_sub(r.min_time) as u64);
        acc = shl(acc, self.shard_bits) | u128::from(key.shard - r.min_shard);
        acc = shl(acc, self.line_bits) | u128::from(key.line - r.min_line);
        shl(acc, self.position_bits) | u128::from(position)
    }

    /// The partition, key and position a packed key was made of.
    #[inline]
    pub(crate) fn unpack(&self, packed: u128) -> (u32, SortKey, u64) {
        let r = &self.range;
        let mut rest = packed;
        let mut take = |n: u32| {
            let v = (rest & (shl(1, n).wrapping_sub(1))) as u64;
            rest = shr(rest, n);
            v
        };
        let position = take(self.position_bits);
        let line = take(self.line_bits).wrapping_add(r.min_line);
        let shard = (take(self.shard_bits) as u32).wrapping_add(r.min_shard);
        let time_ms = r.min_time.wrapping_add(take(self.time_bits) as i64);
        let partition = (rest as u32).wrapping_add(r.min_partition);
        let key = SortKey {
            time_ms,
            shard,
            line,
        };
        (partition, key, position)
    }
}

/// Number of bits needed to represent `x` (0 for 0).
fn bits(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Left shift that yields 0 instead of overflowing (a zero-width field of a 128-bit key).
#[inline]
fn shl(x: u128, n: u32) -> u128 {
    x.checked_shl(n).unwrap_or(0)
}

/// Right shift that yields 0 instead of overflowing.
#[inline]
fn shr(x: u128, n: u32) -> u128 {
    x.checked_shr(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(time_ms: i64, shard: u32, line: u64) -> SortKey {
        SortKey {
            time_ms,
            shard,
            line,
        }
    }

    #[test]
    fn packed_order_matches_tuple_order_and_unpacks() {
        let recs = [
            (3, key(-5, 2, 9)),
            (1, key(i64::MAX, 0, 0)),
            (1, key(-7, 7, 1)),
            (3, key(-5, 2, 8)),
            (1, key(-7, 6, 1 << 40)),
            (2, key(0, 0, 0)),
        ];
        let mut range = KeyRange::default();
        for (p, k) in &recs {
            range.include(*p, k);
        }
        let position = |i: usize| (i as u64) * 1000 + 7;
        let packer = range
            .packer(position(recs.len()))
            .expect("fits in 128 bits");
        assert!(!packer.fits_u64());
        let mut packed: Vec<u128> = recs
            .iter()
            .enumerate()
            .map(|(i, (p, k))| packer.pack(*p, k, position(i)))
            .collect();
        packed.sort_unstable();
        let got: Vec<(u32, SortKey, u64)> = packed.iter().map(|&k| packer.unpack(k)).collect();
        let mut want: Vec<(u32, SortKey, u64)> = recs
            .iter()
            .enumerate()
            .map(|(i, (p, k))| (*p, *k, position(i)))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn too_wide_ranges_have_no_packer() {
        let mut range = KeyRange::default();
        range.include(0, &key(i64::MIN, 0, 0));
        range.include(u32::MAX, &key(i64::MAX, u32::MAX, u64::MAX));
        assert!(range.packer(2).is_none());
        assert!(KeyRange::default().packer(0).is_none());
    }

    #[test]
    fn narrow_ranges_fit_u64_and_unpack() {
        let mut range = KeyRange::default();
        let (a, b) = (
            key(1_700_000_000_000, 10, 5),
            key(1_700_000_300_000, 12, 900),
        );
        range.include(4, &a);
        range.include(4, &b);
        let packer = range.packer(1 << 20).expect("fits");
        assert!(packer.fits_u64());
        assert_eq!(packer.unpack(packer.pack(4, &b, 99)), (4, b, 99));
        assert_eq!(packer.unpack(packer.pack(4, &a, 0)), (4, a, 0));
    }

    #[test]
    fn full_width_fields_unpack() {
        let mut range = KeyRange::default();
        let (a, b) = (key(i64::MIN, 3, 0), key(i64::MAX, 3, 0));
        range.include(0, &a);
        range.include(0, &b);
        let packer = range.packer(u64::MAX).expect("64 + 64 bits fit");
        assert_eq!(
            packer.unpack(packer.pack(0, &b, u64::MAX)),
            (0, b, u64::MAX)
        );
        assert_eq!(packer.unpack(packer.pack(0, &a, 1)), (0, a, 1));
        assert!(packer.pack(0, &a, u64::MAX) < packer.pack(0, &b, 0));
    }
}
