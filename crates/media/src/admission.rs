//! Viewer capacity of one channel, counted across every playback protocol, sans-IO.
//!
//! A *seat* belongs to a session — the id carried by the viewer's play token — not to a
//! connection or a request: the HLS player fetching its next part, or the same token used
//! over a second protocol, does not take a second seat. Request-based protocols (LL-HLS)
//! keep a seat with [`Admission::admit`]/[`Admission::touch`] and lose it after
//! `idle_timeout` without requests (about three target durations); connection-based
//! protocols (HTTP-FLV, the fMP4 stream) hold it with [`Admission::connect`] until
//! [`Admission::disconnect`]. At most `capacity` seats exist at any time, and a freed seat
//! goes to the next session that asks.
//!
//! Time is an argument: the edge passes `now` and sleeps until [`Admission::poll_timeout`]
//! to call [`Admission::expire`]. Ended seats come out of [`Admission::poll_ended`] for
//! statistics (viewer-minutes).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The channel has no free seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("channel full: all {capacity} viewer seats are taken")]
pub struct Full {
    /// The channel's capacity.
    pub capacity: usize,
}

/// How a session was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// It took a new seat.
    New,
    /// It already had one.
    Existing,
}

/// Why a seat ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatEnd {
    /// [`Admission::release`] was called.
    Released,
    /// The session's last connection closed.
    Disconnected,
    /// No request for `idle_timeout`.
    Expired,
}

/// A seat that ended, for statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The session that held it.
    pub session: u64,
    /// When it was taken.
    pub admitted_at: Instant,
    /// The last admit, touch, connect or disconnect.
    pub last_seen: Instant,
    /// How it ended.
    pub end: SeatEnd,
}

impl Seat {
    /// Time the session watched: from admission to its last sign of life.
    pub fn watched(&self) -> Duration {
        self.last_seen.saturating_duration_since(self.admitted_at)
    }
}

#[derive(Clone, Copy, Debug)]
struct Session {
    admitted_at: Instant,
    last_seen: Instant,
    /// Open connections; a seat with connections never expires.
    connections: u32,
}

/// Ended seats kept for [`Admission::poll_ended`]; beyond it the oldest are discarded.
const MAX_ENDED: usize = 4096;

/// The seats of one channel. See the [module documentation](self).
#[derive(Debug)]
pub struct Admission {
    capacity: usize,
    idle_timeout: Duration,
    sessions: HashMap<u64, Session>,
    /// `(last_seen + idle_timeout, session)` for every seat without connections.
    deadlines: BTreeSet<(Instant, u64)>,
    ended: VecDeque<Seat>,
    ended_lost: u64,
}

impl Admission {
    /// No seats taken; `capacity` seats; request-based seats expire after `idle_timeout`.
    pub fn new(capacity: usize, idle_timeout: Duration) -> Admission {
        Admission {
            capacity,
            idle_timeout,
            sessions: HashMap::new(),
            deadlines: BTreeSet::new(),
            ended: VecDeque::new(),
            ended_lost: 0,
        }
    }

    /// Seats taken.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no seat is taken.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Seats in total.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity. Lowering it below [`Admission::len`] evicts nobody; new
    /// sessions are refused until enough seats have ended.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// The idle timeout of request-based seats.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The sessions holding a seat.
    pub fn sessions(&self) -> impl Iterator<Item = u64> + '_ {
        self.sessions.keys().copied()
    }

    /// The seats held, with the instant each was taken.
    pub fn seats(&self) -> impl Iterator<Item = (u64, Instant)> + '_ {
        self.sessions.iter().map(|(&id, s)| (id, s.admitted_at))
    }

    /// Whether `session` holds a seat (as of the last call that took `now`).
    pub fn contains(&self, session: u64) -> bool {
        self.sessions.contains_key(&session)
    }

    /// A request (e.g. an LL-HLS playlist or part) from `session`: keeps its seat alive, or
    /// takes a free one. Seats idle past their timeout at `now` are freed first.
    pub fn admit(&mut self, session: u64, now: Instant) -> Result<Admitted, Full> {
        self.expire(now);
        if let Some(s) = self.sessions.get_mut(&session) {
            let old = (s.last_seen, s.connections);
            s.last_seen = s.last_seen.max(now);
            let new = (s.last_seen, s.connections);
            self.reschedule(session, old, new);
            return Ok(Admitted::Existing);
        }
        if self.sessions.len() >= self.capacity {
            return Err(Full {
                capacity: self.capacity,
            });
        }
        self.sessions.insert(
            session,
            Session {
                admitted_at: now,
                last_seen: now,
                connections: 0,
            },
        );
        if let Some(deadline) = self.deadline(now) {
            self.deadlines.insert((deadline, session));
        }
        Ok(Admitted::New)
    }

    /// A connection (HTTP-FLV, fMP4 stream) opened for `session`: takes or reuses its seat
    /// and holds it, without idle timeout, until the matching [`Admission::disconnect`].
    pub fn connect(&mut self, session: u64, now: Instant) -> Result<Admitted, Full> {
        let admitted = self.admit(session, now)?;
        if let Some(s) = self.sessions.get_mut(&session) {
            let old = (s.last_seen, s.connections);
            s.connections += 1;
            let new = (s.last_seen, s.connections);
            self.reschedule(session, old, new);
        }
        Ok(admitted)
    }

    /// A connection of `session` closed. When it was the last one the seat is freed at once
    /// (so the next viewer can be admitted); returns whether that happened.
    pub fn disconnect(&mut self, session: u64, now: Instant) -> bool {
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        if s.connections == 0 {
            return false;
        }
        s.last_seen = s.last_seen.max(now);
        s.connections -= 1;
        if s.connections > 0 {
            return false;
        }
        self.end(session, SeatEnd::Disconnected);
        true
    }

    /// A sign of life from `session` (an HLS request that needs no admission decision).
    /// Returns whether it still holds a seat.
    pub fn touch(&mut self, session: u64, now: Instant) -> bool {
        self.expire(now);
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        let old = (s.last_seen, s.connections);
        s.last_seen = s.last_seen.max(now);
        let new = (s.last_seen, s.connections);
        self.reschedule(session, old, new);
        true
    }

    /// Frees the seat of `session` whatever holds it (the play token was revoked, the
    /// program ended). Returns whether it had one.
    pub fn release(&mut self, session: u64) -> bool {
        if !self.sessions.contains_key(&session) {
            return false;
        }
        self.end(session, SeatEnd::Released);
        true
    }

    /// Frees every request-based seat idle for `idle_timeout` or longer at `now`. Returns
    /// how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut expired = 0;
        while let Some(&(deadline, session)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.end(session, SeatEnd::Expired);
            expired += 1;
        }
        expired
    }

    /// When the next request-based seat expires, if any: the edge calls
    /// [`Admission::expire`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// The next ended seat, for statistics.
    pub fn poll_ended(&mut self) -> Option<Seat> {
        self.ended.pop_front()
    }

    /// Ended seats discarded because [`Admission::poll_ended`] was not called.
    pub fn ended_lost(&self) -> u64 {
        self.ended_lost
    }

    fn deadline(&self, last_seen: Instant) -> Option<Instant> {
        // A timeout too large to add never expires instead of panicking.
        last_seen.checked_add(self.idle_timeout)
    }

    /// Moves `session`'s entry in `deadlines` from its old `(last_seen, connections)` to
    /// its new one; only seats without connections have a deadline.
    fn reschedule(&mut self, session: u64, old: (Instant, u32), new: (Instant, u32)) {
        if old.1 == 0
            && let Some(deadline) = self.deadline(old.0)
        {
            self.deadlines.remove(&(deadline, session));
        }
        if new.1 == 0
            && let Some(deadline) = self.deadline(new.0)
        {
            self.deadlines.insert((deadline, session));
        }
    }

    fn end(&mut self, session: u64, end: SeatEnd) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        if s.connections == 0
            && let Some(deadline) = self.deadline(s.last_seen)
        {
            self.deadlines.remove(&(deadline, session));
        }
        if self.ended.len() == MAX_ENDED {
            self.ended.pop_front();
            self.ended_lost += 1;
        }
        self.ended.push_back(Seat {
            session,
            admitted_at: s.admitted_at,
            last_seen: s.last_seen,
            end,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IDLE: Duration = Duration::from_secs(6);

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn same_session_takes_one_seat() {
        let t0 = Instant::now();
        let mut a = Admission::new(2, IDLE);
        assert_eq!(a.admit(1, t0), Ok(Admitted::New));
        assert_eq!(a.admit(1, at(t0, 500)), Ok(Admitted::Existing));
        assert_eq!(a.connect(1, at(t0, 600)), Ok(Admitted::Existing));
        assert_eq!(a.len(), 1);
        assert_eq!(a.admit(2, t0), Ok(Admitted::New));
        assert_eq!(a.admit(3, t0), Err(Full { capacity: 2 }));
        assert_eq!(
            Full { capacity: 2 }.to_string(),
            "channel full: all 2 viewer seats are taken"
        );
    }

    #[test]
    fn freed_seat_goes_to_the_next_session() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, IDLE);
        a.connect(1, t0).unwrap();
        assert!(a.admit(2, t0).is_err());
        assert!(a.disconnect(1, at(t0, 10_000)));
        assert_eq!(a.admit(2, at(t0, 10_000)), Ok(Admitted::New));
        let seat = a.poll_ended().unwrap();
        assert_eq!(seat.end, SeatEnd::Disconnected);
        assert_eq!(seat.watched(), Duration::from_secs(10));
        assert!(a.release(2));
        assert!(!a.release(2));
        assert_eq!(a.poll_ended().unwrap().end, SeatEnd::Released);
    }

    #[test]
    fn connections_are_counted_and_never_expire() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, IDLE);
        a.connect(7, t0).unwrap();
        a.connect(7, t0).unwrap();
        assert_eq!(a.poll_timeout(), None);
        assert_eq!(a.expire(at(t0, 3_600_000)), 0);
        assert!(!a.disconnect(7, t0));
        assert!(a.contains(7));
        assert!(a.disconnect(7, t0));
        assert!(!a.contains(7));
        assert!(!a.disconnect(7, t0));
    }

    #[test]
    fn hls_sessions_expire_when_idle() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, IDLE);
        a.admit(1, t0).unwrap();
        assert_eq!(a.poll_timeout(), Some(at(t0, 6_000)));
        assert!(a.touch(1, at(t0, 4_000)));
        assert_eq!(a.poll_timeout(), Some(at(t0, 10_000)));
        assert_eq!(a.expire(at(t0, 9_999)), 0);
        // A new session is refused just before the deadline and admitted at it, even
        // without an explicit expire() call.
        assert!(a.admit(2, at(t0, 9_999)).is_err());
        assert_eq!(a.admit(2, at(t0, 10_000)), Ok(Admitted::New));
        let seat = a.poll_ended().unwrap();
        assert_eq!((seat.session, seat.end), (1, SeatEnd::Expired));
        assert!(!a.touch(1, at(t0, 10_000)));
    }

    #[test]
    fn lowering_capacity_evicts_nobody() {
        let t0 = Instant::now();
        let mut a = Admission::new(3, IDLE);
        for s in 0..3 {
            a.connect(s, t0).unwrap();
        }
        a.set_capacity(1);
        assert_eq!(a.len(), 3);
        assert_eq!(a.admit(0, t0), Ok(Admitted::Existing));
        a.disconnect(0, t0);
        a.disconnect(1, t0);
        assert!(a.admit(9, t0).is_err());
        a.disconnect(2, t0);
        assert_eq!(a.admit(9, t0), Ok(Admitted::New));
    }

    #[test]
    fn enormous_timeout_does_not_panic() {
        let t0 = Instant::now();
        let mut a = Admission::new(1, Duration::MAX);
        a.admit(1, t0).unwrap();
        assert!(a.touch(1, t0));
        assert_eq!(a.expire(at(t0, 1_000_000)), 0);
        assert!(a.release(1));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Admit(u64),
        Connect(u64),
        Disconnect(u64),
        Touch(u64),
        Release(u64),
        Expire,
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let s = 0u64..10;
        prop_oneof![
            4 => s.clone().prop_map(Op::Admit),
            2 => s.clone().prop_map(Op::Connect),
            2 => s.clone().prop_map(Op::Disconnect),
            2 => s.clone().prop_map(Op::Touch),
            1 => s.prop_map(Op::Release),
            1 => Just(Op::Expire),
            3 => (0u64..4_000).prop_map(Op::Advance),
        ]
    }

    /// The reference: sessions with (last seen in ms, connections), expiry checked lazily.
    #[derive(Default)]
    struct Model {
        sessions: HashMap<u64, (u64, u32)>,
    }

    impl Model {
        fn expire(&mut self, now: u64, idle: u64) -> usize {
            let before = self.sessions.len();
            self.sessions
                .retain(|_, &mut (seen, conns)| conns > 0 || seen + idle > now);
            before - self.sessions.len()
        }
        fn next_deadline(&self, idle: u64) -> Option<u64> {
            self.sessions
                .values()
                .filter(|(_, conns)| *conns == 0)
                .map(|(seen, _)| seen + idle)
                .min()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn exactly_capacity_seats_for_any_interleaving(
            capacity in 0usize..6,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let idle = IDLE.as_millis() as u64;
            let t0 = Instant::now();
            let mut a = Admission::new(capacity, IDLE);
            let mut m = Model::default();
            let mut now = 0u64;
            let mut ended = 0usize;
            let mut m_ended = 0usize;
            for op in ops {
                match op {
                    Op::Admit(s) | Op::Connect(s) => {
                        let connect = matches!(op, Op::Connect(_));
                        let got = if connect { a.connect(s, at(t0, now)) } else { a.admit(s, at(t0, now)) };
                        m_ended += m.expire(now, idle);
                        let free = m.sessions.len() < capacity;
                        let want = match m.sessions.get_mut(&s) {
                            Some(entry) => {
                                entry.0 = now;
                                entry.1 += u32::from(connect);
                                Ok(Admitted::Existing)
                            }
                            None if free => {
                                m.sessions.insert(s, (now, u32::from(connect)));
                                Ok(Admitted::New)
                            }
                            None => Err(Full { capacity }),
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Disconnect(s) => {
                        let got = a.disconnect(s, at(t0, now));
                        let want = match m.sessions.get_mut(&s) {
                            Some(entry) if entry.1 > 0 => {
                                entry.0 = now;
                                entry.1 -= 1;
                                if entry.1 == 0 {
                                    m.sessions.remove(&s);
                                    m_ended += 1;
                                    true
                                } else {
                                    false
                                }
                            }
                            _ => false,
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Touch(s) => {
                        let got = a.touch(s, at(t0, now));
                        m_ended += m.expire(now, idle);
                        let want = match m.sessions.get_mut(&s) {
                            Some(entry) => {
                                entry.0 = now;
                                true
                            }
                            None => false,
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Release(s) => {
                        let want = m.sessions.remove(&s).is_some();
                        m_ended += usize::from(want);
                        prop_assert_eq!(a.release(s), want);
                    }
                    Op::Expire => {
                        let want = m.expire(now, idle);
                        m_ended += want;
                        prop_assert_eq!(a.expire(at(t0, now)), want);
                    }
                    Op::Advance(ms) => now += ms,
                }
                prop_assert!(a.len() <= capacity);
                prop_assert_eq!(a.len(), m.sessions.len());
                prop_assert_eq!(a.poll_timeout(), m.next_deadline(idle).map(|d| at(t0, d)));
                while a.poll_ended().is_some() {
                    ended += 1;
                }
                prop_assert_eq!(ended, m_ended);
            }
        }
    }
}
