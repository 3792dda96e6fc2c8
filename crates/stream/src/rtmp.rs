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
//! While nobody receives what a publisher sends (the channel says so through its
//! [`Interest`]), its connection leaves the runtime's poller and is read every
//! [`NAP`]: a wake-up of the node per nap instead of per packet, which is most of what an
//! unwatched program costs. Someone starting to watch wakes it at once.
//!
//! [`StreamConfig::max_pending_per_address`]: crate::StreamConfig::max_pending_per_address
//! [`StreamConfig::max_pending_connections`]: crate::StreamConfig::max_pending_connections
//! [`StreamConfig::idle_timeout`]: crate::StreamConfig::idle_timeout
//! [`StreamConfig::handshake_timeout`]: crate::StreamConfig::handshake_timeout

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use scuffle_rtmp::ServerSession;
use scuffle_rtmp::session::server::{ServerSessionError, SessionData, SessionHandler};
use slotcast_media::flv::{Tag, TagKind};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Sleep;

use crate::channel::{Channel, Interest};
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

/// How long the connection of a publisher whose media nobody receives sleeps between
/// reads.
const NAP: Duration = Duration::from_millis(100);

/// How a connection is read.
#[derive(Debug)]
enum Link {
    /// Registered with the runtime: read as soon as data arrives.
    Polled(TcpStream),
    /// Not registered with the runtime: read once a nap, whatever arrived meanwhile.
    Napping(std::net::TcpStream, Pin<Box<Sleep>>),
    /// Lost while switching between the two (the runtime refused the socket).
    Broken,
}

impl Link {
    fn broken() -> std::io::Error {
        std::io::Error::other("the connection could not be moved to or from the runtime")
    }

    /// The connection, registered with the runtime.
    fn polled(&mut self) -> std::io::Result<&mut TcpStream> {
        if let Link::Napping(..) = self
            && let Link::Napping(s, _) = std::mem::replace(self, Link::Broken)
        {
            *self = Link::Polled(TcpStream::from_std(s)?);
        }
        match self {
            Link::Polled(s) => Ok(s),
            _ => Err(Link::broken()),
        }
    }

    /// The connection, not registered with the runtime, and its nap.
    fn napping(&mut self) -> std::io::Result<(&mut std::net::TcpStream, &mut Pin<Box<Sleep>>)> {
        if let Link::Polled(..) = self
            && let Link::Polled(s) = std::mem::replace(self, Link::Broken)
        {
            *self = Link::Napping(s.into_std()?, Box::pin(tokio::time::sleep(Duration::ZERO)));
        }
        match self {
            Link::Napping(s, nap) => Ok((s, nap)),
            _ => Err(Link::broken()),
        }
    }
}

/// A publisher's (or would-be publisher's) connection: it counts the bytes read from it
/// (how far a pending connection got), and while nobody receives the media it carries
/// ([`Interest`]) it is read in naps: every [`NAP`], what arrived meanwhile, instead of
/// a wake-up of the node for every packet. Someone starting to watch wakes it at once;
/// writes (acknowledgements, replies) are made registered.
#[derive(Debug)]
struct Counted {
    link: Link,
    received: Arc<AtomicU64>,
    interest: Arc<Interest>,
    nap: Duration,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let Counted {
            link,
            received,
            interest,
            nap,
        } = &mut *self;
        let before = buf.filled().len();
        let r = if interest.watched() {
            Pin::new(link.polled()?).poll_read(cx, buf)
        } else {
            let (s, sleep) = link.napping()?;
            read_or_nap(s, sleep, *nap, interest, cx, buf)
        };
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            received.fetch_add(n, Ordering::Relaxed);
        }
        r
    }
}

/// Reads what arrived on `s`; if nothing did, sleeps for `nap` or until someone watches.
fn read_or_nap(
    s: &mut std::net::TcpStream,
    sleep: &mut Pin<Box<Sleep>>,
    nap: Duration,
    interest: &Interest,
    cx: &mut Context<'_>,
    buf: &mut tokio::io::ReadBuf<'_>,
) -> Poll<std::io::Result<()>> {
    loop {
        match std::io::Read::read(s, buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    sleep.as_mut().reset(tokio::time::Instant::now() + nap);
    if sleep.as_mut().poll(cx).is_ready() || interest.wake_on_watch(cx.waker()) {
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.link.polled()?).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.link.polled()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.link.polled()?).poll_shutdown(cx)
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
                let _ = stream.set_nodelay(true);
                let stream = Counted {
                    link: Link::Polled(stream),
                    received,
                    interest: Arc::default(),
                    nap: NAP,
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
    /// Whether anyone receives the media published here, kept by the channel.
    interest: Arc<Interest>,
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
        channel.attach_publisher(
            &grant,
            self.session,
            self.cut.clone(),
            self.interest.clone(),
            true,
        )?;
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
    let received = stream.received.clone();
    let shared = Arc::new(Shared::default());
    let (cut_tx, mut cut_rx) = watch::channel(None::<String>);
    let handler = Handler {
        node: node.clone(),
        peer: peer.ip(),
        session: id,
        shared: shared.clone(),
        cut: cut_tx,
        interest: stream.interest.clone(),
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

    /// The server side of a loopback connection as a [`Counted`] that naps `nap`, and
    /// its client side.
    async fn pair(interest: Arc<Interest>, nap: Duration) -> (Counted, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let conn = Counted {
            link: Link::Polled(server),
            received: counter(0),
            interest,
            nap,
        };
        (conn, client)
    }

    #[tokio::test]
    async fn a_connection_nobody_watches_is_read_in_naps_and_wakes_when_someone_does() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let interest = Arc::new(Interest::default());
        interest.set(false);
        let (mut conn, mut client) = pair(interest.clone(), Duration::from_millis(250)).await;

        // Twenty writes over about 100 ms come in a read or two, whole and in order
        // (registered, each would be a read of its own).
        let writer = tokio::spawn(async move {
            for i in 0..20u8 {
                client.write_all(&[i; 10]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        let (mut got, mut reads) = (Vec::new(), 0);
        while got.len() < 200 {
            let mut b = [0; 4096];
            let n = conn.read(&mut b).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&b[..n]);
            reads += 1;
        }
        let sent: Vec<u8> = (0..20u8).flat_map(|i| [i; 10]).collect();
        assert_eq!(got, sent);
        assert!(reads <= 5, "{reads} reads");
        assert!(matches!(conn.link, Link::Napping(..)));
        assert_eq!(conn.received.load(Ordering::Relaxed), 200);

        // A write (an acknowledgement) goes out registered.
        let mut client = writer.await.unwrap();
        conn.write_all(b"ack").await.unwrap();
        let mut ack = [0; 3];
        client.read_exact(&mut ack).await.unwrap();
        assert_eq!(&ack, b"ack");
        assert!(matches!(conn.link, Link::Polled(_)));

        // Napping for a long time, a read wakes as soon as someone watches.
        conn.nap = Duration::from_secs(60);
        let read = tokio::spawn(async move {
            let mut b = [0; 16];
            let n = conn.read(&mut b).await.unwrap();
            (conn, n)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        interest.set(true);
        client.write_all(b"x").await.unwrap();
        let (mut conn, n) = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("woken long before the nap ends")
            .unwrap();
        assert_eq!(n, 1);
        assert!(matches!(conn.link, Link::Polled(_)));

        // The publisher leaving is noticed a nap later.
        interest.set(false);
        conn.nap = Duration::from_millis(50);
        drop(client);
        let mut b = [0; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut b))
            .await
            .expect("end of stream")
            .unwrap();
        assert_eq!(n, 0);
    }
}
