//! License verification must reject garbage with an error, never a panic.
#![no_main]

use agentos_core::license::{Keyring, signing_key_from_seed, verify_pack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut ring = Keyring::new();
    ring.insert("k1", signing_key_from_seed(&[3u8; 32]).verifying_key());
    let _ = verify_pack(data, &ring, 1_900_000_000, Some("device"));
});
