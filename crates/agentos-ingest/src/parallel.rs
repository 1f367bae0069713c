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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_job_order_for_any_thread_count() {
        let jobs: Vec<u64> = (0..37).map(|i| (i * 7919) % 101).collect();
        let one = map_ordered(&jobs, 1, |j| *j, |j| j * 2);
        for t in [2, 3, 8] {
            assert_eq!(map_ordered(&jobs, t, |j| *j, |j| j * 2), one);
        }
    }
}
