//! Live viewers written by their channel. An HTTP-FLV or fMP4 viewer's connection whose
//! first request is admitted leaves the HTTP server ([`take_live`], offered each new
//! connection before the server reads it) and joins its channel's live output: the
//! output's pacer task, which wakes at most once per write interval when something new
//! came, writes each of these viewers what arrived since its last write, with
//! non-blocking writes. One task per channel does what a task per viewer and its HTTP
//! connection did, without a wake-up or a buffer per viewer and write.
//!
//! What the HTTP route guarantees holds here too: the same admission (a live token of
//! the channel whose program has not ended, a seat within capacity), the same feed
//! (a cursor that reads the shared filler and its own program only), the program's end
//! plus the linger, the fence, a viewer that keeps falling behind dropped, one whose
//! writes made no progress for [`STALL`] closed, and one that went away noticed within
//! about a second (a failed write, or the end of its connection read while nothing is
//! written). Anything else — another path, a refusal, a request this does not read whole
//! — goes back to the HTTP server untouched, which answers it (refusals in the REST
//! API's shape).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slotcast_domain::Timestamp;
use slotcast_media::feed::{Cursor, FlvViewer, Read};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::StreamNode;
use crate::channel::{Reader, Seat};
use crate::http::{CHUNK, Format, admit_live, program_label};

/// The request line every taken connection starts with.
const PREFIX: &[u8] = b"GET /live/";
/// Request heads longer than this go to the HTTP server.
const MAX_HEAD: usize = 4096;
/// How long a connection may take to send its request head before the HTTP server gets
/// it (and applies its own limits).
const HEAD_WAIT: Duration = Duration::from_secs(2);
/// A viewer whose writes made no progress for this long is closed (as the HTTP
/// listener's stall guard does).
pub const STALL: Duration = Duration::from_secs(30);
/// A viewer not written to for this long is checked for a closed connection.
const QUIET: Duration = Duration::from_secs(1);

/// One live viewer written by its channel's pacer.
pub(crate) struct DirectViewer {
    io: TcpStream,
    reader: Reader,
    format: Format,
    cursor: Cursor,
    /// Bytes read from the feed that the socket has not taken yet; written first (empty,
    /// and holding no memory, while the viewer keeps up).
    unsent: Vec<u8>,
    /// When the socket stopped taking bytes.
    stalled: Option<Instant>,
    /// The last write, or when the viewer came.
    written: Instant,
    node: Arc<StreamNode>,
    /// The program's end plus the linger.
    until: Timestamp,
    /// Held while connected.
    seat: Seat,
}

impl std::fmt::Debug for DirectViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectViewer")
            .field("io", &self.io)
            .field("unsent", &self.unsent.len())
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// Takes `io` if it opens with an admitted request for a live HTTP-FLV or fMP4 stream;
/// gives it back (nothing read) otherwise. See the [module documentation](self).
pub async fn take_live(node: Arc<StreamNode>, io: TcpStream) -> Option<TcpStream> {
    let Some(mut head) = peek_head(&io).await else {
        return Some(io);
    };
    let Some((name, format, content_type, query)) = parse(&head) else {
        return Some(io);
    };
    let Ok((claims, ch)) = admit_live(&node, query.as_deref(), &name) else {
        return Some(io);
    };
    if !ch.live.paced() {
        return Some(io);
    }
    let Ok(seat) = ch.connect(claims.grant) else {
        return Some(io);
    };
    let mut io = io;
    let answer = async {
        // The head was only peeked: take it off the connection.
        io.read_exact(&mut head).await?;
        io.write_all(response_head(content_type).as_bytes()).await
    };
    if !matches!(tokio::time::timeout(HEAD_WAIT, answer).await, Ok(Ok(()))) {
        return None;
    }
    let unsent = match format {
        Format::Flv(_) => FlvViewer::file_header().to_vec(),
        Format::Mp4 => Vec::new(),
    };
    let viewer = DirectViewer {
        reader: ch.read_live(format.encoding()),
        io,
        format,
        cursor: Cursor::for_program(program_label(&claims)),
        unsent,
        stalled: None,
        written: Instant::now(),
        until: claims.program_end + node.config.linger(),
        node,
        seat,
    };
    ch.live.join(viewer);
    None
}

/// The request head at the start of `io`'s input (peeked, not read), if it opens like a
/// live stream request and arrives whole, in time and small enough.
async fn peek_head(io: &TcpStream) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + HEAD_WAIT;
    let mut buf = vec![0; MAX_HEAD];
    loop {
        let n = tokio::time::timeout_at(deadline, io.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        let seen = &buf[..n];
        if n == 0 || !PREFIX.starts_with(&seen[..n.min(PREFIX.len())]) {
            return None;
        }
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end + 4);
            return Some(buf);
        }
        if n == buf.len() {
            return None;
        }
        // The rest of the head is on its way (peeking again at once would spin).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The channel name, format, content type and query of a plain `GET` of a live stream
/// with no body, no upgrade and no encoded characters in its path.
fn parse(head: &[u8]) -> Option<(String, Format, &'static str, Option<String>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) || req.method != Some("GET") {
        return None;
    }
    let plain = req.headers.iter().all(|h| {
        if h.name.eq_ignore_ascii_case("content-length") {
            h.value == b"0"
        } else {
            !["transfer-encoding", "upgrade", "expect"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n))
        }
    });
    let target = req.path?.strip_prefix("/live/")?;
    let (file, query) = match target.split_once('?') {
        Some((f, q)) => (f, Some(q.to_owned())),
        None => (target, None),
    };
    if !plain || file.contains(['/', '%', '#']) {
        return None;
    }
    let (name, format, content_type) = if let Some(name) = file.strip_suffix(".flv") {
        (name, Format::Flv(FlvViewer::new()), "video/x-flv")
    } else {
        (file.strip_suffix(".mp4")?, Format::Mp4, "video/mp4")
    };
    Some((name.to_owned(), format, content_type, query))
}

/// The response head: what the HTTP route sends, the body delimited by closing the
/// connection (it never ends by itself).
fn response_head(content_type: &str) -> String {
    let date = slotcast_domain::jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&Timestamp::now())
        .unwrap_or_default();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncache-control: no-store\r\n\
         access-control-allow-origin: *\r\nconnection: close\r\ndate: {date}\r\n\r\n"
    )
}

impl DirectViewer {
    /// Writes what the viewer has not had yet, as far as its socket takes it; `false`
    /// when it is to be closed. `scratch` is the pacer's buffer, lent for the call.
    pub(crate) fn write(&mut self, scratch: &mut BytesMut, now: Instant) -> bool {
        if self.node.now() >= self.until || self.node.fenced() {
            return false;
        }
        loop {
            if !self.unsent.is_empty() {
                let unsent = std::mem::take(&mut self.unsent);
                match self.send(&unsent, now) {
                    Some(true) => {}
                    Some(false) => return true,
                    None => return false,
                }
            }
            scratch.clear();
            let read = {
                let feed = self.reader.feed().read().expect("feed lock");
                feed.read(&mut self.cursor, CHUNK, |p| self.format.write(p, scratch))
            };
            match read {
                Read::Sent => match self.send(scratch, now) {
                    Some(true) => {}
                    Some(false) => return true,
                    None => return false,
                },
                Read::Dropped { lags } => {
                    tracing::info!(lags, "viewer dropped: it kept falling behind");
                    metrics::counter!("slotcast_stream_viewers_dropped_total").increment(1);
                    return false;
                }
                Read::Ended => return false,
                Read::Wait => return self.still_there(now),
            }
        }
    }

    /// Writes `bytes` as far as the socket takes them and keeps the rest in `unsent`:
    /// `Some(true)` when all went, `Some(false)` when the socket is full (for now), `None`
    /// when the connection failed or made no progress for [`STALL`].
    fn send(&mut self, bytes: &[u8], now: Instant) -> Option<bool> {
        let n = match self.io.try_write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return None,
        };
        if n > 0 {
            self.seat.channel().sent(n);
            self.written = now;
            self.stalled = None;
        }
        if n == bytes.len() {
            return Some(true);
        }
        self.unsent.extend_from_slice(&bytes[n..]);
        let since = *self.stalled.get_or_insert(now);
        (now.duration_since(since) < STALL).then_some(false)
    }

    /// Whether the connection is still open, looked at when nothing was written to it
    /// for a while (a write would have failed otherwise). Whatever the client sends is
    /// read and ignored.
    fn still_there(&mut self, now: Instant) -> bool {
        if now.duration_since(self.written) < QUIET {
            return true;
        }
        let mut sink = [0u8; 512];
        match self.io.try_read(&mut sink) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    /// When the pacer must look at this viewer even if nothing new comes: its end, or
    /// a second on while it is quiet or blocked.
    pub(crate) fn wake_at(&self) -> tokio::time::Instant {
        let end = self.node.instant_of(self.until);
        let quiet = tokio::time::Instant::from_std(self.written.max(Instant::now()) + QUIET);
        end.min(quiet)
    }
}
