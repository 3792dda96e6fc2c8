//! # slotcast-domain — the reservation rules
//!
//! This crate owns every rule of a slotcast booking: what a slot is and how it aligns to
//! the clock ([`slot`]), what a valid reservation request is ([`request`]) and what a valid
//! change of a booked program is ([`change`]), the deadlines and windows that follow from
//! it, before and after an extension ([`schedule`]), the fee and the charge lifecycle
//! ([`money`], [`charge`]), the monthly quota in the service's time zone ([`quota`]),
//! the lifecycle states and the transitions between them, including who may publish now
//! ([`lifecycle`]), who may see and play a program ([`visibility`]), the one-time
//! reservation key ([`key`]) and the signed, short-lived play tokens the stream node checks
//! without a database ([`token`]) and the playback URL layout both sides share
//! ([`playback`]). It also checks what members and operators enter around bookings: a
//! premium member's payment card, kept as brand, last four digits and expiry only
//! ([`card`]), and a channel's settings and their bounds ([`channel`]).
//!
//! It must stay pure: no async, no I/O, no global state, and it **never reads the clock**
//! — every function that depends on time takes `now` as an argument, and randomness is
//! passed in as bytes. The edges (`center`, `stream`, the stores) call it for every
//! decision and the database enforces what concurrency could break (see `slotcast-store`).
//! [`book::Book`] is an in-memory model of the whole rule set, used as the reference that
//! property tests and the storage contract tests compare against.

pub mod book;
pub mod card;
pub mod change;
pub mod channel;
pub mod charge;
pub mod clock;
pub mod email;
pub mod ids;
pub mod key;
pub mod lifecycle;
pub mod money;
pub mod playback;
pub mod policy;
pub mod quota;
pub mod request;
pub mod schedule;
pub mod slot;
pub mod stats;
pub mod token;
pub mod visibility;

pub use card::{CardDraft, CardOnFile};
pub use change::{CurrentProgram, ProgramChange, ProgramChangeDraft};
pub use channel::{ChannelDraft, ChannelSettings};
pub use charge::ChargeState;
pub use clock::Clock;
pub use email::EmailAddress;
pub use ids::{ChannelId, MemberId, ReservationId, Slug};
pub use key::{KeyHash, ReservationKey};
pub use lifecycle::{
    Event, LifecycleError, Publish, PublishDenied, PublishDeniedReason, Status, Transition,
};
pub use money::{Currency, Money};
pub use policy::Policy;
pub use quota::MonthKey;
pub use request::{FieldErrors, ReservationDraft, ValidReservation};
pub use schedule::Schedule;
pub use slot::{SlotLength, SlotRange};
pub use stats::{CurveBuilder, ProgramStats, ViewerCurve};
pub use visibility::Visibility;

/// Instants on the wall clock (UTC). Media timing uses monotonic instants elsewhere.
pub use jiff::Timestamp;

/// The time library the domain speaks, re-exported so every crate uses the same version.
pub use jiff;
