//! A test SNTP server: [`NtpResponder`] answers SNTP client requests on a loopback UDP port
//! with the real system time shifted by a chosen skew, so tests can check that the time
//! service measures and applies an offset over a real UDP round trip; [`unused_udp_addr`]
//! gives an address where nothing answers.
//!
//! The packet format is RFC 4330 (SNTPv4) / RFC 5905: 48 bytes, big-endian, timestamps as
//! seconds since 1900-01-01 (32 bits, wrapping into the next era in 2036) plus a 32-bit
//! binary fraction.

use slotcast_domain::jiff::{SignedDuration, Timestamp};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Length of an NTP packet without extensions.
const PACKET_LEN: usize = 48;

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
const NTP_UNIX_OFFSET: i128 = 2_208_988_800;

/// The reference identifier a stratum-1 responder reports.
pub const REFERENCE_ID: [u8; 4] = *b"TEST";

/// A running SNTP responder on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct NtpResponder {
    /// Where it listens (give `addr.to_string()` to the time service).
    pub addr: SocketAddr,
    answered: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl NtpResponder {
    /// Binds UDP `127.0.0.1:0` and answers every SNTP client request (mode 3, version 1–4)
    /// with a stratum-1 server reply whose receive and transmit timestamps are the system
    /// time plus `skew` (negative: behind). Anything else is ignored.
    ///
    /// # Panics
    /// If the socket cannot be bound (test code).
    pub async fn start(skew: SignedDuration) -> NtpResponder {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the test NTP responder");
        let addr = socket.local_addr().expect("responder address");
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&answered);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let received = skewed_now(skew);
                let Some(reply) = reply_to(&buf[..len], received, skewed_now(skew)) else {
                    continue;
                };
                if socket.send_to(&reply, peer).await.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        NtpResponder {
            addr,
            answered,
            task,
        }
    }

    /// How many requests it has answered.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for NtpResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback UDP address where nothing listens (a port bound and released at once): a
/// query to it fails fast with "connection refused".
///
/// # Panics
/// If no UDP port can be bound (test code).
pub fn unused_udp_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP port");
    s.local_addr().expect("local address")
}

fn skewed_now(skew: SignedDuration) -> Timestamp {
    let now = Timestamp::now();
    now.checked_add(skew).unwrap_or(now)
}

/// The server reply to `request`, or `None` if it is not an SNTP client request.
/// `received` and `transmit` are the (skewed) times of arrival and of the answer.
fn reply_to(request: &[u8], received: Timestamp, transmit: Timestamp) -> Option<[u8; 48]> {
    if request.len() < PACKET_LEN {
        return None;
    }
    let version = (request[0] >> 3) & 0x07;
    let mode = request[0] & 0x07;
    if mode != 3 || !(1..=4).contains(&version) {
        return None;
    }
    let mut p = [0u8; PACKET_LEN];
    // LI = 0 (no warning), the client's version, mode 4 (server).
    p[0] = (version << 3) | 4;
    // Stratum 1: a primary server with its own reference clock.
    p[1] = 1;
    // Poll: echo the client's.
    p[2] = request[2];
    // Precision: 2^-20 s (about a microsecond), as a signed exponent.
    p[3] = (-20i8).to_be_bytes()[0];
    // Root delay 0; root dispersion 1/1024 s (NTP short format 16.16).
    p[4..8].copy_from_slice(&0u32.to_be_bytes());
    p[8..12].copy_from_slice(&64u32.to_be_bytes());
    p[12..16].copy_from_slice(&REFERENCE_ID);
    // Reference timestamp: "last set" one second before the request arrived.
    let reference = received
        .checked_sub(SignedDuration::from_secs(1))
        .unwrap_or(received);
    p[16..24].copy_from_slice(&to_ntp(reference).to_be_bytes());
    // Originate: the client's transmit timestamp, verbatim.
    p[24..32].copy_from_slice(&request[40..48]);
    p[32..40].copy_from_slice(&to_ntp(received).to_be_bytes());
    p[40..48].copy_from_slice(&to_ntp(transmit).to_be_bytes());
    Some(p)
}

/// `t` as a 64-bit NTP timestamp: seconds since 1900 (mod 2^32, i.e. within its era) in
/// the high 32 bits, the binary fraction of a second in the low 32 bits.
pub fn to_ntp(t: Timestamp) -> u64 {
    let nanos = t.as_nanosecond();
    let secs = nanos.div_euclid(1_000_000_000) + NTP_UNIX_OFFSET;
    let frac_nanos = nanos.rem_euclid(1_000_000_000);
    let secs32 = secs.rem_euclid(1 << 32) as u64;
    let frac32 = ((frac_nanos << 32) / 1_000_000_000) as u64;
    (secs32 << 32) | frac32
}

/// The instant of NTP timestamp `ntp` in era 0 (1900–2036), truncated to the nanosecond.
pub fn from_ntp_era0(ntp: u64) -> Timestamp {
    let secs = i128::from(ntp >> 32) - NTP_UNIX_OFFSET;
    let frac_nanos = (i128::from(ntp & 0xFFFF_FFFF) * 1_000_000_000) >> 32;
    Timestamp::from_nanosecond(secs * 1_000_000_000 + frac_nanos)
        .expect("era-0 NTP timestamps are in jiff's range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_2208988800_seconds_after_1900() {
        assert_eq!(to_ntp(Timestamp::UNIX_EPOCH), 2_208_988_800u64 << 32);
        assert_eq!(from_ntp_era0(2_208_988_800u64 << 32), Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn fractions_are_binary_fractions_of_a_second() {
        // 2024-01-01T00:00:00.25Z
        let t: Timestamp = "2024-01-01T00:00:00.25Z".parse().unwrap();
        assert_eq!(to_ntp(t), 0xE93C_7F00_4000_0000);
        let half: Timestamp = "2024-01-01T00:00:00.5Z".parse().unwrap();
        assert_eq!(to_ntp(half) & 0xFFFF_FFFF, 0x8000_0000);
    }

    #[test]
    fn conversion_round_trips_within_a_nanosecond() {
        for s in [
            "1968-01-20T03:14:08Z",
            "2004-09-27T03:11:08.213800999Z",
            "2026-05-17T12:34:56.789012345Z",
        ] {
            let t: Timestamp = s.parse().unwrap();
            let back = from_ntp_era0(to_ntp(t));
            let diff = t.duration_since(back).as_nanos();
            assert!((0..=1).contains(&diff), "{s}: off by {diff} ns");
        }
        // 2004-09-27T03:11:08.213800999Z: seconds 0xC502034C, fraction floor(x * 2^32).
        let t: Timestamp = "2004-09-27T03:11:08.213800999Z".parse().unwrap();
        assert_eq!(to_ntp(t), 0xC502_034C_36BB_A98A);
    }

    #[test]
    fn after_2036_seconds_wrap_into_era_1() {
        let t: Timestamp = "2040-06-01T08:00:00Z".parse().unwrap();
        assert_eq!(to_ntp(t) >> 32, 0x081D_D180);
    }

    #[test]
    fn replies_only_to_client_requests() {
        let now = Timestamp::now();
        let mut req = [0u8; 48];
        req[0] = (4 << 3) | 3;
        req[2] = 6;
        req[40..48].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        let p = reply_to(&req, now, now).expect("a reply");
        assert_eq!(p[0], (4 << 3) | 4);
        assert_eq!(p[1], 1);
        assert_eq!(p[2], 6);
        assert_eq!(&p[12..16], b"TEST");
        assert_eq!(p[24..32], req[40..48]);
        assert_eq!(
            u64::from_be_bytes(p[40..48].try_into().unwrap()),
            to_ntp(now)
        );

        let mut server_mode = req;
        server_mode[0] = (4 << 3) | 4;
        assert!(reply_to(&server_mode, now, now).is_none());
        assert!(reply_to(&req[..47], now, now).is_none());
    }
}
