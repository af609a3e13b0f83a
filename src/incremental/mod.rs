//! Incremental re-fusion: a re-run of a window recomputes only the partitions whose inputs
//! changed and keeps the others as the previous run published them (same objects, neither
//! rewritten nor uploaded again), so that its output is byte-identical to a full run's.
//!
//! The previous run's manifest (`_manifests/<job>/<window>.json`) is the record: its shard
//! table fingerprints every shard (URL, size, modification time) with its counters, each
//! partition names the shards that fed it, and `settings_digest` covers the settings that
//! change bytes ([`crate::job::digest`]). [`Reuse`] compares that record with the new
//! listing and decides, in two rounds of map tasks, which shards to read:
//!
//! 1. new and changed shards (which partitions they feed is unknown until they are read),
//!    and the unchanged shards that fed a partition made dirty by a changed or vanished shard
//!    or by its missing file;
//! 2. the unchanged shards that fed a partition the first round found a new or changed shard
//!    writing to (an unchanged shard feeds only the partitions it fed before, so there is no
//!    third round).
//!
//! Map output for partitions that stay clean is discarded. Figures describe the whole window,
//! as a full run's would: counters, skipped shards and rejects of a shard that was not read
//! are carried over from the previous manifest (and its rejects file, [`rejects`]).
//!
//! This module decides and merges; it does no I/O (the driver reads the previous manifest and
//! checks the kept files).

pub mod rejects;
mod reuse;

pub use reuse::{partition_key, Reuse, ShardStatus, Unusable};
