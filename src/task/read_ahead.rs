//! The map side's read-ahead: a map task that takes many small shards (a customer of many
//! small domains has thousands of 5-minute shards of a few kilobytes) would spend its time
//! waiting for each open — on HDFS a NameNode round trip and a DataNode connection per
//! shard. [`ReadAhead`] reads the small shards' bytes on [`THREADS`] threads, in task order
//! and at most [`WINDOW`] shards ahead of the one being parsed, while the task parses; big
//! shards are left to the task, which streams them as before.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use super::shard::ShardError;
use crate::plan::Shard;
use crate::storage::input_store;

/// Threads reading ahead.
pub const THREADS: usize = 6;
/// Shards read ahead of the one being parsed, at most.
pub const WINDOW: usize = 24;
/// Shards of at most this many bytes (as planned) are read ahead.
pub const MAX_SHARD_BYTES: u64 = 1 << 20;

/// One shard's bytes as read ahead.
type Slot = Option<Result<Vec<u8>, ShardError>>;

/// The shards of one task being read ahead (see the module docs).
pub struct ReadAhead<'a> {
    shards: &'a [Shard],
    slots: Vec<Mutex<Slot>>,
    ready: Condvar,
    /// The next shard a reader thread takes.
    next: AtomicUsize,
    /// The shard the task parses now: readers stay within [`WINDOW`] of it.
    consumed: Mutex<usize>,
    moved: Condvar,
    stop: AtomicBool,
}

/// Whether `shard` is read ahead.
pub fn ahead(shard: &Shard) -> bool {
    shard.size <= MAX_SHARD_BYTES
}

impl<'a> ReadAhead<'a> {
    /// Reads ahead the small shards of `shards` on threads of `scope` while `body` runs,
    /// and returns what `body` returns; the threads stop when it does.
    pub fn run<R>(shards: &'a [Shard], body: impl FnOnce(&ReadAhead<'a>) -> R) -> R {
        let ra = ReadAhead {
            shards,
            slots: shards.iter().map(|_| Mutex::new(None)).collect(),
            ready: Condvar::new(),
            next: AtomicUsize::new(0),
            consumed: Mutex::new(0),
            moved: Condvar::new(),
            stop: AtomicBool::new(false),
        };
        let wanted = shards.iter().filter(|s| ahead(s)).count();
        if wanted < 2 {
            // Nothing to overlap.
            ra.stop.store(true, Ordering::Relaxed);
            return body(&ra);
        }
        std::thread::scope(|scope| {
            for _ in 0..THREADS.min(wanted) {
                scope.spawn(|| ra.reader());
            }
            let out = body(&ra);
            ra.stop.store(true, Ordering::Relaxed);
            let _guard = ra.consumed.lock();
            ra.moved.notify_all();
            out
        })
    }

    fn reader(&self) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(shard) = self.shards.get(i) else {
                return;
            };
            if !ahead(shard) {
                continue;
            }
            {
                let mut consumed = self.consumed.lock();
                while i >= *consumed + WINDOW && !self.stop.load(Ordering::Relaxed) {
                    self.moved.wait(&mut consumed);
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let read = read_whole(shard);
            *self.slots[i].lock() = Some(read);
            self.ready.notify_all();
        }
    }

    /// The bytes of shard `i` (the task's shards are taken in order), or `None` when it is
    /// not read ahead (the task opens it itself).
    pub fn take(&self, i: usize) -> Option<Result<Vec<u8>, ShardError>> {
        {
            let mut consumed = self.consumed.lock();
            *consumed = (*consumed).max(i);
            self.moved.notify_all();
        }
        let shard = self.shards.get(i)?;
        if !ahead(shard) || self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let mut slot = self.slots[i].lock();
        loop {
            if let Some(read) = slot.take() {
                return Some(read);
            }
            self.ready.wait(&mut slot);
        }
    }
}

/// Reads a whole shard.
pub(super) fn read_whole(shard: &Shard) -> Result<Vec<u8>, ShardError> {
    let store = input_store(&shard.location)?;
    let mut bytes = Vec::with_capacity(shard.size as usize + 1);
    store
        .open(&shard.location)?
        .read_to_end(&mut bytes)
        .map_err(|source| ShardError::Corrupt {
            url: shard.location.to_string(),
            line: 0,
            source,
        })?;
    Ok(bytes)
}
