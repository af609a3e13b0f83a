//! Shard discovery: walk each source's template below its literal root, one directory
//! listing per directory reached, pruning directories whose date fields fall outside the
//! read range `[start − slack, end + slack)`.

use super::duplicates::{remove_duplicates, DuplicateShard};
use super::DiscoveredShard;
use crate::job::template::{match_segment, Captures, Field, SegmentPattern, Token};
use crate::job::{DuplicateShardPolicy, Job, Source};
use crate::storage::location::Location;
use crate::storage::{input_store, InputStore, StorageError};

/// What discovery found: the shards to read, per source, and the duplicates left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovered {
    /// Per source (in job order), the shards to read, in listing order.
    pub sources: Vec<Vec<DiscoveredShard>>,
    /// Shards with the same bytes as an earlier one (`on_duplicate_shard = "skip"`).
    pub duplicates: Vec<DuplicateShard>,
}

/// Lists every source's shards in the window (with block hosts where storage has them) and
/// leaves out duplicate deliveries (see `duplicates`).
pub fn discover(job: &Job) -> Result<Discovered, StorageError> {
    let mut all = Vec::with_capacity(job.sources.len());
    let mut stores = Vec::with_capacity(job.sources.len());
    for source in &job.sources {
        let store = input_store(&source.shards.root)?;
        let mut found = Vec::new();
        let range = ReadRange {
            lo: job.window.start_ms - job.window.slack_ms,
            hi: job.window.end_ms + job.window.slack_ms,
            tz: source.tz_offset_secs,
        };
        walk(
            store.as_ref(),
            &source.shards.root,
            &source.shards.segments,
            Captures::default(),
            &range,
            &mut found,
        )?;
        for shard in &mut found {
            shard.hosts = store.block_hosts(&shard.location)?;
        }
        let _: &Source = source;
        all.push(found);
        stores.push(store);
    }
    let duplicates = match job.on_duplicate_shard {
        DuplicateShardPolicy::Skip => remove_duplicates(&mut all, &stores)?,
        DuplicateShardPolicy::Keep => Vec::new(),
    };
    Ok(Discovered {
        sources: all,
        duplicates,
    })
}

struct ReadRange {
    lo: i64,
    hi: i64,
    tz: i32,
}

impl ReadRange {
    /// Whether a path with these captures may hold (a directory) or is (a file) a shard
    /// to read. A 5-minute slot is read when its start lies in the range; coarser spans
    /// (hourly or daily directories) when they overlap it.
    fn admits(&self, caps: &Captures, is_file: bool) -> bool {
        match caps.span(self.tz) {
            None => true,
            Some((start, _, Field::Minute)) if is_file => start >= self.lo && start < self.hi,
            Some((start, end, _)) => start < self.hi && end > self.lo,
        }
    }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn walk(
    store: &dyn InputStore,
    dir: &Location,
    segments: &[SegmentPattern],
    caps: Captures,
    range: &ReadRange,
    out: &mut Vec<DiscoveredShard>,
) -> Result<(), StorageError> {
    let Some((pattern, rest)) = segments.split_first() else {
        return Ok(());
    };
    // A literal directory needs no listing: descend directly.
    if let ([Token::Literal(name)], false) = (pattern.as_slice(), rest.is_empty()) {
        return walk(store, &dir.join(name), rest, caps, range, out);
    }
    let Some(entries) = store.list(dir)? else {
        return Ok(());
    };
    for entry in entries {
        if is_hidden(&entry.name) {
            continue;
        }
        let Some(c) = match_segment(pattern, &entry.name, &caps) else {
            continue;
        };
        let is_last = rest.is_empty();
        if !range.admits(&c, is_last) {
            continue;
        }
        let child = dir.join(&entry.name);
        if is_last {
            if !entry.is_dir {
                out.push(DiscoveredShard {
                    location: child,
                    size: entry.size,
                    modified_ms: entry.modified_ms,
                    slot_start_ms: c.span(range.tz).map(|s| s.0),
                    domain: c.domain,
                    hosts: Vec::new(),
                });
            }
        } else if entry.is_dir {
            walk(store, &child, rest, c, range, out)?;
        }
    }
    Ok(())
}
