//! RTMP ingest: `rtmp://HOST:PORT/live/<reservation_key>`.
//!
//! The protocol (handshake, chunks, AMF commands) is scuffle-rtmp's; what is ours is who
//! may publish and for how long. A connection is *pending* until it publishes with a key
//! the center accepts, and a flood of idle or garbage connections must not keep the
//! rightful broadcaster out:
//!
//! - pending connections are capped per address ([`StreamConfig::max_pending_per_address`]):
//!   beyond it an address's own least advanced connection makes room, so one address only
//!   ever displaces itself;
//! - pending connections are capped in all ([`StreamConfig::max_pending_connections`]):
//!   beyond it the *least advanced*, oldest connection makes room — one that has sent
//!   nothing goes before one in its handshake, and one past its handshake (it has sent
//!   `connect`) is never closed for a newcomer (the newcomer is refused instead);
//! - each phase has a deadline: a connection that sent nothing is closed after
//!   [`StreamConfig::idle_timeout`], one that has not published after
//!   [`StreamConfig::handshake_timeout`].
//!
//! How far a connection got is measured by the bytes it sent (C0+C1 is 1537 bytes, the
//! handshake 3073). Evictions and refusals are counted in `/metrics` and logged as one
//! summary line every ten seconds, not per connection. An address that keeps sending wrong
//! keys is refused before any lookup for a while. A refused publish is closed at once and
//! the reason logged. A publisher is cut when the channel's director says so (end of the
//! connect window, reservation cancelled).
//!
//! [`StreamConfig::max_pending_per_address`]: crate::StreamConfig::max_pending_per_address
//! [`StreamConfig::max_pending_connections`]: crate::StreamConfig::max_pending_connections
//! [`StreamConfig::idle_timeout`]: crate::StreamConfig::idle_timeout
//! [`StreamConfig::handshake_timeout`]: crate::StreamConfig::handshake_timeout

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

pub(crate) static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Bytes of C0 + C1: a connection past them is in its handshake.
const HANDSHAKE_STARTED: u64 = 1537;
/// Bytes of C0 + C1 + C2: a connection past them has done its handshake (and sends
/// `connect` next).
const HANDSHAKE_DONE: u64 = 3073;

/// How far a pending connection got, by the bytes it sent.
fn stage(bytes: u64) -> u8 {
    match bytes {
        0 => 0,
        b if b < HANDSHAKE_STARTED => 1,
        b if b < HANDSHAKE_DONE => 2,
        _ => 3,
    }
}

/// One pending connection.
#[derive(Debug)]
struct Entry {
    id: u64,
    ip: IpAddr,
    /// Bytes received so far, written by its [`Counted`] stream.
    received: Arc<AtomicU64>,
    evict: oneshot::Sender<()>,
}

impl Entry {
    fn stage(&self) -> u8 {
        stage(self.received.load(Ordering::Relaxed))
    }
}

/// What the pending set did since the last summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    evicted_for_address: u64,
    evicted_for_room: u64,
    refused: u64,
}

/// The pending (not yet publishing) connections, oldest first. See the [module
/// documentation](self).
#[derive(Debug, Default)]
struct Pending {
    queue: VecDeque<Entry>,
    tally: Tally,
}

impl Pending {
    /// Admits connection `id` from `ip`, making room as the module documentation says;
    /// `None` when it is refused (every pending connection is past its handshake).
    fn add(
        &mut self,
        id: u64,
        ip: IpAddr,
        received: Arc<AtomicU64>,
        cap: usize,
        per_address: usize,
    ) -> Option<oneshot::Receiver<()>> {
        let from_here = self.queue.iter().filter(|e| e.ip == ip).count();
        if from_here >= per_address.max(1) {
            // The address's own least advanced, oldest connection.
            if let Some(i) = self.least_advanced(|e| e.ip == ip) {
                self.evict(i);
                self.tally.evicted_for_address += 1;
                metrics::counter!("slotcast_rtmp_evicted_total", "reason" => "address")
                    .increment(1);
            }
        }
        while self.queue.len() >= cap.max(1) {
            match self.least_advanced(|e| e.stage() < 3) {
                Some(i) => {
                    self.evict(i);
                    self.tally.evicted_for_room += 1;
                    metrics::counter!("slotcast_rtmp_evicted_total", "reason" => "room")
                        .increment(1);
                }
                None => {
                    self.tally.refused += 1;
                    metrics::counter!("slotcast_rtmp_refused_total", "reason" => "full")
                        .increment(1);
                    return None;
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        self.queue.push_back(Entry {
            id,
            ip,
            received,
            evict: tx,
        });
        Some(rx)
    }

    /// The index of the least advanced (then oldest) entry that `eligible` allows.
    fn least_advanced(&self, eligible: impl Fn(&Entry) -> bool) -> Option<usize> {
        self.queue
            .iter()
            .enumerate()
            .filter(|(_, e)| eligible(e))
            .min_by_key(|(i, e)| (e.stage(), *i))
            .map(|(i, _)| i)
    }

    fn evict(&mut self, i: usize) {
        if let Some(e) = self.queue.remove(i) {
            let _ = e.evict.send(());
        }
    }

    fn remove(&mut self, id: u64) {
        self.queue.retain(|e| e.id != id);
    }

    /// What happened since the last call.
    fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }
}

/// A stream that counts the bytes read from it (how far a pending connection got).
#[derive(Debug)]
struct Counted {
    inner: TcpStream,
    received: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.received.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
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
    let mut summary = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            _ = summary.tick() => {
                let t = pending.lock().expect("pending lock").take_tally();
                if t != Tally::default() {
                    tracing::warn!(
                        evicted_for_address = t.evicted_for_address,
                        evicted_for_room = t.evicted_for_room,
                        refused = t.refused,
                        "rtmp: pending connections evicted or refused in the last 10 s"
                    );
                }
                continue;
            }
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
                let received = Arc::new(AtomicU64::new(0));
                let admitted = pending.lock().expect("pending lock").add(
                    id,
                    peer.ip(),
                    received.clone(),
                    node.config.max_pending_connections,
                    node.config.max_pending_per_address,
                );
                let Some(evicted) = admitted else {
                    drop(stream);
                    continue;
                };
                let stream = Counted {
                    inner: stream,
                    received,
                };
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
        channel.attach_publisher(&grant, self.session, self.cut.clone(), true)?;
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
    stream: Counted,
    peer: SocketAddr,
    id: u64,
    mut evicted: oneshot::Receiver<()>,
    pending: Arc<Mutex<Pending>>,
) {
    let _ = stream.inner.set_nodelay(true);
    let received = stream.received.clone();
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
    let idle = tokio::time::sleep(node.config.idle_timeout);
    tokio::pin!(idle);
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
            () = &mut idle, if received.load(Ordering::Relaxed) == 0 => {
                metrics::counter!("slotcast_rtmp_refused_total", "reason" => "idle").increment(1);
                break "sent nothing".into();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn counter(bytes: u64) -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(bytes))
    }

    #[test]
    fn an_address_beyond_its_cap_only_displaces_itself() {
        let mut p = Pending::default();
        let mut rx = Vec::new();
        for id in 0..3 {
            rx.push(p.add(id, ip(2), counter(0), 100, 3).unwrap());
        }
        let other = p.add(10, ip(3), counter(0), 100, 3).unwrap();
        rx.push(p.add(3, ip(2), counter(0), 100, 3).unwrap());
        // The address's oldest went; the other address's connection stays.
        assert!(rx[0].try_recv().is_ok());
        assert!(rx[1].try_recv().is_err() && rx[2].try_recv().is_err());
        drop(other);
        assert_eq!(p.queue.len(), 4);
        assert_eq!(p.take_tally().evicted_for_address, 1);
    }

    #[test]
    fn room_is_made_from_the_least_advanced_and_never_from_a_finished_handshake() {
        let mut p = Pending::default();
        let cap = 3;
        let done = counter(HANDSHAKE_DONE + 200);
        let in_handshake = counter(HANDSHAKE_STARTED);
        let mut a = p.add(1, ip(2), done.clone(), cap, 16).unwrap();
        let mut b = p.add(2, ip(3), in_handshake.clone(), cap, 16).unwrap();
        let mut c = p.add(3, ip(4), counter(0), cap, 16).unwrap();
        // A newcomer (nothing sent yet) displaces the idle one, not the others.
        let mut d = p.add(4, ip(5), counter(0), cap, 16).unwrap();
        assert!(c.try_recv().is_ok());
        assert!(a.try_recv().is_err() && b.try_recv().is_err());
        // Then the newest idle one goes before the one in its handshake.
        let _e = p.add(5, ip(6), counter(0), cap, 16).unwrap();
        assert!(d.try_recv().is_ok());
        assert!(b.try_recv().is_err());
        // When everything pending is past its handshake, a newcomer is refused.
        let mut p = Pending::default();
        for id in 0..cap as u64 {
            p.add(id, ip(2 + id as u8), counter(HANDSHAKE_DONE), cap, 16)
                .unwrap();
        }
        assert!(p.add(9, ip(9), counter(0), cap, 16).is_none());
        assert_eq!(p.take_tally().refused, 1);
    }

    #[test]
    fn stages_follow_the_handshake() {
        assert_eq!(stage(0), 0);
        assert_eq!(stage(1), 1);
        assert_eq!(stage(HANDSHAKE_STARTED - 1), 1);
        assert_eq!(stage(HANDSHAKE_STARTED), 2);
        assert_eq!(stage(HANDSHAKE_DONE), 3);
    }
}
