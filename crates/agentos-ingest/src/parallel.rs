//! Deterministic parallel map over files.

/// Number of worker threads for `requested` (0 = all cores) and `jobs` jobs.
pub fn thread_count(requested: usize, jobs: usize) -> usize {
    let n = if requested == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        requested
    };
    n.clamp(1, jobs.max(1))
}

/// Runs `f` on every job with up to `threads` scoped threads and returns the results **in job
/// order**, so output never depends on the thread count.
///
/// Jobs are assigned largest-first to the least-loaded worker by `size`, which keeps one huge
/// file from landing behind many small ones.
pub fn map_ordered<J: Sync, T: Send>(
    jobs: &[J],
    threads: usize,
    size: impl Fn(&J) -> u64,
    f: impl Fn(&J) -> T + Sync,
) -> Vec<T> {
    let threads = thread_count(threads, jobs.len());
    if threads <= 1 {
        return jobs.iter().map(&f).collect();
    }
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| size(&jobs[b]).cmp(&size(&jobs[a])).then(a.cmp(&b)));
    let mut buckets: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); threads];
    for i in order {
        // Least-loaded bucket; ties go to the lowest index so the assignment is reproducible.
        let mut best = 0;
        for (bi, b) in buckets.iter().enumerate() {
            if b.0 < buckets[best].0 {
                best = bi;
            }
        }
        buckets[best].0 += size(&jobs[i]).max(1);
        buckets[best].1.push(i);
    }
    let f = &f;
    let mut out: Vec<Option<T>> = (0..jobs.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = buckets
            .into_iter()
            .map(|(_, idx)| {
                s.spawn(move || {
                    idx.into_iter()
                        .map(|i| (i, f(&jobs[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(v) => {
                    for (i, t) in v {
                        out[i] = Some(t);
                    }
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    });
    out.into_iter().flatten().collect()
}

/// Runs `f` on every job with up to `threads` scoped threads and hands each job and its result
/// to `consume` **in job order** as soon as it and all earlier ones are done.
///
/// Unlike [`map_ordered`], workers take jobs from a shared queue in job order, so at most a few
/// results wait in the reorder buffer at any time: memory stays bounded by the thread count, not
/// by the number of files. The queue balances load by itself (a worker that finishes early takes
/// the next job).
pub fn for_each_ordered<J: Sync, T: Send>(
    jobs: &[J],
    threads: usize,
    f: impl Fn(&J) -> T + Sync,
    mut consume: impl FnMut(&J, T),
) {
    let threads = thread_count(threads, jobs.len());
    if threads <= 1 {
        for j in jobs {
            consume(j, f(j));
        }
        return;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    // A bounded channel makes fast workers wait instead of piling up results.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, T)>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, f) = (&next, &f);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= jobs.len() {
                        break;
                    }
                    if tx.send((i, f(&jobs[i]))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: std::collections::BTreeMap<usize, T> = std::collections::BTreeMap::new();
        let mut want = 0usize;
        for (i, t) in rx {
            pending.insert(i, t);
            while let Some(t) = pending.remove(&want) {
                consume(&jobs[want], t);
                want += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_job_order_for_any_thread_count() {
        let jobs: Vec<u64> = (0..37).map(|i| (i * 7919) % 101).collect();
        let one = map_ordered(&jobs, 1, |j| *j, |j| j * 2);
        for t in [2, 3, 8] {
            assert_eq!(map_ordered(&jobs, t, |j| *j, |j| j * 2), one);
            let mut streamed = Vec::new();
            for_each_ordered(&jobs, t, |j| j * 2, |_, r| streamed.push(r));
            assert_eq!(streamed, one);
        }
    }
}
