//! Play tokens: what the center hands a viewer after the password check, and what the
//! stream node checks when a viewer asks to be admitted, without asking the database.
//!
//! A token grants **one program** (a reservation) and one **kind** of access to it: its
//! live stream, its replay, or the broadcaster's preview. The node admits a live token
//! only for that program's media (never another program that follows it on the channel),
//! a replay token only for that program's recording, a preview token only for the
//! publisher's preview. A token is checked once, at admission; the viewer then holds a
//! play session on the node that lives while it keeps reading or polling, so a short
//! token lifetime never cuts a viewer off.
//!
//! A token is `base64url(payload) "." base64url(signature)` (URL-safe alphabet, no
//! padding), where `signature` is Ed25519 under the center's private key over a fixed
//! context label followed by the payload. Stream nodes hold only the public key: a node
//! can check a token but never make one, so a node that is broken into cannot grant
//! access to anything. The payload is a fixed 42-byte binary record:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 1 | version, [`VERSION`] |
//! | 1 | 1 | kind: 1 live, 2 replay, 3 preview, 4 filler ([`PlayKind`]) |
//! | 2 | 8 | channel id, big-endian `i64` |
//! | 10 | 8 | reservation id, big-endian `i64` |
//! | 18 | 8 | grant, big-endian `u64`: random per grant; one grant is one viewer seat |
//! | 26 | 8 | program end, big-endian `i64` milliseconds since the Unix epoch |
//! | 34 | 8 | expiry, big-endian `i64` milliseconds since the Unix epoch |
//!
//! The payload is readable by anyone holding the token (it is signed, not encrypted); it
//! holds nothing secret. Tokens are short-lived, so there is no revocation list: the
//! key pair is rotated to revoke all of them at once.
//!
//! [`verify`] refuses over-long input before any decoding, checks the signature strictly
//! (no malleable encodings), interprets the payload only after it matched, and accepts
//! exactly one canonical encoding per token (strict base64, fixed layout), so a token
//! cannot be altered without being refused.
//!
//! Viewer passes ([`sign_pass`]) stay with the center alone and use HMAC-SHA256 under a
//! secret of its own.

use crate::{ChannelId, ReservationId, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The payload layout this module writes and reads (3: signed with Ed25519).
pub const VERSION: u8 = 3;
/// Tokens longer than this are refused before any work is done.
pub const MAX_TOKEN_LEN: usize = 512;
/// Length of the signed record.
pub const PAYLOAD_LEN: usize = 42;

const TAG_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;
/// Binds a signature (or a pass's tag) to this use of the key, should it ever sign
/// anything else.
pub const CONTEXT: &[u8] = b"slotcast play token\0";

type HmacSha256 = Hmac<Sha256>;

/// What a token lets its holder play of its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlayKind {
    /// The program's live stream, on its channel, while it is on.
    Live,
    /// The program's recording, after it ended.
    Replay,
    /// The broadcaster's preview of what the publisher sends, before the start too.
    Preview,
    /// Not playing: the operator's management of the channel's filler on a node (list,
    /// upload, remove), ordered by the center. Its reservation is 0 and its program end
    /// its expiry.
    Filler,
}

impl PlayKind {
    fn code(self) -> u8 {
        match self {
            PlayKind::Live => 1,
            PlayKind::Replay => 2,
            PlayKind::Preview => 3,
            PlayKind::Filler => 4,
        }
    }

    fn from_code(code: u8) -> Option<PlayKind> {
        match code {
            1 => Some(PlayKind::Live),
            2 => Some(PlayKind::Replay),
            3 => Some(PlayKind::Preview),
            4 => Some(PlayKind::Filler),
            _ => None,
        }
    }
}

impl std::fmt::Display for PlayKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlayKind::Live => "live",
            PlayKind::Replay => "replay",
            PlayKind::Preview => "preview",
            PlayKind::Filler => "filler",
        })
    }
}

/// What a play token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayClaims {
    /// Live stream, replay or preview.
    pub kind: PlayKind,
    /// The program's channel.
    pub channel: ChannelId,
    /// The program.
    pub reservation: ReservationId,
    /// Random per grant: one viewer, counted once across playback protocols.
    pub grant: u64,
    /// When the program ends: a live viewer is not admitted from then on, and one who
    /// stays sees the filler for a short while and is then closed. Carried to the
    /// millisecond.
    pub program_end: Timestamp,
    /// The token admits nobody from this instant on. Carried to the millisecond: a finer
    /// instant is truncated to whole milliseconds when signed.
    pub expires: Timestamp,
}

/// Why a play token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token: too long, not two base64url parts, wrong length, unknown version or
    /// kind, or a field out of range.
    #[error("the play token is malformed")]
    Malformed,
    /// Well-formed, but not signed with this key (forged, altered or from another server).
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
pub fn sign(key: &SigningKey, claims: &PlayClaims) -> String {
    let payload = encode_payload(claims);
    let signature = key.sign(&signed_message(&payload));
    let mut out = URL_SAFE_NO_PAD.encode(payload);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut out);
    out
}

/// Checks a token with the center's public key at `now` and returns what it grants.
pub fn verify(key: &VerifyingKey, token: &str, now: Timestamp) -> Result<PlayClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = decode_exact::<PAYLOAD_LEN>(payload)?;
    let signature = Signature::from_bytes(&decode_exact::<SIGNATURE_LEN>(signature)?);
    key.verify_strict(&signed_message(&payload), &signature)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = decode_payload(&payload)?;
    if now >= claims.expires {
        return Err(TokenError::Expired { at: claims.expires });
    }
    Ok(claims)
}

fn signed_message(payload: &[u8; PAYLOAD_LEN]) -> [u8; CONTEXT.len() + PAYLOAD_LEN] {
    let mut m = [0u8; CONTEXT.len() + PAYLOAD_LEN];
    m[..CONTEXT.len()].copy_from_slice(CONTEXT);
    m[CONTEXT.len()..].copy_from_slice(payload);
    m
}

/// The printable form of a public key (base64url, 43 characters), as the center hands it
/// to its stream nodes.
pub fn public_key_text(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Reads the printable form of a public key.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, TokenError> {
    VerifyingKey::from_bytes(&decode_exact::<32>(text.trim())?).map_err(|_| TokenError::Malformed)
}

/// Signs a viewer pass: proof, kept by a browser, that it gave reservation
/// `reservation`'s viewer password, valid until `expires`. Its player then asks for new
/// grants with the pass instead of the password. Domain-separated from play tokens.
pub fn sign_pass(secret: &[u8; 32], reservation: ReservationId, expires: Timestamp) -> String {
    let payload = pass_payload(reservation, expires.as_second());
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!("{}.{}", expires.as_second(), URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `pass` is a viewer pass for `reservation` still valid at `now`.
pub fn pass_admits(
    secret: &[u8; 32],
    pass: &str,
    reservation: ReservationId,
    now: Timestamp,
) -> bool {
    let Some((expires, tag)) = pass.split_once('.') else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), decode_exact::<TAG_LEN>(tag)) else {
        return false;
    };
    now.as_second() < expires
        && mac(secret, &pass_payload(reservation, expires))
            .verify_slice(&tag)
            .is_ok()
}

/// Bytes of a media access key (128 bits of an HMAC-SHA256).
const ACCESS_LEN: usize = 16;

/// The access key of the LL-HLS media (init sections, parts, segments) of program `label`
/// on `channel`, under a node's own media `secret`: the same for every viewer of the
/// program, so that a CDN caches each part once, with the play session out of its cache
/// key. Only a viewer with a session gets it (in the media playlist); a node's secret is
/// its own, so a key admits to that node's media only.
pub fn media_access(secret: &[u8; 32], channel: ChannelId, label: u64) -> String {
    let tag = mac(secret, &media_payload(channel, label))
        .finalize()
        .into_bytes();
    URL_SAFE_NO_PAD.encode(&tag[..ACCESS_LEN])
}

/// Whether `access` is [`media_access`] of `label` on `channel` (compared in constant time).
pub fn media_access_ok(secret: &[u8; 32], channel: ChannelId, label: u64, access: &str) -> bool {
    decode_exact::<ACCESS_LEN>(access).is_ok_and(|tag| {
        mac(secret, &media_payload(channel, label))
            .verify_truncated_left(&tag)
            .is_ok()
    })
}

fn media_payload(channel: ChannelId, label: u64) -> Vec<u8> {
    let mut p = b"hls-media".to_vec();
    p.extend_from_slice(&channel.0.to_be_bytes());
    p.extend_from_slice(&label.to_be_bytes());
    p
}

fn pass_payload(reservation: ReservationId, expires: i64) -> Vec<u8> {
    let mut p = b"viewer-pass".to_vec();
    p.extend_from_slice(&reservation.0.to_be_bytes());
    p.extend_from_slice(&expires.to_be_bytes());
    p
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
    p[1] = claims.kind.code();
    p[2..10].copy_from_slice(&claims.channel.0.to_be_bytes());
    p[10..18].copy_from_slice(&claims.reservation.0.to_be_bytes());
    p[18..26].copy_from_slice(&claims.grant.to_be_bytes());
    p[26..34].copy_from_slice(&claims.program_end.as_millisecond().to_be_bytes());
    p[34..42].copy_from_slice(&claims.expires.as_millisecond().to_be_bytes());
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
    let kind = PlayKind::from_code(p[1]).ok_or(TokenError::Malformed)?;
    let instant = |at: usize| {
        Timestamp::from_millisecond(i64::from_be_bytes(field(at)))
            .map_err(|_| TokenError::Malformed)
    };
    Ok(PlayClaims {
        kind,
        channel: ChannelId(i64::from_be_bytes(field(2))),
        reservation: ReservationId(i64::from_be_bytes(field(10))),
        grant: u64::from_be_bytes(field(18)),
        program_end: instant(26)?,
        expires: instant(34)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[0x42; 32])
    }

    fn public() -> VerifyingKey {
        key().verifying_key()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn claims() -> PlayClaims {
        PlayClaims {
            kind: PlayKind::Live,
            channel: ChannelId(3),
            reservation: ReservationId(42),
            grant: 0xDEAD_BEEF_0123_4567,
            program_end: ts("2030-05-01T13:00:00Z"),
            expires: ts("2030-05-01T12:00:30.250Z"),
        }
    }

    fn is_url_safe(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    }

    fn resign(p: [u8; PAYLOAD_LEN]) -> String {
        let signature = key().sign(&signed_message(&p));
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(p),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    #[test]
    fn media_access_names_one_program_on_one_channel_under_one_secret() {
        let key = [7u8; 32];
        let access = media_access(&key, ChannelId(1), 42);
        assert_eq!(access.len(), 22);
        assert!(media_access_ok(&key, ChannelId(1), 42, &access));
        assert!(!media_access_ok(&key, ChannelId(2), 42, &access));
        assert!(!media_access_ok(&key, ChannelId(1), 43, &access));
        assert!(!media_access_ok(&[8u8; 32], ChannelId(1), 42, &access));
        for bad in ["", "x", &access[..21], &format!("{access}A")] {
            assert!(!media_access_ok(&key, ChannelId(1), 42, bad), "{bad}");
        }
    }

    #[test]
    fn round_trips_every_kind() {
        let now = ts("2030-05-01T12:00:00Z");
        for c in [
            claims(),
            PlayClaims {
                kind: PlayKind::Replay,
                ..claims()
            },
            PlayClaims {
                kind: PlayKind::Preview,
                channel: ChannelId(i64::MIN),
                reservation: ReservationId(0),
                grant: u64::MAX,
                program_end: ts("-009999-01-02T01:59:59Z"),
                expires: ts("9999-12-30T21:59:59.999Z"),
            },
        ] {
            let token = sign(&key(), &c);
            assert!(is_url_safe(&token), "{token}");
            assert_eq!(token.matches('.').count(), 1);
            assert!(!token.contains('='));
            assert!(token.len() <= MAX_TOKEN_LEN);
            assert_eq!(verify(&public(), &token, now), Ok(c));
        }
    }

    #[test]
    fn signing_is_deterministic_and_covers_every_field() {
        let a = sign(&key(), &claims());
        assert_eq!(a, sign(&key(), &claims()));
        let variants = [
            PlayClaims {
                kind: PlayKind::Replay,
                ..claims()
            },
            PlayClaims {
                channel: ChannelId(4),
                ..claims()
            },
            PlayClaims {
                reservation: ReservationId(43),
                ..claims()
            },
            PlayClaims {
                grant: 1,
                ..claims()
            },
            PlayClaims {
                program_end: ts("2030-05-01T13:00:00.001Z"),
                ..claims()
            },
            PlayClaims {
                expires: ts("2030-05-01T12:00:30.251Z"),
                ..claims()
            },
        ];
        for v in variants {
            assert_ne!(sign(&key(), &v), a);
        }
    }

    #[test]
    fn instants_are_carried_to_the_millisecond_rounded_down() {
        let c = PlayClaims {
            program_end: ts("2030-05-01T13:00:00.000999Z"),
            expires: ts("2030-05-01T12:00:30.250999Z"),
            ..claims()
        };
        let got = verify(&public(), &sign(&key(), &c), ts("2030-01-01T00:00:00Z")).unwrap();
        assert_eq!(got.expires, ts("2030-05-01T12:00:30.250Z"));
        assert_eq!(got.program_end, ts("2030-05-01T13:00:00Z"));
    }

    #[test]
    fn tampering_with_any_byte_is_refused() {
        let token = sign(&key(), &claims());
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
                let got = verify(&public(), &tampered, now);
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
        for bad in [
            token[1..].to_string(),
            token[..token.len() - 1].to_string(),
            format!("{token}A"),
            format!("{token}.x"),
        ] {
            assert_eq!(verify(&public(), &bad, now), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn a_re_signed_payload_with_a_wrong_version_kind_or_instant_is_malformed() {
        let now = ts("2030-05-01T12:00:00Z");
        let good = encode_payload(&claims());
        assert_eq!(verify(&public(), &resign(good), now), Ok(claims()));
        let mut v1 = good;
        v1[0] = 1;
        let mut kind0 = good;
        kind0[1] = 0;
        let mut kind5 = good;
        kind5[1] = 5;
        let mut far_end = good;
        far_end[26..34].copy_from_slice(&i64::MAX.to_be_bytes());
        let mut far_expiry = good;
        far_expiry[34..42].copy_from_slice(&i64::MAX.to_be_bytes());
        for p in [v1, kind0, kind5, far_end, far_expiry] {
            assert_eq!(
                verify(&public(), &resign(p), now),
                Err(TokenError::Malformed)
            );
        }
    }

    #[test]
    fn another_key_is_refused() {
        let token = sign(&key(), &claims());
        let other = SigningKey::from_bytes(&[0x43; 32]).verifying_key();
        assert_eq!(
            verify(&other, &token, ts("2030-05-01T12:00:00Z")),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn public_keys_print_and_parse() {
        let text = public_key_text(&public());
        assert_eq!(text.len(), 43);
        assert_eq!(parse_public_key(&text), Ok(public()));
        for bad in ["", "abc", &text[1..], &format!("{text}A")] {
            assert_eq!(parse_public_key(bad), Err(TokenError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn expiry_boundary() {
        let c = claims();
        let token = sign(&key(), &c);
        let just_before = c.expires - jiff::SignedDuration::from_nanos(1);
        assert_eq!(verify(&public(), &token, just_before), Ok(c));
        assert_eq!(
            verify(&public(), &token, c.expires),
            Err(TokenError::Expired { at: c.expires })
        );
        // Only authentic tokens are reported as expired.
        assert_eq!(
            verify(
                &SigningKey::from_bytes(&[0; 32]).verifying_key(),
                &token,
                ts("2031-01-01T00:00:00Z")
            ),
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
            assert_eq!(
                verify(&public(), g, now),
                Err(TokenError::Malformed),
                "{g:?}"
            );
        }
        let token = sign(&key(), &claims());
        let padded = format!("{token}{}", " ".repeat(MAX_TOKEN_LEN));
        assert_eq!(verify(&public(), &padded, now), Err(TokenError::Malformed));
        let huge = "A".repeat(10 * 1024 * 1024);
        assert_eq!(verify(&public(), &huge, now), Err(TokenError::Malformed));
    }

    fn kind() -> impl Strategy<Value = PlayKind> {
        prop_oneof![
            Just(PlayKind::Live),
            Just(PlayKind::Replay),
            Just(PlayKind::Preview),
            Just(PlayKind::Filler)
        ]
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_arbitrary_text(s in "\\PC{0,600}") {
            let _ = verify(&public(), &s, Timestamp::UNIX_EPOCH);
        }

        #[test]
        fn verify_never_panics_on_token_shaped_text(
            s in "[A-Za-z0-9_=+/-]{0,60}\\.[A-Za-z0-9_=+/.-]{0,60}"
        ) {
            let got = verify(&public(), &s, Timestamp::UNIX_EPOCH);
            prop_assert!(got.is_err());
        }

        #[test]
        fn any_claims_round_trip(
            kind in kind(),
            channel in any::<i64>(),
            reservation in any::<i64>(),
            grant in any::<u64>(),
            end_ms in Timestamp::MIN.as_millisecond()..=Timestamp::MAX.as_millisecond(),
            expires_ms in (Timestamp::MIN.as_millisecond() + 1)..=Timestamp::MAX.as_millisecond(),
        ) {
            let c = PlayClaims {
                kind,
                channel: ChannelId(channel),
                reservation: ReservationId(reservation),
                grant,
                program_end: Timestamp::from_millisecond(end_ms).unwrap(),
                expires: Timestamp::from_millisecond(expires_ms).unwrap(),
            };
            let token = sign(&key(), &c);
            prop_assert!(token.len() <= MAX_TOKEN_LEN);
            let got = verify(&public(), &token, Timestamp::from_millisecond(expires_ms - 1).unwrap());
            prop_assert_eq!(got, Ok(c));
        }
    }

    #[test]
    fn a_viewer_pass_admits_its_reservation_until_it_expires() {
        let key = [7u8; 32];
        let now: Timestamp = "2026-06-01T10:00:00Z".parse().unwrap();
        let until: Timestamp = "2026-06-02T10:00:00Z".parse().unwrap();
        let pass = sign_pass(&key, ReservationId(5), until);
        assert!(pass_admits(&key, &pass, ReservationId(5), now));
        assert!(
            !pass_admits(&key, &pass, ReservationId(6), now),
            "another program"
        );
        assert!(
            !pass_admits(&key, &pass, ReservationId(5), until),
            "expired"
        );
        assert!(
            !pass_admits(&[8u8; 32], &pass, ReservationId(5), now),
            "another key"
        );
        let later = pass.replacen(
            &until.as_second().to_string(),
            &(until.as_second() + 9).to_string(),
            1,
        );
        assert!(
            !pass_admits(&key, &later, ReservationId(5), now),
            "extended by hand"
        );
        for junk in ["", ".", "1.", "x.y", "99999999999.AAAA"] {
            assert!(!pass_admits(&key, junk, ReservationId(5), now), "{junk:?}");
        }
    }
}
