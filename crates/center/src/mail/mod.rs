//! # E-mail
//!
//! This module owns **what slotcast's e-mails say and getting them delivered**:
//! - **rendering** ([`key_message`], [`broadcaster_message`], [`invitee_messages`],
//!   [`ics`]): pure functions that turn a reservation, its channel and its broadcaster into
//!   complete [`NewMessage`](slotcast_store::NewMessage)s — subject, plain-text and HTML
//!   bodies, an iCalendar attachment for invitees, and a dedupe key that makes queuing the
//!   same logical message twice a no-op. No I/O, no clock: every instant they show comes
//!   from the reservation, so the same inputs always give the same message;
//! - **delivery** ([`Sender`]): draining the durable outbox the store keeps, through SMTP
//!   (lettre) or into a directory of `.eml` files (the embedded default), with a lease per
//!   message, retries with exponential backoff, and nothing lost while the SMTP server is
//!   down. Delivery is at-least-once: a crash between handing a message over and recording
//!   it as sent sends it again once its lease runs out.
//!
//! What it must **not** do:
//! - **decide who is told what, or when**: that is the lifecycle's job
//!   ([`slotcast_domain::lifecycle`] emits the notify events, the center's handlers and the
//!   scheduler render them here and queue them in the same transaction as the change);
//! - **never put the viewer password into an `.ics`** (calendars sync and share events far
//!   more widely than mailboxes): it appears only in the body of invitee e-mails of
//!   `password` and `secret` programs, and in no broadcaster e-mail;
//! - **never e-mail anyone of a `secret` program but its invitees**: invitee messages go to
//!   exactly the addresses in [`Reservation::invitees`](slotcast_store::Reservation), one
//!   message each (so no invitee learns another's address), and nothing here looks up or
//!   adds recipients.
//!
//! [`ics::feed`] writes the public program-guide calendar from events its caller chose
//! (listed programs only).
//!
//! User-provided text (titles, outlines, names, …) is escaped in every HTML body
//! and in every iCalendar property.

pub mod ics;
mod render;
mod sender;

pub use self::ics::{IcsMethod, ics};
pub use self::render::{
    BroadcasterMail, MailContext, ProgramStats, broadcaster_message, invitee_messages, key_message,
};
pub use self::sender::{
    BATCH_LIMIT, LEASE_MS, MAX_ATTEMPTS, MailError, Sender, SmtpSettings, SmtpTls, Transport,
    retry_delay,
};
