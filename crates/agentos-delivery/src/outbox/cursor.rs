//! The durable delivery cursor, `<data_dir>/delivery/cursor.json`.
//!
//! ```text
//! {"version":1,"offset":<u64>,"acked_seq":<u64>,"reported_seq":<u64>,"checksum":"<sha256 hex>"}
//! ```
//!
//! - `offset`: byte offset in `windows.jsonl` just past the last line the uploader is done with
//!   (acknowledged by the server, withheld by the tier, or rejected). Always just after a `\n`.
//! - `acked_seq`: the highest seq at or before `offset`.
//! - `reported_seq`: the highest seq the server has been told about through a batch's `covers`;
//!   the next batch covers from `reported_seq + 1`, so stretches that were withheld without a
//!   request are still accounted for on the server.
//! - `checksum`: SHA-256 over `agentos-cursor-v1:<offset>:<acked_seq>:<reported_seq>`; a
//!   mismatch means the file is corrupt.
//!
//! Invariants: written only through `atomic_write` (temp + fsync + rename + dir fsync) and only
//! after the server acknowledged everything before `offset`. A missing cursor means "start at
//! 0"; a corrupt one means "rescan from 0" (safe because the server dedupes by `event_id`).
//!
//! Frozen format: do not reorder, rename or retype the fields of `CursorFile`; bump `version`.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Current cursor file format version.
pub const CURSOR_VERSION: u32 = 1;

/// Where delivery stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Byte offset just past the last finished line.
    pub offset: u64,
    /// Highest seq at or before `offset`.
    pub acked_seq: u64,
    /// Highest seq the server has been told about (`covers.to` of the last acknowledged batch).
    pub reported_seq: u64,
}

// Frozen on-disk format: see the module docs before touching.
#[derive(Serialize, Deserialize)]
struct CursorFile {
    version: u32,
    offset: u64,
    acked_seq: u64,
    reported_seq: u64,
    checksum: String,
}

/// Result of reading the cursor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorLoad {
    /// No cursor yet: start at the beginning of the log.
    Fresh,
    /// A valid cursor.
    Loaded(Cursor),
    /// The file exists but cannot be trusted; the reason names what is wrong.
    Corrupt(String),
}

impl Cursor {
    fn checksum(&self) -> String {
        let digest = Sha256::digest(
            format!(
                "agentos-cursor-v1:{}:{}:{}",
                self.offset, self.acked_seq, self.reported_seq
            )
            .as_bytes(),
        );
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The file content for this cursor.
    pub fn to_bytes(&self) -> Vec<u8> {
        let file = CursorFile {
            version: CURSOR_VERSION,
            offset: self.offset,
            acked_seq: self.acked_seq,
            reported_seq: self.reported_seq,
            checksum: self.checksum(),
        };
        let mut v = serde_json::to_vec(&file).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses cursor file content.
    pub fn from_bytes(bytes: &[u8]) -> CursorLoad {
        let file: CursorFile = match serde_json::from_slice(bytes) {
            Ok(f) => f,
            Err(e) => {
                return CursorLoad::Corrupt(format!(
                    "unparsable at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ));
            }
        };
        if file.version != CURSOR_VERSION {
            return CursorLoad::Corrupt(format!("unknown version {}", file.version));
        }
        let c = Cursor {
            offset: file.offset,
            acked_seq: file.acked_seq,
            reported_seq: file.reported_seq,
        };
        if c.checksum() != file.checksum {
            return CursorLoad::Corrupt(format!("checksum mismatch (stored {:?})", file.checksum));
        }
        CursorLoad::Loaded(c)
    }

    /// Reads the cursor file at `path`.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn load(path: &Path) -> io::Result<CursorLoad> {
        match std::fs::read(path) {
            Ok(b) => Ok(Cursor::from_bytes(&b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(CursorLoad::Fresh),
            Err(e) => Err(e),
        }
    }

    /// Durably replaces the cursor file.
    ///
    /// # Errors
    /// Any I/O error.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        agentos_config::atomic_write(path, &self.to_bytes())
    }

    /// Checks that `offset` still makes sense for the log at `log`: not past its end and just
    /// after a line break. `Err` names what is wrong (the log was truncated or replaced).
    ///
    /// # Errors
    /// A reason string when the cursor does not fit the log.
    pub fn check_against_log(&self, log: &Path) -> Result<(), String> {
        if self.offset == 0 {
            return Ok(());
        }
        let mut f = match std::fs::File::open(log) {
            Ok(f) => f,
            Err(e) => return Err(format!("log {} unreadable: {e}", log.display())),
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if self.offset > len {
            return Err(format!(
                "offset {} is past the end of {} ({len} bytes); the log was truncated or replaced",
                self.offset,
                log.display()
            ));
        }
        let mut b = [0u8; 1];
        let ok = f
            .seek(SeekFrom::Start(self.offset - 1))
            .and_then(|_| f.read_exact(&mut b))
            .is_ok();
        if !ok || b[0] != b'\n' {
            return Err(format!(
                "offset {} of {} is not at a line start; the log was rewritten",
                self.offset,
                log.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_file_form() {
        let c = Cursor {
            offset: 1234,
            acked_seq: 9,
            reported_seq: 7,
        };
        assert_eq!(Cursor::from_bytes(&c.to_bytes()), CursorLoad::Loaded(c));
    }

    #[test]
    fn a_flipped_digit_is_reported_as_corrupt() {
        let c = Cursor {
            offset: 1234,
            acked_seq: 9,
            reported_seq: 9,
        };
        let text = String::from_utf8(c.to_bytes())
            .unwrap_or_default()
            .replace("1234", "1235");
        assert!(matches!(
            Cursor::from_bytes(text.as_bytes()),
            CursorLoad::Corrupt(r) if r.contains("checksum")
        ));
        assert!(matches!(
            Cursor::from_bytes(b"{\"version\":1,"),
            CursorLoad::Corrupt(r) if r.contains("line 1")
        ));
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let c = Cursor {
            offset: 987_654,
            acked_seq: 4321,
            reported_seq: 4300,
        };
        let good = c.to_bytes();
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                match Cursor::from_bytes(&bad) {
                    CursorLoad::Loaded(got) => assert_eq!(
                        got, c,
                        "flip of bit {bit} at byte {i} changed the cursor unnoticed"
                    ),
                    CursorLoad::Corrupt(_) | CursorLoad::Fresh => {}
                }
            }
        }
    }
}
