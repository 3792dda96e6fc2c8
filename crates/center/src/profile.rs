//! # Connection profiles
//!
//! This module owns **the connection profile** (the seeds' "reservation setting
//! information file"): everything the broadcaster tool needs to go live for one
//! reservation — the reservation key (the RTMP stream key), the booked times and the
//! connect window, every ingest endpoint in failover order, the watch page, the channel's
//! bitrate and capacity, the program data, the invitees and the viewer password.
//! - [`build`] assembles it from the stored reservation and its channel (pure: the
//!   issue time is passed in);
//! - [`encrypt`] seals its JSON for the broadcaster's device key as an ASCII-armored age
//!   file (X25519 recipient `age1…`), so that it can be downloaded, e-mailed or stored by
//!   the tool without exposing the key;
//! - [`decrypt`] opens it again with the device's identity (the broadcaster tool, tests).
//!
//! Re-issuing a profile for another device is simply `build` + `encrypt` with the new
//! device key: a profile carries no device binding of its own.
//!
//! What it must **not** do: look anything up, read the clock or decide whether a profile
//! may be issued (the API handlers check the reservation's state and the key first).
//!
//! The JSON layout is a contract with every broadcaster tool that is out there:
//! [`PROFILE_VERSION`] changes only when an old tool could no longer read a new profile
//! correctly. Instants are RFC 3339 strings in UTC.

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use serde::{Deserialize, Serialize};
use slotcast_domain::{ReservationKey, Timestamp, Visibility};
use slotcast_store::{Channel, Reservation};
use std::fmt;
use std::io::{self, Read, Write};
use thiserror::Error;

/// The profile layout [`build`] writes and [`decrypt`] accepts.
pub const PROFILE_VERSION: u32 = 1;
/// The protocol name of an RTMP ingest endpoint.
pub const PROTOCOL_RTMP: &str = "rtmp";
/// Device keys longer than this (white space included) are refused before parsing; an age
/// X25519 recipient is 62 characters, and white space around it is ignored.
pub const MAX_RECIPIENT_LEN: usize = 100;
/// [`decrypt`] refuses armored input, and decrypted JSON, larger than this.
pub const MAX_ARMORED_LEN: usize = 1024 * 1024;

/// Everything the broadcaster tool needs to go live for one reservation.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionProfile {
    /// Layout version, [`PROFILE_VERSION`].
    pub version: u32,
    /// The reservation id.
    pub reservation: i64,
    /// The reservation key: the RTMP stream key during the connect window.
    pub reservation_key: String,
    /// The booked channel.
    pub channel: ProfileChannel,
    /// Start of the program.
    #[serde(with = "rfc3339")]
    pub start: Timestamp,
    /// End of the program (viewers switch to filler).
    #[serde(with = "rfc3339")]
    pub end: Timestamp,
    /// The key may publish from here …
    #[serde(with = "rfc3339")]
    pub connect_from: Timestamp,
    /// … until here (the publisher is cut off at this instant).
    #[serde(with = "rfc3339")]
    pub connect_to: Timestamp,
    /// Where to publish, in failover order: the primary first, backups after (ascending
    /// [`IngestEndpoint::priority`]).
    pub ingest: Vec<IngestEndpoint>,
    /// The program's watch page, `{public_url}/programs/{slug}`.
    pub playback_url: String,
    /// What viewers see of the reservation.
    pub program: ProfileProgram,
    /// The viewer password, for `password` and `secret` programs only.
    pub viewer_password: Option<String>,
    /// The invitees' e-mail addresses.
    pub invitees: Vec<String>,
    /// The service's IANA time zone, for showing the times.
    pub time_zone: String,
    /// The server's time when the profile was issued.
    #[serde(with = "rfc3339")]
    pub issued_at: Timestamp,
}

/// The channel a reservation is booked on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProfileChannel {
    /// Channel id.
    pub id: i64,
    /// Channel name, e.g. `medium`.
    pub name: String,
    /// The bitrate to encode at, in kbit/s.
    pub bitrate_kbps: u32,
    /// Most concurrent viewers.
    pub capacity: u32,
}

/// One place to publish to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestEndpoint {
    /// The server URL without the stream key, e.g. `rtmp://live.example.org:1935/live`;
    /// the tool publishes to `{url}/{reservation_key}` (OBS: Server = `url`,
    /// Stream key = the reservation key).
    pub url: String,
    /// Ingest protocol, [`PROTOCOL_RTMP`] for now. Tools skip endpoints whose protocol
    /// they do not speak.
    pub protocol: String,
    /// Lower is preferred: 0 is the primary; the tool fails over in ascending order.
    pub priority: u8,
}

/// The program data of a reservation, as the broadcaster entered it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProfileProgram {
    /// Title.
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// Short outline.
    pub outline: Option<String>,
    /// Longer detail.
    pub detail: Option<String>,
    /// `public`, `password` or `secret`.
    pub visibility: Visibility,
    /// Whether the broadcaster's e-mail address is shown on the program page.
    pub show_email: bool,
    /// The broadcaster's web link.
    pub web_url: Option<String>,
}

impl fmt::Debug for ConnectionProfile {
    /// Like a derived `Debug`, but the reservation key and the viewer password are
    /// redacted, so a profile can be logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionProfile")
            .field("version", &self.version)
            .field("reservation", &self.reservation)
            .field("reservation_key", &"<redacted>")
            .field("channel", &self.channel)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("connect_from", &self.connect_from)
            .field("connect_to", &self.connect_to)
            .field("ingest", &self.ingest)
            .field("playback_url", &self.playback_url)
            .field("program", &self.program)
            .field(
                "viewer_password",
                &self.viewer_password.as_ref().map(|_| "<redacted>"),
            )
            .field("invitees", &self.invitees)
            .field("time_zone", &self.time_zone)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// Why a profile could not be encrypted or decrypted.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The device key is not an age X25519 public key.
    #[error(
        "must be an age X25519 public key starting with age1 (62 characters, as printed by age-keygen)"
    )]
    InvalidRecipient,
    /// age could not encrypt (an internal failure, not the caller's).
    #[error("could not encrypt the connection profile: {0}")]
    Encrypt(#[source] age::EncryptError),
    /// Not an age file for this identity: wrong device key, damaged, truncated or too large.
    #[error("could not decrypt the connection profile: {0}")]
    Decrypt(#[source] age::DecryptError),
    /// The JSON inside is not a connection profile this version understands.
    #[error("not a valid connection profile: {0}")]
    Format(#[source] serde_json::Error),
}

/// Assembles the profile of a confirmed reservation.
///
/// `viewer_password` is the password in the clear (the store holds it sealed); it is
/// carried only for `password` and `secret` programs. `ingest` may come in any order: the
/// profile lists it by ascending priority (stable for equal priorities). `public_url` may
/// end with a slash.
#[allow(clippy::too_many_arguments)] // mirrors the issuing handler's inputs one to one
pub fn build(
    r: &Reservation,
    channel: &Channel,
    key: &ReservationKey,
    viewer_password: Option<&str>,
    ingest: &[IngestEndpoint],
    public_url: &str,
    time_zone: &str,
    issued_at: Timestamp,
) -> ConnectionProfile {
    debug_assert_eq!(r.channel, channel.id, "the reservation's own channel");
    let mut ingest = ingest.to_vec();
    ingest.sort_by_key(|e| e.priority);
    ConnectionProfile {
        version: PROFILE_VERSION,
        reservation: r.id.0,
        reservation_key: key.expose().to_owned(),
        channel: ProfileChannel {
            id: channel.id.0,
            name: channel.name.clone(),
            bitrate_kbps: channel.bitrate_kbps,
            capacity: channel.capacity,
        },
        start: r.schedule.start,
        end: r.schedule.end,
        connect_from: r.schedule.connect_from,
        connect_to: r.schedule.connect_to,
        ingest,
        playback_url: format!("{}/programs/{}", public_url.trim_end_matches('/'), r.slug),
        program: ProfileProgram {
            title: r.program.title.clone(),
            genre: r.program.genre.clone(),
            outline: r.program.outline.clone(),
            detail: r.program.detail.clone(),
            visibility: r.visibility,
            show_email: r.program.show_email,
            web_url: r.program.web_url.clone(),
        },
        viewer_password: viewer_password
            .filter(|_| r.visibility.needs_password())
            .map(str::to_owned),
        invitees: r.invitees.iter().map(|e| e.as_str().to_owned()).collect(),
        time_zone: time_zone.to_owned(),
        issued_at,
    }
}

/// Encrypts the profile for `device_public_key`, an age X25519 recipient (`age1…`,
/// surrounding white space ignored), as an ASCII-armored age file of its JSON.
pub fn encrypt(
    profile: &ConnectionProfile,
    device_public_key: &str,
) -> Result<String, ProfileError> {
    let recipient = parse_recipient(device_public_key)?;
    let json = serde_json::to_vec(profile).map_err(ProfileError::Format)?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(ProfileError::Encrypt)?;
    let io_err = |e: io::Error| ProfileError::Encrypt(age::EncryptError::Io(e));
    let mut armored = Vec::with_capacity(json.len() * 4 / 3 + 512);
    let armor = ArmoredWriter::wrap_output(&mut armored, Format::AsciiArmor).map_err(io_err)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io_err)?;
    writer.write_all(&json).map_err(io_err)?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(io_err)?;
    String::from_utf8(armored).map_err(|_| io_err(io::Error::other("armored output is not text")))
}

/// Decrypts an armored profile with the device's identity and checks its layout version.
pub fn decrypt(
    armored: &str,
    identity: &age::x25519::Identity,
) -> Result<ConnectionProfile, ProfileError> {
    let too_large = || {
        ProfileError::Decrypt(age::DecryptError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the profile is larger than {MAX_ARMORED_LEN} bytes"),
        )))
    };
    if armored.len() > MAX_ARMORED_LEN {
        return Err(too_large());
    }
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
        .map_err(ProfileError::Decrypt)?;
    let reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(ProfileError::Decrypt)?;
    let mut json = Vec::new();
    let limit = u64::try_from(MAX_ARMORED_LEN).unwrap_or(u64::MAX);
    reader
        .take(limit + 1)
        .read_to_end(&mut json)
        .map_err(|e| ProfileError::Decrypt(age::DecryptError::Io(e)))?;
    if json.len() > MAX_ARMORED_LEN {
        return Err(too_large());
    }
    let profile: ConnectionProfile = serde_json::from_slice(&json).map_err(ProfileError::Format)?;
    if profile.version != PROFILE_VERSION {
        return Err(ProfileError::Format(serde::de::Error::custom(
            format_args!(
                "profile version {} is not supported (this tool reads version {PROFILE_VERSION}); update the tool",
                profile.version
            ),
        )));
    }
    Ok(profile)
}

/// Parses a device key, refusing anything that is not a usable X25519 recipient.
fn parse_recipient(device_public_key: &str) -> Result<age::x25519::Recipient, ProfileError> {
    if device_public_key.len() > MAX_RECIPIENT_LEN {
        return Err(ProfileError::InvalidRecipient);
    }
    let s = device_public_key.trim();
    if s.is_empty() {
        return Err(ProfileError::InvalidRecipient);
    }
    let recipient: age::x25519::Recipient =
        s.parse().map_err(|_| ProfileError::InvalidRecipient)?;
    // A point of small order makes every shared secret zero: age panics on it rather
    // than returning an error, so refuse such keys here.
    match recipient_bytes(&recipient) {
        Some(bytes) if !is_low_order(&bytes) => Ok(recipient),
        _ => Err(ProfileError::InvalidRecipient),
    }
}

/// The 32 key bytes of a recipient, from its canonical Bech32 text (`age1` + 52 data
/// characters + 6 checksum characters; the checksum was verified when parsing).
fn recipient_bytes(recipient: &age::x25519::Recipient) -> Option<[u8; 32]> {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let text = recipient.to_string();
    let data = text.strip_prefix("age1")?.as_bytes();
    if data.len() != 58 {
        return None;
    }
    let mut out = [0u8; 32];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in &data[..52] {
        let v = CHARSET.iter().position(|&x| x == c)?;
        acc = (acc << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = u8::try_from((acc >> bits) & 0xff).ok()?;
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    (n == 32).then_some(out)
}

/// Whether an X25519 public key (little-endian u-coordinate; bit 255 is ignored by
/// X25519) is one of the points whose shared secret with any private key is zero:
/// u = 0, 1, the two points of order 8, p − 1, and the non-canonical p and p + 1
/// (p = 2²⁵⁵ − 19).
fn is_low_order(key: &[u8; 32]) -> bool {
    const fn le(last: u8, head: [u8; 31]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 31 {
            out[i] = head[i];
            i += 1;
        }
        out[31] = last;
        out
    }
    const fn with_low(first: u8, fill: u8, last: u8) -> [u8; 32] {
        let mut head = [fill; 31];
        head[0] = first;
        le(last, head)
    }
    const LOW_ORDER: [[u8; 32]; 7] = [
        with_low(0x00, 0x00, 0x00),
        with_low(0x01, 0x00, 0x00),
        [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ],
        [
            0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83,
            0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd,
            0xd0, 0x9f, 0x11, 0x57,
        ],
        with_low(0xec, 0xff, 0x7f),
        with_low(0xed, 0xff, 0x7f),
        with_low(0xee, 0xff, 0x7f),
    ];
    let mut masked = *key;
    masked[31] &= 0x7f;
    LOW_ORDER.contains(&masked)
}

/// Timestamps as RFC 3339 strings (jiff's own serde support is not enabled in this
/// workspace).
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use slotcast_domain::Timestamp;

    pub(super) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(ts)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_domain::request::ProgramInfo;
    use slotcast_domain::{
        ChannelId, Currency, EmailAddress, KeyHash, MemberId, Money, ReservationId, Schedule,
        Status,
    };

    const PW: &str = "tulip-4711";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key() -> ReservationKey {
        ReservationKey::from_entropy([7; slotcast_domain::key::KEY_BYTES])
    }

    fn channel() -> Channel {
        Channel {
            id: ChannelId(2),
            name: "medium".into(),
            capacity: 100,
            bitrate_kbps: 2500,
            tariff: Money::new(300, Currency::parse("JPY").unwrap()),
            stream_node: "local".into(),
        }
    }

    fn reservation(visibility: Visibility) -> Reservation {
        Reservation {
            id: ReservationId(42),
            member: MemberId(7),
            channel: ChannelId(2),
            slots: 9,
            status: Status::Confirmed,
            schedule: Schedule {
                start: ts("2026-06-10T12:00:00Z"),
                end: ts("2026-06-10T13:30:00Z"),
                confirm_by: ts("2026-06-10T06:00:00Z"),
                confirm_reminder_at: Some(ts("2026-06-10T05:00:00Z")),
                connect_from: ts("2026-06-10T11:55:00Z"),
                connect_to: ts("2026-06-10T13:33:00Z"),
                start_reminder_at: ts("2026-06-10T11:50:00Z"),
                extension_offer_at: ts("2026-06-10T13:20:00Z"),
            },
            visibility,
            program: ProgramInfo {
                title: "Night \"Jazz\" — ライブ".into(),
                genre: Some("music".into()),
                outline: Some("From the cellar\nsecond line".into()),
                detail: None,
                show_email: true,
                web_url: Some("https://jazz.example.org/".into()),
            },
            viewer_password: Some("sealed-blob".into()),
            invitees: vec![
                EmailAddress::parse("ann@example.org").unwrap(),
                EmailAddress::parse("bob@example.net").unwrap(),
            ],
            key_hash: KeyHash([0; 32]),
            slug: "p9f3kq2x7".into(),
            fee: Money::new(2700, Currency::parse("JPY").unwrap()),
            invited_at_acceptance: false,
            key_failures: 0,
            key_locked_until: None,
            created_at: ts("2026-06-01T00:00:00Z"),
            updated_at: ts("2026-06-02T08:30:00Z"),
        }
    }

    fn endpoints() -> Vec<IngestEndpoint> {
        let e = |url: &str, priority| IngestEndpoint {
            url: url.into(),
            protocol: PROTOCOL_RTMP.into(),
            priority,
        };
        vec![
            e("rtmp://backup2.example.org:1935/live", 2),
            e("rtmp://live.example.org:1935/live", 0),
            e("rtmp://backup.example.org:1935/live", 1),
        ]
    }

    fn profile(visibility: Visibility) -> ConnectionProfile {
        build(
            &reservation(visibility),
            &channel(),
            &key(),
            Some(PW),
            &endpoints(),
            "https://watch.example.org/",
            "Asia/Tokyo",
            ts("2026-06-09T10:15:30.123Z"),
        )
    }

    #[test]
    fn build_carries_everything_the_tool_needs() {
        let p = profile(Visibility::Password);
        assert_eq!(p.version, PROFILE_VERSION);
        assert_eq!(p.reservation, 42);
        assert_eq!(p.reservation_key, key().expose());
        assert_eq!(
            p.channel,
            ProfileChannel {
                id: 2,
                name: "medium".into(),
                bitrate_kbps: 2500,
                capacity: 100
            }
        );
        assert_eq!(p.start, ts("2026-06-10T12:00:00Z"));
        assert_eq!(p.end, ts("2026-06-10T13:30:00Z"));
        assert_eq!(p.connect_from, ts("2026-06-10T11:55:00Z"));
        assert_eq!(p.connect_to, ts("2026-06-10T13:33:00Z"));
        let order: Vec<_> = p
            .ingest
            .iter()
            .map(|e| (e.priority, e.url.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (0, "rtmp://live.example.org:1935/live"),
                (1, "rtmp://backup.example.org:1935/live"),
                (2, "rtmp://backup2.example.org:1935/live"),
            ]
        );
        assert_eq!(
            p.playback_url,
            "https://watch.example.org/programs/p9f3kq2x7"
        );
        assert_eq!(p.program.title, "Night \"Jazz\" — ライブ");
        assert_eq!(p.program.visibility, Visibility::Password);
        assert!(p.program.show_email);
        assert_eq!(p.viewer_password.as_deref(), Some(PW));
        assert_eq!(p.invitees, ["ann@example.org", "bob@example.net"]);
        assert_eq!(p.time_zone, "Asia/Tokyo");
        assert_eq!(p.issued_at, ts("2026-06-09T10:15:30.123Z"));
    }

    #[test]
    fn public_programs_carry_no_password() {
        assert_eq!(profile(Visibility::Public).viewer_password, None);
        assert_eq!(
            profile(Visibility::Secret).viewer_password.as_deref(),
            Some(PW)
        );
    }

    #[test]
    fn json_layout_is_the_documented_one() {
        let v = serde_json::to_value(profile(Visibility::Secret)).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["reservation"], 42);
        assert_eq!(v["start"], "2026-06-10T12:00:00Z");
        assert_eq!(v["connect_to"], "2026-06-10T13:33:00Z");
        assert_eq!(v["issued_at"], "2026-06-09T10:15:30.123Z");
        assert_eq!(v["program"]["visibility"], "secret");
        assert_eq!(v["channel"]["bitrate_kbps"], 2500);
        assert_eq!(v["ingest"][0]["protocol"], "rtmp");
        assert_eq!(v["ingest"][0]["priority"], 0);
        // Instants with an offset are read too.
        let mut v = v;
        v["start"] = "2026-06-10T21:00:00+09:00".into();
        let back: ConnectionProfile = serde_json::from_value(v).unwrap();
        assert_eq!(back.start, ts("2026-06-10T12:00:00Z"));
    }

    #[test]
    fn debug_redacts_the_secrets() {
        let shown = format!("{:?}", profile(Visibility::Password));
        assert!(!shown.contains(key().expose()));
        assert!(!shown.contains(PW));
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("p9f3kq2x7"));
    }

    #[test]
    fn encrypt_then_decrypt_round_trips() {
        let device = age::x25519::Identity::generate();
        let recipient = device.to_public().to_string();
        for visibility in [Visibility::Public, Visibility::Password, Visibility::Secret] {
            let p = profile(visibility);
            let armored = encrypt(&p, &recipient).unwrap();
            assert_eq!(decrypt(&armored, &device).unwrap(), p);
        }
        // White space around a pasted key is ignored.
        let p = profile(Visibility::Public);
        let armored = encrypt(&p, &format!("  {recipient}\n")).unwrap();
        assert_eq!(decrypt(&armored, &device).unwrap(), p);
    }

    #[test]
    fn output_is_armored_and_hides_the_secrets() {
        let device = age::x25519::Identity::generate();
        let p = profile(Visibility::Password);
        let armored = encrypt(&p, &device.to_public().to_string()).unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(
            armored
                .trim_end()
                .ends_with("-----END AGE ENCRYPTED FILE-----")
        );
        assert!(armored.is_ascii());
        for clear in [
            key().expose(),
            PW,
            "p9f3kq2x7",
            "ann@example.org",
            "rtmp://",
        ] {
            assert!(!armored.contains(clear), "{clear} in clear");
        }
        // Every issue is freshly encrypted.
        assert_ne!(
            armored,
            encrypt(&p, &device.to_public().to_string()).unwrap()
        );
    }

    #[test]
    fn another_device_cannot_decrypt() {
        let device = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let armored = encrypt(
            &profile(Visibility::Public),
            &device.to_public().to_string(),
        )
        .unwrap();
        assert!(matches!(
            decrypt(&armored, &other),
            Err(ProfileError::Decrypt(age::DecryptError::NoMatchingKeys))
        ));
    }

    #[test]
    fn damaged_or_foreign_input_is_refused() {
        let device = age::x25519::Identity::generate();
        let armored = encrypt(
            &profile(Visibility::Public),
            &device.to_public().to_string(),
        )
        .unwrap();
        let truncated = &armored[..armored.len() / 2];
        assert!(matches!(
            decrypt(truncated, &device),
            Err(ProfileError::Decrypt(_))
        ));
        for junk in ["", "hello", "-----BEGIN AGE ENCRYPTED FILE-----\n"] {
            assert!(
                matches!(decrypt(junk, &device), Err(ProfileError::Decrypt(_))),
                "{junk:?}"
            );
        }
        let huge = "A".repeat(MAX_ARMORED_LEN + 1);
        assert!(matches!(
            decrypt(&huge, &device),
            Err(ProfileError::Decrypt(_))
        ));
    }

    #[test]
    fn other_json_and_other_versions_are_format_errors() {
        let device = age::x25519::Identity::generate();
        let seal = |json: &[u8]| {
            let recipient = device.to_public();
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .unwrap();
            let mut out = Vec::new();
            let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).unwrap();
            let mut w = encryptor.wrap_output(armor).unwrap();
            w.write_all(json).unwrap();
            w.finish().unwrap().finish().unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(matches!(
            decrypt(&seal(b"{\"hello\": 1}"), &device),
            Err(ProfileError::Format(_))
        ));
        let mut v = serde_json::to_value(profile(Visibility::Public)).unwrap();
        v["version"] = 2.into();
        let err = decrypt(&seal(&serde_json::to_vec(&v).unwrap()), &device).unwrap_err();
        assert!(matches!(err, ProfileError::Format(_)));
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
    }

    #[test]
    fn invalid_recipients_are_refused() {
        let p = profile(Visibility::Public);
        let valid = age::x25519::Identity::generate().to_public().to_string();
        let mut bad_checksum = valid.clone();
        let last = if bad_checksum.ends_with('q') {
            "p"
        } else {
            "q"
        };
        bad_checksum.replace_range(valid.len() - 1.., last);
        let secret_key = age::x25519::Identity::generate();
        let secret_text = {
            use age::secrecy::ExposeSecret;
            secret_key.to_string().expose_secret().to_owned()
        };
        for bad in [
            String::new(),
            "   ".into(),
            "age1xyz".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3Gf0q2yTQkbGvYLQ1kq5n0yqZlXxCq5cQ1b0Q2u3a user@host".into(),
            "x".repeat(10 * 1024),
            format!("{valid}{}", " ".repeat(10 * 1024)),
            bad_checksum,
            format!("{valid}q"),
            secret_text,
            valid.replacen("age1", "agf1", 1),
        ] {
            let got = encrypt(&p, &bad);
            assert!(
                matches!(got, Err(ProfileError::InvalidRecipient)),
                "{:?}: {got:?}",
                bad.chars().take(80).collect::<String>()
            );
        }
        let msg = ProfileError::InvalidRecipient.to_string();
        assert!(
            msg.contains("age X25519 public key starting with age1"),
            "{msg}"
        );
    }

    #[test]
    fn low_order_keys_are_refused_instead_of_panicking() {
        // u = 0, 1, an order-8 point, p - 1, p + 1, and u = 0 with bit 255 set: valid
        // Bech32, so age parses them, but every shared secret with them is zero.
        for bad in [
            "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z",
            "age1qyqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqj7vrya",
            "age1ur4h5lpmgxu2u9jku0a0r87ydtdqnr0tnsetrlvxvgz3vh6fhqqqzyt4v9",
            "age1t7wft09r2zxzfvwsk92eeql0tvzyghxytqwgapkcyf8dm5ylz9ts6wm9s8",
            "age1anlllllllllllllllllllllllllllllllllllllllllllllllals4n2t7m",
            "age1amlllllllllllllllllllllllllllllllllllllllllllllllalselrwrv",
            "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqzqqsuwj9m",
        ] {
            assert!(
                bad.parse::<age::x25519::Recipient>().is_ok(),
                "{bad} parses"
            );
            assert!(
                matches!(
                    encrypt(&profile(Visibility::Public), bad),
                    Err(ProfileError::InvalidRecipient)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn recipient_bytes_match_the_key() {
        // Known encodings decode to their bytes; a generated key is not of low order.
        let zero: age::x25519::Recipient =
            "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq5cu47z"
                .parse()
                .unwrap();
        assert_eq!(recipient_bytes(&zero), Some([0; 32]));
        let one: age::x25519::Recipient =
            "age1qyqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqj7vrya"
                .parse()
                .unwrap();
        let mut expected = [0; 32];
        expected[0] = 1;
        assert_eq!(recipient_bytes(&one), Some(expected));
        let fresh = age::x25519::Identity::generate().to_public();
        let bytes = recipient_bytes(&fresh).unwrap();
        assert!(!is_low_order(&bytes));
    }
}
