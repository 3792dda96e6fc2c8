//! The lifecycle's timed and external steps: expiry at the confirm deadline, the
//! reminders and the extension offer, completion at the close of the connect window
//! (the scheduler calls these), and going live when the publisher connects (the stream
//! node's publish authority calls [`go_live`]). Each is idempotent: state changes are
//! conditional updates, notices are recorded once with their e-mails in one transaction,
//! and a step another actor made first is no error.

use super::{ending_mails, mail_context, parts};
use crate::mail::{self, BroadcasterMail};
use crate::state::Center;
use slotcast_domain::lifecycle::{self, Publish};
use slotcast_domain::{Clock, ReservationKey, Timestamp};
use slotcast_store::{
    Actor, Conflict, Notice, Reservation, StorageError, Store, TransitionCommand,
};

/// Whether another actor changed the reservation first (a confirmation racing the
/// expiry, a cancellation racing the completion).
fn raced(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::Conflict(Conflict::WrongState { .. } | Conflict::DeadlinePassed { .. })
    )
}

/// Applies a state change; `false` when another actor changed the reservation first.
async fn apply(
    c: &Center,
    cmd: TransitionCommand,
    event: &'static str,
) -> Result<bool, StorageError> {
    let (id, to, queued) = (cmd.reservation, cmd.to, cmd.outbox.len() as u64);
    match c.store.transition(cmd).await {
        Ok(_) => {
            c.listings_changed();
            crate::metrics::event(event);
            crate::metrics::emails("queued", queued);
            tracing::info!(reservation = %id, status = %to, "scheduled transition");
            Ok(true)
        }
        Err(e) if raced(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Expires `r` if it is still unconfirmed at its deadline; the broadcaster (and invitees
/// told at acceptance) are told. `false` when there was nothing to do.
pub async fn expire(c: &Center, r: &Reservation, now: Timestamp) -> Result<bool, StorageError> {
    let Ok(t) = lifecycle::expire(r.status, &r.schedule, now, r.invited_at_acceptance) else {
        return Ok(false);
    };
    let (m, channel) = parts(c, r).await?;
    let mut cmd = TransitionCommand::from_transition(
        r.id,
        &t,
        now,
        Actor::System,
        "not confirmed before the deadline",
    );
    cmd.outbox = ending_mails(c, r, (&m, &channel), &t, now, BroadcasterMail::Expired).await?;
    apply(c, cmd, "expiries").await
}

/// Records `notice` for `r`, with its e-mail when it is still meaningful (a reminder
/// before its moment, an offer while an extension is possible). `false` when another
/// tick recorded it first.
pub async fn notice(
    c: &Center,
    r: &Reservation,
    notice: Notice,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let (m, channel) = parts(c, r).await?;
    let ctx = mail_context(c, r, &channel, &m, None, 0);
    let message = match notice {
        Notice::ConfirmReminder => (now < r.schedule.confirm_by)
            .then(|| mail::broadcaster_message(&ctx, BroadcasterMail::ConfirmReminder)),
        Notice::StartReminder => (now < r.schedule.start)
            .then(|| mail::broadcaster_message(&ctx, BroadcasterMail::StartReminder)),
        Notice::ExtensionOffer => {
            let max = super::reservations::max_extension(c, r, now).await?;
            (max > 0).then(|| {
                mail::broadcaster_message(
                    &ctx,
                    BroadcasterMail::ExtensionOffer {
                        max_extra_slots: max,
                    },
                )
            })
        }
    };
    let queued = u64::from(message.is_some());
    let marked = c
        .store
        .mark_notice(r.id, notice, now, message.into_iter().collect())
        .await?;
    if marked {
        crate::metrics::emails("queued", queued);
    }
    Ok(marked)
}

/// Completes `r` at the close of its connect window with the program's totals, which the
/// stream node keeps until they are stored: peeked here, acknowledged only after the
/// completing transaction committed (or lost a race: then they are of no use).
///
/// A program whose node went away while it held it (an operator-side outage, recorded by
/// the internal API when the channel moved) has its charge waived, and the summary says
/// how much of the window was lost.
pub async fn complete(c: &Center, r: &Reservation, now: Timestamp) -> Result<bool, StorageError> {
    let outages: Vec<_> = c
        .store
        .outages(r.id)
        .await?
        .into_iter()
        .map(|o| (o.from, o.to))
        .collect();
    let seconds_lost =
        slotcast_domain::charge::seconds_lost(r.schedule.start, r.schedule.end, &outages);
    let Ok(t) = lifecycle::complete(r.status, &r.schedule, now, seconds_lost > 0) else {
        return Ok(false);
    };
    let (m, channel) = parts(c, r).await?;
    let stats = c.stats.program_stats(r.id).unwrap_or_default();
    let ctx = mail_context(c, r, &channel, &m, None, 0);
    let reason = if seconds_lost > 0 {
        format!(
            "the connect window closed; {seconds_lost} s lost to an operator-side outage: the charge is waived"
        )
    } else {
        "the connect window closed".to_owned()
    };
    let mut cmd = TransitionCommand::from_transition(r.id, &t, now, Actor::System, &reason);
    cmd.outbox.push(mail::broadcaster_message(
        &ctx,
        BroadcasterMail::Summary {
            stats: stats.clone(),
            seconds_lost,
        },
    ));
    cmd.stats = Some(stats);
    let completed = apply(c, cmd, "completions").await?;
    c.stats.ack_program_stats(r.id);
    Ok(completed)
}

/// Why a publish is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefused {
    /// No reservation has this key (or it is not a key at all).
    #[error("unknown reservation key")]
    UnknownKey,
    /// The reservation may not publish now.
    #[error("{0}")]
    NotNow(String),
    /// The database could not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// The stream node's question "may this key publish now?", at the clock's now: the key
/// must belong to a confirmed (or already live) reservation inside its connect window
/// (the domain's [`lifecycle::may_publish`]); the first accepted publish records the
/// `live` transition. Takes the store and the clock rather than the whole center: the
/// stream node is started before the center's state exists.
pub async fn go_live(
    store: &dyn Store,
    clock: &dyn Clock,
    key: &str,
) -> Result<Reservation, PublishRefused> {
    let unavailable = |e: StorageError| PublishRefused::Unavailable(e.to_string());
    let key = ReservationKey::parse(key).map_err(|_| PublishRefused::UnknownKey)?;
    let r = match store.reservation_by_key(&key.hash()).await {
        Ok(r) => r,
        Err(StorageError::NotFound { .. }) => return Err(PublishRefused::UnknownKey),
        Err(e) => return Err(unavailable(e)),
    };
    if !r.key_hash.verify(key.expose()) {
        return Err(PublishRefused::UnknownKey);
    }
    let now = clock.now();
    let t = match lifecycle::may_publish(r.id, r.status, &r.schedule, now) {
        Ok(Publish::AlreadyLive) => return Ok(r),
        Ok(Publish::GoLive(t)) => t,
        Err(denied) => return Err(PublishRefused::NotNow(denied.to_string())),
    };
    let cmd =
        TransitionCommand::from_transition(r.id, &t, now, Actor::System, "the publisher connected");
    match store.transition(cmd).await {
        Ok(r) => {
            crate::metrics::event("went_live");
            Ok(r)
        }
        // Cancelled meanwhile: refuse; another publish attempt made it live: fine.
        Err(StorageError::Conflict(_)) => {
            let r = store.reservation(r.id).await.map_err(unavailable)?;
            if r.status == slotcast_domain::Status::Live {
                Ok(r)
            } else {
                Err(PublishRefused::NotNow(format!(
                    "reservation {} is {}",
                    r.id, r.status
                )))
            }
        }
        Err(e) => Err(unavailable(e)),
    }
}
