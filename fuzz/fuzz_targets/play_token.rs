//! Play tokens: `slotcast_domain::token::verify` on arbitrary strings, on correctly signed
//! arbitrary payloads, and `sign` → `verify` round trips of arbitrary claims.
//!
//! - Whatever `verify` accepts is canonical: signing the claims it returns gives back the
//!   very token, and it is not expired at `now`.
//! - A payload signed here per the documented format (Ed25519 over the context label and
//!   the 42-byte record) is accepted exactly when the record is well-formed.
//! - Signed claims verify to themselves (expiry truncated to the millisecond) before
//!   their expiry and are `Expired` from then on; changing any one character of a token
//!   makes it refused.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use libfuzzer_sys::fuzz_target;
use slotcast_domain::token::{
    CONTEXT, MAX_TOKEN_LEN, PAYLOAD_LEN, PlayClaims, PlayKind, SigningKey, TokenError, VERSION,
    sign, verify,
};
use slotcast_domain::{ChannelId, ReservationId, Timestamp};

/// The instant `ms` milliseconds after the epoch, or the nearest whole second in range.
fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or_else(|_| {
        let edge = if ms < 0 { Timestamp::MIN } else { Timestamp::MAX };
        Timestamp::from_second(edge.as_second()).expect("a whole second in range")
    })
}

/// A token for `payload`, signed the way the format documents.
fn sign_raw(key: &SigningKey, payload: &[u8; PAYLOAD_LEN]) -> String {
    let message = [CONTEXT, payload.as_slice()].concat();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(key.sign(&message).to_bytes())
    )
}

fn check_accepted(secret: &SigningKey, token: &str, now: Timestamp) -> Result<PlayClaims, TokenError> {
    let result = verify(&secret.verifying_key(), token, now);
    match &result {
        Ok(claims) => {
            assert_eq!(sign(secret, claims), token, "accepted a non-canonical token");
            assert!(now < claims.expires, "accepted an expired token");
        }
        Err(TokenError::Expired { at }) => assert!(now >= *at),
        Err(_) => {}
    }
    if token.len() > MAX_TOKEN_LEN {
        assert_eq!(result, Err(TokenError::Malformed));
    }
    result
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: [u8; 32],
    now_ms: i64,
    /// Any text as a token.
    text: &'a str,
    /// Any payload, signed correctly.
    payload: [u8; PAYLOAD_LEN],
    /// Claims to sign.
    kind: u8,
    channel: i64,
    reservation: i64,
    grant: u64,
    end_ms: i64,
    expires_ms: i64,
    expires_sub_ms_ns: u32,
    /// How far before (or after) the expiry the round trip verifies.
    check_offset_ms: i64,
    /// Where to tamper, and with what.
    tamper_at: usize,
    tamper_with: u8,
}

fn run(input: Input<'_>) {
    let secret = &SigningKey::from_bytes(&input.secret);
    let now = timestamp_ms(input.now_ms);

    // 1. Arbitrary text.
    let _ = check_accepted(secret, input.text, now);

    // 2. An arbitrary payload with a valid signature.
    let token = sign_raw(secret, &input.payload);
    let p = &input.payload;
    let field = |at: usize| i64::from_be_bytes(p[at..at + 8].try_into().expect("8 bytes"));
    let kind = match p[1] {
        1 => Some(PlayKind::Live),
        2 => Some(PlayKind::Replay),
        3 => Some(PlayKind::Preview),
        4 => Some(PlayKind::Filler),
        _ => None,
    };
    let end = Timestamp::from_millisecond(field(26)).ok();
    let expires = Timestamp::from_millisecond(field(34)).ok();
    let well_formed = p[0] == VERSION && kind.is_some() && end.is_some() && expires.is_some();
    match check_accepted(secret, &token, now) {
        Ok(claims) => {
            assert!(well_formed, "accepted a malformed record");
            assert_eq!(Some(claims.kind), kind);
            assert_eq!(claims.channel, ChannelId(field(2)));
            assert_eq!(claims.reservation, ReservationId(field(10)));
            assert_eq!(claims.grant, field(18) as u64);
            assert_eq!(Some(claims.program_end), end);
            assert_eq!(Some(claims.expires), expires);
        }
        Err(TokenError::Expired { at }) => {
            assert!(well_formed);
            assert_eq!(Some(at), expires);
        }
        Err(TokenError::Malformed) => assert!(!well_formed, "refused a well-formed record"),
        Err(TokenError::BadSignature) => panic!("refused a correct signature"),
    }

    // 3. Sign → verify.
    let ns = i64::from(input.expires_sub_ms_ns % 1_000_000);
    let base = timestamp_ms(input.expires_ms);
    let fine = Timestamp::from_nanosecond(base.as_nanosecond() + i128::from(ns)).unwrap_or(base);
    let kind = [
        PlayKind::Live,
        PlayKind::Replay,
        PlayKind::Preview,
        PlayKind::Filler,
    ][usize::from(input.kind % 4)];
    let end = timestamp_ms(input.end_ms);
    let claims = PlayClaims {
        kind,
        channel: ChannelId(input.channel),
        reservation: ReservationId(input.reservation),
        grant: input.grant,
        program_end: end,
        expires: fine,
    };
    let token = sign(secret, &claims);
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "token is not URL-safe: {token}"
    );
    let signed_expiry =
        Timestamp::from_millisecond(fine.as_millisecond()).expect("millisecond of a timestamp");
    let check_at = timestamp_ms(
        signed_expiry
            .as_millisecond()
            .saturating_add(input.check_offset_ms),
    );
    let expected = if check_at < signed_expiry {
        Ok(PlayClaims {
            expires: signed_expiry,
            ..claims
        })
    } else {
        Err(TokenError::Expired { at: signed_expiry })
    };
    assert_eq!(check_accepted(secret, &token, check_at), expected, "round trip");

    // 4. One changed character is refused.
    let mut bytes = token.clone().into_bytes();
    let at = input.tamper_at % bytes.len();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let with = alphabet[usize::from(input.tamper_with) % alphabet.len()];
    if bytes[at] != with {
        bytes[at] = with;
        let tampered = String::from_utf8(bytes).expect("ASCII");
        let result = check_accepted(secret, &tampered, check_at);
        assert!(
            matches!(
                result,
                Err(TokenError::Malformed | TokenError::BadSignature)
            ),
            "tampered token {tampered} gave {result:?}"
        );
    }
}

fuzz_target!(|input: Input<'_>| run(input));
