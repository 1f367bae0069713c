//! The normalised usage record every source is reduced to, the string table it points into, and
//! the de-duplicating set reports are computed from.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::dedup::{Candidate, DedupKey, prefer};
use crate::pricing::Tokens;

/// Record flag: written by a sub-agent (Claude `isSidechain`).
pub const FLAG_SIDECHAIN: u32 = 1;
/// Record flag: the request failed (CCC status ≠ 2xx).
pub const FLAG_ERROR: u32 = 2;
/// Record flag: the request never got a final line (CCC).
pub const FLAG_INCOMPLETE: u32 = 4;
/// First bit of the source tag ([`crate::store::SourceKind::flag`]).
pub const SOURCE_SHIFT: u32 = 8;
/// The bits of the source tag.
pub const SOURCE_MASK: u32 = 0xf << SOURCE_SHIFT;

/// One billable model call: a de-duplicated Claude assistant message or one CCC request.
///
/// On disk (`records.bin` in the store) it is exactly [`UsageRecord::SIZE`] little-endian bytes in
/// field order. **Do not add, remove, retype or reorder fields** without a new store version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRecord {
    /// Identity for de-duplication.
    pub key: DedupKey,
    /// Time of the call, epoch milliseconds.
    pub ts_ms: i64,
    /// Model name (index into a [`StringTable`]).
    pub model: u32,
    /// Session id (index; 0 = none).
    pub session: u32,
    /// Project (Claude) or lane (CCC) (index; 0 = none).
    pub project: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Tokens by kind.
    pub tokens: Tokens,
}

impl UsageRecord {
    /// Encoded size in bytes.
    pub const SIZE: usize = 72;

    /// Appends the fixed-size encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.a.to_le_bytes());
        out.extend_from_slice(&self.key.b.to_le_bytes());
        out.extend_from_slice(&self.ts_ms.to_le_bytes());
        out.extend_from_slice(&self.model.to_le_bytes());
        out.extend_from_slice(&self.session.to_le_bytes());
        out.extend_from_slice(&self.project.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.tokens.input.to_le_bytes());
        out.extend_from_slice(&self.tokens.output.to_le_bytes());
        out.extend_from_slice(&self.tokens.cache_creation.to_le_bytes());
        out.extend_from_slice(&self.tokens.cache_read.to_le_bytes());
    }

    /// Decodes one record from exactly [`Self::SIZE`] bytes.
    pub fn decode(b: &[u8; Self::SIZE]) -> UsageRecord {
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let u32_at = |i: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[i..i + 4]);
            u32::from_le_bytes(a)
        };
        UsageRecord {
            key: DedupKey {
                a: u64_at(0),
                b: u64_at(8),
            },
            ts_ms: u64_at(16) as i64,
            model: u32_at(24),
            session: u32_at(28),
            project: u32_at(32),
            flags: u32_at(36),
            tokens: Tokens {
                input: u64_at(40),
                output: u64_at(48),
                cache_creation: u64_at(56),
                cache_read: u64_at(64),
            },
        }
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            sidechain: self.flags & FLAG_SIDECHAIN != 0,
            total_tokens: self.tokens.total(),
            ts_ms: self.ts_ms,
        }
    }
}

/// Interned strings; index 0 is always the empty string.
#[derive(Debug, Clone)]
pub struct StringTable {
    items: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, u32>,
}

impl Default for StringTable {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut index = FxHashMap::default();
        index.insert(empty.clone(), 0);
        StringTable {
            items: vec![empty],
            index,
        }
    }
}

impl StringTable {
    /// Index of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.items.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.items.push(a.clone());
        self.index.insert(a, i);
        i
    }

    /// The string at `i` ("" when out of range).
    pub fn get(&self, i: u32) -> &str {
        self.items.get(i as usize).map(|s| &**s).unwrap_or("")
    }

    /// Number of strings (including the empty one).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when only the empty string is present.
    pub fn is_empty(&self) -> bool {
        self.items.len() <= 1
    }

    /// All strings in index order.
    pub fn items(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|s| &**s)
    }

    /// Builds a table from strings in index order (as saved by the store).
    pub fn from_items(items: Vec<String>) -> StringTable {
        let mut t = StringTable::default();
        for s in items.iter().skip(1) {
            let a: Arc<str> = Arc::from(s.as_str());
            let i = t.items.len() as u32;
            t.items.push(a.clone());
            t.index.entry(a).or_insert(i);
        }
        t
    }
}

/// The records of one file, with strings indexed into a file-local table.
#[derive(Debug, Default)]
pub struct LocalBatch {
    /// File-local strings (index 0 = "").
    pub strings: StringTable,
    /// Records in line order.
    pub records: Vec<UsageRecord>,
}

/// A de-duplicated set of records with one shared string table.
///
/// The index stores only record positions (4 bytes a slot) and compares keys through the records
/// themselves, so it costs a fifth of a key → position map; this keeps a 400k-message history
/// well inside the memory budget.
#[derive(Default, Clone)]
pub struct RecordSet {
    /// Shared strings.
    pub strings: StringTable,
    /// Kept records, in the order first seen.
    pub records: Vec<UsageRecord>,
    index: hashbrown::HashTable<u32>,
    /// Records dropped (or replaced) as duplicates.
    pub duplicates: u64,
    /// Records that replaced an earlier copy (the store then holds both).
    pub replacements: u64,
    // True when `records` was filled without the index (a store known to be duplicate-free);
    // the index is built on the first push.
    unindexed: bool,
}

impl std::fmt::Debug for RecordSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSet")
            .field("records", &self.records.len())
            .field("strings", &self.strings.len())
            .field("duplicates", &self.duplicates)
            .finish()
    }
}

/// Slot hash of a key. The halves are already FNV hashes; a multiply mixes them.
fn slot_hash(k: &DedupKey) -> u64 {
    (k.a ^ k.b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl RecordSet {
    /// Adds one record whose strings already index `self.strings`; returns false when it was a
    /// duplicate that lost the tie-break.
    pub fn push(&mut self, r: UsageRecord) -> bool {
        if self.unindexed {
            self.build_index();
        }
        let RecordSet { records, index, .. } = self;
        let h = slot_hash(&r.key);
        match index.find(h, |&i| records[i as usize].key == r.key) {
            Some(&i) => {
                self.duplicates += 1;
                let kept = &mut records[i as usize];
                if prefer(r.candidate(), kept.candidate()) {
                    *kept = r;
                    self.replacements += 1;
                    true
                } else {
                    false
                }
            }
            None => {
                let pos = records.len() as u32;
                records.push(r);
                index.insert_unique(h, pos, |&i| slot_hash(&records[i as usize].key));
                true
            }
        }
    }

    /// Appends records known to have distinct keys without indexing them (the index is built
    /// lazily if a later [`RecordSet::push`] needs it). Only valid on a set that holds nothing yet
    /// or was filled the same way.
    pub fn extend_unique(&mut self, recs: impl IntoIterator<Item = UsageRecord>) {
        if self.records.is_empty() {
            self.unindexed = true;
        }
        if self.unindexed {
            self.records.extend(recs);
        } else {
            for r in recs {
                self.push(r);
            }
        }
    }

    fn build_index(&mut self) {
        self.unindexed = false;
        let RecordSet { records, index, .. } = self;
        index.clear();
        index.reserve(records.len(), |&i| slot_hash(&records[i as usize].key));
        for (pos, r) in records.iter().enumerate() {
            index.insert_unique(slot_hash(&r.key), pos as u32, |&i| {
                slot_hash(&records[i as usize].key)
            });
        }
    }

    /// True when a record with `key` is present.
    pub fn contains(&self, key: &DedupKey) -> bool {
        if self.unindexed {
            return self.records.iter().any(|r| r.key == *key);
        }
        self.index
            .find(slot_hash(key), |&i| self.records[i as usize].key == *key)
            .is_some()
    }

    /// Merges a file batch, remapping its strings; returns the records that were new or won a
    /// tie-break (for appending to a store).
    pub fn merge_batch(&mut self, b: LocalBatch) -> Vec<UsageRecord> {
        let map: Vec<u32> = b.strings.items().map(|s| self.strings.intern(s)).collect();
        let remap = |i: u32| map.get(i as usize).copied().unwrap_or(0);
        let mut fresh = Vec::new();
        for mut r in b.records {
            r.model = remap(r.model);
            r.session = remap(r.session);
            r.project = remap(r.project);
            // Replacements are returned too: the store is append-only and applies the same
            // tie-break when it is loaded, so the winner comes out the same.
            if self.push(r) {
                fresh.push(r);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_byte_encoding() {
        let r = UsageRecord {
            key: DedupKey::claude("m", "r"),
            ts_ms: -5,
            model: 3,
            session: 4,
            project: 5,
            flags: FLAG_SIDECHAIN,
            tokens: Tokens {
                input: 1,
                output: 2,
                cache_creation: 3,
                cache_read: u64::MAX,
            },
        };
        let mut v = Vec::new();
        r.encode(&mut v);
        assert_eq!(v.len(), UsageRecord::SIZE);
        let arr: [u8; UsageRecord::SIZE] = v.try_into().expect("size");
        assert_eq!(UsageRecord::decode(&arr), r);
    }

    #[test]
    fn a_set_loaded_without_index_still_catches_a_later_duplicate() {
        let r = |m: &str, out: u64| UsageRecord {
            key: DedupKey::claude(m, "req"),
            ts_ms: 1,
            model: 0,
            session: 0,
            project: 0,
            flags: 0,
            tokens: Tokens {
                output: out,
                ..Tokens::default()
            },
        };
        let mut set = RecordSet::default();
        set.extend_unique([r("a", 1), r("b", 1)]);
        assert!(set.contains(&DedupKey::claude("a", "req")));
        assert!(set.push(r("a", 5)), "more tokens win the tie-break");
        assert!(!set.push(r("b", 0)));
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.duplicates, 2);
        assert_eq!(set.replacements, 1);
        assert_eq!(set.records[0].tokens.output, 5);
    }
}
