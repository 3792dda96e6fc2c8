//! The director's decisions, pure: given the programs a channel holds grants for, the
//! node's wall clock and whether a slate exists, what plays, under which label, what
//! happens to each program now, and when to decide again. [`crate::channel`] applies
//! the [`Plan`] (switches sources, starts and stops recordings and tallies, cuts
//! publishers); everything here is tested without sockets, media or a runtime.

use slotcast_domain::{ReservationId, Timestamp};
use slotcast_media::feed::SHARED;

/// What feeds a channel's hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Nothing yet (a new channel, or filler being reloaded).
    Nothing,
    /// The operator's filler.
    Filler,
    /// The "be right back" slate, inside a program's window while its publisher is away.
    Slate,
    /// The publisher session with this id.
    Publisher(u64),
}

/// What the director knows of one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProgramState {
    /// The program.
    pub(crate) reservation: ReservationId,
    /// Viewers get it from here…
    pub(crate) start: Timestamp,
    /// … to here.
    pub(crate) end: Timestamp,
    /// Its publisher is cut here.
    pub(crate) cut_at: Timestamp,
    /// Its publisher's session, while one is connected.
    pub(crate) publisher: Option<u64>,
    /// Whether its statistics and recording were started.
    pub(crate) begun: bool,
    /// Whether its statistics and recording were ended.
    pub(crate) ended: bool,
}

/// What to do with one program now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Its window opened: start its statistics and its recording (after the switch, so
    /// the recording starts on its first keyframe).
    Begin(ReservationId),
    /// Its window closed: end its statistics and recording (viewers get the filler).
    End(ReservationId),
    /// Its connect window closed: cut its publisher and forget it.
    Finish(ReservationId),
}

/// The director's decision at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// What should play.
    pub(crate) source: Source,
    /// What it shows: [`SHARED`] or the label of the program on air.
    pub(crate) label: u64,
    /// Per program, in the order held.
    pub(crate) steps: Vec<Step>,
    /// The next instant at which a decision changes, if any.
    pub(crate) wake: Option<Timestamp>,
}

/// The label of a program's media in the feeds and the packager (see
/// [`slotcast_media::feed`]): never [`SHARED`], the filler's.
pub(crate) fn label_of(reservation: ReservationId) -> u64 {
    u64::try_from(reservation.0)
        .ok()
        .filter(|&l| l != SHARED)
        .unwrap_or(u64::MAX)
}

/// Decides at `now`: the program whose window holds `now` is on air — its publisher, or
/// the slate while it is away (or, without a slate, whatever played, so its last
/// picture stays) — and otherwise the filler. While nobody is `watched`, the filler and
/// the slate pause ([`Source::Nothing`]): work nobody receives costs nothing, and the
/// first viewer starts them again from their first keyframe. A publisher always plays:
/// its program is recorded and its edges may relay it.
pub(crate) fn plan(
    now: Timestamp,
    programs: &[ProgramState],
    slate: bool,
    current: Source,
    watched: bool,
) -> Plan {
    let mut plan = Plan {
        source: Source::Filler,
        label: SHARED,
        steps: Vec::new(),
        wake: None,
    };
    let mut wake = |at: Timestamp| plan_wake(&mut plan.wake, at);
    let mut steps = Vec::new();
    let mut on_air = None;
    for p in programs {
        if now >= p.cut_at {
            steps.push(Step::Finish(p.reservation));
        } else if now < p.start {
            wake(p.start);
        } else if now >= p.end {
            wake(p.cut_at);
            if !p.ended {
                steps.push(Step::End(p.reservation));
            }
        } else {
            wake(p.end);
            on_air = Some(p);
            if !p.begun && !p.ended {
                steps.push(Step::Begin(p.reservation));
            }
        }
    }
    plan.steps = steps;
    if let Some(p) = on_air {
        plan.label = label_of(p.reservation);
        plan.source = match p.publisher {
            Some(session) => Source::Publisher(session),
            None if slate => Source::Slate,
            // A paused filler comes back as the filler.
            None if current == Source::Nothing => Source::Filler,
            None => current,
        };
    }
    if !watched && matches!(plan.source, Source::Filler | Source::Slate) {
        plan.source = Source::Nothing;
    }
    plan
}

fn plan_wake(wake: &mut Option<Timestamp>, at: Timestamp) {
    *wake = Some(wake.map_or(at, |w| w.min(at)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_domain::jiff::SignedDuration;

    fn at(s: &str) -> Timestamp {
        format!("2026-11-21T{s}Z").parse().unwrap()
    }

    /// Program `id` from `start` for ten minutes, cut three minutes after.
    fn program(id: i64, start: &str) -> ProgramState {
        let start = at(start);
        ProgramState {
            reservation: ReservationId(id),
            start,
            end: start + SignedDuration::from_mins(10),
            cut_at: start + SignedDuration::from_mins(13),
            publisher: None,
            begun: false,
            ended: false,
        }
    }

    #[test]
    fn nothing_held_plays_the_filler_and_sleeps() {
        let p = plan(at("12:00:00"), &[], true, Source::Nothing, true);
        assert_eq!(
            p,
            Plan {
                source: Source::Filler,
                label: SHARED,
                steps: vec![],
                wake: None
            }
        );
    }

    #[test]
    fn before_the_start_only_the_filler_plays_and_the_start_is_the_next_wake() {
        let mut a = program(1, "12:30:00");
        a.publisher = Some(7);
        let p = plan(at("12:26:00"), &[a], true, Source::Filler, true);
        assert_eq!((p.source, p.label), (Source::Filler, SHARED));
        assert_eq!(p.steps, vec![]);
        assert_eq!(p.wake, Some(at("12:30:00")));
    }

    #[test]
    fn at_the_start_the_publisher_goes_on_air_and_the_program_begins() {
        let mut a = program(1, "12:30:00");
        a.publisher = Some(7);
        let p = plan(at("12:30:00"), &[a], true, Source::Filler, true);
        assert_eq!((p.source, p.label), (Source::Publisher(7), 1));
        assert_eq!(p.steps, vec![Step::Begin(ReservationId(1))]);
        assert_eq!(p.wake, Some(at("12:40:00")));
        // Begun already: nothing to begin again.
        a.begun = true;
        assert_eq!(
            plan(at("12:31:00"), &[a], true, Source::Filler, true).steps,
            vec![]
        );
    }

    #[test]
    fn without_its_publisher_the_program_shows_the_slate_or_keeps_the_last_picture() {
        let a = program(1, "12:30:00");
        let p = plan(at("12:35:00"), &[a], true, Source::Publisher(7), true);
        assert_eq!((p.source, p.label), (Source::Slate, 1));
        let p = plan(at("12:35:00"), &[a], false, Source::Publisher(7), true);
        assert_eq!((p.source, p.label), (Source::Publisher(7), 1));
    }

    #[test]
    fn at_the_end_the_filler_returns_and_the_program_ends_once_then_is_cut() {
        let mut a = program(1, "12:30:00");
        a.publisher = Some(7);
        a.begun = true;
        let p = plan(at("12:40:00"), &[a], true, Source::Publisher(7), true);
        assert_eq!((p.source, p.label), (Source::Filler, SHARED));
        assert_eq!(p.steps, vec![Step::End(ReservationId(1))]);
        assert_eq!(p.wake, Some(at("12:43:00")));
        a.ended = true;
        assert_eq!(
            plan(at("12:41:00"), &[a], true, Source::Filler, true).steps,
            vec![]
        );
        let p = plan(at("12:43:00"), &[a], true, Source::Filler, true);
        assert_eq!(p.steps, vec![Step::Finish(ReservationId(1))]);
        assert_eq!(p.wake, None);
    }

    #[test]
    fn back_to_back_the_next_program_takes_over_at_the_end_of_the_first() {
        let mut a = program(1, "12:30:00");
        a.publisher = Some(7);
        a.begun = true;
        let mut b = program(2, "12:40:00");
        b.publisher = Some(8);
        // Before the switch: A on air, B previewing; wake at A's end (= B's start).
        let p = plan(at("12:39:59"), &[a, b], true, Source::Publisher(7), true);
        assert_eq!((p.source, p.label), (Source::Publisher(7), 1));
        assert_eq!(p.wake, Some(at("12:40:00")));
        // At the switch: B on air under its own label, A ended, B begun.
        let p = plan(at("12:40:00"), &[a, b], true, Source::Publisher(7), true);
        assert_eq!((p.source, p.label), (Source::Publisher(8), 2));
        assert_eq!(
            p.steps,
            vec![Step::End(ReservationId(1)), Step::Begin(ReservationId(2))]
        );
        assert_eq!(p.wake, Some(at("12:43:00")), "A's cut comes before B's end");
    }

    #[test]
    fn a_program_that_ended_is_never_begun_again() {
        let mut a = program(1, "12:30:00");
        a.ended = true;
        a.publisher = Some(7);
        // A clock set back into the window (tests, or an NTP step): on air again, but
        // its totals and recording are not restarted.
        let p = plan(at("12:35:00"), &[a], true, Source::Filler, true);
        assert_eq!(p.source, Source::Publisher(7));
        assert_eq!(p.steps, vec![]);
    }

    #[test]
    fn with_nobody_watching_the_filler_and_the_slate_pause_but_a_publisher_plays() {
        let p = plan(at("12:00:00"), &[], true, Source::Filler, false);
        assert_eq!((p.source, p.label), (Source::Nothing, SHARED));
        assert_eq!(
            plan(at("12:00:00"), &[], true, Source::Nothing, true).source,
            Source::Filler,
            "the first viewer starts the filler again"
        );
        // In a window without its publisher: the slate pauses too, but the program
        // begins (statistics, recording) whoever watches.
        let mut a = program(1, "12:30:00");
        let p = plan(at("12:35:00"), &[a], true, Source::Slate, false);
        assert_eq!((p.source, p.label), (Source::Nothing, 1));
        assert_eq!(p.steps, vec![Step::Begin(ReservationId(1))]);
        // Without a slate a paused filler comes back as the filler, not as nothing.
        let p = plan(at("12:35:00"), &[a], false, Source::Nothing, true);
        assert_eq!(p.source, Source::Filler);
        a.publisher = Some(7);
        let p = plan(at("12:35:00"), &[a], true, Source::Nothing, false);
        assert_eq!(p.source, Source::Publisher(7));
    }

    #[test]
    fn labels_are_never_the_shared_one() {
        assert_eq!(label_of(ReservationId(5)), 5);
        assert_eq!(label_of(ReservationId(0)), u64::MAX);
        assert_eq!(label_of(ReservationId(-3)), u64::MAX);
    }
}
