//! The center's use cases: the one layer under every entrance. The REST handlers
//! ([`crate::api`]), the [`scheduler`](crate::scheduler), the stream node's publish
//! authority and the web pages call these operations — book, quote, confirm, change,
//! cancel, extend, go live, expire, remind, complete, grant play — and nothing else writes
//! a reservation or hands out a play grant.
//!
//! They take plain values (the member, drafts, ids, a clear "may this be sent in clear"
//! flag instead of a request), ask `slotcast-domain` for every decision and the store for
//! every fact, write the e-mails a change causes in the same transaction, and return
//! domain values or an [`ApiError`](crate::error::ApiError) whose [`ErrorCode`] says what
//! went wrong. None of them knows HTTP; the scheduler's jobs return storage errors, which
//! it tells apart (an unreachable database stops a tick).

pub mod accounts;
pub mod billing;
pub mod jobs;
pub mod listings;
pub mod operator;
pub mod play;
pub mod reservations;

use crate::error::{ApiError, ApiResult};
use crate::mail::{self, BroadcasterMail, MailContext};
use crate::state::Center;
use slotcast_domain::lifecycle::{Event, InviteeNotice};
use slotcast_domain::{ReservationId, Timestamp, Transition};
use slotcast_store::{Channel, Member, NewMessage, Reservation, StorageError};

/// What an e-mail about `r` needs to know.
pub(crate) fn mail_context<'a>(
    c: &'a Center,
    r: &'a Reservation,
    channel: &'a Channel,
    broadcaster: &'a Member,
    viewer_password: Option<&'a str>,
    sequence: u32,
) -> MailContext<'a> {
    MailContext {
        public_url: &c.settings.public_url,
        ingest: c.settings.ingest.first().map_or("", String::as_str),
        time_zone: &c.settings.policy.time_zone,
        reservation: r,
        channel,
        broadcaster,
        viewer_password,
        sequence,
    }
}

/// The iCalendar SEQUENCE of the next update sent to invitees: one more than the number
/// of changes so far, so a later change or cancellation always supersedes the earlier one.
pub(crate) async fn next_sequence(c: &Center, id: ReservationId) -> Result<u32, StorageError> {
    let changes = c
        .store
        .transitions(id)
        .await?
        .iter()
        .filter(|t| t.from == Some(t.to))
        .count();
    Ok(1 + u32::try_from(changes).unwrap_or(u32::MAX - 1))
}

/// The clear viewer password of a stored reservation.
pub fn viewer_password(c: &Center, r: &Reservation) -> ApiResult<Option<String>> {
    r.viewer_password
        .as_deref()
        .map(|s| c.secrets.unseal(s).map_err(ApiError::internal))
        .transpose()
}

/// Reservation `id` of member `m`; anyone else's is "not found" (ids must not leak).
pub async fn owned(c: &Center, m: &Member, id: ReservationId) -> ApiResult<Reservation> {
    match c.store.reservation(id).await {
        Ok(r) if r.member == m.id => Ok(r),
        Ok(_) | Err(StorageError::NotFound { .. }) => Err(ApiError::not_found("reservation")),
        Err(e) => Err(e.into()),
    }
}

/// The broadcaster and the channel of `r`.
pub(crate) async fn parts(c: &Center, r: &Reservation) -> Result<(Member, Channel), StorageError> {
    Ok((
        c.store.member(r.member).await?,
        c.store.channel(r.channel).await?,
    ))
}

/// The e-mails of a reservation that ends before its program (expired, cancelled): the
/// broadcaster's `notice`, and the invitees' cancellation (with the next iCalendar
/// SEQUENCE) when the transition `t` says they are told.
pub(crate) async fn ending_mails(
    c: &Center,
    r: &Reservation,
    (m, channel): (&Member, &Channel),
    t: &Transition,
    now: Timestamp,
    notice: BroadcasterMail,
) -> Result<Vec<NewMessage>, StorageError> {
    let sequence = next_sequence(c, r.id).await?;
    let ended = Reservation {
        updated_at: now,
        ..r.clone()
    };
    let ctx = mail_context(c, &ended, channel, m, None, sequence);
    let mut out = vec![mail::broadcaster_message(&ctx, notice)];
    if t.events
        .contains(&Event::NotifyInvitees(InviteeNotice::Cancellation))
    {
        out.extend(mail::invitee_messages(
            &ctx,
            InviteeNotice::Cancellation,
            &[],
        ));
    }
    Ok(out)
}
