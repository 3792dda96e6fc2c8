//! The HTTP listener: its connections give up on a peer that stops reading, answer the
//! HTTP library's own errors in the API's shape, and tell the router who the peer is
//! ([`Peer`]). A [`Takeover`] may keep a new connection before HTTP reads it (the stream
//! node's live viewers).
//!
//! A live response never ends by itself, and while the peer's receive window stays shut
//! the server only waits to write — so a viewer that stops reading (or a peer that
//! vanished without a FIN) would hold its seat on the channel for as long as the kernel
//! keeps the connection. [`StallGuard`] fails a write that has made no progress for the
//! configured time; the HTTP server then closes the connection, dropping the response and
//! with it the viewer's seat.
//!
//! A request hyper cannot parse (a target past 64 KiB, a header block past its buffer, a
//! malformed request line) never reaches the router: hyper answers it itself, with an empty
//! body, and closes. [`Guarded`] recognises those answers on their way out (a 400, 414 or
//! 431 with no body; the router's own errors always have one) and sends the same status
//! with the API's JSON error body instead.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Sleep;

/// Offered each new connection before the HTTP server reads from it: keeps it (`None`;
/// the stream node's live viewers, `slotcast_stream::direct`) or gives it back, nothing
/// read, for the HTTP server.
pub type Takeover =
    Arc<dyn Fn(TcpStream) -> Pin<Box<dyn Future<Output = Option<TcpStream>> + Send>> + Send + Sync>;

/// A TCP listener for `axum::serve` whose connections time out stalled writes.
pub struct StallGuard {
    listener: TcpListener,
    after: Duration,
    takeover: Option<Takeover>,
    /// Connections the takeover gave back.
    back: (
        mpsc::UnboundedSender<Accepted>,
        mpsc::UnboundedReceiver<Accepted>,
    ),
}

/// A connection and its peer.
type Accepted = (TcpStream, SocketAddr);

impl std::fmt::Debug for StallGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StallGuard")
            .field("listener", &self.listener)
            .field("after", &self.after)
            .field("takeover", &self.takeover.is_some())
            .finish_non_exhaustive()
    }
}

impl StallGuard {
    /// Connections of `listener` fail a write that stays blocked for `after`.
    pub fn new(listener: TcpListener, after: Duration) -> StallGuard {
        StallGuard {
            listener,
            after,
            takeover: None,
            back: mpsc::unbounded_channel(),
        }
    }

    /// Each new connection is first offered to `takeover` (in a task of its own, so a
    /// slow peer holds up no other), and served over HTTP only if it gives it back.
    pub fn with_takeover(mut self, takeover: Takeover) -> StallGuard {
        self.takeover = Some(takeover);
        self
    }

    fn guarded(&self, io: TcpStream) -> Guarded {
        Guarded {
            io,
            after: self.after,
            stalled: None,
            replacing: None,
        }
    }
}

impl axum::serve::Listener for StallGuard {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        loop {
            let (io, addr) = tokio::select! {
                accepted = axum::serve::Listener::accept(&mut self.listener) => accepted,
                Some(back) = self.back.1.recv() => return (self.guarded(back.0), back.1),
            };
            let Some(takeover) = &self.takeover else {
                return (self.guarded(io), addr);
            };
            let (offer, back) = (takeover(io), self.back.0.clone());
            tokio::spawn(async move {
                if let Some(io) = offer.await {
                    let _ = back.send((io, addr));
                }
            });
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// The client's address as the listener saw it: serve the router with
/// `into_make_service_with_connect_info::<Peer>()` over a [`StallGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, StallGuard>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, StallGuard>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// A connection of a [`StallGuard`].
#[derive(Debug)]
pub struct Guarded {
    io: TcpStream,
    after: Duration,
    /// Running while writes are blocked.
    stalled: Option<Pin<Box<Sleep>>>,
    /// The JSON answer being written in place of one of hyper's bodiless errors, and how
    /// much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

/// The API's answer for one of hyper's own error responses, if `head` is one: a complete
/// bodiless 400, 414 or 431 (hyper writes it in one piece and then closes).
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    use crate::error::ErrorCode;
    let (code, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (ErrorCode::BadRequest, "the request is not valid HTTP"),
        b"HTTP/1.1 414 " => (ErrorCode::UriTooLong, "the address is longer than 64 KiB"),
        b"HTTP/1.1 431 " => (
            ErrorCode::HeadersTooLarge,
            "the request's headers are too large",
        ),
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let bodiless = text.ends_with("\r\n\r\n")
        && text
            .lines()
            .any(|l| l.eq_ignore_ascii_case("content-length: 0"));
    if !bodiless {
        return None;
    }
    let body =
        serde_json::json!({"error": {"code": code.as_str(), "message": message}}).to_string();
    let status = code.status();
    Some(
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes(),
    )
}

impl Guarded {
    /// Passes `poll` through, failing it once writes have been blocked for too long.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.io), cx) {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let after = self.after;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer has not read anything for too long",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Guarded {
    /// Writes the replacement of hyper's answer `len` bytes long, then reports those bytes
    /// as written.
    fn poll_replace(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let Some((bytes, mut done)) = self.replacing.take() else {
            return Poll::Ready(Ok(len));
        };
        while done < bytes.len() {
            match self.guard(cx, |io, cx| io.poll_write(cx, &bytes[done..])) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.replacing = Some((bytes, done));
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(len))
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            self.replacing = replacement(buf).map(|r| (r, 0));
        }
        if self.replacing.is_some() {
            return self.poll_replace(cx, buf.len());
        }
        self.guard(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() && bufs.len() == 1 {
            self.replacing = replacement(&bufs[0]).map(|r| (r, 0));
        }
        if self.replacing.is_some() {
            return self.poll_replace(cx, bufs.iter().map(|b| b.len()).sum());
        }
        self.guard(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guard(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_to_a_peer_that_never_reads_fails_after_the_stall_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut guard = StallGuard::new(listener, Duration::from_millis(300));
        let _peer = TcpStream::connect(addr).await.unwrap();
        let (mut io, _) = axum::serve::Listener::accept(&mut guard).await;
        let chunk = vec![0u8; 64 << 10];
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(e) = io.write_all(&chunk).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never failed");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// Sends `request` to a router served over a [`StallGuard`] and reads the whole answer.
    async fn exchange(request: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let guard = StallGuard::new(listener, Duration::from_secs(5));
        tokio::spawn(async move { axum::serve(guard, app).await });
        let mut peer = TcpStream::connect(addr).await.unwrap();
        // hyper may answer (and close) before it has read everything.
        let _ = peer.write_all(&request).await;
        let mut answer = Vec::new();
        let _ = peer.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn hypers_own_errors_are_answered_in_the_api_shape() {
        let long = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100 << 10));
        let answer = exchange(long.into_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 414 "), "{answer}");
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        assert!(
            answer.ends_with(
                r#"{"error":{"code":"uri_too_long","message":"the address is longer than 64 KiB"}}"#
            ),
            "{answer}"
        );

        let big = format!(
            "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "b".repeat(600 << 10)
        );
        let answer = exchange(big.into_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(answer.contains(r#""code":"headers_too_large""#), "{answer}");

        let garbage = exchange(b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        assert!(garbage.contains(r#""code":"bad_request""#), "{garbage}");

        let fine =
            exchange(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec()).await;
        assert!(
            fine.starts_with("HTTP/1.1 200 ") && fine.ends_with("hello"),
            "{fine}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_reads_is_never_cut() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut guard = StallGuard::new(listener, Duration::from_secs(1));
        let mut peer = TcpStream::connect(addr).await.unwrap();
        let (mut io, _) = axum::serve::Listener::accept(&mut guard).await;
        let reader = tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            // Slow but steady: pauses well under the stall time.
            let mut buf = vec![0u8; 256 << 10];
            let mut total = 0;
            while total < 8 << 20 {
                let n = peer.read(&mut buf).await.unwrap();
                total += n;
                sink.write_all(&buf[..n]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let chunk = vec![0u8; 64 << 10];
        for _ in 0..128 {
            io.write_all(&chunk)
                .await
                .expect("a reading peer is not cut");
        }
        reader.await.unwrap();
    }
}

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl IpNet {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr::{V4, V6};
        let ip = match ip {
            V6(v6) => v6.to_ipv4_mapped().map_or(V6(v6), V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (V4(net), V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (V6(net), V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client behind a request that arrived from `peer`: `peer` itself, unless `peer` is
/// one of the `trusted` proxies — then the nearest address in `X-Forwarded-For` (or
/// `Forwarded: for=`) that is not a trusted proxy. Headers from anyone else are ignored,
/// so a client cannot choose the address its limits are counted on.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[IpNet],
) -> std::net::IpAddr {
    if !trusted.iter().any(|n| n.contains(peer)) {
        return peer;
    }
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned());
    let forwarded = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.eq_ignore_ascii_case("for").then(|| {
                let v = v.trim().trim_matches('"');
                // `[2001:db8::1]:4711` or `192.0.2.60:4711`
                let v = v
                    .strip_prefix('[')
                    .map_or(v, |r| r.split(']').next().unwrap_or(r));
                v.rsplit_once(':')
                    .filter(|(h, _)| h.parse::<std::net::Ipv4Addr>().is_ok())
                    .map_or(v, |(h, _)| h)
                    .to_owned()
            })
        });
    let hops: Vec<std::net::IpAddr> = if headers.contains_key("forwarded") {
        forwarded.filter_map(|s| s.parse().ok()).collect()
    } else {
        forwarded_for.filter_map(|s| s.parse().ok()).collect()
    };
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
        .unwrap_or(peer)
}

#[cfg(test)]
mod client_tests {
    use super::*;
    use axum::http::HeaderMap;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.200.1.2".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.1.1".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::1/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.5, 10.1.1.1".parse().unwrap(),
        );
        let proxy = "127.0.0.1".parse().unwrap();
        // The nearest untrusted hop; what the client wrote before it does not count.
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "203.0.113.5".parse::<std::net::IpAddr>().unwrap()
        );
        // From an untrusted peer the header is ignored.
        let stranger = "192.0.2.9".parse().unwrap();
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
        // Nothing trusted configured: the peer.
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        let mut f = HeaderMap::new();
        f.insert(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=192.0.2.60:80"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            client_ip(proxy, &f, &trusted),
            "192.0.2.60".parse::<std::net::IpAddr>().unwrap()
        );
        // Garbage falls back to the peer.
        let mut g = HeaderMap::new();
        g.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_ip(proxy, &g, &trusted), proxy);
    }
}
