//! Play sessions: what a viewer holds after its token admitted it.
//!
//! A play token is short-lived and checked once. A connection-based viewer (HTTP-FLV, the
//! fMP4 stream) is its own session: it plays while the connection stays open. A
//! request-based viewer (HLS, a replay's byte ranges) gets a session id, minted here at
//! its first request, carried in the URLs it is handed (`?session=`), and valid while the
//! viewer keeps asking within the session's idle time — about three target durations for
//! live LL-HLS, longer for a replay, which a player may pause. The id is 128 random bits,
//! so it cannot be guessed; the table is bounded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use slotcast_domain::token::PlayClaims;

/// Sessions held at most; beyond it (after dropping the idle ones) new ones are refused.
const MAX_SESSIONS: usize = 200_000;
/// The longest id accepted (22 base64url characters are minted).
const MAX_ID_LEN: usize = 32;

/// One session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// What its token granted.
    pub(crate) claims: PlayClaims,
    /// Whether it was shown media of its own program (live): another program after it ends
    /// the session.
    pub(crate) seen_program: bool,
    last_seen: Instant,
    idle: Duration,
}

/// The sessions of a node. See the [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: HashMap<String, Session>,
}

impl Sessions {
    /// A new session for `claims`, idle-expiring after `idle`; `None` when the table is
    /// full of live sessions.
    pub(crate) fn mint(
        &mut self,
        claims: PlayClaims,
        idle: Duration,
        now: Instant,
    ) -> Option<String> {
        if self.map.len() >= MAX_SESSIONS {
            self.map.retain(|_, s| !s.expired(now));
            if self.map.len() >= MAX_SESSIONS {
                return None;
            }
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = URL_SAFE_NO_PAD.encode(bytes);
        self.map.insert(
            id.clone(),
            Session {
                claims,
                seen_program: false,
                last_seen: now,
                idle,
            },
        );
        Some(id)
    }

    /// The session `id`, kept alive by this request; `None` when unknown or idle too long
    /// (then forgotten).
    pub(crate) fn touch(&mut self, id: &str, now: Instant) -> Option<&mut Session> {
        if id.len() > MAX_ID_LEN {
            return None;
        }
        if self.map.get(id).is_some_and(|s| s.expired(now)) {
            self.map.remove(id);
            return None;
        }
        let s = self.map.get_mut(id)?;
        s.last_seen = now;
        Some(s)
    }

    /// Ends session `id`.
    pub(crate) fn end(&mut self, id: &str) {
        self.map.remove(id);
    }

    /// Ends every session.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Sessions held (idle ones included until they are next looked at).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) >= self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_domain::token::PlayKind;
    use slotcast_domain::{ChannelId, ReservationId, Timestamp};

    fn claims() -> PlayClaims {
        PlayClaims {
            kind: PlayKind::Live,
            channel: ChannelId(1),
            reservation: ReservationId(2),
            grant: 3,
            program_end: Timestamp::UNIX_EPOCH,
            expires: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_session_lives_while_it_is_used_and_ends_when_idle() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(6);
        let mut s = Sessions::default();
        let id = s.mint(claims(), idle, t0).unwrap();
        assert_eq!(id.len(), 22);
        // Used every 5 s for a long time: still there.
        for i in 1..100 {
            assert!(s.touch(&id, t0 + Duration::from_secs(5 * i)).is_some());
        }
        assert!(s.touch(&id, t0 + Duration::from_secs(5 * 99 + 6)).is_none());
        assert_eq!(s.len(), 0);
        assert!(s.touch("nope", t0).is_none());
        assert!(s.touch(&"x".repeat(1000), t0).is_none());
        let other = s.mint(claims(), idle, t0).unwrap();
        assert_ne!(other, id);
        s.end(&other);
        assert!(s.touch(&other, t0).is_none());
    }
}
