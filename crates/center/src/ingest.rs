//! The center's answer to the stream node's question "may this key publish now?".
//!
//! The key must belong to a confirmed (or already live) reservation and now must be inside
//! its connect window; the first accepted publish records the `live` transition. The
//! stream node calls this through its `PublishAuthority` trait (wired in `slotcastd`).

use slotcast_domain::lifecycle::{self, Status};
use slotcast_domain::{Clock, ReservationKey};
use slotcast_store::{Actor, Reservation, StorageError, Store, TransitionCommand};

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

/// Decides for `key` at the clock's now; on a yes the reservation is `live`.
pub async fn authorize_publish(
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
    if !matches!(r.status, Status::Confirmed | Status::Live) {
        return Err(PublishRefused::NotNow(format!(
            "reservation {} is {}: only confirmed reservations may publish",
            r.id, r.status
        )));
    }
    if !r.schedule.in_connect_window(now) {
        return Err(PublishRefused::NotNow(format!(
            "reservation {} may publish from {} until {}",
            r.id, r.schedule.connect_from, r.schedule.connect_to
        )));
    }
    if r.status == Status::Live {
        return Ok(r);
    }
    let t = lifecycle::go_live(r.status, &r.schedule, now)
        .map_err(|e| PublishRefused::NotNow(e.to_string()))?;
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
            if r.status == Status::Live {
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
