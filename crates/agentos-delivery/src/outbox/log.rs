//! Streaming reads of `windows.jsonl` from a byte offset.
//!
//! The log is the queue: the uploader never copies events into an outbox of its own. Lines are
//! split with `memchr` in a fixed-size buffer (grown only for a line longer than the buffer), so
//! memory stays flat whatever the backlog. Bytes after the last `\n` are either a line the
//! recorder is still writing or a torn line left by a crash; they are never returned, and
//! [`LogReader::tail_bytes`] reports how many there were.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const CHUNK: usize = 256 * 1024;

/// One complete line.
#[derive(Debug)]
pub struct RawLine<'a> {
    /// The line without its `\n`.
    pub bytes: &'a [u8],
    /// Offset of its first byte.
    pub start: u64,
    /// Offset just past its `\n`.
    pub end: u64,
}

/// A forward-only reader of complete lines.
#[derive(Debug)]
pub struct LogReader {
    file: Option<File>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

impl LogReader {
    /// Opens `path` at `offset`; a missing file reads as empty.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn open(path: &Path, offset: u64) -> io::Result<LogReader> {
        let file = match File::open(path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(offset))?;
                Some(f)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(LogReader {
            file,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            base: offset,
        })
    }

    /// The next complete line, or `None` when only an unterminated tail (or nothing) is left.
    /// Calling again later picks up lines appended in the meantime.
    ///
    /// # Errors
    /// Read errors.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) {
                let start = self.pos;
                self.pos += i + 1;
                return Ok(Some(RawLine {
                    bytes: &self.buf[start..start + i],
                    start: self.base + start as u64,
                    end: self.base + self.pos as u64,
                }));
            }
            let Some(file) = self.file.as_mut() else {
                return Ok(None);
            };
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.base += self.pos as u64;
                self.pos = 0;
            }
            if self.len == self.buf.len() {
                // A line longer than the buffer: grow for it (rare; events are small).
                let new_len = self.buf.len() * 2;
                self.buf.resize(new_len, 0);
            }
            let n = file.read(&mut self.buf[self.len..])?;
            if n == 0 {
                return Ok(None);
            }
            self.len += n;
        }
    }

    /// Offset of the first byte not yet returned as part of a line.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes read past the last complete line (a torn or in-progress line).
    pub fn tail_bytes(&self) -> usize {
        self.len - self.pos
    }
}

/// Offset just past the last `\n` of the file at `path` (0 when missing or without any).
///
/// # Errors
/// I/O errors other than "not found".
pub fn complete_len(path: &Path) -> io::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut end = f.metadata()?.len();
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Complete lines and their bytes in `path` from `offset` on, plus the unterminated tail length.
///
/// # Errors
/// Read errors.
pub fn count_from(path: &Path, offset: u64) -> io::Result<(u64, u64, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0, 0)),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; CHUNK];
    let (mut lines, mut complete, mut since_nl) = (0u64, 0u64, 0u64);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            let _ = i;
            lines += 1;
        }
        match memchr::memrchr(b'\n', &buf[..n]) {
            Some(i) => {
                complete += since_nl + i as u64 + 1;
                since_nl = (n - i - 1) as u64;
            }
            None => since_nl += n as u64,
        }
    }
    Ok((lines, complete, since_nl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_the_torn_tail_is_held_back() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("log");
        std::fs::write(&p, b"a\nbb\nccc")?;
        let mut r = LogReader::open(&p, 0)?;
        let mut got = Vec::new();
        while let Some(l) = r.next_line()? {
            got.push((l.bytes.to_vec(), l.start, l.end));
        }
        assert_eq!(got, vec![(b"a".to_vec(), 0, 2), (b"bb".to_vec(), 2, 5)]);
        assert_eq!(r.tail_bytes(), 3);
        assert_eq!(complete_len(&p)?, 5);
        assert_eq!(count_from(&p, 0)?, (2, 5, 3));
        assert_eq!(count_from(&p, 2)?, (1, 3, 3));
        Ok(())
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_read_whole() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("log");
        let long = vec![b'x'; CHUNK * 2 + 17];
        let mut content = long.clone();
        content.extend_from_slice(b"\nend\n");
        std::fs::write(&p, &content)?;
        let mut r = LogReader::open(&p, 0)?;
        let first = r.next_line()?.map(|l| l.bytes.len());
        assert_eq!(first, Some(long.len()));
        let second = r.next_line()?.map(|l| (l.bytes.to_vec(), l.end));
        assert_eq!(second, Some((b"end".to_vec(), content.len() as u64)));
        Ok(())
    }

    #[test]
    fn truncating_the_last_line_at_every_offset_never_yields_a_partial_line() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("log");
        let lines: [&[u8]; 3] = [
            b"{\"seq\":1}\n",
            b"{\"seq\":2}\n",
            b"{\"seq\":3,\"pad\":\"xxxxxxxx\"}\n",
        ];
        let full: Vec<u8> = lines.concat();
        let last_start = full.len() - lines[2].len();
        for cut in last_start..=full.len() {
            std::fs::write(&p, &full[..cut])?;
            let mut r = LogReader::open(&p, 0)?;
            let mut got = Vec::new();
            while let Some(l) = r.next_line()? {
                got.push(l.bytes.to_vec());
            }
            let want = if cut == full.len() { 3 } else { 2 };
            assert_eq!(got.len(), want, "cut at {cut}");
            assert_eq!(
                r.tail_bytes(),
                if cut == full.len() {
                    0
                } else {
                    cut - last_start
                }
            );
            assert_eq!(
                complete_len(&p)?,
                if cut == full.len() {
                    full.len() as u64
                } else {
                    last_start as u64
                }
            );
        }
        Ok(())
    }
}
