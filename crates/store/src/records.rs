//! Plain records that cross the storage boundary.

pub use slotcast_domain::ProgramStats;
use slotcast_domain::charge::{ChargeAction, ChargeState};
use slotcast_domain::lifecycle::{Event, Transition};
use slotcast_domain::request::ProgramInfo;
use slotcast_domain::{
    ChannelId, EmailAddress, KeyHash, MemberId, Money, MonthKey, ReservationId, Schedule, Status,
    Timestamp, Visibility,
};
use std::fmt;
use std::str::FromStr;

/// A member's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Viewer.
    General,
    /// Broadcaster, with a validated payment method.
    Premium,
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An ordinary member.
    Member,
    /// Manages channels, sees billing.
    Operator,
}

macro_rules! text_enum {
    ($t:ty { $($v:path => $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok($v),)* other => Err(format!("unknown {} {other:?}", stringify!($t))) }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(Tier { Tier::General => "general", Tier::Premium => "premium" });
text_enum!(Role { Role::Member => "member", Role::Operator => "operator" });

/// A stored payment card: brand, last four digits and expiry — never the full number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentCard {
    /// e.g. `visa`.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// 1..=12.
    pub exp_month: u8,
    /// Four-digit year.
    pub exp_year: u16,
    /// Card holder's name.
    pub holder: String,
}

/// A member to register.
#[derive(Debug, Clone)]
pub struct NewMember {
    /// Login and contact address.
    pub email: EmailAddress,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Shown name.
    pub display_name: String,
    /// Tier.
    pub tier: Tier,
    /// Role.
    pub role: Role,
    /// Required for premium members.
    pub payment: Option<PaymentCard>,
    /// Registration time.
    pub created_at: Timestamp,
}

/// A registered member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Id.
    pub id: MemberId,
    /// Address.
    pub email: EmailAddress,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Shown name.
    pub display_name: String,
    /// Tier.
    pub tier: Tier,
    /// Role.
    pub role: Role,
    /// Payment card, if any.
    pub payment: Option<PaymentCard>,
    /// Whether new programs show the member's e-mail address by default.
    pub show_email: bool,
    /// Registration time.
    pub created_at: Timestamp,
}

/// A login session to record.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the bearer token (the token itself is never stored).
    pub token_hash: [u8; 32],
    /// Whose session.
    pub member: MemberId,
    /// Start.
    pub created_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// A channel to create.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// Unique name, e.g. `small`.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Price per slot.
    pub tariff: Money,
    /// The stream node that serves it.
    pub stream_node: String,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Name.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Price per slot.
    pub tariff: Money,
    /// Stream node.
    pub stream_node: String,
}

/// Who caused a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A member acting on their own reservation.
    Member(MemberId),
    /// An operator.
    Operator(MemberId),
    /// The scheduler or the stream node.
    System,
}

impl Actor {
    /// Stored form: `member:12`, `operator:3`, `system`.
    pub fn encode(&self) -> String {
        match self {
            Actor::Member(id) => format!("member:{id}"),
            Actor::Operator(id) => format!("operator:{id}"),
            Actor::System => "system".to_owned(),
        }
    }

    /// Parses the stored form.
    pub fn decode(s: &str) -> Option<Actor> {
        if s == "system" {
            return Some(Actor::System);
        }
        let (kind, id) = s.split_once(':')?;
        let id = MemberId(id.parse().ok()?);
        match kind {
            "member" => Some(Actor::Member(id)),
            "operator" => Some(Actor::Operator(id)),
            _ => None,
        }
    }
}

/// An e-mail to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Unique per logical message (e.g. `r42/invitation/a@example.org`): queuing the same
    /// key twice is a no-op, which makes every scheduler job idempotent.
    pub dedupe_key: String,
    /// Recipient.
    pub to: EmailAddress,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: Option<String>,
    /// iCalendar attachment.
    pub ics: Option<String>,
    /// The reservation it is about.
    pub reservation: Option<ReservationId>,
}

/// Delivery state of a queued e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Waiting to be sent (or retried).
    Queued,
    /// Delivered to the SMTP server or file outbox.
    Sent,
    /// Given up on after too many attempts.
    Failed,
}

text_enum!(MessageState { MessageState::Queued => "queued", MessageState::Sent => "sent", MessageState::Failed => "failed" });

/// A queued e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Id.
    pub id: i64,
    /// The message.
    pub message: NewMessage,
    /// State.
    pub state: MessageState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Last error.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// Messages per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting.
    pub queued: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
}

/// A booking to accept.
#[derive(Debug, Clone)]
pub struct NewReservation {
    /// Chosen by the center (random, so ids reveal nothing about booking volume and are
    /// known before the insert, for the messages written in the same transaction).
    pub id: ReservationId,
    /// Broadcaster.
    pub member: MemberId,
    /// Channel.
    pub channel: ChannelId,
    /// Number of slots (the range is `schedule.start .. schedule.end`).
    pub slots: u32,
    /// Every slot start to claim.
    pub claims: Vec<Timestamp>,
    /// Slots per month for the quota, and the quota.
    pub quota: Vec<(MonthKey, u32)>,
    /// Slots per member per month.
    pub quota_max: u32,
    /// Deadlines and windows.
    pub schedule: Schedule,
    /// Open level.
    pub visibility: Visibility,
    /// Program data.
    pub program: ProgramInfo,
    /// The viewer password, sealed by the center (opaque to the store).
    pub viewer_password: Option<String>,
    /// Invitees.
    pub invitees: Vec<EmailAddress>,
    /// Hash of the reservation key.
    pub key_hash: KeyHash,
    /// Unguessable program slug.
    pub slug: String,
    /// tariff × slots.
    pub fee: Money,
    /// Whether invitees were told at acceptance.
    pub invited_at_acceptance: bool,
    /// Acceptance time.
    pub created_at: Timestamp,
    /// Messages caused by the acceptance (the key e-mail, maybe invitations).
    pub outbox: Vec<NewMessage>,
}

/// A stored reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Id.
    pub id: ReservationId,
    /// Broadcaster.
    pub member: MemberId,
    /// Channel.
    pub channel: ChannelId,
    /// Number of slots.
    pub slots: u32,
    /// State.
    pub status: Status,
    /// Deadlines and windows.
    pub schedule: Schedule,
    /// Open level.
    pub visibility: Visibility,
    /// Program data.
    pub program: ProgramInfo,
    /// Sealed viewer password.
    pub viewer_password: Option<String>,
    /// Invitees.
    pub invitees: Vec<EmailAddress>,
    /// Hash of the reservation key.
    pub key_hash: KeyHash,
    /// Program slug.
    pub slug: String,
    /// Fee.
    pub fee: Money,
    /// Whether invitees were told at acceptance.
    pub invited_at_acceptance: bool,
    /// Wrong reservation keys presented so far.
    pub key_failures: u32,
    /// Confirmation is refused until then after too many wrong keys.
    pub key_locked_until: Option<Timestamp>,
    /// Acceptance time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A state change to apply.
#[derive(Debug, Clone)]
pub struct TransitionCommand {
    /// Which reservation.
    pub reservation: ReservationId,
    /// The state it must be in (checked by the database).
    pub from: Status,
    /// The new state.
    pub to: Status,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// Why, for people reading the log.
    pub reason: String,
    /// Only if `at` is before the confirm deadline (for confirmations).
    pub before_confirm_deadline: bool,
    /// Free the slots and give the quota back.
    pub release_slots: bool,
    /// What to do with the charge.
    pub charge: Option<ChargeAction>,
    /// Messages this change causes.
    pub outbox: Vec<NewMessage>,
    /// What the stream node measured of the program, kept with the completion.
    pub stats: Option<ProgramStats>,
}

impl TransitionCommand {
    /// The command that carries out a domain [`Transition`] (its notifications are rendered
    /// by the caller into `outbox`).
    pub fn from_transition(
        id: ReservationId,
        t: &Transition,
        at: Timestamp,
        actor: Actor,
        reason: impl Into<String>,
    ) -> Self {
        let from = t.from.expect("a transition of an existing reservation");
        Self {
            reservation: id,
            from,
            to: t.to,
            at,
            actor,
            reason: reason.into(),
            before_confirm_deadline: t.to == Status::Confirmed,
            release_slots: t.events.contains(&Event::ReleaseSlots),
            charge: t.events.iter().find_map(|e| match e {
                Event::Charge(a) => Some(*a),
                _ => None,
            }),
            outbox: Vec::new(),
            stats: None,
        }
    }
}

/// One line of the transition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRecord {
    /// State before (`None` at acceptance).
    pub from: Option<Status>,
    /// State after.
    pub to: Status,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// Why.
    pub reason: String,
}

/// The charge of one reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Reservation.
    pub reservation: ReservationId,
    /// Member billed.
    pub member: MemberId,
    /// Amount.
    pub amount: Money,
    /// State.
    pub state: ChargeState,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A notice sent at most once per reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Confirm before the deadline.
    ConfirmReminder,
    /// The program starts soon.
    StartReminder,
    /// The following slots are free: extend?
    ExtensionOffer,
}

impl Notice {
    /// The column recording when it was sent.
    pub fn sent_column(self) -> &'static str {
        match self {
            Notice::ConfirmReminder => "confirm_reminder_sent_ms",
            Notice::StartReminder => "start_reminder_sent_ms",
            Notice::ExtensionOffer => "extension_offer_sent_ms",
        }
    }
}

/// Which instant of a reservation a scheduler query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueField {
    /// The confirm deadline.
    ConfirmBy,
    /// The close of the connect window.
    ConnectTo,
    /// A notice's instant, while it is unsent.
    Notice(Notice),
}

impl DueField {
    /// The column holding the instant.
    pub fn column(self) -> &'static str {
        match self {
            DueField::ConfirmBy => "confirm_by_ms",
            DueField::ConnectTo => "connect_to_ms",
            DueField::Notice(Notice::ConfirmReminder) => "confirm_reminder_at_ms",
            DueField::Notice(Notice::StartReminder) => "start_reminder_at_ms",
            DueField::Notice(Notice::ExtensionOffer) => "extension_offer_at_ms",
        }
    }
}

/// A change of the changeable program fields.
#[derive(Debug, Clone)]
pub struct ChangeCommand {
    /// Which reservation.
    pub reservation: ReservationId,
    /// The state it must still be in.
    pub expected: Status,
    /// The new program data (replaces the old).
    pub program: ProgramInfo,
    /// The new sealed viewer password.
    pub viewer_password: Option<String>,
    /// The new invitees.
    pub invitees: Vec<EmailAddress>,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What changed, for the log.
    pub reason: String,
    /// Messages the change causes.
    pub outbox: Vec<NewMessage>,
}

/// An extension of a running or confirmed reservation.
#[derive(Debug, Clone)]
pub struct ExtendCommand {
    /// Which reservation.
    pub reservation: ReservationId,
    /// The state it must be in.
    pub expected: Status,
    /// The added slots (right after the current end).
    pub claims: Vec<Timestamp>,
    /// Added slots per month, for the quota.
    pub quota: Vec<(MonthKey, u32)>,
    /// Slots per member per month.
    pub quota_max: u32,
    /// Slots after the extension.
    pub slots: u32,
    /// Schedule after the extension.
    pub schedule: Schedule,
    /// Fee after the extension.
    pub fee: Money,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// Messages it causes.
    pub outbox: Vec<NewMessage>,
}

/// A held slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Channel.
    pub channel: ChannelId,
    /// Slot start.
    pub slot: Timestamp,
    /// Holder.
    pub reservation: ReservationId,
}

/// A charge with what an invoice line shows of its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeLine {
    /// The charge.
    pub charge: Charge,
    /// Channel.
    pub channel: ChannelId,
    /// Program start.
    pub start: Timestamp,
    /// Slots billed.
    pub slots: u32,
    /// Program title.
    pub title: String,
}

/// What a stream node says of itself when it renews its lease.
#[derive(Debug, Clone, Copy)]
pub struct NodeHeartbeat<'a> {
    /// Its name.
    pub name: &'a str,
    /// Where viewers reach it (base URL of its play routes).
    pub play_url: &'a str,
    /// Where publishers reach it (RTMP base URL).
    pub ingest_url: &'a str,
    /// Its live report (JSON), read by every center replica.
    pub report: &'a str,
}

/// A stream node as the center knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its name.
    pub name: String,
    /// Where viewers reach it.
    pub play_url: String,
    /// Where publishers reach it.
    pub ingest_url: String,
    /// Its lease runs until here (the Unix epoch before its first heartbeat).
    pub lease_until: Timestamp,
    /// Its last report (JSON).
    pub report: String,
}

/// A channel placed on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The channel.
    pub channel: ChannelId,
    /// The node serving it.
    pub node: String,
    /// Grows each time the channel moves to another node.
    pub epoch: i64,
    /// The node holds the channel until here, unless it renews.
    pub lease_until: Timestamp,
}

/// An operator-side outage of a program: its node lost its lease while holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The node that went away.
    pub node: String,
    /// Its last renewal: the program may have stopped from here on.
    pub from: Timestamp,
    /// When the program was on air again (`None`: not yet).
    pub to: Option<Timestamp>,
}

/// A throttle's failures of one key: how many, since when, the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    /// Failures counted.
    pub failures: u32,
    /// The first of them.
    pub first: Timestamp,
    /// The last of them.
    pub last: Timestamp,
}

/// From which failure a throttle's count runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFrom {
    /// The first: fixed windows.
    First,
    /// The last: the count stays while failures keep coming.
    Last,
}
