//! The durable scheduler. Due work is derived from the database on every tick — expiries
//! at the confirm deadline, the confirmation reminder, the start reminder, the extension
//! offer, completion at the close of the connect window — so a restart loses nothing, and
//! every job is idempotent: state changes are conditional updates, notices are recorded
//! once with their e-mails in the same transaction.

use crate::api::reservations as rs;
use crate::mail::{self, BroadcasterMail, ProgramStats};
use crate::state::AppState;
use slotcast_domain::lifecycle::{self, Event, InviteeNotice};
use slotcast_domain::{Status, Timestamp};
use slotcast_store::{
    Actor, Conflict, DueField, Notice, Reservation, StorageError, TransitionCommand,
};
use std::time::Duration;

/// Most reservations handled per kind of job per tick.
const BATCH: u32 = 200;

/// Runs the due jobs.
#[derive(Debug, Clone)]
pub struct Scheduler {
    center: AppState,
}

fn raced(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::Conflict(Conflict::WrongState { .. } | Conflict::DeadlinePassed { .. })
    )
}

impl Scheduler {
    /// A scheduler over `center`.
    pub fn new(center: AppState) -> Self {
        Self { center }
    }

    /// Runs every job that is due now; returns how many reservations were acted on.
    pub async fn run_once(&self) -> Result<usize, StorageError> {
        let now = self.center.clock.now();
        let mut n = 0;
        n += self.expire(now).await?;
        n += self.notices(now).await?;
        n += self.complete(now).await?;
        Ok(n)
    }

    /// Ticks every `every` until `shutdown` resolves.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "scheduler tick failed");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Applies a state change; `false` when another actor changed the reservation first
    /// (a confirmation racing the expiry, a cancellation racing the completion).
    async fn apply(
        &self,
        cmd: TransitionCommand,
        event: &'static str,
    ) -> Result<bool, StorageError> {
        let (id, to, queued) = (cmd.reservation, cmd.to, cmd.outbox.len() as u64);
        match self.center.store.transition(cmd).await {
            Ok(_) => {
                crate::metrics::event(event);
                crate::metrics::emails("queued", queued);
                tracing::info!(reservation = %id, status = %to, "scheduled transition");
                Ok(true)
            }
            Err(e) if raced(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn parts(
        &self,
        r: &Reservation,
    ) -> Result<(slotcast_store::Member, slotcast_store::Channel), StorageError> {
        Ok((
            self.center.store.member(r.member).await?,
            self.center.store.channel(r.channel).await?,
        ))
    }

    async fn expire(&self, now: Timestamp) -> Result<usize, StorageError> {
        let st = &self.center;
        let due = st
            .store
            .due(
                Status::AwaitingConfirmation,
                DueField::ConfirmBy,
                now,
                BATCH,
            )
            .await?;
        let mut n = 0;
        for r in due {
            let Ok(t) = lifecycle::expire(r.status, &r.schedule, now, r.invited_at_acceptance)
            else {
                continue;
            };
            let (m, channel) = self.parts(&r).await?;
            let sequence = rs::next_sequence(st, r.id).await?;
            let expired = Reservation {
                updated_at: now,
                ..r.clone()
            };
            let c = rs::ctx(st, &expired, &channel, &m, None, sequence);
            let mut cmd = TransitionCommand::from_transition(
                r.id,
                &t,
                now,
                Actor::System,
                "not confirmed before the deadline",
            );
            cmd.outbox
                .push(mail::broadcaster_message(&c, BroadcasterMail::Expired));
            if t.events
                .contains(&Event::NotifyInvitees(InviteeNotice::Cancellation))
            {
                cmd.outbox
                    .extend(mail::invitee_messages(&c, InviteeNotice::Cancellation, &[]));
            }
            n += usize::from(self.apply(cmd, "expiries").await?);
        }
        Ok(n)
    }

    async fn notices(&self, now: Timestamp) -> Result<usize, StorageError> {
        let st = &self.center;
        let mut n = 0;
        let jobs = [
            (Status::AwaitingConfirmation, Notice::ConfirmReminder),
            (Status::Confirmed, Notice::StartReminder),
            (Status::Confirmed, Notice::ExtensionOffer),
            (Status::Live, Notice::ExtensionOffer),
        ];
        for (status, notice) in jobs {
            for r in st
                .store
                .due(status, DueField::Notice(notice), now, BATCH)
                .await?
            {
                let (m, channel) = self.parts(&r).await?;
                let c = rs::ctx(st, &r, &channel, &m, None, 0);
                let message = match notice {
                    Notice::ConfirmReminder => (now < r.schedule.confirm_by)
                        .then(|| mail::broadcaster_message(&c, BroadcasterMail::ConfirmReminder)),
                    Notice::StartReminder => (now < r.schedule.start)
                        .then(|| mail::broadcaster_message(&c, BroadcasterMail::StartReminder)),
                    Notice::ExtensionOffer => {
                        let max = self.max_extension(&r, now).await?;
                        (max > 0).then(|| {
                            mail::broadcaster_message(
                                &c,
                                BroadcasterMail::ExtensionOffer {
                                    max_extra_slots: max,
                                },
                            )
                        })
                    }
                };
                let queued = u64::from(message.is_some());
                if st
                    .store
                    .mark_notice(r.id, notice, now, message.into_iter().collect())
                    .await?
                {
                    n += 1;
                    crate::metrics::emails("queued", queued);
                }
            }
        }
        Ok(n)
    }

    /// How many slots the reservation could be extended by now (0: no offer).
    async fn max_extension(&self, r: &Reservation, now: Timestamp) -> Result<u32, StorageError> {
        let st = &self.center;
        let policy = &st.settings.policy;
        let mut best = 0;
        for extra in 1..=policy.max_slots_per_reservation.saturating_sub(r.slots) {
            let Ok((_, facts)) = rs::extension_facts(st, r, extra).await else {
                break;
            };
            if lifecycle::check_extension(r.status, &r.schedule, r.slots, facts, now, policy)
                .is_err()
            {
                break;
            }
            best = extra;
        }
        Ok(best)
    }

    async fn complete(&self, now: Timestamp) -> Result<usize, StorageError> {
        let st = &self.center;
        let mut n = 0;
        for status in [Status::Confirmed, Status::Live] {
            for r in st
                .store
                .due(status, DueField::ConnectTo, now, BATCH)
                .await?
            {
                let Ok(t) = lifecycle::complete(r.status, &r.schedule, now, false) else {
                    continue;
                };
                let (m, channel) = self.parts(&r).await?;
                let stats = st.stats.program_stats(r.id);
                let c = rs::ctx(st, &r, &channel, &m, None, 0);
                let mut cmd = TransitionCommand::from_transition(
                    r.id,
                    &t,
                    now,
                    Actor::System,
                    "the connect window closed",
                );
                cmd.outbox.push(mail::broadcaster_message(
                    &c,
                    BroadcasterMail::Summary(stats),
                ));
                cmd.stats = Some(stats);
                n += usize::from(self.apply(cmd, "completions").await?);
            }
        }
        Ok(n)
    }
}

/// What the center asks of the stream node about channels and programs. The center runs
/// without a stream node in tests and before one connects: then nobody is watching.
pub trait StreamStats: Send + Sync + std::fmt::Debug {
    /// Viewers currently admitted on a channel.
    fn viewers(&self, channel: slotcast_domain::ChannelId) -> u32;
    /// Statistics of a program, for the end-of-program summary.
    fn program_stats(&self, reservation: slotcast_domain::ReservationId) -> ProgramStats;
    /// Live statistics of a program while the stream node has it.
    fn live(&self, reservation: slotcast_domain::ReservationId) -> Option<LiveView>;
    /// The program lost its right to publish (cancelled): cut it at once.
    fn revoke(&self, reservation: slotcast_domain::ReservationId);
    /// The finished recording of a program, if the stream node has one (the node owns the
    /// file and serves it).
    fn recording(&self, reservation: slotcast_domain::ReservationId) -> Option<RecordingInfo>;
}

/// A finished recording, as the stream node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordingInfo {
    /// Its size.
    pub bytes: u64,
}

/// Live statistics of a program, as the stream node measures them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LiveView {
    /// Whether the publisher's media reaches viewers now.
    pub on_air: bool,
    /// Whether a publisher is connected (before the start: preview only).
    pub publishing: bool,
    /// Viewers admitted on the channel.
    pub viewers: u32,
    /// Ingest bitrate.
    pub bitrate_kbps: u32,
    /// Picture width.
    pub width: Option<u32>,
    /// Picture height.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: f32,
    /// `idle`, `recording`, `done` or `failed: <reason>`.
    pub recording: String,
}

/// No stream node attached: no viewers, no statistics.
#[derive(Debug, Default)]
pub struct NoStreamNode;

impl StreamStats for NoStreamNode {
    fn viewers(&self, _: slotcast_domain::ChannelId) -> u32 {
        0
    }

    fn program_stats(&self, _: slotcast_domain::ReservationId) -> ProgramStats {
        ProgramStats::default()
    }

    fn live(&self, _: slotcast_domain::ReservationId) -> Option<LiveView> {
        None
    }

    fn revoke(&self, _: slotcast_domain::ReservationId) {}

    fn recording(&self, _: slotcast_domain::ReservationId) -> Option<RecordingInfo> {
        None
    }
}
