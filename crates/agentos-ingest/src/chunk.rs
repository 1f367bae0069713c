//! Splitting large files into chunks for parallel reading, and putting their line numbers back
//! together: shared by every source whose files can be big (CCC logs, Claude transcripts).
//!
//! A chunk that starts inside a file (`resync`) skips its partial first line, which belongs to
//! the previous chunk, and numbers its lines from the chunk start; [`LineJoiner`] turns those
//! numbers back into file line numbers while outcomes are consumed in job order.

use crate::account::{Account, SkippedLine};
use crate::scan::ScanEnd;

/// Where one chunk of a file lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Byte offset of the chunk.
    pub start: u64,
    /// Bytes in the chunk (for balancing and progress).
    pub size: u64,
    /// Stop before lines that start at or after this offset (`None` for the last chunk).
    pub limit: Option<u64>,
    /// Number of the line at `start` (0 when unknown: a chunk inside the file).
    pub first_line: u64,
    /// The chunk starts inside a line.
    pub resync: bool,
}

/// The chunks of about `chunk` bytes (at least 1 MiB) of a file read from its start, or `None`
/// when the job should stay whole (resumed from a checkpoint, already limited, or small).
pub fn pieces(start: u64, limit: Option<u64>, size: u64, chunk: u64) -> Option<Vec<Piece>> {
    let chunk = chunk.max(1 << 20);
    if start != 0 || limit.is_some() || size < 2 * chunk {
        return None;
    }
    let n = size.div_ceil(chunk);
    Some(
        (0..n)
            .map(|k| {
                let start = k * chunk;
                Piece {
                    start,
                    size: size.min(start + chunk) - start,
                    limit: (k + 1 < n).then_some(start + chunk),
                    first_line: if k == 0 { 1 } else { 0 },
                    resync: k > 0,
                }
            })
            .collect(),
    )
}

/// Makes chunk-relative line numbers file-absolute, fed the outcomes in job order.
#[derive(Debug, Default)]
pub struct LineJoiner {
    base: u64,
}

impl LineJoiner {
    /// Fixes the counters of one job's outcome in place.
    pub fn fix(
        &mut self,
        resync: bool,
        first_line: u64,
        account: &mut Account,
        skipped: &mut [SkippedLine],
        end: Option<&mut ScanEnd>,
    ) {
        if resync {
            // The file was counted by its first chunk.
            account.files = 0;
            for s in skipped.iter_mut().filter(|s| s.line > 0) {
                s.line += self.base;
            }
            if let Some(e) = end {
                e.lines += self.base;
            }
        } else {
            // A file read from its start, or resumed: its line numbers are already absolute.
            self.base = first_line.saturating_sub(1);
        }
        self.base += account.lines;
    }
}
