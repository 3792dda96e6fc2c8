//! What the operator runs the service with: the channel catalogue (create, change), the
//! day's schedule across every channel, member search, waiving a charge when the service
//! failed during a program, the e-mail outbox (what failed, queue it again) and health.
//! The REST API's channel routes and the operator's pages call these; who may is checked
//! by the caller (the operator extractor, or the pages' own check).

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::scheduler::HealthReport;
use crate::state::Center;
use slotcast_domain::jiff::civil::Date;
use slotcast_domain::{ChannelDraft, ChannelId, FieldErrors, ReservationId};
use slotcast_store::{
    Actor, Channel, Charge, Member, MessageState, NewChannel, OutboxCounts, OutboxMessage,
    Reservation,
};

/// The domain's channel setting bounds, onto the store's record.
fn channel_record(d: ChannelDraft) -> Result<NewChannel, FieldErrors> {
    let s = d.validate()?;
    Ok(NewChannel {
        name: s.name,
        capacity: s.capacity,
        bitrate_kbps: s.bitrate_kbps,
        tariff: s.tariff,
        stream_node: s.stream_node,
    })
}

/// Creates a channel (`id` `None`) or changes channel `id`; the listings follow.
pub async fn save_channel(
    c: &Center,
    id: Option<ChannelId>,
    d: ChannelDraft,
) -> ApiResult<Channel> {
    let record = channel_record(d)?;
    let saved = match id {
        None => c.store.create_channel(record).await?,
        Some(id) => c.store.update_channel(id, record).await?,
    };
    c.listings_changed();
    tracing::info!(channel = %saved.name, created = id.is_none(), "channel saved");
    Ok(saved)
}

/// One program of the day's schedule.
#[derive(Debug, Clone)]
pub struct Booked {
    /// The reservation (any visibility, any state).
    pub reservation: Reservation,
    /// Its channel's name.
    pub channel: String,
    /// The broadcaster.
    pub member: Member,
}

/// Every reservation on day `date` (today when `None`) across all channels, by start.
pub async fn schedule(c: &Center, date: Option<&str>) -> ApiResult<(Date, Vec<Booked>)> {
    let (day, from, to) = super::play::day_bounds(c, date)?;
    let channels = c.store.channels().await?;
    let mut out = Vec::new();
    for r in c.store.reservations_between(from, to).await? {
        let channel = channels
            .iter()
            .find(|ch| ch.id == r.channel)
            .map_or_else(String::new, |ch| ch.name.clone());
        out.push(Booked {
            member: c.store.member(r.member).await?,
            channel,
            reservation: r,
        });
    }
    Ok((day, out))
}

/// Longest member search text.
const SEARCH_MAX: usize = 100;

/// Members whose address or name contains `text` (at most 50).
pub async fn members(c: &Center, text: &str) -> ApiResult<Vec<Member>> {
    let text = text.trim();
    if text.chars().count() > SEARCH_MAX || text.contains('\0') {
        return Err(ApiError::field(
            "q",
            format!("at most {SEARCH_MAX} characters"),
        ));
    }
    Ok(c.store.search_members(text, 50).await?)
}

/// Longest reason for a waiver.
const REASON_MAX: usize = 200;

/// Waives the charge of reservation `id` (the service failed during the program): the
/// invoice and the CSV export show it waived; `reason` is kept with who did it.
pub async fn waive(c: &Center, op: &Member, id: ReservationId, reason: &str) -> ApiResult<Charge> {
    let mut errs = FieldErrors::default();
    let reason =
        slotcast_domain::request::text(&mut errs, "reason", Some(reason), REASON_MAX, false, true);
    let Some(reason) = reason.filter(|_| errs.is_empty()) else {
        return Err(errs.into());
    };
    let charge = c
        .store
        .waive_charge(id, c.clock.now(), Actor::Operator(op.id), &reason)
        .await?;
    tracing::info!(reservation = %id, operator = %op.id, %reason, "charge waived");
    Ok(charge)
}

/// The outbox: counts, the messages given up on and those still waiting (newest first).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Per state.
    pub counts: OutboxCounts,
    /// Given up on (retry them).
    pub failed: Vec<OutboxMessage>,
    /// Waiting to be sent.
    pub queued: Vec<OutboxMessage>,
}

/// The outbox as the operator sees it.
pub async fn outbox(c: &Center) -> ApiResult<Outbox> {
    Ok(Outbox {
        counts: c.store.outbox_counts().await?,
        failed: c.store.outbox_messages(MessageState::Failed, 100).await?,
        queued: c.store.outbox_messages(MessageState::Queued, 100).await?,
    })
}

/// Queues a message given up on again, to be sent at once.
pub async fn retry(c: &Center, id: i64) -> ApiResult<()> {
    if c.store.retry_message(id, c.clock.now()).await? {
        tracing::info!(message = id, "e-mail queued again");
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::WrongState,
            "that message is not one that failed",
        ))
    }
}

/// How the service is doing: each part's problem, if any (never the details, which are
/// logged).
#[derive(Debug, Clone)]
pub struct Health {
    /// `Err`: the database does not answer.
    pub database: Result<&'static str, String>,
    /// `Err`: the mail server does not answer.
    pub mail: Result<(), String>,
    /// The scheduler's ticks.
    pub scheduler: HealthReport,
}

impl Health {
    /// Whether everything is fine.
    pub fn ready(&self) -> bool {
        self.database.is_ok() && self.mail.is_ok() && self.scheduler.failing_since.is_none()
    }
}

/// How long the health check waits for the database: a pool that cannot connect would
/// otherwise hold it for its whole acquire timeout.
const DB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Asks the database, the mail server and the scheduler.
pub async fn health(c: &Center) -> Health {
    let database = match tokio::time::timeout(DB_TIMEOUT, c.store.ping()).await {
        Ok(Ok(())) => Ok(c.store.backend()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {DB_TIMEOUT:?}")),
    };
    let mail = match &c.mail_check {
        Some(check) => check.check().await,
        None => Ok(()),
    };
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness: database");
    }
    if let Err(e) = &mail {
        tracing::warn!(error = %e, "readiness: mail");
    }
    Health {
        database,
        mail,
        scheduler: c.scheduler.report(),
    }
}

pub use slotcast_domain::playback::FILLER_MAX_BYTES;

/// A channel's filler: its files in playing order and the recent uploads.
#[derive(Debug, Clone)]
pub struct Filler {
    /// The channel.
    pub channel: Channel,
    /// Its playlist.
    pub files: Vec<crate::port::FillerFile>,
    /// Uploads being re-encoded, and the last ones done.
    pub jobs: Vec<crate::port::FillerJobView>,
}

/// The filler of channel `id`.
pub async fn filler(c: &Center, id: ChannelId) -> ApiResult<Filler> {
    let channel = c.store.channel(id).await?;
    let (files, jobs) = c
        .filler
        .filler(id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, e))?;
    Ok(Filler {
        jobs,
        files,
        channel,
    })
}

/// Hands an operator's video (`name`, its bytes as they arrive) to the stream node, which
/// re-encodes it to channel `id`'s format and adds it to its playlist; the job's number.
pub async fn upload_filler(
    c: &Center,
    id: ChannelId,
    name: &str,
    body: crate::port::UploadBody<'_>,
) -> ApiResult<u64> {
    c.store.channel(id).await?;
    c.filler
        .upload(id, name, FILLER_MAX_BYTES, body)
        .await
        .map_err(|e| ApiError::field("file", e))
}

/// Takes `file` out of channel `id`'s filler.
pub async fn remove_filler(c: &Center, id: ChannelId, file: &str) -> ApiResult<()> {
    c.store.channel(id).await?;
    c.filler
        .remove(id, file)
        .await
        .map_err(|e| ApiError::field("file", e))
}
