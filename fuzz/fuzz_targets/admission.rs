//! Viewer admission (`slotcast_media::Admission`) under an arbitrary sequence of admits,
//! connects, disconnects, touches, releases, expiries and capacity changes, with time that
//! may stand still or go backwards.
//!
//! Checked after every operation: `len() <= capacity()` (unless the capacity was just
//! lowered below the seats taken, which evicts nobody: then `len()` must not grow), and
//! every answer — admitted or full, seats, `contains`, `poll_timeout`, the ended seats and
//! why they ended — equals a plain reference model of the rules in the module docs.
#![no_main]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_media::Admission;
use slotcast_media::admission::{Admitted, SeatEnd};

#[derive(Arbitrary, Debug)]
enum Op {
    Admit(u8),
    Connect(u8),
    Disconnect(u8),
    Touch(u8),
    Release(u8),
    Expire,
    SetCapacity(u8),
    PollEnded,
    /// Time passes (milliseconds).
    Wait(u16),
    /// Time goes back (an edge passing a stale `now`).
    Rewind(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: u8,
    /// Idle timeout in milliseconds; `None`: too large to add to an instant.
    idle_timeout_ms: Option<u16>,
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
struct Session {
    admitted_at: u64,
    last_seen: u64,
    connections: u32,
}

/// The rules, written out plainly over millisecond clock values.
struct Model {
    capacity: usize,
    /// `None`: never expires.
    idle_ms: Option<u64>,
    sessions: BTreeMap<u64, Session>,
    ended: VecDeque<(u64, u64, u64, SeatEnd)>,
}

impl Model {
    fn deadline(&self, s: &Session) -> Option<u64> {
        if s.connections > 0 {
            return None;
        }
        self.idle_ms.map(|idle| s.last_seen + idle)
    }

    fn end(&mut self, session: u64, why: SeatEnd) {
        let s = self.sessions.remove(&session).expect("ending a held seat");
        self.ended.push_back((session, s.admitted_at, s.last_seen, why));
    }

    fn expire(&mut self, now: u64) -> usize {
        let mut due: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .filter_map(|(&id, s)| self.deadline(s).filter(|&d| d <= now).map(|d| (d, id)))
            .collect();
        due.sort_unstable();
        for &(_, id) in &due {
            self.end(id, SeatEnd::Expired);
        }
        due.len()
    }

    fn admit(&mut self, id: u64, now: u64) -> Result<Admitted, ()> {
        self.expire(now);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.last_seen = s.last_seen.max(now);
            return Ok(Admitted::Existing);
        }
        if self.sessions.len() >= self.capacity {
            return Err(());
        }
        self.sessions.insert(
            id,
            Session {
                admitted_at: now,
                last_seen: now,
                connections: 0,
            },
        );
        Ok(Admitted::New)
    }

    fn connect(&mut self, id: u64, now: u64) -> Result<Admitted, ()> {
        let admitted = self.admit(id, now)?;
        self.sessions.get_mut(&id).expect("just admitted").connections += 1;
        Ok(admitted)
    }

    fn disconnect(&mut self, id: u64, now: u64) -> bool {
        let Some(s) = self.sessions.get_mut(&id) else {
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
        self.end(id, SeatEnd::Disconnected);
        true
    }

    fn touch(&mut self, id: u64, now: u64) -> bool {
        self.expire(now);
        match self.sessions.get_mut(&id) {
            Some(s) => {
                s.last_seen = s.last_seen.max(now);
                true
            }
            None => false,
        }
    }

    fn release(&mut self, id: u64) -> bool {
        if !self.sessions.contains_key(&id) {
            return false;
        }
        self.end(id, SeatEnd::Released);
        true
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.sessions.values().filter_map(|s| self.deadline(s)).min()
    }
}

fn run(input: Input) {
    // The harness may read the clock; the library never does.
    let base = Instant::now();
    let at = |ms: u64| base + Duration::from_millis(ms);
    let idle = match input.idle_timeout_ms {
        Some(ms) => Duration::from_millis(u64::from(ms)),
        None => Duration::MAX,
    };
    let mut adm = Admission::new(usize::from(input.capacity % 16), idle);
    let mut model = Model {
        capacity: usize::from(input.capacity % 16),
        idle_ms: input.idle_timeout_ms.map(u64::from),
        sessions: BTreeMap::new(),
        ended: VecDeque::new(),
    };
    assert_eq!(adm.idle_timeout(), idle);
    // Start far enough from `base` that rewinding never goes below it.
    let mut now: u64 = 1 << 20;
    // A session id space small enough for collisions, with ids far apart in u64.
    let session = |x: u8| u64::from(x % 24).wrapping_mul(0x9e37_79b9_7f4a_7c15);

    // At most 2000 operations: fewer seats end than the admission keeps for polling.
    for op in input.ops.iter().take(2000) {
        let len_before = adm.len();
        match *op {
            Op::Admit(x) => {
                let got = adm.admit(session(x), at(now));
                let want = model.admit(session(x), now);
                assert_eq!(got.map_err(|f| f.capacity), want.map_err(|()| model.capacity));
            }
            Op::Connect(x) => {
                let got = adm.connect(session(x), at(now));
                let want = model.connect(session(x), now);
                assert_eq!(got.map_err(|f| f.capacity), want.map_err(|()| model.capacity));
            }
            Op::Disconnect(x) => {
                assert_eq!(
                    adm.disconnect(session(x), at(now)),
                    model.disconnect(session(x), now)
                );
            }
            Op::Touch(x) => {
                assert_eq!(adm.touch(session(x), at(now)), model.touch(session(x), now));
            }
            Op::Release(x) => assert_eq!(adm.release(session(x)), model.release(session(x))),
            Op::Expire => assert_eq!(adm.expire(at(now)), model.expire(now)),
            Op::SetCapacity(c) => {
                adm.set_capacity(usize::from(c % 16));
                model.capacity = usize::from(c % 16);
            }
            Op::PollEnded => {
                let got = adm.poll_ended();
                let want = model.ended.pop_front();
                match (got, want) {
                    (None, None) => {}
                    (Some(seat), Some((id, admitted_at, last_seen, end))) => {
                        assert_eq!(seat.session, id);
                        assert_eq!(seat.end, end, "why session {id:#x} ended");
                        assert_eq!(seat.admitted_at, at(admitted_at));
                        assert_eq!(seat.last_seen, at(last_seen));
                        assert_eq!(
                            seat.watched(),
                            Duration::from_millis(last_seen - admitted_at)
                        );
                    }
                    (got, want) => panic!("ended seat {got:?}, model {want:?}"),
                }
            }
            Op::Wait(ms) => now += u64::from(ms),
            Op::Rewind(ms) => now -= u64::from(ms).min(now),
        }

        assert!(
            adm.len() <= adm.capacity() || adm.len() <= len_before,
            "{} seats taken, capacity {}",
            adm.len(),
            adm.capacity()
        );
        assert_eq!(adm.len(), model.sessions.len(), "seats taken after {op:?}");
        assert_eq!(adm.is_empty(), model.sessions.is_empty());
        assert_eq!(adm.capacity(), model.capacity);
        for x in 0..24u8 {
            assert_eq!(
                adm.contains(session(x)),
                model.sessions.contains_key(&session(x))
            );
        }
        assert_eq!(adm.poll_timeout(), model.poll_timeout().map(at), "poll_timeout");
        assert_eq!(adm.ended_lost(), 0);
    }
}

fuzz_target!(|input: Input| run(input));
