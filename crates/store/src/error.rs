//! The one error type of the storage layer. The HTTP edge maps it in one place:
//! `Conflict` → 409 (422 for validation-like ones), `NotFound` → 404,
//! `Unavailable` → 503, the rest → 500 with the details only logged.

use slotcast_domain::quota::QuotaExceeded;
use slotcast_domain::{ChannelId, Status, Timestamp};
use thiserror::Error;

/// The underlying failure of a storage error, kept as its [`source`](std::error::Error::source)
/// so logs show the whole chain.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A rule enforced by the database refused the change.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// No such record.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `reservation 42`.
        what: String,
    },
    /// The database cannot be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Source),
    /// A stored value cannot be read back (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL or options are wrong.
    #[error("{0}")]
    Config(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Backend(#[source] Source),
}

impl StorageError {
    /// A `NotFound` for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        StorageError::NotFound { what: what.into() }
    }
}

/// A change the database refused because of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Conflict {
    /// A slot is already held.
    #[error("the slot at {slot} on channel {channel} is already booked")]
    SlotTaken {
        /// Channel.
        channel: ChannelId,
        /// The slot.
        slot: Timestamp,
    },
    /// The monthly quota would be exceeded.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
    /// The reservation is not in the expected state any more.
    #[error("the reservation is {current}, not {expected}")]
    WrongState {
        /// Its state now.
        current: Status,
        /// The state the change needed.
        expected: Status,
    },
    /// The confirmation came at or after the deadline.
    #[error("the confirmation deadline {confirm_by} has passed")]
    DeadlinePassed {
        /// The deadline.
        confirm_by: Timestamp,
    },
    /// The program has ended; it can no longer change.
    #[error("the program ended at {end}")]
    Ended {
        /// End of the program.
        end: Timestamp,
    },
    /// Only premium members may book.
    #[error("only premium members can book airtime")]
    NotPremium,
    /// The e-mail address is registered already.
    #[error("this e-mail address is already registered")]
    EmailTaken,
    /// A channel of that name exists.
    #[error("a channel named {0:?} exists already")]
    ChannelNameTaken(String),
    /// The random reservation id or program slug exists (astronomically unlikely).
    #[error("the reservation id or program slug is taken; try again")]
    IdTaken,
    /// The charge is not in a state that allows the action.
    #[error("the charge cannot change: {0}")]
    Charge(String),
}
