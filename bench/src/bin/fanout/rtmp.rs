//! A small RTMP client written for the benchmark: the simple handshake, a chunk writer, a
//! streaming chunk reader that can discard media payloads without storing them, and the
//! commands of a publisher (`connect`, `createStream`, `publish`) and of a player
//! (`connect`, `createStream`, `play`).

use super::amf::{Amf, decode_all, encode_all};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Chunk size we send with (OBS's).
pub const OUT_CHUNK: usize = 4096;
/// Chunk streams we send on.
pub const CS_CONTROL: u32 = 2;
pub const CS_COMMAND: u32 = 3;
pub const CS_AUDIO: u32 = 4;
pub const CS_DATA: u32 = 5;
pub const CS_VIDEO: u32 = 6;
/// Message types.
pub const T_SET_CHUNK: u8 = 1;
pub const T_ACK: u8 = 3;
pub const T_USER: u8 = 4;
pub const T_WINDOW: u8 = 5;
pub const T_AUDIO: u8 = 8;
pub const T_VIDEO: u8 = 9;
pub const T_DATA: u8 = 18;
pub const T_COMMAND3: u8 = 17;
pub const T_COMMAND: u8 = 20;

/// Appends the chunks of one message to `out` (type-0 header, then type-3 continuations;
/// an extended timestamp where the timestamp needs one, repeated on continuations).
pub fn write_message(
    out: &mut Vec<u8>,
    chunk: usize,
    csid: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
) {
    debug_assert!((2..64).contains(&csid));
    let ext = timestamp >= 0xFF_FFFF;
    let ts_field = if ext { 0xFF_FFFF } else { timestamp };
    out.push(csid as u8);
    out.extend_from_slice(&ts_field.to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    if ext {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    let mut pieces = payload.chunks(chunk);
    if let Some(first) = pieces.next() {
        out.extend_from_slice(first);
    }
    for piece in pieces {
        out.push(0xC0 | csid as u8);
        if ext {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        out.extend_from_slice(piece);
    }
}

/// A complete message. Media payloads are only kept when the reader was asked to keep
/// them; `len` is always the message length.
#[derive(Debug)]
pub struct Msg {
    pub type_id: u8,
    pub timestamp: u32,
    pub len: u32,
    pub payload: Vec<u8>,
}

#[derive(Default)]
struct ChunkStream {
    timestamp: u32,
    delta: u32,
    len: u32,
    type_id: u8,
    ext: bool,
    remaining: u32,
    keep: bool,
    payload: Vec<u8>,
}

/// Reassembles messages from chunks as they arrive (interpretation of type-3 headers as
/// nginx-rtmp and librtmp read them: a new message repeats the last delta).
pub struct ChunkReader {
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    keep_media: bool,
}

impl ChunkReader {
    pub fn new(keep_media: bool) -> Self {
        Self {
            chunk_size: 128,
            streams: HashMap::new(),
            keep_media,
        }
    }

    /// The largest chunk the peer may send (header included), for sizing buffers.
    pub fn max_chunk(&self) -> usize {
        self.chunk_size + 18
    }

    /// Parses every complete chunk at the start of `buf`, pushing finished messages to
    /// `out`; returns the bytes consumed. Applies Set Chunk Size at once.
    pub fn parse(&mut self, buf: &[u8], out: &mut Vec<Msg>) -> Result<usize, String> {
        let mut pos = 0;
        loop {
            let b = &buf[pos..];
            let Some(&first) = b.first() else {
                return Ok(pos);
            };
            let fmt = first >> 6;
            let (csid, basic) = match first & 0x3F {
                0 => match b.get(1) {
                    Some(&x) => (64 + u32::from(x), 2),
                    None => return Ok(pos),
                },
                1 => match (b.get(1), b.get(2)) {
                    (Some(&x), Some(&y)) => (64 + u32::from(x) + 256 * u32::from(y), 3),
                    _ => return Ok(pos),
                },
                c => (u32::from(c), 1),
            };
            let mh = [11, 7, 3, 0][usize::from(fmt)];
            if b.len() < basic + mh {
                return Ok(pos);
            }
            let h = &b[basic..basic + mh];
            let st = self.streams.entry(csid).or_default();
            let ts_field = if fmt <= 2 {
                u32::from_be_bytes([0, h[0], h[1], h[2]])
            } else {
                0
            };
            let ext = if fmt <= 2 {
                ts_field == 0xFF_FFFF
            } else {
                st.ext
            };
            let hdr = basic + mh + if ext { 4 } else { 0 };
            let starts = fmt != 3 || st.remaining == 0;
            let msg_len = if fmt <= 1 {
                u32::from_be_bytes([0, h[3], h[4], h[5]])
            } else {
                st.len
            };
            let left = if starts { msg_len } else { st.remaining };
            let piece = (left as usize).min(self.chunk_size);
            if b.len() < hdr + piece {
                return Ok(pos);
            }
            let ts = if ext {
                u32::from_be_bytes([b[hdr - 4], b[hdr - 3], b[hdr - 2], b[hdr - 1]])
            } else {
                ts_field
            };
            if starts {
                match fmt {
                    0 => {
                        st.timestamp = ts;
                        st.delta = 0;
                    }
                    1 | 2 => {
                        st.delta = ts;
                        st.timestamp = st.timestamp.wrapping_add(ts);
                    }
                    _ => st.timestamp = st.timestamp.wrapping_add(st.delta),
                }
                if fmt <= 1 {
                    st.len = msg_len;
                    st.type_id = h[6];
                }
                if fmt <= 2 {
                    st.ext = ext;
                }
                st.remaining = msg_len;
                st.keep = self.keep_media || !matches!(st.type_id, T_AUDIO | T_VIDEO);
                st.payload.clear();
            }
            if st.keep {
                st.payload.extend_from_slice(&b[hdr..hdr + piece]);
            }
            st.remaining -= piece as u32;
            pos += hdr + piece;
            if st.remaining == 0 {
                let msg = Msg {
                    type_id: st.type_id,
                    timestamp: st.timestamp,
                    len: st.len,
                    payload: std::mem::take(&mut st.payload),
                };
                if msg.type_id == T_SET_CHUNK && msg.payload.len() >= 4 {
                    let p = &msg.payload;
                    let size = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7FFF_FFFF;
                    if size == 0 || size > 16 << 20 {
                        return Err(format!("peer set a chunk size of {size}"));
                    }
                    self.chunk_size = size as usize;
                }
                out.push(msg);
            }
        }
    }
}

/// The simple (version 3, no digest) handshake as a client.
pub async fn handshake(s: &mut TcpStream) -> std::io::Result<()> {
    let mut c = vec![0u8; 1537];
    c[0] = 3;
    let mut x: u32 = 0x9E37_79B9;
    for b in &mut c[9..] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    s.write_all(&c).await?;
    let mut srv = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut srv).await?;
    s.write_all(&srv[1..1537]).await?;
    Ok(())
}

/// An RTMP connection after the handshake.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    reader: ChunkReader,
    queue: std::collections::VecDeque<Msg>,
    scratch: Vec<Msg>,
    /// Bytes read from the socket so far.
    pub rx_bytes: u64,
    ack_window: u64,
    acked: u64,
    out: Vec<u8>,
}

impl Conn {
    /// Connects, handshakes, sets our chunk size and sends `connect` to `app`; returns
    /// when the server accepted it.
    pub async fn open(addr: SocketAddr, app: &str, keep_media: bool) -> Result<Self, String> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("RTMP connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        handshake(&mut stream)
            .await
            .map_err(|e| format!("RTMP handshake with {addr}: {e}"))?;
        let mut c = Self {
            stream,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            reader: ChunkReader::new(keep_media),
            queue: Default::default(),
            scratch: Vec::new(),
            rx_bytes: 0,
            ack_window: u64::MAX,
            acked: 0,
            out: Vec::new(),
        };
        c.send(
            CS_CONTROL,
            T_SET_CHUNK,
            0,
            0,
            &(OUT_CHUNK as u32).to_be_bytes(),
        )
        .await?;
        let tc_url = format!("rtmp://{addr}/{app}");
        c.command(
            0,
            "connect",
            1.0,
            &[Amf::Object(vec![
                ("app".into(), Amf::Str(app.into())),
                ("type".into(), Amf::Str("nonprivate".into())),
                (
                    "flashVer".into(),
                    Amf::Str("FMLE/3.0 (compatible; slotcast-bench)".into()),
                ),
                ("tcUrl".into(), Amf::Str(tc_url)),
            ])],
        )
        .await?;
        c.result(1.0).await?;
        Ok(c)
    }

    /// Sends one message.
    pub async fn send(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        ts: u32,
        payload: &[u8],
    ) -> Result<(), String> {
        self.out.clear();
        write_message(
            &mut self.out,
            OUT_CHUNK,
            csid,
            type_id,
            stream_id,
            ts,
            payload,
        );
        self.stream
            .write_all(&self.out)
            .await
            .map_err(|e| format!("RTMP write: {e}"))
    }

    async fn command(
        &mut self,
        stream_id: u32,
        name: &str,
        txn: f64,
        args: &[Amf],
    ) -> Result<(), String> {
        let mut v = vec![Amf::Str(name.into()), Amf::Number(txn), Amf::Null];
        if name == "connect" {
            v.pop();
        }
        v.extend_from_slice(args);
        let body = encode_all(&v);
        self.send(CS_COMMAND, T_COMMAND, stream_id, 0, &body).await
    }

    /// Reads more bytes into the buffer; parses complete chunks into the queue (and
    /// answers acknowledgements and pings). `Ok(false)` at the end of the stream.
    pub async fn fill(&mut self) -> Result<bool, String> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = self.reader.max_chunk() * 2;
        if self.buf.len() - self.end < need.min(16 * 1024) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < need {
                self.buf.resize(need, 0);
            }
        }
        let n = self
            .stream
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| format!("RTMP read: {e}"))?;
        if n == 0 {
            return Ok(false);
        }
        self.end += n;
        self.rx_bytes += n as u64;
        let used = self
            .reader
            .parse(&self.buf[self.start..self.end], &mut self.scratch)?;
        self.start += used;
        let mut msgs = std::mem::take(&mut self.scratch);
        for m in msgs.drain(..) {
            self.control(&m).await?;
            self.queue.push_back(m);
        }
        self.scratch = msgs;
        if self.rx_bytes - self.acked >= self.ack_window {
            self.acked = self.rx_bytes;
            let seq = (self.rx_bytes as u32).to_be_bytes();
            self.send(CS_CONTROL, T_ACK, 0, 0, &seq).await?;
        }
        Ok(true)
    }

    /// Messages parsed so far, oldest first.
    pub fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, Msg> {
        self.queue.drain(..)
    }

    async fn control(&mut self, m: &Msg) -> Result<(), String> {
        let p = &m.payload;
        match m.type_id {
            T_WINDOW if p.len() >= 4 => {
                self.ack_window = u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]])).max(1);
            }
            // Ping request: answer with a ping response carrying the same time.
            T_USER if p.len() >= 6 && p[0..2] == [0, 6] => {
                let mut r = vec![0, 7];
                r.extend_from_slice(&p[2..6]);
                self.send(CS_CONTROL, T_USER, 0, 0, &r).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The next message (reading as needed); an error at the end of the stream.
    pub async fn next(&mut self) -> Result<Msg, String> {
        loop {
            if let Some(m) = self.queue.pop_front() {
                return Ok(m);
            }
            if !self.fill().await? {
                return Err("the server closed the connection".into());
            }
        }
    }

    /// Waits (at most 30 s: a saturated server answers late) for the command answer `pick` accepts, failing on `_error` or an
    /// `onStatus` of level `error`.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&[Amf]) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let m = tokio::time::timeout_at(deadline, self.next())
                .await
                .map_err(|_| format!("no answer to {what} within 30 s"))??;
            let body = match m.type_id {
                T_COMMAND => &m.payload[..],
                T_COMMAND3 if !m.payload.is_empty() => &m.payload[1..],
                _ => continue,
            };
            let v = decode_all(body);
            if let Some(t) = pick(&v) {
                return Ok(t);
            }
            let name = v.first().and_then(Amf::as_str).unwrap_or("");
            let info = v.get(3);
            let level = info.and_then(|i| i.get("level")).and_then(Amf::as_str);
            if name == "_error" || level == Some("error") {
                let code = info.and_then(|i| i.get("code")).and_then(Amf::as_str);
                let desc = info
                    .and_then(|i| i.get("description"))
                    .and_then(Amf::as_str);
                return Err(format!(
                    "{what} refused: {} {}",
                    code.unwrap_or(name),
                    desc.unwrap_or("")
                ));
            }
        }
    }

    async fn result(&mut self, txn: f64) -> Result<Vec<Amf>, String> {
        self.wait_for(&format!("command {txn}"), |v| {
            (v.first().and_then(Amf::as_str) == Some("_result")
                && v.get(1).and_then(Amf::as_f64) == Some(txn))
            .then(|| v.to_vec())
        })
        .await
    }

    /// `createStream`; the new message stream id.
    pub async fn create_stream(&mut self) -> Result<u32, String> {
        self.command(0, "createStream", 2.0, &[]).await?;
        let v = self.result(2.0).await?;
        v.get(3)
            .and_then(Amf::as_f64)
            .map(|n| n as u32)
            .ok_or_else(|| format!("createStream answered {v:?}"))
    }

    async fn status(&mut self, what: &str, code: &str) -> Result<(), String> {
        self.wait_for(what, |v| {
            (v.first().and_then(Amf::as_str) == Some("onStatus")
                && v.get(3).and_then(|i| i.get("code")).and_then(Amf::as_str) == Some(code))
            .then_some(())
        })
        .await
    }

    /// `publish` of `key` (live); returns when the server answered `Publish.Start`.
    pub async fn publish(&mut self, stream_id: u32, key: &str) -> Result<(), String> {
        self.command(
            stream_id,
            "publish",
            3.0,
            &[Amf::Str(key.into()), Amf::Str("live".into())],
        )
        .await?;
        self.status("publish", "NetStream.Publish.Start").await
    }

    /// `play` of `name` (live only); returns when the server answered `Play.Start`.
    pub async fn play(&mut self, stream_id: u32, name: &str) -> Result<(), String> {
        // Set Buffer Length (user control event 3) of 1 s, as players send before play.
        let mut ev = vec![0, 3];
        ev.extend_from_slice(&stream_id.to_be_bytes());
        ev.extend_from_slice(&1000u32.to_be_bytes());
        self.send(CS_CONTROL, T_USER, 0, 0, &ev).await?;
        self.command(
            stream_id,
            "play",
            0.0,
            &[Amf::Str(name.into()), Amf::Number(-1000.0)],
        )
        .await?;
        self.status("play", "NetStream.Play.Start").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_with_discarded_media() {
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        // Set chunk size 4096 first, as a peer would, then messages written at 4096.
        write_message(&mut out, 128, 2, T_SET_CHUNK, 0, 0, &4096u32.to_be_bytes());
        write_message(&mut out, 4096, 6, T_VIDEO, 1, 40, &big);
        write_message(&mut out, 4096, 4, T_AUDIO, 1, 0x0100_0000, &big[..300]);
        write_message(&mut out, 4096, 3, T_COMMAND, 0, 0, b"xyz");
        for keep in [false, true] {
            let mut r = ChunkReader::new(keep);
            let mut msgs = Vec::new();
            // Byte by byte: every prefix must parse to the same result.
            let mut pos = 0;
            for end in 1..=out.len() {
                pos += r.parse(&out[pos..end], &mut msgs).unwrap();
            }
            assert_eq!(pos, out.len());
            assert_eq!(msgs.len(), 4);
            assert_eq!(msgs[1].timestamp, 40);
            assert_eq!(msgs[1].len, 10_000);
            assert_eq!(msgs[1].payload.len(), if keep { 10_000 } else { 0 });
            if keep {
                assert_eq!(msgs[1].payload, big);
            }
            assert_eq!(msgs[2].timestamp, 0x0100_0000);
            assert_eq!(msgs[3].payload, b"xyz");
        }
    }

    #[test]
    fn relative_headers() {
        // fmt 0 at 100, fmt 2 with delta 40, fmt 3 new message: 180.
        let mut b = vec![0x06, 0, 0, 100, 0, 0, 1, 9, 1, 0, 0, 0, 0xAA];
        b.extend_from_slice(&[0x86, 0, 0, 40, 0xBB]);
        b.extend_from_slice(&[0xC6, 0xCC]);
        let mut r = ChunkReader::new(true);
        let mut msgs = Vec::new();
        assert_eq!(r.parse(&b, &mut msgs).unwrap(), b.len());
        let ts: Vec<u32> = msgs.iter().map(|m| m.timestamp).collect();
        assert_eq!(ts, [100, 140, 180]);
    }
}
