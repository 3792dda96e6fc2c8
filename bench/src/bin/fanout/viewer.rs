//! Viewers: one task each, counting bytes and following media time without keeping the
//! stream (HTTP-FLV, the fMP4 stream, RTMP play), and latency probes that also key the
//! frames they receive (the same three, LL-HLS with blocking playlist reloads, and
//! nginx-rtmp's HLS).

use super::media::{Event, FlvParser, Mp4Parser, TsDemux};
use super::publish::SendLog;
use super::rtmp::{Conn, T_VIDEO};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Shared time base and the measuring flag.
pub struct Clock {
    epoch: Instant,
    /// Lag counts only while this is set (not during connection and start-up bursts).
    pub measuring: AtomicBool,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            measuring: AtomicBool::new(false),
        }
    }

    pub fn ms(&self, at: Instant) -> i64 {
        at.saturating_duration_since(self.epoch).as_millis() as i64
    }
}

pub const CONNECTING: u8 = 0;
pub const PLAYING: u8 = 1;
pub const CLOSED: u8 = 2;
pub const FAILED: u8 = 3;

/// One viewer's figures, read by the run while it goes on.
///
/// Lag without a shared timeline: a frame can never arrive before it was published, so
/// the largest `media time − arrival time` a viewer has seen is its live edge; how far it
/// is behind that edge now is its lag (in milliseconds), whatever time base the server
/// gave its stream.
pub struct Stat {
    pub bytes: AtomicU64,
    pub state: AtomicU8,
    edge: AtomicI64,
    last_media: AtomicI64,
    /// The largest lag seen at a frame's arrival while measuring.
    pub max_lag: AtomicI64,
    pub frames: AtomicU64,
    pub error: Mutex<Option<String>>,
}

impl Stat {
    pub fn new() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            state: AtomicU8::new(CONNECTING),
            edge: AtomicI64::new(i64::MIN),
            last_media: AtomicI64::new(0),
            max_lag: AtomicI64::new(0),
            frames: AtomicU64::new(0),
            error: Mutex::new(None),
        }
    }

    /// How far behind its live edge the viewer is now (a stalled viewer falls behind).
    pub fn lag_now(&self, clock: &Clock) -> i64 {
        let edge = self.edge.load(Ordering::Relaxed);
        if edge == i64::MIN {
            return i64::MAX;
        }
        edge - (self.last_media.load(Ordering::Relaxed) - clock.ms(Instant::now()))
    }

    fn fail(&self, e: String) {
        self.state.store(FAILED, Ordering::Relaxed);
        *self.error.lock().expect("lock") = Some(e);
    }
}

/// A latency probe's matches: milliseconds from the publisher's send to arrival.
pub struct Probe {
    pub log: Arc<SendLog>,
    /// Frames arriving before this are start-up bursts and not counted.
    pub warm_until: Instant,
    pub latencies: Mutex<Vec<f64>>,
    pub unmatched: AtomicU64,
}

impl Probe {
    pub fn new(log: Arc<SendLog>, warm: Duration) -> Self {
        Self {
            log,
            warm_until: Instant::now() + warm,
            latencies: Mutex::new(Vec::new()),
            unmatched: AtomicU64::new(0),
        }
    }

    fn keys(&self, keys: &[u64], at: Instant) {
        if at < self.warm_until {
            return;
        }
        for k in keys {
            match self.log.sent(*k) {
                Some(t) if t <= at => self
                    .latencies
                    .lock()
                    .expect("lock")
                    .push((at - t).as_secs_f64() * 1000.0),
                _ => {
                    self.unmatched.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Where a stream viewer connects.
#[derive(Clone, Debug)]
pub enum Target {
    /// `GET path` answered with an FLV stream.
    Flv { addr: SocketAddr, path: String },
    /// `GET path` answered with a fragmented MP4 stream.
    Mp4 { addr: SocketAddr, path: String },
    /// RTMP `play` of `name` on `app`.
    Rtmp {
        addr: SocketAddr,
        app: String,
        name: String,
    },
}

/// Follows a media event: the viewer's lag, and the probe's matches.
fn on_video(
    stat: &Stat,
    clock: &Clock,
    probe: Option<&Probe>,
    edge: &mut i64,
    media_ms: i64,
    keys: &[u64],
) {
    let now = Instant::now();
    let offset = media_ms - clock.ms(now);
    *edge = (*edge).max(offset);
    if clock.measuring.load(Ordering::Relaxed) {
        stat.max_lag.fetch_max(*edge - offset, Ordering::Relaxed);
    }
    stat.edge.store(*edge, Ordering::Relaxed);
    stat.last_media.store(media_ms, Ordering::Relaxed);
    stat.frames.fetch_add(1, Ordering::Relaxed);
    if stat.state.load(Ordering::Relaxed) == CONNECTING {
        stat.state.store(PLAYING, Ordering::Relaxed);
    }
    if let Some(p) = probe {
        p.keys(keys, now);
    }
}

/// Runs one viewer until the stream ends or the task is aborted. With `pace`, the viewer
/// waits that long after a read that did not fill its buffer, so that it reads in larger
/// pieces (fewer system calls on the machine the server shares) at the cost of up to
/// `pace` of extra delay — far below what makes a viewer behind.
pub async fn run(
    target: Target,
    stat: Arc<Stat>,
    clock: Arc<Clock>,
    probe: Option<Arc<Probe>>,
    pace: Option<Duration>,
) {
    let r = match &target {
        Target::Flv { addr, path } => {
            let mut p = FlvParser::new(probe.is_some());
            http_stream(*addr, path, &stat, pace, &mut |data, edge| {
                p.feed(data, &mut |Event::Video { media_ms, keys }| {
                    on_video(&stat, &clock, probe.as_deref(), edge, media_ms, &keys);
                })
            })
            .await
        }
        Target::Mp4 { addr, path } => {
            let mut p = Mp4Parser::new(probe.is_some());
            http_stream(*addr, path, &stat, pace, &mut |data, edge| {
                p.feed(data, &mut |Event::Video { media_ms, keys }| {
                    on_video(&stat, &clock, probe.as_deref(), edge, media_ms, &keys);
                })
            })
            .await
        }
        Target::Rtmp { addr, app, name } => {
            rtmp_play(*addr, app, name, &stat, &clock, probe.as_deref(), pace).await
        }
    };
    match r {
        Ok(()) => {
            stat.state.store(CLOSED, Ordering::Relaxed);
            *stat.error.lock().expect("lock") = Some("the server ended the stream".into());
        }
        Err(e) => stat.fail(e),
    }
}

async fn rtmp_play(
    addr: SocketAddr,
    app: &str,
    name: &str,
    stat: &Stat,
    clock: &Clock,
    probe: Option<&Probe>,
    pace: Option<Duration>,
) -> Result<(), String> {
    let mut c = Conn::open(addr, app, probe.is_some()).await?;
    let sid = c.create_stream().await?;
    c.play(sid, name).await?;
    let mut edge = i64::MIN;
    let mut counted = 0;
    loop {
        stat.bytes
            .fetch_add(c.rx_bytes - counted, Ordering::Relaxed);
        counted = c.rx_bytes;
        for m in c.drain() {
            // Video frames only (not the AVC sequence header); the payload is there for
            // probes, its first two bytes are not needed otherwise.
            if m.type_id != T_VIDEO || m.len <= 5 {
                continue;
            }
            if !m.payload.is_empty() && m.payload[1] != 1 {
                continue;
            }
            let keys: Vec<u64> = super::media::flv_video_key(&m.payload)
                .into_iter()
                .collect();
            on_video(stat, clock, probe, &mut edge, i64::from(m.timestamp), &keys);
        }
        if !c.fill().await? {
            return Ok(());
        }
        if let Some(p) = pace
            && c.rx_bytes - counted < 32 * 1024
        {
            tokio::time::sleep(p).await;
        }
    }
}

/// `GET path` on a fresh connection; feeds the body (de-chunked) to `feed`.
async fn http_stream(
    addr: SocketAddr,
    path: &str,
    stat: &Stat,
    pace: Option<Duration>,
    feed: &mut impl FnMut(&[u8], &mut i64) -> Result<(), String>,
) -> Result<(), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: slotcast-bench\r\nAccept: */*\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    let head_end = loop {
        let n = s
            .read(&mut buf[have..])
            .await
            .map_err(|e| format!("read answer: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before answering".into());
        }
        have += n;
        stat.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if have == buf.len() {
            return Err("answer head too long".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let first = head.lines().next().unwrap_or("").to_owned();
        let body = String::from_utf8_lossy(&buf[head_end..have]).into_owned();
        return Err(format!("GET answered {first} {}", body.trim()));
    }
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    let mut dechunk = Dechunk::default();
    let mut edge = i64::MIN;
    let mut pending = (head_end, have);
    loop {
        let data = &buf[pending.0..pending.1];
        if chunked {
            if dechunk.feed(data, &mut |d| feed(d, &mut edge))? {
                return Ok(());
            }
        } else {
            feed(data, &mut edge)?;
        }
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        stat.bytes.fetch_add(n as u64, Ordering::Relaxed);
        pending = (0, n);
        if let Some(p) = pace
            && n < buf.len() / 2
        {
            tokio::time::sleep(p).await;
        }
    }
}

/// Decodes `Transfer-Encoding: chunked` as it arrives.
#[derive(Default)]
struct Dechunk {
    /// Bytes of chunk data left; `None` while reading a size line.
    left: Option<u64>,
    size: u64,
    in_ext: bool,
    /// After data: the CR LF still to skip.
    crlf: u8,
}

impl Dechunk {
    /// Feeds raw body bytes; `Ok(true)` at the last chunk.
    fn feed(
        &mut self,
        mut b: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<bool, String> {
        while !b.is_empty() {
            if self.crlf > 0 {
                b = &b[1..];
                self.crlf -= 1;
                continue;
            }
            match self.left {
                Some(n) => {
                    let k = (n as usize).min(b.len());
                    out(&b[..k])?;
                    b = &b[k..];
                    let n = n - k as u64;
                    if n == 0 {
                        self.left = None;
                        self.crlf = 2;
                    } else {
                        self.left = Some(n);
                    }
                }
                None => {
                    let c = b[0];
                    b = &b[1..];
                    match c {
                        b'\n' => {
                            if self.size == 0 {
                                return Ok(true);
                            }
                            self.left = Some(self.size);
                            self.size = 0;
                            self.in_ext = false;
                        }
                        b'\r' => {}
                        b';' => self.in_ext = true,
                        _ if self.in_ext => {}
                        _ => {
                            let d = (c as char)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {c:#x}"))?;
                            self.size = self.size * 16 + u64::from(d);
                        }
                    }
                }
            }
        }
        Ok(false)
    }
}

/// An HTTP client for playlists and segments.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client")
}

/// LL-HLS probe: blocking playlist reloads (`_HLS_msn`/`_HLS_part`), then every new part
/// fetched in order; the frames of a part arrive when its download ends.
pub async fn ll_hls(url: String, stat: Arc<Stat>, clock: Arc<Clock>, probe: Arc<Probe>) {
    if let Err(e) = ll_hls_inner(&url, &stat, &clock, &probe).await {
        stat.fail(e);
    }
}

/// A part of an LL-HLS playlist: ((media sequence number, part index), URI).
type Part = ((u64, u64), String);

/// Parts of a media playlist, its `EXT-X-MAP` URI and the next part to ask for.
fn parse_parts(text: &str) -> (Vec<Part>, Option<String>, (u64, u64)) {
    let mut msn = 0;
    let mut idx = 0;
    let mut parts = Vec::new();
    let mut map = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            if let Some(uri) = attr(v, "URI") {
                parts.push(((msn, idx), uri));
            }
            idx += 1;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            map = attr(v, "URI");
        } else if !line.is_empty() && !line.starts_with('#') {
            msn += 1;
            idx = 0;
        }
    }
    (parts, map, (msn, idx))
}

fn attr(list: &str, name: &str) -> Option<String> {
    let at = list.find(&format!("{name}=\""))? + name.len() + 2;
    let end = list[at..].find('"')?;
    Some(list[at..at + end].to_owned())
}

async fn get_bytes(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET {url}: {}", r.status()));
    }
    Ok(r.bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .to_vec())
}

async fn ll_hls_inner(url: &str, stat: &Stat, clock: &Clock, probe: &Probe) -> Result<(), String> {
    let client = http_client();
    // A multivariant playlist (slotcast's entry, which opens a play session): follow its
    // one variant.
    let entry = String::from_utf8_lossy(&get_bytes(&client, url).await?).into_owned();
    let variant = entry
        .contains("#EXT-X-STREAM-INF")
        .then(|| {
            entry
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
        })
        .flatten();
    let media;
    let url = match variant {
        Some(v) => {
            media = reqwest::Url::parse(url)
                .and_then(|b| b.join(v))
                .map_err(|e| e.to_string())?
                .to_string();
            media.as_str()
        }
        None => url,
    };
    let base = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    // URIs without a query get the playlist's (its token).
    let resolve = |u: &str| {
        let mut r = base.join(u).map_err(|e| e.to_string())?;
        if r.query().is_none() {
            r.set_query(base.query());
        }
        Ok::<String, String>(r.to_string())
    };
    // A packager may need a keyframe or two before it lists an init segment and parts.
    let until = Instant::now() + Duration::from_secs(10);
    let (parts, map, mut next) = loop {
        let text = String::from_utf8_lossy(&get_bytes(&client, url).await?).into_owned();
        let (parts, map, next) = parse_parts(&text);
        if let Some(map) = map.filter(|_| !parts.is_empty()) {
            break (parts, map, next);
        }
        if Instant::now() > until {
            return Err(format!(
                "the LL-HLS playlist lists no EXT-X-MAP or no parts after 10 s: {}",
                text.replace('\n', " | ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut p = Mp4Parser::new(true);
    let mut edge = i64::MIN;
    let init = get_bytes(&client, &resolve(&map)?).await?;
    p.feed(&init, &mut |_| {})?;
    let mut last = parts.last().map(|x| x.0).expect("a part");
    loop {
        let sep = if url.contains('?') { '&' } else { '?' };
        let reload = format!("{url}{sep}_HLS_msn={}&_HLS_part={}", next.0, next.1);
        let t = Instant::now();
        let body = get_bytes(&client, &reload).await?;
        stat.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let text = String::from_utf8_lossy(&body).into_owned();
        let (parts, _, n) = parse_parts(&text);
        let fresh: Vec<_> = parts.into_iter().filter(|x| x.0 > last).collect();
        for (id, uri) in fresh {
            let data = get_bytes(&client, &resolve(&uri)?).await?;
            stat.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            let mut events = Vec::new();
            p.feed(&data, &mut |e| events.push(e))?;
            for Event::Video { media_ms, keys } in events {
                // The frames of a part arrive together, when its download ends.
                on_video(stat, clock, Some(probe), &mut edge, media_ms, &keys);
            }
            last = id;
        }
        next = n;
        if t.elapsed() < Duration::from_millis(20) {
            // Not a blocking server: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// nginx-rtmp HLS probe: reloads the playlist every `poll` and downloads each new
/// segment, demuxing it as its bytes arrive.
pub async fn hls_ts(url: String, poll: Duration, stat: Arc<Stat>, probe: Arc<Probe>) {
    if let Err(e) = hls_ts_inner(&url, poll, &stat, &probe).await {
        stat.fail(e);
    }
}

async fn hls_ts_inner(url: &str, poll: Duration, stat: &Stat, probe: &Probe) -> Result<(), String> {
    let client = http_client();
    let base = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let mut seen: Option<u64> = None;
    loop {
        let text = String::from_utf8_lossy(&get_bytes(&client, url).await?).into_owned();
        let mut msn = 0u64;
        let mut segs = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                msn = v.parse().unwrap_or(0);
            } else if !line.is_empty() && !line.starts_with('#') {
                segs.push((msn, line.to_owned()));
                msn += 1;
            }
        }
        let newest = segs.last().map(|s| s.0);
        if seen.is_none() {
            // Start at the live edge: segments listed before the probe started are old.
            seen = newest;
        }
        for (n, uri) in segs {
            if seen.is_some_and(|s| n <= s) {
                continue;
            }
            let u = base.join(&uri).map_err(|e| e.to_string())?;
            let mut r = client
                .get(u.clone())
                .send()
                .await
                .map_err(|e| format!("GET {u}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("GET {u}: {}", r.status()));
            }
            let mut ts = TsDemux::default();
            let mut keys = Vec::new();
            while let Some(chunk) = r.chunk().await.map_err(|e| format!("GET {u}: {e}"))? {
                stat.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                ts.feed(&chunk, &mut keys);
                let now = Instant::now();
                probe.keys(&keys, now);
                keys.clear();
            }
            ts.flush(&mut keys);
            probe.keys(&keys, Instant::now());
            // Segments count as progress (the probe needs no media clock).
            stat.frames.fetch_add(1, Ordering::Relaxed);
            if stat.state.load(Ordering::Relaxed) == CONNECTING {
                stat.state.store(PLAYING, Ordering::Relaxed);
            }
            seen = Some(n);
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_in_any_split() {
        let raw = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        for split in 1..raw.len() {
            let mut d = Dechunk::default();
            let mut out = Vec::new();
            let mut done = false;
            for piece in raw.chunks(split) {
                done = d
                    .feed(piece, &mut |b| {
                        out.extend_from_slice(b);
                        Ok(())
                    })
                    .unwrap();
                if done {
                    break;
                }
            }
            assert!(done);
            assert_eq!(out, b"hello world");
        }
    }

    #[test]
    fn playlist_parts() {
        let pl = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-MEDIA-SEQUENCE:7\n\
                  #EXT-X-PART:DURATION=0.5,URI=\"p7.0.m4s\"\n#EXT-X-PART:DURATION=0.5,URI=\"p7.1.m4s\"\n\
                  #EXTINF:1.0,\ns7.m4s\n#EXT-X-PART:DURATION=0.5,URI=\"p8.0.m4s\",INDEPENDENT=YES\n\
                  #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p8.1.m4s\"\n";
        let (parts, map, next) = parse_parts(pl);
        assert_eq!(map.as_deref(), Some("init.mp4"));
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], ((8, 0), "p8.0.m4s".to_owned()));
        assert_eq!(next, (8, 1));
    }
}
