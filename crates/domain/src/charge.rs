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
}
