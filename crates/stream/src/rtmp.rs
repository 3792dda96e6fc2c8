//! RTMP ingest: `rtmp://HOST:PORT/live/<reservation_key>`.
//!
//! The protocol (handshake, chunks, AMF commands) is scuffle-rtmp's; what is ours is who
//! may publish and for how long. A connection is *pending* until it publishes with a key
//! the center accepts: pending connections are capped (the oldest is closed when a new
//! one arrives beyond the cap) and must publish within the handshake timeout, so a flood
//! of idle or garbage connections cannot keep the rightful broadcaster out — a newcomer
//! that completes its handshake quickly always gets through. An address that keeps
//! sending wrong keys is refused before any lookup for a while. A refused publish is
//! closed at once and the reason logged. A publisher is cut when the channel's director
//! says so (end of the connect window, reservation cancelled).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scuffle_rtmp::ServerSession;
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use slotcast_media::flv::{Tag, TagKind};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};

use crate::channel::Channel;
use crate::error::StreamError;
use crate::{Refusal, StreamNode};

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// The pending (not yet publishing) connections, oldest first.
#[derive(Debug, Default)]
struct Pending {
    queue: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Pending {
    /// Registers `id`; closes the oldest beyond `cap`.
    fn add(&mut self, id: u64, cap: usize) -> oneshot::Receiver<()> {
        while self.queue.len() >= cap.max(1) {
            if let Some((_, evict)) = self.queue.pop_front() {
                let _ = evict.send(());
                metrics::counter!("slotcast_rtmp_evicted_total").increment(1);
            }
        }
        let (tx, rx) = oneshot::channel();
        self.queue.push_back((id, tx));
        rx
    }

    fn remove(&mut self, id: u64) {
        self.queue.retain(|(x, _)| *x != id);
    }
}

/// Accepts RTMP connections until `shutdown` resolves.
pub async fn serve(
    node: Arc<StreamNode>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let pending = Arc::new(Mutex::new(Pending::default()));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
                let evicted = pending
                    .lock()
                    .expect("pending lock")
                    .add(id, node.config.max_pending_connections);
                tokio::spawn(connection(
                    node.clone(),
                    stream,
                    peer,
                    id,
                    evicted,
                    pending.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "rtmp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// What the handler learned, shared with the connection task.
#[derive(Debug, Default)]
struct Shared {
    /// Why the publish was refused, if it was.
    refused: Mutex<Option<String>>,
    /// Told when the publish was accepted or refused.
    decided: Notify,
    /// The channel and grant, once accepted.
    publishing: Mutex<Option<(Arc<Channel>, crate::Grant)>>,
}

struct Handler {
    node: Arc<StreamNode>,
    peer: IpAddr,
    session: u64,
    shared: Arc<Shared>,
    cut: watch::Sender<Option<String>>,
    channel: Option<Arc<Channel>>,
}

impl Handler {
    fn refuse(&self, reason: String) -> ServerSessionError {
        *self.shared.refused.lock().expect("shared lock") = Some(reason);
        self.shared.decided.notify_one();
        // scuffle-rtmp ends the session on any error; ours is in `refused`.
        ServerSessionError::PublishBeforeConnect
    }

    async fn decide(&mut self, app: &str, name: &str) -> Result<(), StreamError> {
        if app.trim_end_matches('/') != "live" {
            metrics::counter!("slotcast_rtmp_refused_total", "reason" => "app").increment(1);
            return Err(StreamError::UnknownApplication(app.to_owned()));
        }
        let key = name.split('?').next().unwrap_or_default();
        let now = Instant::now();
        if self
            .node
            .key_failures
            .lock()
            .expect("failures lock")
            .blocked(self.peer, now)
        {
            metrics::counter!("slotcast_rtmp_refused_total", "reason" => "rate_limited")
                .increment(1);
            return Err(StreamError::RateLimited);
        }
        let grant = match self.node.authority.authorize(key).await {
            Ok(g) => g,
            Err(refusal) => {
                let reason = match &refusal {
                    Refusal::UnknownKey => {
                        self.node
                            .key_failures
                            .lock()
                            .expect("failures lock")
                            .fail(self.peer, now);
                        "wrong_key"
                    }
                    Refusal::NotNow(_) => "not_now",
                    Refusal::Unavailable(_) => "unavailable",
                };
                metrics::counter!("slotcast_rtmp_refused_total", "reason" => reason).increment(1);
                return Err(refusal.into());
            }
        };
        let Some(channel) = self.node.channel(grant.channel) else {
            return Err(StreamError::ChannelElsewhere(grant.channel));
        };
        channel.attach_publisher(&grant, self.session, self.cut.clone())?;
        tracing::info!(
            reservation = %grant.reservation,
            channel = %channel.name(),
            peer = %self.peer,
            "publisher connected"
        );
        metrics::counter!("slotcast_rtmp_publishes_total").increment(1);
        *self.shared.publishing.lock().expect("shared lock") = Some((channel.clone(), grant));
        self.channel = Some(channel);
        self.shared.decided.notify_one();
        Ok(())
    }
}

impl SessionHandler for Handler {
    async fn on_publish(
        &mut self,
        _stream_id: u32,
        app_name: &str,
        stream_name: &str,
    ) -> Result<(), ServerSessionError> {
        if self.channel.is_some() {
            return Err(self.refuse("one publish per connection".into()));
        }
        self.decide(app_name, stream_name)
            .await
            .map_err(|reason| self.refuse(reason.to_string()))
    }

    async fn on_unpublish(&mut self, _stream_id: u32) -> Result<(), ServerSessionError> {
        if let Some(ch) = self.channel.take() {
            ch.detach_publisher(self.session);
        }
        Ok(())
    }

    async fn on_data(
        &mut self,
        _stream_id: u32,
        data: SessionData,
    ) -> Result<(), ServerSessionError> {
        let Some(ch) = &self.channel else {
            return Ok(());
        };
        let tag = match data {
            SessionData::Video { timestamp, data } => Tag::new(TagKind::Video, timestamp, data),
            SessionData::Audio { timestamp, data } => Tag::new(TagKind::Audio, timestamp, data),
            SessionData::Amf0 { timestamp, data } => Tag::new(TagKind::Script, timestamp, data),
        };
        ch.publisher_tag(self.session, tag);
        Ok(())
    }
}

async fn connection(
    node: Arc<StreamNode>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut evicted: oneshot::Receiver<()>,
    pending: Arc<Mutex<Pending>>,
) {
    let _ = stream.set_nodelay(true);
    let shared = Arc::new(Shared::default());
    let (cut_tx, mut cut_rx) = watch::channel(None::<String>);
    let handler = Handler {
        node: node.clone(),
        peer: peer.ip(),
        session: id,
        shared: shared.clone(),
        cut: cut_tx,
        channel: None,
    };
    let run = ServerSession::new(stream, handler).run();
    tokio::pin!(run);
    let deadline = tokio::time::sleep(node.config.handshake_timeout);
    tokio::pin!(deadline);
    let mut authenticated = false;
    let outcome: String = loop {
        tokio::select! {
            r = &mut run => break match r {
                Ok(_) => "closed by the publisher".into(),
                Err(e) => format!("session error: {e}"),
            },
            () = &mut deadline, if !authenticated => {
                metrics::counter!("slotcast_rtmp_refused_total", "reason" => "timeout").increment(1);
                break "did not publish in time".into();
            }
            _ = &mut evicted, if !authenticated => {
                break "closed to make room for newer connections".into();
            }
            () = shared.decided.notified(), if !authenticated => {
                if shared.publishing.lock().expect("shared lock").is_some() {
                    authenticated = true;
                    pending.lock().expect("pending lock").remove(id);
                }
            }
            changed = cut_rx.changed() => {
                if changed.is_ok() && let Some(reason) = cut_rx.borrow().clone() {
                    break format!("cut: {reason}");
                }
            }
        }
    };
    pending.lock().expect("pending lock").remove(id);
    let refused = shared.refused.lock().expect("shared lock").take();
    let publishing = shared.publishing.lock().expect("shared lock").take();
    match (refused, publishing) {
        (Some(reason), None) => {
            tracing::info!(%peer, reason, "publish refused");
        }
        (_, Some((channel, grant))) => {
            channel.detach_publisher(id);
            tracing::info!(%peer, reservation = %grant.reservation, outcome, "publisher gone");
        }
        (None, None) => tracing::debug!(%peer, outcome, "rtmp connection closed"),
    }
}
