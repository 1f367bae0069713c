//! A fast path for the rollout lines that must be parsed (`token_count`, `turn_context`,
//! `session_meta`): one pass over the bytes that checks the whole line is JSON and picks out the
//! few fields [`Envelope`] holds, without serde's per-key string handling (about 40 % of a cold
//! read's CPU went into serde_json before; see `docs/perf/codex.md`).
//!
//! It answers only when it is sure. A line that is not plain — an escape in a key or in a kept
//! string, a non-ASCII key, a token count that is not a plain `u64`, a kept field twice, nesting
//! deeper than [`MAX_DEPTH`], anything malformed — gets `None`, and the caller parses it with
//! serde_json, which then decides (and words the error a skipped line is reported with). So
//! whenever this returns `Some`, serde_json returns the same value: the tests below check that
//! on lines mutated at random.

use std::borrow::Cow;

use super::parser::{CodexUsage, Envelope, Info, Payload};

/// Nesting this reader follows before it gives the line to serde_json (whose limit is 128).
const MAX_DEPTH: u32 = 64;

/// The keys of the objects Codex writes, in its order (see [`Reader::object_hinted`]).
const ENVELOPE_KEYS: &[&[u8]] = &[b"\"timestamp\"", b"\"type\"", b"\"payload\""];
const TOKEN_COUNT_KEYS: &[&[u8]] = &[b"\"type\"", b"\"info\"", b"\"rate_limits\""];
const TURN_CONTEXT_KEYS: &[&[u8]] = &[
    b"\"cwd\"",
    b"\"approval_policy\"",
    b"\"sandbox_policy\"",
    b"\"model\"",
];
const INFO_KEYS: &[&[u8]] = &[
    b"\"total_token_usage\"",
    b"\"model_context_window\"",
    b"\"last_token_usage\"",
];
const USAGE_KEYS: &[&[u8]] = &[
    b"\"input_tokens\"",
    b"\"cached_input_tokens\"",
    b"\"output_tokens\"",
    b"\"reasoning_output_tokens\"",
    b"\"total_tokens\"",
];

/// Parses `line` (one complete JSON text) into an [`Envelope`], or `None` when serde_json
/// should look at it.
pub(super) fn envelope(line: &[u8]) -> Option<Envelope<'_>> {
    let mut r = Reader { b: line, i: 0 };
    let mut e = Envelope {
        timestamp: None,
        kind: None,
        payload: None,
    };
    let mut seen = Seen::default();
    r.object_hinted(ENVELOPE_KEYS, |r, key| match key {
        b"timestamp" => {
            seen.once(0)?;
            e.timestamp = r.kept_str()?;
            Some(())
        }
        b"type" => {
            seen.once(1)?;
            e.kind = r.kept_str()?;
            Some(())
        }
        b"payload" => {
            seen.once(2)?;
            // Codex writes the type first, so the payload's usual keys are known here.
            let hints = match e.kind.as_deref() {
                Some("event_msg") => TOKEN_COUNT_KEYS,
                Some("turn_context") => TURN_CONTEXT_KEYS,
                _ => &[],
            };
            r.payload(hints, &mut e.payload)
        }
        _ => r.skip(1),
    })?;
    r.ws();
    (r.i == line.len()).then_some(e)
}

/// The kept fields of one object seen so far: serde rejects a known field given twice.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn once(&mut self, bit: u8) -> Option<()> {
        let m = 1 << bit;
        if self.0 & m != 0 {
            return None;
        }
        self.0 |= m;
        Some(())
    }
}

/// A mask with the high bit set in the byte lanes of `w` (little endian) that hold a quote, a
/// backslash or a control byte, exact up to the first such lane (the lowest set bit), which is
/// all [`Reader::string`] uses: the usual "has a zero byte" bit trick.
#[inline]
fn special(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    /// Skips JSON whitespace.
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Consumes `c` (after whitespace) or fails.
    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// Consumes the literal `w` at the cursor.
    #[inline]
    fn lit(&mut self, w: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + w.len())? == w {
            self.i += w.len();
            Some(())
        } else {
            None
        }
    }

    /// Moves the cursor to the next quote, backslash or control byte (eight bytes at a time),
    /// or to within eight bytes of the end of the line.
    #[inline]
    fn skip_plain(&mut self) {
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let m = special(u64::from_le_bytes(w));
            if m != 0 {
                self.i += (m.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
    }

    /// A string: its raw contents (between the quotes) and whether it has an escape.
    ///
    /// Inlined for the usual case, a short string without escapes (every key); the rest of a
    /// string that has an escape or runs into the end of the line is [`Reader::string_rest`].
    #[inline]
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        self.skip_plain();
        if self.b.get(self.i) == Some(&b'"') {
            self.i += 1;
            return Some((&self.b[start..self.i - 1], false));
        }
        self.string_rest(start)
    }

    /// The rest of [`Reader::string`] from the cursor (inside the string that began at
    /// `start`, no escape seen yet).
    #[inline(never)]
    fn string_rest(&mut self, start: usize) -> Option<(&'a [u8], bool)> {
        let mut escaped = false;
        loop {
            self.skip_plain();
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some((&self.b[start..self.i - 1], escaped)),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0..=0x1f => return None,
                _ => {}
            }
        }
    }

    /// The rest of an escape after its backslash.
    fn escape(&mut self) -> Option<()> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let hex = self.b.get(self.i..self.i + 4)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                self.i += 4;
                Some(())
            }
            _ => None,
        }
    }

    /// `null`, or a string without escapes (borrowed, as serde borrows it).
    fn kept_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'n' => {
                self.lit(b"null")?;
                Some(None)
            }
            b'"' => {
                let (raw, escaped) = self.string()?;
                if escaped {
                    return None;
                }
                Some(Some(Cow::Borrowed(std::str::from_utf8(raw).ok()?)))
            }
            _ => None,
        }
    }

    /// Runs `field` on every member of the object at the cursor, the cursor on its value.
    /// Keys must be plain ASCII (serde checks every key of a struct is UTF-8).
    #[inline]
    fn object(&mut self, field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.object_hinted(&[], field)
    }

    /// [`Reader::object`] for an object whose keys usually come in the order of `hints` (each
    /// a key with its quotes, plain ASCII without escapes): the next expected key is compared
    /// as it stands instead of being scanned. A key that is not the expected one is scanned as
    /// usual and moves the expectation on to the hint after it, so members in another order,
    /// missing or extra cost a scan each and nothing else: the same keys come out either way.
    #[inline]
    fn object_hinted(
        &mut self,
        hints: &[&'static [u8]],
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        let mut next = 0;
        loop {
            self.ws();
            let key: &'a [u8] = match hints.get(next) {
                Some(h) if self.b[self.i..].starts_with(h) => {
                    self.i += h.len();
                    next += 1;
                    &h[1..h.len() - 1]
                }
                _ => {
                    let (key, escaped) = self.string()?;
                    if escaped || !key.is_ascii() {
                        return None;
                    }
                    if let Some(p) = hints.iter().position(|h| &h[1..h.len() - 1] == key) {
                        next = p + 1;
                    }
                    key
                }
            };
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips one value of any kind at nesting `depth`, checking its syntax.
    fn skip(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.object(|r, _| r.skip(depth + 1))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Digits at the cursor; how many.
    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A number of any kind (JSON's grammar: no leading zeros, no bare `.` or exponent).
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A plain non-negative integer that fits a `u64` (no sign, fraction or exponent: the
    /// delimiter check after the value rejects those).
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        Some(v)
    }

    /// `payload`: `null` or an object, into `out` (in place: the payload is most of an
    /// [`Envelope`], and moving it out of a return value cost more than parsing some keys).
    fn payload(&mut self, hints: &[&'static [u8]], out: &mut Option<Payload<'a>>) -> Option<()> {
        if self.peek()? == b'n' {
            self.lit(b"null")?;
            *out = None;
            return Some(());
        }
        let p = out.insert(Payload {
            kind: None,
            id: None,
            cwd: None,
            model: None,
            info: None,
        });
        let mut seen = Seen::default();
        self.object_hinted(hints, |r, key| match key {
            b"type" => {
                seen.once(0)?;
                p.kind = r.kept_str()?;
                Some(())
            }
            b"id" => {
                seen.once(1)?;
                p.id = r.kept_str()?;
                Some(())
            }
            b"cwd" => {
                seen.once(2)?;
                p.cwd = r.kept_str()?;
                Some(())
            }
            b"model" => {
                seen.once(3)?;
                p.model = r.kept_str()?;
                Some(())
            }
            b"info" => {
                seen.once(4)?;
                p.info = r.info()?;
                Some(())
            }
            _ => r.skip(2),
        })
    }

    /// `info`: `null` or an object with the two usages.
    fn info(&mut self) -> Option<Option<Info>> {
        if self.peek()? == b'n' {
            self.lit(b"null")?;
            return Some(None);
        }
        let mut info = Info {
            total_token_usage: None,
            last_token_usage: None,
        };
        let mut seen = Seen::default();
        self.object_hinted(INFO_KEYS, |r, key| match key {
            b"total_token_usage" => {
                seen.once(0)?;
                info.total_token_usage = r.usage()?;
                Some(())
            }
            b"last_token_usage" => {
                seen.once(1)?;
                info.last_token_usage = r.usage()?;
                Some(())
            }
            _ => r.skip(3),
        })?;
        Some(Some(info))
    }

    /// A usage: `null` or an object of counts (missing ones are 0).
    fn usage(&mut self) -> Option<Option<CodexUsage>> {
        if self.peek()? == b'n' {
            self.lit(b"null")?;
            return Some(None);
        }
        let mut u = CodexUsage::default();
        let mut seen = Seen::default();
        self.object_hinted(USAGE_KEYS, |r, key| {
            let (bit, slot) = match key {
                b"input_tokens" => (0, &mut u.input_tokens),
                b"cached_input_tokens" => (1, &mut u.cached_input_tokens),
                b"output_tokens" => (2, &mut u.output_tokens),
                b"reasoning_output_tokens" => (3, &mut u.reasoning_output_tokens),
                _ => return r.skip(4),
            };
            seen.once(bit)?;
            *slot = r.u64()?;
            Some(())
        })?;
        Some(Some(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines of every kind the reader parses, in the shapes Codex writes and some it might.
    const LINES: &[&str] = &[
        r#"{"timestamp":"2026-09-23T12:10:22.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":53925,"cached_input_tokens":35066,"output_tokens":119,"reasoning_output_tokens":47,"total_tokens":54044},"model_context_window":272000,"last_token_usage":{"input_tokens":53925,"cached_input_tokens":35066,"output_tokens":119,"reasoning_output_tokens":47,"total_tokens":54044}},"rate_limits":{"primary":{"used_percent":12.0,"window_minutes":300,"resets_in":1E3,"x":-0.5e-2,"y":[0,-0,10.25]}}}}"#,
        r#"{"timestamp":"2026-09-01T03:57:00.000Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":null}}"#,
        r#"{"timestamp":"2026-09-01T03:57:00.000Z","type":"turn_context","payload":{"cwd":"/home/dev/src/project-2","approval_policy":"on-request","sandbox_policy":{"mode":"workspace-write","writable_roots":[],"network_access":false},"model":"gpt-5-mini","effort":"medium","summary":"auto"}}"#,
        r#"{"timestamp":"2026-09-01T03:56:54.000Z","type":"session_meta","payload":{"id":"20974cd8-b66b-45e8-b43e-757e553e8c56","timestamp":"2026-09-01T03:56:54.000Z","cwd":"/home/dev/src/project-2","originator":"codex_cli_rs","cli_version":"0.63.0","instructions":null,"git":{"commit_hash":"a6a4388c","branch":"main"}}}"#,
        r#" { "payload" : { "info" : { "last_token_usage" : { "output_tokens" : 0 , "input_tokens" : 18446744073709551615 } } , "type" : "token_count" } , "type" : "event_msg" , "timestamp" : "2026-09-01T00:00:00Z" } "#,
        r#"{"timestamp":"2026-09-01T00:00:00Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":null,"last_token_usage":{}},"x":[1,-2.5e+3,true,false,null,"a\"b\\c\u00e9",{"y":[[]]}]}}"#,
        r#"{"timestamp":"2026-09-01T00:00:00Z","type":"turn_context","payload":{"cwd":"/ü/ñ","model":"gpt-5-codex","note":"é ✓"}}"#,
        r#"{"timestamp":"2026-09-01T00:00:00Z","type":"turn_context","payload":{"cwd":"C:\\work","model":"gpt\u002d5"}}"#,
        r#"{"timestamp":"2026-09-01T00:00:00Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":01}}}}"#,
        r#"{"type":"event_msg","payload":{"type":"token_count","info":{"last_token_usage":{"input_tokens":5,"input_tokens":6}}}}"#,
        r#"{"timestamp":"x","timestamp":"y","payload":null}"#,
        r#"{"t\u0069mestamp":"2026-09-01T00:00:00Z","payload":{"type":"token_count","info":{"last_token_usage":{"input_tokens":1.0}}}}"#,
        r#"["2026-09-01T00:00:00Z","event_msg",null]"#,
        r#"{}"#,
    ];

    /// The lines Codex writes take the fast path (else it would not make anything faster).
    #[test]
    fn plain_lines_take_the_fast_path_and_agree_with_serde() {
        for l in &LINES[..7] {
            let fast = envelope(l.trim().as_bytes()).unwrap_or_else(|| panic!("fast path: {l}"));
            let slow: Envelope<'_> = serde_json::from_str(l.trim()).expect("serde");
            assert_eq!(fast, slow, "{l}");
        }
        // Escapes in kept strings, a leading zero, a float count, duplicates, an escaped key,
        // a top-level array: serde decides.
        for l in &LINES[7..13] {
            assert_eq!(envelope(l.as_bytes()), None, "{l}");
        }
        assert!(envelope(b"{}").is_some());
    }

    /// Bytes that change the meaning of JSON when inserted or overwritten.
    const NASTY: &[u8] = b"\"\\{}[],: 0-.eEnutf\x01\x7f\xc3\xff/";

    fn mutate(line: &str, ops: &[(u8, usize, usize)]) -> Vec<u8> {
        let mut b = line.as_bytes().to_vec();
        for &(op, at, v) in ops {
            if b.is_empty() {
                break;
            }
            let nasty = NASTY[v % NASTY.len()];
            // Half the edits land on or next to a structural byte or a number's punctuation,
            // where JSON breaks in the most interesting ways (a trailing comma, a missing colon,
            // an unclosed string, a bare exponent).
            let structural: Vec<usize> = (0..b.len())
                .filter(|&i| b"{}[],:\"\\.eE+-0".contains(&b[i]))
                .collect();
            let at = if op & 8 != 0 && !structural.is_empty() {
                structural[at % structural.len()] + usize::from(op & 16 != 0)
            } else {
                at
            } % b.len();
            match op % 5 {
                0 => b.truncate(at),
                1 => {
                    b.remove(at);
                }
                2 => b.insert(at, nasty),
                3 => b[at] = nasty,
                _ => {
                    // A torn write: a piece of the line, then another whole line.
                    let other = LINES[v % LINES.len()].as_bytes();
                    b.truncate(at);
                    b.extend_from_slice(other);
                }
            }
        }
        b
    }

    #[test]
    fn the_word_scan_stops_at_the_first_quote_backslash_or_control_byte() {
        for (text, at) in [
            (&b"abcdefgh"[..], None),
            (b"abc\"efgh", Some(3)),
            (b"\\bcdefgh", Some(0)),
            (b"abcdefg\x1f", Some(7)),
            (b"ab\x00\"\"\"\"\"", Some(2)),
            (b"\x7f\x80\xff !#[]", None),
            (b"\xe2\x9c\x93\xc3\xa9\x01\"z", Some(5)),
        ] {
            let mut w = [0u8; 8];
            w.copy_from_slice(text);
            let m = special(u64::from_le_bytes(w));
            let first = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            assert_eq!(first, at, "{text:?}");
        }
    }

    /// One value skipped to the end of `text`, as the envelope's unknown fields are.
    fn skips(text: &[u8]) -> bool {
        let mut r = Reader { b: text, i: 0 };
        r.skip(1).is_some() && {
            r.ws();
            r.i == text.len()
        }
    }

    fn serde_skips(text: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn skipped_values_follow_json_grammar_exactly() {
        for v in [
            "0",
            "-0",
            "1",
            "-",
            "1.",
            "1.e3",
            "1e",
            "1e+",
            "01",
            "-01",
            "1.5e-3",
            "1E3",
            ".5",
            "+1",
            "0x1",
            "1..2",
            "2.5E+10",
            "true",
            "tru",
            "nul",
            "\"\"",
            "\"\\u00e9\"",
            "\"\\u00g9\"",
            "\"\\x\"",
            "\"a\\\"",
            "[]",
            "[,]",
            "[1,]",
            "[1 2]",
            "{}",
            "{,}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{1:1}",
            "[[[]]]",
            " [ 1 , { } ] ",
        ] {
            assert_eq!(skips(v.as_bytes()), serde_skips(v.as_bytes()), "{v}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Short texts over JSON's punctuation: the skipper accepts exactly what serde_json
        /// accepts as a value (numbers' corners, escapes, empty and unclosed containers).
        #[test]
        fn skipping_accepts_only_what_serde_accepts(
            text in proptest::collection::vec(
                proptest::sample::select(b"0123456789.eE+-\"\\{}[],: nultrfasx".to_vec()),
                1..14,
            ),
        ) {
            prop_assert_eq!(skips(&text), serde_skips(&text), "{:?}", String::from_utf8_lossy(&text));
        }

        /// Whatever the fast path accepts, serde_json accepts with the same value.
        #[test]
        fn the_fast_path_never_disagrees_with_serde(
            which in 0..LINES.len(),
            ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 0..4),
        ) {
            let line = mutate(LINES[which], &ops);
            if let Some(fast) = envelope(&line) {
                let slow: Result<Envelope<'_>, _> = serde_json::from_slice(&line);
                prop_assert!(slow.is_ok(), "serde rejects {:?}: {:?}", String::from_utf8_lossy(&line), slow.err());
                prop_assert_eq!(Some(fast), slow.ok());
            }
        }
    }
}
