//! The HTTP listener: its connections give up on a peer that stops reading, and tell the
//! router who the peer is ([`Peer`]).
//!
//! A live response never ends by itself, and while the peer's receive window stays shut
//! the server only waits to write — so a viewer that stops reading (or a peer that
//! vanished without a FIN) would hold its seat on the channel for as long as the kernel
//! keeps the connection. [`StallGuard`] fails a write that has made no progress for the
//! configured time; the HTTP server then closes the connection, dropping the response and
//! with it the viewer's seat.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// A TCP listener for `axum::serve` whose connections time out stalled writes.
#[derive(Debug)]
pub struct StallGuard {
    listener: TcpListener,
    after: Duration,
}

impl StallGuard {
    /// Connections of `listener` fail a write that stays blocked for `after`.
    pub fn new(listener: TcpListener, after: Duration) -> StallGuard {
        StallGuard { listener, after }
    }
}

impl axum::serve::Listener for StallGuard {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        (
            Guarded {
                io,
                after: self.after,
                stalled: None,
            },
            addr,
        )
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

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guard(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
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
