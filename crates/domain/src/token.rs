//! Play tokens: what the center hands a viewer after the password check, and what the
//! stream node checks on every play request without asking the database.
//!
//! A token is `base64url(payload) "." base64url(tag)` (URL-safe alphabet, no padding),
//! where `tag` is HMAC-SHA256 under a 32-byte secret shared by the center and the stream
//! nodes, computed over a fixed context label followed by the payload. The payload is a
//! fixed 34-byte binary record:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | version, [`VERSION`] |
//! | 1 | 8 | channel id, big-endian `i64` |
//! | 9 | 1 | 0 = no reservation (filler / channel only), 1 = reservation follows |
//! | 10 | 8 | reservation id, big-endian `i64` (zero when absent) |
//! | 18 | 8 | session, big-endian `u64` |
//! | 26 | 8 | expiry, big-endian `i64` milliseconds since the Unix epoch |
//!
//! The payload is readable by anyone holding the token (it is signed, not encrypted); it
//! holds nothing secret. Tokens are short-lived, so there is no revocation list: the
//! secret is rotated to revoke all of them at once.
//!
//! [`verify`] refuses over-long input before any decoding, compares the tag in constant
//! time, interprets the payload only after the tag matched, and accepts exactly one
//! canonical encoding per token (strict base64, fixed layout, zero padding bytes), so a
//! token cannot be altered without being refused.

use crate::{ChannelId, ReservationId, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The payload layout this module writes and reads.
pub const VERSION: u8 = 1;
/// Tokens longer than this are refused before any work is done.
pub const MAX_TOKEN_LEN: usize = 512;

const PAYLOAD_LEN: usize = 34;
const TAG_LEN: usize = 32;
/// Binds the tag to this use of the secret, should the secret ever sign anything else.
const CONTEXT: &[u8] = b"slotcast play token\0";

type HmacSha256 = Hmac<Sha256>;

/// What a play token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayClaims {
    /// The channel that may be played.
    pub channel: ChannelId,
    /// The program or replay; `None` for the channel alone (filler between programs).
    pub reservation: Option<ReservationId>,
    /// Random per grant, so one viewer is counted once across playback protocols.
    pub session: u64,
    /// The token is refused from this instant on. Carried to the millisecond: a finer
    /// instant is truncated to whole milliseconds when signed.
    pub expires: Timestamp,
}

/// Why a play token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token: too long, not two base64url parts, wrong length, unknown version or a
    /// non-canonical field.
    #[error("the play token is malformed")]
    Malformed,
    /// Well-formed, but not signed with this secret (forged, altered or from another server).
    #[error("the play token's signature does not match")]
    BadSignature,
    /// Authentic, but its time is up.
    #[error("the play token expired at {at}")]
    Expired {
        /// When it expired.
        at: Timestamp,
    },
}

/// Signs `claims` into a printable, URL-safe token.
pub fn sign(secret: &[u8; 32], claims: &PlayClaims) -> String {
    let payload = encode_payload(claims);
    let tag = mac(secret, &payload).finalize().into_bytes();
    let mut out = URL_SAFE_NO_PAD.encode(payload);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut out);
    out
}

/// Checks a token at `now` and returns what it grants.
pub fn verify(secret: &[u8; 32], token: &str, now: Timestamp) -> Result<PlayClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = decode_exact::<PAYLOAD_LEN>(payload)?;
    let tag = decode_exact::<TAG_LEN>(tag)?;
    mac(secret, &payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = decode_payload(&payload)?;
    if now >= claims.expires {
        return Err(TokenError::Expired { at: claims.expires });
    }
    Ok(claims)
}

/// The secret of broadcaster preview tokens, derived from the play-token secret: a preview
/// token (same format, the reservation set) opens the publisher's preview before the
/// start, and a viewer's play token can never be used for it, nor the other way round.
pub fn preview_secret(secret: &[u8; 32]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"slotcast preview token secret");
    mac.finalize().into_bytes().into()
}

fn mac(secret: &[u8; 32], payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(CONTEXT);
    mac.update(payload);
    mac
}

/// Decodes one base64url part that must hold exactly `N` bytes. The length is checked on
/// the text first, so nothing larger than the part is ever allocated.
fn decode_exact<const N: usize>(part: &str) -> Result<[u8; N], TokenError> {
    if part.len() != (4 * N).div_ceil(3) {
        return Err(TokenError::Malformed);
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or(TokenError::Malformed)
}

fn encode_payload(claims: &PlayClaims) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[0] = VERSION;
    p[1..9].copy_from_slice(&claims.channel.0.to_be_bytes());
    if let Some(r) = claims.reservation {
        p[9] = 1;
        p[10..18].copy_from_slice(&r.0.to_be_bytes());
    }
    p[18..26].copy_from_slice(&claims.session.to_be_bytes());
    p[26..34].copy_from_slice(&claims.expires.as_millisecond().to_be_bytes());
    p
}

fn decode_payload(p: &[u8; PAYLOAD_LEN]) -> Result<PlayClaims, TokenError> {
    let field = |at: usize| -> [u8; 8] {
        let mut b = [0u8; 8];
        b.copy_from_slice(&p[at..at + 8]);
        b
    };
    if p[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let reservation = match (p[9], field(10)) {
        (0, [0, 0, 0, 0, 0, 0, 0, 0]) => None,
        (1, id) => Some(ReservationId(i64::from_be_bytes(id))),
        _ => return Err(TokenError::Malformed),
    };
    let expires = Timestamp::from_millisecond(i64::from_be_bytes(field(26)))
        .map_err(|_| TokenError::Malformed)?;
    Ok(PlayClaims {
        channel: ChannelId(i64::from_be_bytes(field(1))),
        reservation,
        session: u64::from_be_bytes(field(18)),
        expires,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn preview_tokens_and_play_tokens_do_not_mix() {
        let secret = [7u8; 32];
        let preview = preview_secret(&secret);
        assert_ne!(preview, secret);
        let now = Timestamp::from_second(1_000).unwrap();
        let claims = PlayClaims {
            channel: ChannelId(1),
            reservation: Some(ReservationId(2)),
            session: 3,
            expires: Timestamp::from_second(2_000).unwrap(),
        };
        let t = sign(&preview, &claims);
        assert_eq!(verify(&preview, &t, now), Ok(claims));
        assert_eq!(verify(&secret, &t, now), Err(TokenError::BadSignature));
        let play = sign(&secret, &claims);
        assert_eq!(verify(&preview, &play, now), Err(TokenError::BadSignature));
    }

    use super::*;
    use proptest::prelude::*;

    const SECRET: [u8; 32] = [0x42; 32];

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn claims() -> PlayClaims {
        PlayClaims {
            channel: ChannelId(3),
            reservation: Some(ReservationId(42)),
            session: 0xDEAD_BEEF_0123_4567,
            expires: ts("2030-05-01T12:00:30.250Z"),
        }
    }

    fn is_url_safe(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    }

    #[test]
    fn round_trips_with_and_without_reservation() {
        let now = ts("2030-05-01T12:00:00Z");
        for c in [
            claims(),
            PlayClaims {
                reservation: None,
                ..claims()
            },
            PlayClaims {
                channel: ChannelId(i64::MIN),
                reservation: Some(ReservationId(0)),
                session: u64::MAX,
                expires: ts("9999-12-30T21:59:59.999Z"),
            },
        ] {
            let token = sign(&SECRET, &c);
            assert!(is_url_safe(&token), "{token}");
            assert_eq!(token.matches('.').count(), 1);
            assert!(!token.contains('='));
            assert!(token.len() <= MAX_TOKEN_LEN);
            assert_eq!(verify(&SECRET, &token, now), Ok(c));
        }
    }

    #[test]
    fn signing_is_deterministic_and_covers_every_field() {
        let a = sign(&SECRET, &claims());
        assert_eq!(a, sign(&SECRET, &claims()));
        let variants = [
            PlayClaims {
                channel: ChannelId(4),
                ..claims()
            },
            PlayClaims {
                reservation: None,
                ..claims()
            },
            PlayClaims {
                session: 1,
                ..claims()
            },
            PlayClaims {
                expires: ts("2030-05-01T12:00:30.251Z"),
                ..claims()
            },
        ];
        for v in variants {
            assert_ne!(sign(&SECRET, &v), a);
        }
    }

    #[test]
    fn expiry_is_carried_to_the_millisecond_rounded_down() {
        let c = PlayClaims {
            expires: ts("2030-05-01T12:00:30.250999Z"),
            ..claims()
        };
        let got = verify(&SECRET, &sign(&SECRET, &c), ts("2030-01-01T00:00:00Z")).unwrap();
        assert_eq!(got.expires, ts("2030-05-01T12:00:30.250Z"));
    }

    #[test]
    fn tampering_with_any_byte_is_refused() {
        let token = sign(&SECRET, &claims());
        let now = ts("2030-05-01T12:00:00Z");
        let replacements = b"AQgz09-_.=+/ \0";
        for i in 0..token.len() {
            for &r in replacements {
                let mut bytes = token.clone().into_bytes();
                if bytes[i] == r {
                    continue;
                }
                bytes[i] = r;
                let tampered = String::from_utf8(bytes).unwrap();
                let got = verify(&SECRET, &tampered, now);
                assert!(
                    matches!(
                        got,
                        Err(TokenError::BadSignature) | Err(TokenError::Malformed)
                    ),
                    "byte {i} -> {:?}: {got:?}",
                    char::from(r)
                );
            }
        }
        // Dropping or adding characters anywhere.
        assert_eq!(
            verify(&SECRET, &token[1..], now),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&SECRET, &token[..token.len() - 1], now),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&SECRET, &format!("{token}A"), now),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&SECRET, &format!("{token}.x"), now),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_re_signed_payload_with_a_wrong_version_or_flag_is_malformed() {
        let now = ts("2030-05-01T12:00:00Z");
        let resign = |p: [u8; PAYLOAD_LEN]| {
            let tag = mac(&SECRET, &p).finalize().into_bytes();
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(p),
                URL_SAFE_NO_PAD.encode(tag)
            )
        };
        let good = encode_payload(&claims());
        assert_eq!(verify(&SECRET, &resign(good), now), Ok(claims()));

        let mut v2 = good;
        v2[0] = 2;
        assert_eq!(
            verify(&SECRET, &resign(v2), now),
            Err(TokenError::Malformed)
        );

        let mut flag = good;
        flag[9] = 2;
        assert_eq!(
            verify(&SECRET, &resign(flag), now),
            Err(TokenError::Malformed)
        );

        let mut stray = encode_payload(&PlayClaims {
            reservation: None,
            ..claims()
        });
        stray[17] = 1;
        assert_eq!(
            verify(&SECRET, &resign(stray), now),
            Err(TokenError::Malformed)
        );

        let mut far = good;
        far[26..34].copy_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(
            verify(&SECRET, &resign(far), now),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn another_secret_is_refused() {
        let token = sign(&SECRET, &claims());
        let mut other = SECRET;
        other[31] ^= 1;
        assert_eq!(
            verify(&other, &token, ts("2030-05-01T12:00:00Z")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expiry_boundary() {
        let c = claims();
        let token = sign(&SECRET, &c);
        let just_before = c.expires - jiff::SignedDuration::from_nanos(1);
        assert_eq!(verify(&SECRET, &token, just_before), Ok(c));
        assert_eq!(
            verify(&SECRET, &token, c.expires),
            Err(TokenError::Expired { at: c.expires })
        );
        assert_eq!(
            verify(&SECRET, &token, ts("2031-01-01T00:00:00Z")),
            Err(TokenError::Expired { at: c.expires })
        );
    }

    #[test]
    fn expired_is_only_reported_for_authentic_tokens() {
        let token = sign(&SECRET, &claims());
        assert_eq!(
            verify(&[0; 32], &token, ts("2031-01-01T00:00:00Z")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_and_huge_input_are_malformed() {
        let now = ts("2030-05-01T12:00:00Z");
        for g in [
            "",
            ".",
            "..",
            "abc",
            "abc.def",
            "not a token",
            "é.é",
            "AAAA.AAAA",
            "🦀🦀🦀.🦀",
        ] {
            assert_eq!(verify(&SECRET, g, now), Err(TokenError::Malformed), "{g:?}");
        }
        let token = sign(&SECRET, &claims());
        let padded = format!("{token}{}", " ".repeat(MAX_TOKEN_LEN));
        assert_eq!(verify(&SECRET, &padded, now), Err(TokenError::Malformed));
        let huge = "A".repeat(10 * 1024 * 1024);
        assert_eq!(verify(&SECRET, &huge, now), Err(TokenError::Malformed));
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_text(s in "\\PC{0,600}") {
            let _ = verify(&SECRET, &s, Timestamp::UNIX_EPOCH);
        }

        #[test]
        fn verify_never_panics_on_token_shaped_text(
            s in "[A-Za-z0-9_=+/-]{0,60}\\.[A-Za-z0-9_=+/.-]{0,60}"
        ) {
            let got = verify(&SECRET, &s, Timestamp::UNIX_EPOCH);
            prop_assert!(got.is_err());
        }

        #[test]
        fn any_claims_round_trip(
            channel in any::<i64>(),
            reservation in proptest::option::of(any::<i64>()),
            session in any::<u64>(),
            expires_ms in (Timestamp::MIN.as_millisecond() + 1)..=Timestamp::MAX.as_millisecond(),
        ) {
            let c = PlayClaims {
                channel: ChannelId(channel),
                reservation: reservation.map(ReservationId),
                session,
                expires: Timestamp::from_millisecond(expires_ms).unwrap(),
            };
            let token = sign(&SECRET, &c);
            prop_assert!(token.len() <= MAX_TOKEN_LEN);
            let got = verify(&SECRET, &token, Timestamp::from_millisecond(expires_ms - 1).unwrap());
            prop_assert_eq!(got, Ok(c));
        }
    }
}
