//! Work items run several at a time on scoped threads, results in the items' order: the
//! plan's store round trips, a reduce task's small partitions, a commit's publications.
//! Each caller chooses how many at once, for its own reason.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `f` over `items`, up to `threads` at a time; results in the items' order. Every item is
/// run, whatever the others return.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 || threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return out;
                        };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        join_all(workers)
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// `f(0..n)`, up to `threads` at a time, items started in index order; the results in index
/// order, or the failure of the lowest index that failed, with that index. After a failure
/// no further item starts (those running finish), so every item below the one returned ran
/// and succeeded.
pub fn try_each<T: Send, E: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, (usize, E)> {
    if n <= 1 || threads <= 1 {
        return (0..n).map(|i| f(i).map_err(|e| (i, e))).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut done: Vec<(usize, Result<T, E>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(n))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let r = f(i);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        join_all(workers)
    });
    done.sort_by_key(|(i, _)| *i);
    // Items start in index order, so the ones that ran are 0..k with no gap: the first
    // failure among them is the lowest index that failed.
    let mut out = Vec::with_capacity(n);
    for (i, r) in done {
        match r {
            Ok(v) => out.push(v),
            Err(e) => return Err((i, e)),
        }
    }
    Ok(out)
}

/// The outputs of scoped workers, concatenated; a worker's panic is raised again here.
fn join_all<R>(workers: Vec<std::thread::ScopedJoinHandle<'_, Vec<R>>>) -> Vec<R> {
    workers
        .into_iter()
        .flat_map(|w| match w.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn map_keeps_the_items_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..40).collect();
        // Later items finish first.
        let out = map(&items, 8, |&i| {
            std::thread::sleep(Duration::from_micros(40 - i));
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(map(&items[..0], 8, |&i| i), Vec::<u64>::new());
        assert_eq!(map(&items[..3], 1, |&i| i + 1), vec![1, 2, 3]);
    }

    #[test]
    fn try_each_returns_every_result_in_order_when_all_succeed() {
        let out: Result<Vec<usize>, (usize, String)> = try_each(25, 4, |i| Ok(i * i));
        assert_eq!(out.unwrap(), (0..25).map(|i| i * i).collect::<Vec<_>>());
    }

    #[test]
    fn try_each_reports_the_lowest_failing_index_and_starts_nothing_after_it() {
        let started = AtomicUsize::new(0);
        let out: Result<Vec<usize>, (usize, String)> = try_each(1000, 4, |i| {
            started.fetch_add(1, Ordering::Relaxed);
            // Two failures; the later one finishes first.
            match i {
                7 => {
                    std::thread::sleep(Duration::from_millis(20));
                    Err("seven".to_string())
                }
                9 => Err("nine".to_string()),
                _ => {
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(i)
                }
            }
        });
        assert_eq!(out, Err((7, "seven".to_string())));
        // The failure stops the workers: 4 threads would take 500 ms for the 1000 items,
        // they stop within a few after the failure.
        assert!(started.load(Ordering::Relaxed) < 500, "{started:?}");
        // One thread: in order, stops at the first failure.
        let seen = AtomicUsize::new(0);
        let one: Result<Vec<usize>, (usize, &str)> = try_each(10, 1, |i| {
            seen.fetch_add(1, Ordering::Relaxed);
            if i == 3 {
                Err("three")
            } else {
                Ok(i)
            }
        });
        assert_eq!(one, Err((3, "three")));
        assert_eq!(seen.load(Ordering::Relaxed), 4);
    }
}
