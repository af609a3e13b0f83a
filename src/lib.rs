//! filex: fuses CDN access logs from several platforms into one time-ordered log per domain
//! and hour (or day).
//!
//! # Layout
//! * [`job`]: the job file (TOML) and its validated form, [`job::Job`].
//! * [`plan`]: shard discovery and the split into map tasks; pure, no line is read.
//! * [`formats`]: one parser per vendor format, the canonical [`formats::Record`], and the
//!   output renderers (`json`, `combined`, `raw`); specified in `docs/FORMATS.md`.
//! * [`sort`]: the in-memory sort buffer, sorted run files, k-way merge and parallel gzip.
//! * [`task`]: the map task (decompress, parse, route, sort, spill) and the reduce task
//!   (merge, render, gzip, publish).
//! * [`storage`]: where bytes live (`file://`, `hdfs://`, and `s3://` for the output): listing,
//!   reading, scratch space and atomic publication.
//! * [`cluster`]: who runs the tasks: threads of this process, or workers (processes or YARN
//!   containers) fed by a coordinator.
//! * [`application`]: filex on YARN: `filex submit`, the application master, the workers.
//! * [`manifest`]: counters and the manifest written last.
//! * [`commit`]: the crash-safe commit: its intent written first, idempotent steps, and the
//!   roll-forward of a commit an earlier run left unfinished.
//! * [`incremental`]: re-runs of a window that recompute only the partitions whose inputs
//!   changed.
//! * `fault` (with the `fault-injection` feature only): the test hooks that make a worker die
//!   or stall at a chosen task attempt.
//! * [`gen`]: synthetic multi-vendor shards for demos, tests and benchmarks.
//! * [`settings`]: the Hadoop configuration of the process and the `filex.*` settings;
//!   [`size`]: byte sizes (`256m`); [`exit`]: the exit codes of every command.

pub mod application;
pub mod calendar;
pub mod cluster;
pub mod commit;
pub mod driver;
pub mod errors;
pub mod exit;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod formats;
pub mod gen;
pub mod incremental;
pub mod job;
pub mod manifest;
pub mod ops;
pub mod parallel;
pub mod plan;
pub mod settings;
pub mod size;
pub mod sort;
pub mod storage;
pub mod task;

mod percent;
