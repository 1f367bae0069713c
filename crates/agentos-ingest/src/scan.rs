//! Streaming line reader shared by every JSONL source.
//!
//! A file is read in fixed-size blocks into one reusable buffer and split with `memchr`, so memory
//! stays at the buffer size (plus the longest line) whatever the file size. Reading can start at a
//! byte offset (from a checkpoint). An unterminated last line is handed to the caller flagged as
//! such: the caller decides whether it is complete JSON (consume it) or a write in progress (leave
//! it for the next run).

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::IngestError;

/// Block size of one read. Large enough to amortise syscalls; small enough that the block stays
/// in a core's L2 cache while it is split, which makes the kernel's copy into it cheaper than
/// memory-mapping the file (a 1 MiB block took 2.6 times as long to split the Codex benchmark
/// corpus: `docs/perf/codex.md`).
const BLOCK: usize = 128 << 10;

/// Lines longer than this are skipped (reported) rather than buffered without bound.
pub const MAX_LINE: usize = 256 << 20;

/// Identity of a file that survives renames: device and inode number.
///
/// Rotation (`usage.jsonl` → `usage.jsonl.1`) keeps the inode, so a checkpoint keyed by identity
/// follows the file to its new name instead of counting it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// Identity of the file described by `meta`.
    #[cfg(unix)]
    pub fn of(meta: &Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// Identity of the file described by `meta` (no inode on this platform: size and creation
    /// time stand in, which still tells files apart in practice).
    #[cfg(not(unix))]
    pub fn of(meta: &Metadata) -> FileId {
        let created = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        FileId {
            dev: 0,
            ino: created,
        }
    }
}

/// Stable 64-bit FNV-1a hash. Used for anything persisted (checkpoints, dedup keys in the store),
/// where the std hasher's unspecified algorithm would be wrong across Rust releases.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One physical line handed to a scan callback.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// 1-based line number within the file (counted from the scan start plus `first_line_no`).
    pub no: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// The line without its terminating `\n` (and without a trailing `\r`).
    pub bytes: &'a [u8],
    /// True when the file ended without a newline after this line.
    pub unterminated: bool,
}

/// What the callback decides about an unterminated last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The line was used; the scan end moves past it.
    Consumed,
    /// The line looks like a write in progress; leave it for the next run.
    Pending,
}

/// Where a scan ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanEnd {
    /// Offset just after the last consumed line (the next run starts here).
    pub offset: u64,
    /// Offset of the last consumed line's first byte.
    pub last_line_offset: u64,
    /// FNV-1a hash of the last consumed line (without newline), 0 when none.
    pub last_line_hash: u64,
    /// Number of the last consumed line.
    pub lines: u64,
    /// Bytes read from disk in this scan.
    pub bytes_read: u64,
    /// Lines longer than [`MAX_LINE`], skipped.
    pub oversized: u64,
}

thread_local! {
    /// This thread's spare read buffer (see [`ReadBuffer`]).
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A read buffer for [`scan_file`] that goes back to its thread when dropped, so a worker
/// reading many files allocates and zeroes one block, not one per file. A buffer that grew past
/// `BLOCK` for a long line is freed instead: what a thread keeps is one block.
#[derive(Debug, Default)]
pub struct ReadBuffer(Vec<u8>);

impl ReadBuffer {
    /// This thread's spare buffer (empty if it has none or it is in use).
    pub fn take() -> ReadBuffer {
        ReadBuffer(SPARE.with(std::cell::Cell::take))
    }
}

impl std::ops::Deref for ReadBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for ReadBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        if self.0.capacity() > 0 && self.0.len() <= BLOCK {
            let buf = std::mem::take(&mut self.0);
            // `try_with`: during thread teardown the slot may be gone; the buffer is then freed.
            let _ = SPARE.try_with(|s| s.set(buf));
        }
    }
}

/// Scans `path` from `start` (a line boundary), calling `f` for each line.
///
/// `first_line_no` is the number the line at `start` gets (checkpoints remember it). The callback
/// returns [`Tail`] for the unterminated last line and anything for others; `ControlFlow::Break`
/// stops early (the end offset then stays after the last line handed out).
pub fn scan_file(
    path: &Path,
    start: u64,
    first_line_no: u64,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(Line<'_>) -> ControlFlow<(), Tail>,
) -> Result<ScanEnd, IngestError> {
    let mut file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .map_err(|e| IngestError::io(path, e))?;
    }
    scan_reader(&mut file, start, first_line_no, buf, &mut f).map_err(|e| IngestError::io(path, e))
}

fn scan_reader(
    r: &mut impl Read,
    start: u64,
    first_line_no: u64,
    buf: &mut Vec<u8>,
    f: &mut impl FnMut(Line<'_>) -> ControlFlow<(), Tail>,
) -> std::io::Result<ScanEnd> {
    if buf.is_empty() {
        buf.resize(BLOCK, 0);
    }
    let mut end = ScanEnd {
        offset: start,
        last_line_offset: start,
        lines: first_line_no.saturating_sub(1),
        ..ScanEnd::default()
    };
    // buf[..filled] holds unread bytes; buf_offset is the file offset of buf[0].
    let mut filled = 0usize;
    let mut buf_offset = start;
    let mut line_no = first_line_no;
    let mut skipping_oversized = false;
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_LINE {
                // One line fills the whole maximum buffer: drop it and skip to its end.
                skipping_oversized = true;
                buf_offset += filled as u64;
                filled = 0;
            } else {
                let n = (buf.len() * 2).min(MAX_LINE);
                buf.resize(n, 0);
            }
        }
        let n = r.read(&mut buf[filled..])?;
        end.bytes_read += n as u64;
        let eof = n == 0;
        let data_end = filled + n;
        let mut pos = 0usize;
        // Only the newly read part can hold new newlines; the carried-over part has none.
        let mut search_from = filled;
        let mut last_in_block: Option<(usize, usize)> = None;
        while let Some(i) = memchr::memchr(b'\n', &buf[search_from..data_end]) {
            let nl = search_from + i;
            let line_start_off = buf_offset + pos as u64;
            if skipping_oversized {
                skipping_oversized = false;
                end.oversized += 1;
            } else {
                let (len, stop) = complete_line(
                    &mut end,
                    f,
                    line_no,
                    line_start_off,
                    &buf[pos..nl],
                    buf_offset + nl as u64 + 1,
                );
                // Hashing every line would cost more than splitting them: only the last line
                // of each block is hashed, once, below.
                last_in_block = Some((pos, pos + len));
                if stop {
                    return Ok(end);
                }
            }
            line_no += 1;
            pos = nl + 1;
            search_from = pos;
        }
        if let Some((a, b)) = last_in_block {
            end.last_line_hash = fnv1a64(&buf[a..b]);
        }
        if eof {
            if pos < data_end && !skipping_oversized {
                let next = buf_offset + data_end as u64;
                let off = buf_offset + pos as u64;
                tail_line(&mut end, f, line_no, off, &buf[pos..data_end], next);
            }
            return Ok(end);
        }
        // Move the incomplete remainder to the front.
        buf.copy_within(pos..data_end, 0);
        buf_offset += pos as u64;
        filled = data_end - pos;
    }
}

/// Hands the complete line `raw` (without its `\n`; a trailing `\r` is dropped) to `f` and
/// moves `end` past it (`next` is the offset after its newline). Returns the length handed out
/// and whether `f` asked to stop, in which case the line's hash is already in `end`.
#[inline]
fn complete_line(
    end: &mut ScanEnd,
    f: &mut impl FnMut(Line<'_>) -> ControlFlow<(), Tail>,
    no: u64,
    offset: u64,
    raw: &[u8],
    next: u64,
) -> (usize, bool) {
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    let flow = f(Line {
        no,
        offset,
        bytes: line,
        unterminated: false,
    });
    end.last_line_offset = offset;
    end.lines = no;
    end.offset = next;
    let stop = flow.is_break();
    if stop {
        end.last_line_hash = fnv1a64(line);
    }
    (line.len(), stop)
}

/// Offers the unterminated last line of a file to `f`; only when `f` consumes it does `end`
/// move past it (to `next`, the end of the file).
fn tail_line(
    end: &mut ScanEnd,
    f: &mut impl FnMut(Line<'_>) -> ControlFlow<(), Tail>,
    no: u64,
    offset: u64,
    line: &[u8],
    next: u64,
) {
    if let ControlFlow::Continue(Tail::Consumed) = f(Line {
        no,
        offset,
        bytes: line,
        unterminated: true,
    }) {
        end.last_line_hash = fnv1a64(line);
        end.last_line_offset = offset;
        end.lines = no;
        end.offset = next;
    }
}

/// Reads the line that starts at `offset` and returns its FNV-1a hash, or `None` when the file is
/// shorter than that. Used to check that a checkpoint still describes the same content.
pub fn hash_line_at(path: &Path, offset: u64, len_hint: u64) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut v = vec![0u8; (len_hint as usize).clamp(1, MAX_LINE)];
    let mut got = 0;
    while got < v.len() {
        let n = file.read(&mut v[got..]).ok()?;
        if n == 0 {
            break;
        }
        got += n;
    }
    v.truncate(got);
    let mut line = match memchr::memchr(b'\n', &v) {
        Some(i) => &v[..i],
        None => &v[..],
    };
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    Some(fnv1a64(line))
}

/// Every file under `dir`, recursively, whose path `keep` accepts (in directory order; callers
/// sort). Unreadable directories are skipped: a source reads what it can.
pub fn walk_files(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk_files(&p, keep, out);
        } else if keep(&p) {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(u64, u64, Vec<u8>, bool)>;

    fn collect(data: &[u8], block: usize) -> (Seen, ScanEnd) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; block];
        let mut r = std::io::Cursor::new(data.to_vec());
        let end = scan_reader(&mut r, 0, 1, &mut buf, &mut |l: Line<'_>| {
            out.push((l.no, l.offset, l.bytes.to_vec(), l.unterminated));
            ControlFlow::Continue(Tail::Pending)
        })
        .expect("in-memory read");
        (out, end)
    }

    /// Lines handed out and the end of a scan of `data` from `start` with `block`-byte reads,
    /// consuming the tail when `consume`, stopping after line `stop_at`.
    fn run(
        data: &[u8],
        start: usize,
        block: usize,
        consume: bool,
        stop_at: u64,
    ) -> (Seen, ScanEnd) {
        let mut out = Vec::new();
        let mut f = |l: Line<'_>| {
            out.push((l.no, l.offset, l.bytes.to_vec(), l.unterminated));
            if l.no == stop_at {
                ControlFlow::Break(())
            } else if consume {
                ControlFlow::Continue(Tail::Consumed)
            } else {
                ControlFlow::Continue(Tail::Pending)
            }
        };
        let mut buf = vec![0u8; block];
        let mut r = std::io::Cursor::new(data[start..].to_vec());
        let end = scan_reader(&mut r, start as u64, 7, &mut buf, &mut f).expect("in-memory read");
        (out, end)
    }

    proptest::proptest! {
        /// Where the reads happen to split the file (lines across blocks, a block that fills
        /// with one line and grows) never shows in what is handed out.
        #[test]
        fn block_boundaries_never_change_the_lines_or_the_end(
            data in proptest::collection::vec(proptest::sample::select(b"ab\r\n{}".to_vec()), 0..400),
            start in 0usize..400,
            block in 1usize..64,
            consume: bool,
            stop_at in 7u64..40,
        ) {
            let start = start.min(data.len());
            let small = run(&data, start, block, consume, stop_at);
            let whole = run(&data, start, data.len() + 1, consume, stop_at);
            proptest::prop_assert_eq!(small.0, whole.0);
            let (a, b) = (small.1, whole.1);
            proptest::prop_assert_eq!(
                (a.offset, a.last_line_offset, a.last_line_hash, a.lines, a.oversized),
                (b.offset, b.last_line_offset, b.last_line_hash, b.lines, b.oversized)
            );
        }
    }

    #[test]
    fn lines_are_split_with_offsets_and_a_pending_tail_is_not_consumed() {
        let (lines, end) = collect(b"ab\r\ncd\nef", BLOCK);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], (1, 0, b"ab".to_vec(), false));
        assert_eq!(lines[1], (2, 4, b"cd".to_vec(), false));
        assert_eq!(lines[2], (3, 7, b"ef".to_vec(), true));
        assert_eq!(end.offset, 7);
        assert_eq!(end.lines, 2);
        assert_eq!(end.last_line_hash, fnv1a64(b"cd"));
    }

    #[test]
    fn a_read_buffer_is_reused_on_its_thread_unless_it_grew() {
        let mut b = ReadBuffer::take();
        b.resize(BLOCK, 0);
        let first = b.as_ptr();
        drop(b);
        let mut b = ReadBuffer::take();
        assert_eq!(b.as_ptr(), first, "the same block again");
        assert!(ReadBuffer::take().is_empty(), "in use: a new, empty one");
        b.resize(BLOCK * 2, 0);
        drop(b);
        assert!(ReadBuffer::take().is_empty(), "a grown buffer is not kept");
    }

    #[test]
    fn a_line_longer_than_the_block_is_still_one_line() {
        let mut data = vec![b'x'; 3000];
        data.push(b'\n');
        data.extend_from_slice(b"y\n");
        let (lines, end) = collect(&data, 1024);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].2.len(), 3000);
        assert_eq!(lines[1].1, 3001);
        assert_eq!(end.offset, 3003);
    }
}
