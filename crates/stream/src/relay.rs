//! Edge relays: a node that serves a channel placed on another node (its origin) pulls
//! each program the origin holds from the origin's preview route — the publisher's media
//! as it arrives, before and during the window — and feeds it to its own channel as if a
//! publisher had connected here. From there the HTTP-FLV and fMP4 streams are the node's
//! own: the director cuts the window, plays the filler and the slate, the admission and
//! the play sessions count the viewers. The program's LL-HLS is the origin's, mirrored
//! ([`crate::mirror`]) so that every node lists the same segments; the recording is left
//! to the origin too.
//!
//! The center hands out the pulls ([`RelaySource`]: the program's grant and the URL with a
//! preview token it signed) with every heartbeat. A pull that fails or stalls is retried
//! with the latest URL until the connect window closes or the program is revoked; while
//! it is away viewers see the slate, as when a publisher drops.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use slotcast_domain::ReservationId;
use slotcast_media::flv::FlvReader;
use tokio::sync::watch;

use crate::channel::Channel;
use crate::mirror::Mirror;
use crate::{Grant, StreamNode};

/// The origin sends nothing for this long (its publisher may be away, but its preview's
/// connection would then still be open): reconnect, the origin may be gone.
const STALL: Duration = Duration::from_secs(10);
/// Wait before pulling again after the first failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two pulls that failed.
const MOST_BACKOFF: Duration = Duration::from_secs(2);

/// A program to relay: its grant (channel and window) and where to pull it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySource {
    /// The program, its channel and window, as the origin's publisher got them.
    pub grant: Grant,
    /// The origin's preview of the program (HTTP-FLV), with a token.
    pub url: String,
}

/// The relays running on a node: the latest URL of each, and the mirror of its LL-HLS,
/// by program.
#[derive(Debug, Default)]
pub(crate) struct Relays(HashMap<ReservationId, (watch::Sender<String>, Arc<Mirror>)>);

impl StreamNode {
    /// The programs the center asks this node to relay now: starts pulling those it does
    /// not pull yet and hands the others their newest URL (a fresh token). One that is no
    /// longer listed goes on until its origin ends it. Must be called inside a tokio
    /// runtime.
    pub fn set_relays(self: &Arc<Self>, list: Vec<RelaySource>) {
        let mut relays = self.relays.lock().expect("relays lock");
        for source in list {
            if let Some((url, _)) = relays.0.get(&source.grant.reservation) {
                url.send_replace(source.url);
                continue;
            }
            if self.now() >= source.grant.cut_at {
                continue;
            }
            let Some(ch) = self.channel(source.grant.channel) else {
                continue;
            };
            let (tx, rx) = watch::channel(source.url);
            let mirror = Arc::new(Mirror::new(tx.subscribe()));
            relays.0.insert(source.grant.reservation, (tx, mirror));
            tokio::spawn(relay(self.clone(), ch, source.grant, rx));
        }
    }

    /// The mirror of relayed program `reservation`'s LL-HLS, while it is relayed here.
    pub(crate) fn mirror(&self, reservation: ReservationId) -> Option<Arc<Mirror>> {
        let relays = self.relays.lock().expect("relays lock");
        relays.0.get(&reservation).map(|(_, m)| m.clone())
    }
}

/// How a pull ended.
enum Ended {
    /// The program was cut here (revoked or its window closed): stop relaying.
    Cut,
    /// The connection failed or ended: pull again.
    Lost(String),
}

/// Relays one program until its connect window closes or it is cut.
async fn relay(
    node: Arc<StreamNode>,
    ch: Arc<Channel>,
    grant: Grant,
    url: watch::Receiver<String>,
) {
    let session = crate::rtmp::NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let reservation = grant.reservation;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build();
    let mut backoff = FIRST_BACKOFF;
    while let Ok(client) = &client
        && node.now() < grant.cut_at
    {
        let (cut_tx, mut cut_rx) = watch::channel(None);
        if let Err(e) = ch.attach_publisher(&grant, session, cut_tx, Arc::default(), false) {
            tracing::warn!(%reservation, error = %e, "relay not attached");
            break;
        }
        let from = url.borrow().clone();
        let pulled = std::time::Instant::now();
        let ended = pull(client, &from, &ch, session, &mut cut_rx).await;
        ch.detach_publisher(session);
        match ended {
            Ended::Cut => break,
            Ended::Lost(why) => {
                tracing::info!(%reservation, why, "relay lost its origin; pulling again");
                metrics::counter!("slotcast_relay_reconnects_total").increment(1);
            }
        }
        // A pull that went on for a while was a success: start the backoff over.
        if pulled.elapsed() > STALL {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MOST_BACKOFF);
    }
    if let Err(e) = client {
        tracing::error!(%reservation, error = %e, "no HTTP client for the relay");
    }
    node.relays
        .lock()
        .expect("relays lock")
        .0
        .remove(&reservation);
}

/// Reads the origin's HTTP-FLV into the channel as publisher `session`.
async fn pull(
    client: &reqwest::Client,
    url: &str,
    ch: &Channel,
    session: u64,
    cut: &mut watch::Receiver<Option<String>>,
) -> Ended {
    let get = async {
        client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
    };
    let mut resp = tokio::select! {
        _ = cut.changed() => return Ended::Cut,
        r = get => match r {
            Ok(r) => r,
            Err(e) => return Ended::Lost(e.without_url().to_string()),
        },
    };
    let mut reader = FlvReader::new();
    loop {
        let chunk = tokio::select! {
            _ = cut.changed() => return Ended::Cut,
            c = tokio::time::timeout(STALL, resp.chunk()) => c,
        };
        match chunk {
            Ok(Ok(Some(bytes))) => {
                reader.push(&bytes);
                loop {
                    match reader.poll_tag() {
                        Ok(Some(tag)) => ch.publisher_tag(session, tag),
                        Ok(None) => break,
                        Err(e) => return Ended::Lost(format!("the origin sent bad FLV: {e}")),
                    }
                }
            }
            Ok(Ok(None)) => return Ended::Lost("the origin closed the stream".into()),
            Ok(Err(e)) => return Ended::Lost(e.without_url().to_string()),
            Err(_) => return Ended::Lost(format!("nothing from the origin for {STALL:?}")),
        }
    }
}
