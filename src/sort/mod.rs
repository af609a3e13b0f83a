//! Sorting: the map side's bounded sort buffer and its sorted run files (one file per spill,
//! one segment per partition), the reduce side's k-way merge, and parallel gzip encoding.
//!
//! * [`key`]: [`SortKey`], the total order of output lines, and its packing for fast sorts.
//! * [`buffer`]: [`SortBuffer`], records in memory up to a budget, spilled as one run file.
//! * [`run`]: the run file format ([`SegmentWriter`], [`SegmentReader`]): checksummed lz4
//!   blocks, so damage is an `InvalidData` error.
//! * [`merge`]: [`merge_segments`], a k-way merge with multi-pass fan-in through scratch.
//! * [`gzip`]: [`GzipMembersWriter`], gzip as independent members compressed in parallel.
//!
//! Nothing here parses, renders or knows where files live beyond the
//! [`Scratch`](crate::storage::Scratch) trait.

pub mod buffer;
pub mod gzip;
pub mod key;
pub mod merge;
pub mod run;
#[cfg(test)]
mod testutil;

pub use buffer::{SortBuffer, RECORD_OVERHEAD_BYTES};
pub use gzip::{gzip_bound, max_member_input, GzipMembersWriter, MemberInfo, MemberSink};
pub use key::SortKey;
pub use merge::merge_segments;
pub use run::{SegmentReader, SegmentStats, SegmentWriter, BLOCK_TARGET_BYTES};

/// One partition's records inside a run file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// The partition's id, local to the map task that wrote the run.
    pub partition: u32,
    /// Byte range in the run file.
    pub offset: u64,
    pub len: u64,
    /// Number of records and their total line bytes (uncompressed).
    pub records: u64,
    pub line_bytes: u64,
}

/// What a spill wrote: the segments of one run file, in partition order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunIndex {
    pub segments: Vec<Segment>,
    /// Total bytes of the run file.
    pub file_bytes: u64,
}

/// Where one input of a merge comes from: a segment of a scratch run file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    pub file: String,
    pub offset: u64,
    pub len: u64,
}
