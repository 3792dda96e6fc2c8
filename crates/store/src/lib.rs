//! # slotcast-store — the storage contract
//!
//! This crate owns the *shape* of slotcast's persistent facts — members and their payment
//! method, channels, reservations with their slot claims, the transition log, charges, the
//! notification outbox, login sessions — as async traits, plain record types and one
//! error type, [`StorageError`]. It holds no SQL: `slotcast-store-sqlite` and
//! `slotcast-store-postgres` implement it, and the contract test suite in
//! `slotcast-testkit` runs against both.
//!
//! Every invariant that concurrency could break is the implementation's job to enforce
//! *in the database*, inside one transaction, never by a prior read:
//! - a unique `(channel, slot)` claim row for every held slot (no double booking);
//! - the monthly quota as a conditional update of a per-member-month counter;
//! - every state change as a conditional update from the expected state (a reservation is
//!   confirmed, expired or cancelled exactly once), confirmations only before the deadline;
//! - the outbox messages a change causes are written in the same transaction, so an
//!   acknowledged change never loses its e-mail.
//!
//! Instants are stored as UTC milliseconds since the Unix epoch on both backends.

mod error;
mod records;

pub use error::{Conflict, StorageError};
pub use records::*;

use async_trait::async_trait;
use slotcast_domain::{ChannelId, EmailAddress, MemberId, ReservationId, Timestamp};

/// Result of a storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Members, their payment method and their password hash.
#[async_trait]
pub trait MemberStore {
    /// Registers a member. [`Conflict::EmailTaken`] if the address is registered.
    async fn create_member(&self, m: NewMember) -> Result<Member>;
    /// A member by id.
    async fn member(&self, id: MemberId) -> Result<Member>;
    /// A member by e-mail address (for login).
    async fn member_by_email(&self, email: &EmailAddress) -> Result<Member>;
    /// Replaces the password hash.
    async fn set_password_hash(&self, id: MemberId, hash: &str) -> Result<()>;
    /// Sets the shown name and whether new programs show the member's e-mail address.
    async fn update_member(
        &self,
        id: MemberId,
        display_name: &str,
        show_email: bool,
    ) -> Result<Member>;
    /// Puts `card` on file (replacing any earlier one) and makes the member premium.
    async fn set_payment_card(
        &self,
        id: MemberId,
        card: &PaymentCard,
        at: Timestamp,
    ) -> Result<Member>;
    /// Members whose address or shown name contains `text` (case-insensitive; `%` and `_`
    /// are plain characters), oldest first, at most `limit`.
    async fn search_members(&self, text: &str, limit: u32) -> Result<Vec<Member>>;
}

/// Login sessions, by the SHA-256 of their bearer token.
#[async_trait]
pub trait SessionStore {
    /// Records a new session.
    async fn create_session(&self, s: NewSession) -> Result<()>;
    /// The member of a live (unexpired, not revoked) session.
    async fn session_member(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Member>;
    /// Ends a session.
    async fn revoke_session(&self, token_hash: &[u8; 32], at: Timestamp) -> Result<()>;
    /// Ends every live session of `member` but the one `keep` names (all when `None`);
    /// returns how many ended.
    async fn revoke_member_sessions(
        &self,
        member: MemberId,
        keep: Option<&[u8; 32]>,
        at: Timestamp,
    ) -> Result<u64>;
}

/// The channel catalogue.
#[async_trait]
pub trait ChannelStore {
    /// Adds a channel. [`Conflict::ChannelNameTaken`] if the name exists.
    async fn create_channel(&self, c: NewChannel) -> Result<Channel>;
    /// Every channel, by id.
    async fn channels(&self) -> Result<Vec<Channel>>;
    /// One channel.
    async fn channel(&self, id: ChannelId) -> Result<Channel>;
    /// Replaces a channel's settings.
    async fn update_channel(&self, id: ChannelId, c: NewChannel) -> Result<Channel>;
}

/// Reservations, their slot claims, transition log and charge.
#[async_trait]
pub trait ReservationStore {
    /// Accepts a booking in one transaction: checks the member is premium, claims every
    /// slot ([`Conflict::SlotTaken`]), takes the quota ([`Conflict::QuotaExceeded`]),
    /// logs the transition and queues the outbox messages.
    async fn create_reservation(&self, r: NewReservation) -> Result<Reservation>;
    /// One reservation.
    async fn reservation(&self, id: ReservationId) -> Result<Reservation>;
    /// One reservation by its program slug.
    async fn reservation_by_slug(&self, slug: &str) -> Result<Reservation>;
    /// One reservation by the hash of its key (the stream node's publish check).
    async fn reservation_by_key(&self, key: &slotcast_domain::KeyHash) -> Result<Reservation>;
    /// The statistics kept when the program completed, if the stream node measured any.
    async fn program_stats(&self, id: ReservationId) -> Result<Option<ProgramStats>>;
    /// Features the program (`picked`) or stops featuring it; either is idempotent.
    async fn set_pickup(&self, id: ReservationId, picked: bool, at: Timestamp) -> Result<()>;
    /// The featured programs, most recently featured first.
    async fn pickups(&self) -> Result<Vec<ReservationId>>;
    /// A member's reservations, newest first.
    async fn reservations_of(&self, member: MemberId) -> Result<Vec<Reservation>>;
    /// Applies a state change as a conditional update from `cmd.from`, with its effects
    /// (slots released and quota returned, charge opened or settled, messages queued), in
    /// one transaction. [`Conflict::WrongState`] when the reservation is no longer in
    /// `cmd.from`; [`Conflict::DeadlinePassed`] for a confirmation at or after the deadline.
    async fn transition(&self, cmd: TransitionCommand) -> Result<Reservation>;
    /// The transition log of a reservation, oldest first.
    async fn transitions(&self, id: ReservationId) -> Result<Vec<TransitionRecord>>;
    /// The charge of a reservation, if one was opened.
    async fn charge(&self, id: ReservationId) -> Result<Option<Charge>>;
    /// Slots a member holds in a month (the quota counter).
    async fn quota_used(&self, member: MemberId, month: slotcast_domain::MonthKey) -> Result<u32>;
    /// Reservations in `status` whose `due` instant is at or before `now` (and, for
    /// notices, whose notice was not sent yet), oldest first: the scheduler's work list,
    /// derived from the database so a restart loses nothing.
    ///
    /// The listed reservations are leased until `now + lease_ms` (rows leased by another
    /// caller are skipped, not waited for), so that center replicas never work on the same
    /// reservation and a crashed replica's work comes back when its lease runs out. A
    /// worker gives its lease back with [`ReservationStore::release_work`].
    async fn due(
        &self,
        status: slotcast_domain::Status,
        due: DueField,
        now: Timestamp,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<Reservation>>;
    /// Whether [`ReservationStore::due`] would list anything now for any of `jobs`: one
    /// read, so that a tick with nothing to do takes no write lock.
    async fn any_due(
        &self,
        jobs: &[(slotcast_domain::Status, DueField)],
        now: Timestamp,
    ) -> Result<bool>;
    /// Ends the scheduler's lease of a reservation (its job is done or failed).
    async fn release_work(&self, id: ReservationId) -> Result<()>;
    /// Records that `notice` was sent and queues its messages, once: `false` (and nothing
    /// queued) if it was recorded before.
    async fn mark_notice(
        &self,
        id: ReservationId,
        notice: Notice,
        at: Timestamp,
        outbox: Vec<NewMessage>,
    ) -> Result<bool>;
    /// Replaces the changeable program fields while the reservation is still in
    /// `expected` and has not ended; logs the change. [`Conflict::WrongState`] or
    /// [`Conflict::Ended`] otherwise.
    async fn change_program(&self, cmd: ChangeCommand) -> Result<Reservation>;
    /// Extends a confirmed or live reservation by the slots right after it: claims them,
    /// takes the quota, moves the end and raises the fee (and the pending charge).
    async fn extend(&self, cmd: ExtendCommand) -> Result<Reservation>;
    /// Counts a wrong reservation key; from `max_failures` on, the key is locked until
    /// `at + lock_ms`. Returns the reservation as it is afterwards.
    async fn record_key_failure(
        &self,
        id: ReservationId,
        at: Timestamp,
        max_failures: u32,
        lock_ms: i64,
    ) -> Result<Reservation>;
    /// Held slots in `[from, to)`, by channel and time.
    async fn claims_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Claim>>;
    /// Reservations overlapping `[from, to)` in any state, by start.
    async fn reservations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Reservation>>;
    /// Waives the pending or final charge of a reservation after the fact (the service
    /// failed during the program), recording who did it and why.
    /// [`Conflict::Charge`] when there is no such charge.
    async fn waive_charge(
        &self,
        id: ReservationId,
        at: Timestamp,
        actor: Actor,
        reason: &str,
    ) -> Result<Charge>;
    /// Charges of programs starting in `[from, to)`, of one member or of everyone.
    async fn charges_between(
        &self,
        member: Option<MemberId>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ChargeLine>>;
}

/// The durable e-mail outbox.
#[async_trait]
pub trait OutboxStore {
    /// Queues messages outside a transition; duplicates of a `dedupe_key` are ignored.
    /// Returns how many were new.
    async fn enqueue(&self, msgs: Vec<NewMessage>, at: Timestamp) -> Result<usize>;
    /// Leases up to `limit` queued messages due at `now` until `now + lease_ms`, so that a
    /// crashed sender's messages come back and two senders never take the same one.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>>;
    /// Marks a message delivered.
    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<()>;
    /// Records a failed attempt; the message is retried at `retry_at`, or given up on
    /// (`retry_at == None`).
    async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<Timestamp>) -> Result<()>;
    /// Counts messages per state.
    async fn outbox_counts(&self) -> Result<OutboxCounts>;
    /// The newest messages in `state`, at most `limit`.
    async fn outbox_messages(&self, state: MessageState, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// Queues a message given up on again, due at `at`; `false` when it was not failed.
    async fn retry_message(&self, id: i64, at: Timestamp) -> Result<bool>;
}

/// Stream nodes, the placement of channels on them and what they hand over. Each claim
/// is one conditional statement: two nodes never hold one channel, and the epoch of a
/// placement grows whenever the channel moves, so a stale node can be refused.
#[async_trait]
pub trait ClusterStore {
    /// Registers node `name` with the hash of its credential, or replaces the hash.
    async fn put_node(&self, name: &str, credential_hash: &str, at: Timestamp) -> Result<()>;
    /// The stored hash of node `name`'s credential ([`StorageError::NotFound`] for an
    /// unknown node).
    async fn node_credential(&self, name: &str) -> Result<String>;
    /// Renews node `name`'s lease until `now + lease_ms` with what it reports.
    async fn renew_node(
        &self,
        heartbeat: NodeHeartbeat<'_>,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<()>;
    /// Every registered node.
    async fn nodes(&self) -> Result<Vec<NodeRecord>>;
    /// Places `channel` on `node` until `now + lease_ms`, when the channel is unplaced,
    /// already on `node`, or its placement's lease ran out. The placement, or `None` when
    /// another node holds it.
    async fn claim_placement(
        &self,
        channel: ChannelId,
        node: &str,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<Placement>>;
    /// Every placement, live or expired.
    async fn placements(&self) -> Result<Vec<Placement>>;
    /// Takes a free seat of `channel` (one of seats `0 … capacity − 1`) for the new
    /// holder `holder` (a play grant) until `now + lease_ms`, in one atomic statement:
    /// never more than `capacity` holders at once, however many ask together. The seat's
    /// number, or `None` when the channel is full.
    async fn take_seat(
        &self,
        channel: ChannelId,
        holder: &str,
        capacity: u32,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<u32>>;
    /// Node `node` serves `holders` on `channel`: their seats are renewed until
    /// `now + lease_ms`; the seats it served before and no longer does (renewed by an
    /// earlier call, with an earlier `now`), and those of `left` (viewers who left,
    /// perhaps before the node ever reported them), are freed. Any number of holders.
    async fn hold_seats(
        &self,
        channel: ChannelId,
        node: &str,
        holders: &[String],
        left: &[String],
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<()>;
    /// Seats of `channel` held at `now`.
    async fn seats_taken(&self, channel: ChannelId, now: Timestamp) -> Result<u32>;
    /// Stores the totals `node` measured of a program (kept until the completion takes
    /// them); a second hand-over of the same program by the same node replaces the first.
    async fn put_node_totals(
        &self,
        id: ReservationId,
        node: &str,
        stats: &slotcast_domain::ProgramStats,
    ) -> Result<()>;
    /// Totals handed over and not yet taken, one entry per program and node (a relayed
    /// program has several), ordered by program.
    async fn node_totals(&self) -> Result<Vec<(ReservationId, slotcast_domain::ProgramStats)>>;
    /// The completion stored the totals: forget every node's hand-over.
    async fn drop_node_totals(&self, id: ReservationId) -> Result<()>;
    /// Records that program `id` stopped from `from` on because `node` went away, unless
    /// an outage of it is open already.
    async fn open_outage(&self, id: ReservationId, node: &str, from: Timestamp) -> Result<()>;
    /// Program `id` is on air again at `at`: its open outage (if any) ends there.
    async fn close_outages(&self, id: ReservationId, at: Timestamp) -> Result<()>;
    /// The outages of program `id`, oldest first.
    async fn outages(&self, id: ReservationId) -> Result<Vec<Outage>>;
    /// Counts one more failure of throttle key `key` at `now`, starting again from one when
    /// the count ran out (`reset_after_ms` after its first or last failure, as `from`
    /// says); the count after. One statement, so replicas failing at once all count.
    async fn throttle_fail(
        &self,
        key: &str,
        now: Timestamp,
        reset_after_ms: i64,
        from: CountFrom,
    ) -> Result<ThrottleCount>;
    /// The failures counted of `key`, if any.
    async fn throttle_count(&self, key: &str) -> Result<Option<ThrottleCount>>;
    /// Forgets `key` (after a success).
    async fn throttle_clear(&self, key: &str) -> Result<()>;
    /// Forgets the keys whose last failure is before `before`; how many.
    async fn prune_throttles(&self, before: Timestamp) -> Result<u64>;
}

/// Wake-up hints between the processes that share a database (center replicas). A hint
/// only says "look again": it carries no data and may be lost, so whoever listens polls
/// too, less often.
#[async_trait]
pub trait Wakeups {
    /// Wakes the processes listening for `topic` (PostgreSQL `NOTIFY`); nothing where one
    /// process has the database to itself.
    async fn notify(&self, _topic: &str) -> Result<()> {
        Ok(())
    }
    /// The topics other processes [`Wakeups::notify`], as they come; `None` where there
    /// are no hints (poll instead). The stream ends when its connection is lost: listen
    /// again.
    async fn listen(&self, _topics: &[&str]) -> Result<Option<BoxStream<'static, String>>> {
        Ok(None)
    }
}

/// The topic hinted whenever messages are queued in the outbox: the transaction that
/// queues them sends it as it commits (PostgreSQL), so a sender on any replica delivers
/// them at once.
pub const MAIL_TOPIC: &str = "slotcast_mail";

/// The topic hinted after a write that changes what the viewer listings show, so that
/// every replica forgets the listings it keeps.
pub const LISTINGS_TOPIC: &str = "slotcast_listings";

/// A stream of wake-up hints ([`Wakeups::listen`]).
pub type BoxStream<'a, T> = futures_util::stream::BoxStream<'a, T>;

/// Everything slotcast stores, behind one object.
#[async_trait]
pub trait Store:
    MemberStore
    + SessionStore
    + ChannelStore
    + ReservationStore
    + OutboxStore
    + ClusterStore
    + Wakeups
    + Send
    + Sync
    + std::fmt::Debug
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
}

/// Parses a stored millisecond timestamp.
pub fn from_ms(ms: i64) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StorageError::Corrupt(format!("timestamp {ms}: {e}")))
}

/// The stored form of a timestamp.
pub fn to_ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}
#[doc(hidden)]
pub mod sql;
