//! The charge of one reservation: opened as `pending` at confirmation, made `final` after
//! the window (or at a billed cancellation), `waived` when the channel failed on the
//! operator's side, `voided` when a cancellation is not billed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// State of a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeState {
    /// Set at confirmation; not yet owed.
    Pending,
    /// Owed; appears on the invoice.
    Final,
    /// Not owed: the channel did not run normally (operator-side outage).
    Waived,
    /// Not owed: cancelled under a policy that does not bill cancellations.
    Voided,
}

/// What a transition does to the charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeAction {
    /// Create the charge as pending.
    Open,
    /// Make it final.
    Finalize,
    /// Waive it.
    Waive,
    /// Void it.
    Void,
}

/// An action that does not fit the charge's state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot {action:?} a charge that is {state:?}")]
pub struct ChargeError {
    /// Current state (`None`: no charge yet).
    pub state: Option<ChargeState>,
    /// Attempted action.
    pub action: ChargeAction,
}

impl ChargeState {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeState::Pending => "pending",
            ChargeState::Final => "final",
            ChargeState::Waived => "waived",
            ChargeState::Voided => "voided",
        }
    }

    /// Applies `action` to a charge in `state` (`None`: not yet opened).
    pub fn apply(
        state: Option<ChargeState>,
        action: ChargeAction,
    ) -> Result<ChargeState, ChargeError> {
        use ChargeAction::*;
        use ChargeState::*;
        match (state, action) {
            (None, Open) => Ok(Pending),
            (Some(Pending), Finalize) => Ok(Final),
            (Some(Pending), Waive) => Ok(Waived),
            (Some(Pending), Void) => Ok(Voided),
            _ => Err(ChargeError { state, action }),
        }
    }
}

impl FromStr for ChargeState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => ChargeState::Pending,
            "final" => ChargeState::Final,
            "waived" => ChargeState::Waived,
            "voided" => ChargeState::Voided,
            other => return Err(format!("unknown charge state {other:?}")),
        })
    }
}

impl fmt::Display for ChargeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Seconds of the window `start..end` lost to operator-side outages, each from its start
/// to its end (an open one: to the end of the window), overlaps counted once. Any of it
/// makes the charge waived at completion (the product's promise: no charge for an
/// operator-side outage).
pub fn seconds_lost(
    start: crate::Timestamp,
    end: crate::Timestamp,
    outages: &[(crate::Timestamp, Option<crate::Timestamp>)],
) -> u64 {
    let mut spans: Vec<(crate::Timestamp, crate::Timestamp)> = outages
        .iter()
        .map(|&(from, to)| (from.max(start), to.unwrap_or(end).min(end)))
        .filter(|(from, to)| from < to)
        .collect();
    spans.sort();
    let mut lost_ms: i64 = 0;
    let mut covered = start;
    for (from, to) in spans {
        let from = from.max(covered);
        if from < to {
            lost_ms += to.duration_since(from).as_millis() as i64;
            covered = to;
        }
    }
    u64::try_from(lost_ms / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_charges_move_and_only_once() {
        use ChargeAction::*;
        let p = ChargeState::apply(None, Open).unwrap();
        assert_eq!(p, ChargeState::Pending);
        assert_eq!(
            ChargeState::apply(Some(p), Finalize),
            Ok(ChargeState::Final)
        );
        assert_eq!(ChargeState::apply(Some(p), Waive), Ok(ChargeState::Waived));
        assert_eq!(ChargeState::apply(Some(p), Void), Ok(ChargeState::Voided));
        assert!(ChargeState::apply(Some(ChargeState::Final), Void).is_err());
        assert!(ChargeState::apply(Some(p), Open).is_err());
        assert!(ChargeState::apply(None, Finalize).is_err());
        for s in [
            ChargeState::Pending,
            ChargeState::Final,
            ChargeState::Waived,
            ChargeState::Voided,
        ] {
            assert_eq!(s.as_str().parse::<ChargeState>(), Ok(s));
        }
    }

    #[test]
    fn outages_count_within_the_window_and_once() {
        let t = |m: i64| crate::Timestamp::from_second(1_800_000_000 + m).unwrap();
        let (start, end) = (t(0), t(600));
        assert_eq!(seconds_lost(start, end, &[]), 0);
        // Before the start, overlapping, open (until the end), after the end.
        let outages = [
            (t(-100), Some(t(10))),
            (t(5), Some(t(20))),
            (t(100), Some(t(130))),
            (t(120), Some(t(125))),
            (t(590), None),
            (t(700), Some(t(800))),
        ];
        assert_eq!(seconds_lost(start, end, &outages), 20 + 30 + 10);
    }
}
