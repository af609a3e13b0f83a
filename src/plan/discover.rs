//! Shard discovery: walk each source's template below its literal root, one directory
//! listing per directory reached, pruning directories whose date fields fall outside the
//! read range `[start − slack, end + slack)`.

use super::DiscoveredShard;
use super::STORE_CONCURRENCY;
use crate::job::template::{match_segment, Captures, Field, SegmentPattern, Token};
use crate::job::{Job, Source};
use crate::parallel;
use crate::storage::location::Location;
use crate::storage::{input_store, InputStore, StorageError};

/// What discovery found: the shards to read, per source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovered {
    /// Per source (in job order), the shards to read, in listing order.
    pub sources: Vec<Vec<DiscoveredShard>>,
}

/// Lists every source's shards in the window (with block hosts where storage has them).
/// Nothing is read: duplicate deliveries are told apart by the map tasks (see
/// `duplicates`). Directories are listed
/// `CONCURRENCY` at a time, a level of the templates after another; the result is in the
/// order a depth-first walk in listing order would give, whatever the timing.
pub fn discover(job: &Job) -> Result<Discovered, StorageError> {
    let mut stores = Vec::with_capacity(job.sources.len());
    let mut ranges = Vec::with_capacity(job.sources.len());
    let mut frontier = Vec::with_capacity(job.sources.len());
    for (i, source) in job.sources.iter().enumerate() {
        let _: &Source = source;
        stores.push(input_store(&source.shards.root)?);
        ranges.push(ReadRange {
            lo: job.window.start_ms - job.window.slack_ms,
            hi: job.window.end_ms + job.window.slack_ms,
            tz: source.tz_offset_secs,
        });
        frontier.push(Pending {
            source: i,
            dir: source.shards.root.clone(),
            segments: &source.shards.segments,
            caps: Captures::default(),
            order: Vec::new(),
        });
    }
    let mut found: Vec<Located> = Vec::new();
    while !frontier.is_empty() {
        let expanded = parallel::map(&frontier, STORE_CONCURRENCY, |p| {
            expand(stores[p.source].as_ref(), p, &ranges[p.source])
        });
        let mut next = Vec::new();
        for step in expanded {
            for item in step? {
                match item {
                    Found::Dir(p) => next.push(p),
                    Found::Shard(shard) => found.push(shard),
                }
            }
        }
        frontier = next;
    }
    found.sort_by(|a, b| (a.source, &a.order).cmp(&(b.source, &b.order)));
    // Hosts the listings did not bring are asked for a directory at a time.
    let groups: Vec<_> = directory_groups(&found)
        .into_iter()
        .filter(|range| found[range.clone()].iter().any(|f| !f.hosts_listed))
        .collect();
    let hosts = parallel::map(&groups, STORE_CONCURRENCY, |range| {
        found[range.clone()]
            .iter()
            .map(|f| {
                (!f.hosts_listed)
                    .then(|| stores[f.source].block_hosts(&f.shard.location))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()
    });
    for (range, group) in groups.into_iter().zip(hosts) {
        for (f, asked) in found[range].iter_mut().zip(group?) {
            if let Some(hosts) = asked {
                f.shard.hosts = hosts;
            }
        }
    }
    let mut all: Vec<Vec<DiscoveredShard>> = vec![Vec::new(); job.sources.len()];
    for f in found {
        all[f.source].push(f.shard);
    }
    Ok(Discovered { sources: all })
}

/// A shard found, with its source and its place in the depth-first order.
struct Located {
    source: usize,
    order: Vec<u32>,
    shard: DiscoveredShard,
    /// Whether the listing brought its hosts (else they are asked for).
    hosts_listed: bool,
}

/// A directory still to list: where, what of the template remains, what the path so far
/// captured, and its place in the depth-first order (an entry's index at each level).
struct Pending<'a> {
    source: usize,
    dir: Location,
    segments: &'a [SegmentPattern],
    caps: Captures,
    order: Vec<u32>,
}

/// What one listing turned up.
enum Found<'a> {
    Dir(Pending<'a>),
    Shard(Located),
}

/// Consecutive runs of `found` in one directory: block locations are fetched a directory at
/// a time (the store batches them), so each run goes to one thread.
fn directory_groups(found: &[Located]) -> Vec<std::ops::Range<usize>> {
    let parent = |i: usize| &found[i].order[..found[i].order.len().saturating_sub(1)];
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=found.len() {
        if i == found.len() || found[i].source != found[start].source || parent(i) != parent(start)
        {
            if start < i {
                groups.push(start..i);
            }
            start = i;
        }
    }
    groups
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

/// Lists `p.dir` (after descending through literal directories, which need no listing)
/// and returns the shards and the directories to list next.
fn expand<'a>(
    store: &dyn InputStore,
    p: &Pending<'a>,
    range: &ReadRange,
) -> Result<Vec<Found<'a>>, StorageError> {
    let mut dir = p.dir.clone();
    let mut segments = p.segments;
    let mut order = p.order.clone();
    while let Some(([Token::Literal(name)], rest)) = segments
        .split_first()
        .map(|(first, rest)| (first.as_slice(), rest))
        .filter(|(_, rest)| !rest.is_empty())
    {
        dir = dir.join(name);
        segments = rest;
        order.push(0);
    }
    let Some((pattern, rest)) = segments.split_first() else {
        return Ok(Vec::new());
    };
    let Some(entries) = store.list(&dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        if is_hidden(&entry.name) {
            continue;
        }
        let Some(c) = match_segment(pattern, &entry.name, &p.caps) else {
            continue;
        };
        let is_last = rest.is_empty();
        if !range.admits(&c, is_last) {
            continue;
        }
        let child = dir.join(&entry.name);
        let mut child_order = order.clone();
        child_order.push(i as u32);
        if is_last {
            if !entry.is_dir {
                out.push(Found::Shard(Located {
                    source: p.source,
                    order: child_order,
                    hosts_listed: entry.hosts.is_some(),
                    shard: DiscoveredShard {
                        location: child,
                        size: entry.size,
                        modified_ms: entry.modified_ms,
                        slot_start_ms: c.span(range.tz).map(|s| s.0),
                        domain: c.domain,
                        hosts: entry.hosts.unwrap_or_default(),
                    },
                }));
            }
        } else if entry.is_dir {
            out.push(Found::Dir(Pending {
                source: p.source,
                dir: child,
                segments: rest,
                caps: c,
                order: child_order,
            }));
        }
    }
    Ok(out)
}
