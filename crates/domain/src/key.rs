//! The reservation key: a one-time secret made for one reservation. It proves possession
//! at confirmation and is the RTMP stream key during the connect window.
//!
//! 160 random bits (passed in by the caller, so this module stays pure) written as 32
//! lower-case base32 characters — safe in URLs, e-mails and OBS's stream-key field. Only
//! the SHA-256 of the key is stored: the key has full entropy, so a slow hash would add
//! nothing but cost on every publish attempt. Comparison is constant-time.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;
use thiserror::Error;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Random bytes in a key.
pub const KEY_BYTES: usize = 20;
/// Printable length of a key.
pub const KEY_CHARS: usize = KEY_BYTES * 8 / 5;

/// A reservation key in the clear. Only ever held briefly: e-mailed, then dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ReservationKey(String);

/// A text that cannot be a reservation key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a reservation key is {KEY_CHARS} characters of a-z and 2-7")]
pub struct KeyFormatError;

impl ReservationKey {
    /// Builds the key from fresh random bytes (from the OS RNG at the edge).
    pub fn from_entropy(bytes: [u8; KEY_BYTES]) -> Self {
        let mut out = String::with_capacity(KEY_CHARS);
        let mut acc: u64 = 0;
        let mut bits = 0;
        for b in bytes {
            acc = (acc << 8) | u64::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            }
        }
        Self(out)
    }

    /// Parses a key as typed or pasted (surrounding spaces ignored, case-insensitive).
    pub fn parse(input: &str) -> Result<Self, KeyFormatError> {
        let s = input.trim().to_ascii_lowercase();
        if s.len() == KEY_CHARS && s.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(s))
        } else {
            Err(KeyFormatError)
        }
    }

    /// The key in the clear, for the e-mail and the connection profile.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored at rest.
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ReservationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReservationKey(<redacted>)")
    }
}

/// SHA-256 of a reservation key; what the database holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Whether `presented` is the key this hash was made from, in constant time.
    /// Malformed input is hashed all the same, so timing tells nothing about the format.
    pub fn verify(&self, presented: &str) -> bool {
        let candidate = presented.trim().to_ascii_lowercase();
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
    }

    /// Lower-case hex, for storage and lookups.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_and_round_trips() {
        let k = ReservationKey::from_entropy([0xA5; KEY_BYTES]);
        assert_eq!(k.expose().len(), KEY_CHARS);
        assert_eq!(
            ReservationKey::parse(&k.expose().to_uppercase()).unwrap(),
            k
        );
        assert!(ReservationKey::parse("short").is_err());
        assert!(ReservationKey::parse(&"1".repeat(KEY_CHARS)).is_err());
        assert_eq!(format!("{k:?}"), "ReservationKey(<redacted>)");
    }

    #[test]
    fn known_base32_vector() {
        // RFC 4648 alphabet: 20 zero bytes are 32 'a's, 0xff bytes are 32 '7's.
        assert_eq!(
            ReservationKey::from_entropy([0; KEY_BYTES]).expose(),
            "a".repeat(32)
        );
        assert_eq!(
            ReservationKey::from_entropy([0xff; KEY_BYTES]).expose(),
            "7".repeat(32)
        );
    }

    #[test]
    fn hash_verifies_only_the_right_key() {
        let k = ReservationKey::from_entropy([7; KEY_BYTES]);
        let other = ReservationKey::from_entropy([8; KEY_BYTES]);
        let h = k.hash();
        assert!(h.verify(k.expose()));
        assert!(h.verify(&format!(" {} ", k.expose().to_uppercase())));
        assert!(!h.verify(other.expose()));
        assert!(!h.verify(""));
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex("zz"), None);
    }
}
