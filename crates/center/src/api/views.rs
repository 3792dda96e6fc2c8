//! What the API answers with: plain serialisable views of the stored records. Instants are
//! RFC 3339 strings in UTC; money is a decimal string in major units plus the currency.

use serde::Serialize;
use slotcast_domain::{Money, Timestamp};
use slotcast_store::{Channel, Member, Reservation, TransitionRecord};
use utoipa::ToSchema;

/// The error shape of every failed request.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `slot_taken`.
    pub code: String,
    /// For a person.
    pub message: String,
    /// Problems per field, e.g. `{"title": "is too long (max 60 characters)"}`.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

/// An amount of money.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    /// Decimal amount in major units, e.g. `"300"` (JPY) or `"12.50"` (EUR).
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(m: Money) -> Self {
        Self {
            amount: m.decimal(),
            currency: m.currency.to_string(),
        }
    }
}

/// RFC 3339 text of an instant.
pub fn ts(t: Timestamp) -> String {
    t.to_string()
}

/// The stored card, without anything sensitive.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardView {
    /// e.g. `visa`.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
}

/// Quota use of the current month.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// `YYYY-MM` in the service's zone.
    pub month: String,
    /// Slots held this month.
    pub used_slots: u32,
    /// The quota.
    pub max_slots: u32,
}

/// A member as they see themselves.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// Id.
    pub id: i64,
    /// Address.
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// `general` or `premium`.
    pub tier: String,
    /// `member` or `operator`.
    pub role: String,
    /// Stored card (premium).
    pub payment: Option<CardView>,
    /// Quota (with `GET /members/me`).
    pub quota: Option<QuotaView>,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            id: m.id.0,
            email: m.email.to_string(),
            display_name: m.display_name.clone(),
            tier: m.tier.to_string(),
            role: m.role.to_string(),
            payment: m.payment.as_ref().map(|p| CardView {
                brand: p.brand.clone(),
                last4: p.last4.clone(),
                exp_month: p.exp_month,
                exp_year: p.exp_year,
            }),
            quota: None,
        }
    }
}

/// A channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate.
    pub bitrate_kbps: u32,
    /// Price per slot, decimal in major units.
    pub tariff_per_slot: String,
    /// Currency.
    pub currency: String,
    /// Stream node serving it.
    pub stream_node: String,
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        Self {
            id: c.id.0,
            name: c.name.clone(),
            capacity: c.capacity,
            bitrate_kbps: c.bitrate_kbps,
            tariff_per_slot: c.tariff.decimal(),
            currency: c.tariff.currency.to_string(),
            stream_node: c.stream_node.clone(),
        }
    }
}

/// The connect window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    /// Opens.
    pub from: String,
    /// Closes (the publisher is cut off).
    pub to: String,
}

/// A state change in a reservation's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionView {
    /// Before (`null` at acceptance).
    pub from: Option<String>,
    /// After.
    pub to: String,
    /// When.
    pub at: String,
    /// `member:ID`, `operator:ID` or `system`.
    pub actor: String,
    /// Why.
    pub reason: String,
}

impl From<&TransitionRecord> for TransitionView {
    fn from(t: &TransitionRecord) -> Self {
        Self {
            from: t.from.map(|s| s.to_string()),
            to: t.to.to_string(),
            at: ts(t.at),
            actor: t.actor.encode(),
            reason: t.reason.clone(),
        }
    }
}

/// A reservation as its broadcaster sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationView {
    /// Id.
    pub id: i64,
    /// State.
    pub status: String,
    /// Channel id.
    pub channel: i64,
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
    /// Slots.
    pub slots: u32,
    /// `public`, `password` or `secret`.
    pub visibility: String,
    /// Title.
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// Outline.
    pub outline: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// Show the broadcaster's e-mail on the program page.
    pub show_email: bool,
    /// Link.
    pub web_url: Option<String>,
    /// Whether a viewer password is set (the password itself is never echoed).
    pub has_viewer_password: bool,
    /// Invitees.
    pub invitees: Vec<String>,
    /// tariff × slots.
    pub fee: MoneyView,
    /// Confirm before this instant.
    pub confirm_by: String,
    /// When the key may publish.
    pub connect_window: WindowView,
    /// The program's unguessable slug.
    pub slug: String,
    /// The program page.
    pub watch_url: String,
    /// Accepted at.
    pub created_at: String,
    /// The log (with `GET /reservations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<TransitionView>>,
    /// What the stream node measured of the program, kept at completion (with
    /// `GET /reservations/{id}`, once completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsView>,
}

/// A completed program's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// Most viewers at the same time.
    pub peak_viewers: u32,
    /// Distinct viewers (play sessions).
    pub unique_viewers: u32,
    /// Minutes watched, summed over viewers.
    pub viewer_minutes: u64,
    /// Bytes sent to viewers.
    pub bytes_out: u64,
    /// Seconds the program was on air.
    pub seconds_on_air: u64,
}

impl From<slotcast_domain::ProgramStats> for StatsView {
    fn from(s: slotcast_domain::ProgramStats) -> Self {
        Self {
            peak_viewers: s.peak_viewers,
            unique_viewers: s.unique_viewers,
            viewer_minutes: s.viewer_minutes,
            bytes_out: s.bytes_out,
            seconds_on_air: s.seconds_on_air,
        }
    }
}

impl ReservationView {
    /// The view of `r`, with links under `public_url`.
    pub fn new(r: &Reservation, public_url: &str) -> Self {
        Self {
            id: r.id.0,
            status: r.status.to_string(),
            channel: r.channel.0,
            start: ts(r.schedule.start),
            end: ts(r.schedule.end),
            slots: r.slots,
            visibility: r.visibility.to_string(),
            title: r.program.title.clone(),
            genre: r.program.genre.clone(),
            outline: r.program.outline.clone(),
            detail: r.program.detail.clone(),
            show_email: r.program.show_email,
            web_url: r.program.web_url.clone(),
            has_viewer_password: r.viewer_password.is_some(),
            invitees: r.invitees.iter().map(ToString::to_string).collect(),
            fee: r.fee.into(),
            confirm_by: ts(r.schedule.confirm_by),
            connect_window: WindowView {
                from: ts(r.schedule.connect_from),
                to: ts(r.schedule.connect_to),
            },
            slug: r.slug.clone(),
            watch_url: format!("{public_url}/programs/{}", r.slug),
            created_at: ts(r.created_at),
            transitions: None,
            stats: None,
        }
    }
}
