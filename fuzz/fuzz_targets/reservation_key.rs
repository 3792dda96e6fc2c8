//! The reservation key and its stored hash: `ReservationKey::parse`,
//! `ReservationKey::from_entropy`, `KeyHash::verify`, `KeyHash::from_hex` / `to_hex`.
//!
//! - A parsed key is the input trimmed and lower-cased, 32 characters of the base32
//!   alphabet, and its hash verifies the input.
//! - A key made from any 20 bytes parses back to itself, and its hash verifies exactly the
//!   texts that trim and lower-case to it.
//! - `from_hex` accepts exactly the 64-digit hex texts, and `to_hex` gives them back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_domain::key::{KEY_BYTES, KEY_CHARS};
use slotcast_domain::{KeyHash, ReservationKey};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    entropy: [u8; KEY_BYTES],
    hash: [u8; 32],
    /// Which characters of the generated key to upper-case (bit i → character i).
    case_mask: u32,
    pad_left: u8,
    pad_right: u8,
    text: &'a str,
}

fn is_key_text(s: &str) -> bool {
    s.len() == KEY_CHARS
        && s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

fn run(input: Input<'_>) {
    // Arbitrary text as a key.
    let text = input.text;
    let normalised = text.trim().to_ascii_lowercase();
    match ReservationKey::parse(text) {
        Ok(key) => {
            assert_eq!(key.expose(), normalised);
            assert!(is_key_text(key.expose()), "parsed {:?}", key.expose());
            assert!(key.hash().verify(text), "a parsed key does not verify its text");
            assert_eq!(ReservationKey::parse(key.expose()), Ok(key.clone()));
            assert_eq!(format!("{key:?}"), "ReservationKey(<redacted>)");
        }
        Err(_) => assert!(!is_key_text(&normalised), "refused {text:?}"),
    }

    // A generated key, typed back with any case and surrounding spaces.
    let key = ReservationKey::from_entropy(input.entropy);
    assert!(is_key_text(key.expose()), "generated {:?}", key.expose());
    let typed: String = " ".repeat(usize::from(input.pad_left % 4))
        + &key
            .expose()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if input.case_mask >> i & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect::<String>()
        + &"\t".repeat(usize::from(input.pad_right % 3));
    assert_eq!(ReservationKey::parse(&typed), Ok(key.clone()));
    let hash = key.hash();
    assert!(hash.verify(&typed));
    assert_eq!(hash.verify(text), normalised == key.expose(), "verify({text:?})");
    // Different entropy, different key.
    let mut other = input.entropy;
    other[usize::from(input.pad_left) % KEY_BYTES] ^= 1 << (input.pad_right % 8);
    assert_ne!(ReservationKey::from_entropy(other), key);

    // The stored hash's hex form.
    let stored = KeyHash(input.hash);
    let hex = stored.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(KeyHash::from_hex(&hex), Some(stored));
    assert_eq!(KeyHash::from_hex(&hex.to_ascii_uppercase()), Some(stored));
    match KeyHash::from_hex(text) {
        Some(h) => assert_eq!(
            h.to_hex(),
            text.to_ascii_lowercase(),
            "from_hex accepted {text:?}, which is not 64 hex digits"
        ),
        None => assert!(
            text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()),
            "from_hex refused {text:?}"
        ),
    }
}

fuzz_target!(|input: Input<'_>| run(input));
