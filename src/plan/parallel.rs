//! The plan's store round trips (directory listings, block locations, reads of shards that
//! may be duplicates), run several at a time on scoped threads.

/// Directory listings, block-location lookups and duplicate-shard reads in flight at once.
/// Each is a round trip to the store, and a customer-day reaches thousands of directories:
/// one at a time, the plan would cost seconds of waiting.
pub(super) const CONCURRENCY: usize = 8;

/// `f` over `items`, [`CONCURRENCY`] at a time; results in the items' order.
pub(super) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONCURRENCY.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return out;
                        };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
