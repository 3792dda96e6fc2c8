//! The publisher: one RTMP publish session that sends the source in real time, looping
//! with continuous timestamps, and logs when each video frame left (for latency).

use super::amf::{Amf, encode_all};
use super::rtmp::{CS_AUDIO, CS_DATA, CS_VIDEO, Conn, T_AUDIO, T_DATA, T_VIDEO};
use super::source::Source;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// When each video frame (by key) was last handed to the socket, and the media time sent
/// so far.
#[derive(Default)]
pub struct SendLog {
    sent: Mutex<HashMap<u64, Instant>>,
    /// Milliseconds of media sent (the ingest's media time).
    pub media_ms: AtomicU64,
    /// Bytes of media tags sent.
    pub bytes: AtomicU64,
    pub stop: AtomicBool,
    /// Set when the session ended (error or stop), with why.
    pub ended: Mutex<Option<String>>,
}

impl SendLog {
    /// When the frame with `key` was sent (its latest loop).
    pub fn sent(&self, key: u64) -> Option<Instant> {
        self.sent.lock().expect("lock").get(&key).copied()
    }

    pub fn is_running(&self) -> bool {
        self.ended.lock().expect("lock").is_none()
    }
}

/// Publishes `key` on `app` at `addr` until `log.stop`; returns after the session is up
/// (publish accepted), sending on a task of its own.
pub async fn start(
    addr: SocketAddr,
    app: &str,
    key: &str,
    src: Arc<Source>,
) -> Result<Arc<SendLog>, String> {
    let mut c = Conn::open(addr, app, false).await?;
    let sid = c.create_stream().await?;
    c.publish(sid, key).await?;
    let log = Arc::new(SendLog::default());
    let l = Arc::clone(&log);
    tokio::spawn(async move {
        let why = match send(c, sid, &src, &l).await {
            Ok(()) => "stopped".to_owned(),
            Err(e) => e,
        };
        *l.ended.lock().expect("lock") = Some(why);
    });
    Ok(log)
}

async fn send(c: Conn, sid: u32, src: &Source, log: &SendLog) -> Result<(), String> {
    let (mut rd, mut wr) = c.stream.into_split();
    // Drain what the server sends (acknowledgements, pings) so its buffers never fill;
    // answers are not needed by nginx-rtmp or by a publisher.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    let mut out = Vec::with_capacity(512 * 1024);
    let msg = |csid, ty, ts, body: &[u8], out: &mut Vec<u8>| {
        super::rtmp::write_message(out, super::rtmp::OUT_CHUNK, csid, ty, sid, ts, body);
    };
    if let Some(meta) = &src.meta {
        let mut body = encode_all(&[Amf::Str("@setDataFrame".into())]);
        body.extend_from_slice(meta);
        msg(CS_DATA, T_DATA, 0, &body, &mut out);
    }
    for h in &src.headers {
        let (cs, ty) = if h.kind == 9 {
            (CS_VIDEO, T_VIDEO)
        } else {
            (CS_AUDIO, T_AUDIO)
        };
        msg(cs, ty, 0, &h.body, &mut out);
    }
    wr.write_all(&out)
        .await
        .map_err(|e| format!("publish: {e}"))?;
    let started = tokio::time::Instant::now();
    let mut round: u32 = 0;
    let result = 'outer: loop {
        let base = round * src.loop_ms;
        for t in &src.media {
            if log.stop.load(Ordering::Relaxed) {
                break 'outer Ok(());
            }
            let ts = base + t.ts;
            tokio::time::sleep_until(started + Duration::from_millis(u64::from(ts))).await;
            out.clear();
            let (cs, ty) = if t.kind == 9 {
                (CS_VIDEO, T_VIDEO)
            } else {
                (CS_AUDIO, T_AUDIO)
            };
            msg(cs, ty, ts, &t.body, &mut out);
            if let Some(k) = t.key {
                log.sent.lock().expect("lock").insert(k, Instant::now());
            }
            if let Err(e) = wr.write_all(&out).await {
                break 'outer Err(format!("publish: the server closed the session: {e}"));
            }
            log.media_ms.store(u64::from(ts), Ordering::Relaxed);
            log.bytes.fetch_add(t.body.len() as u64, Ordering::Relaxed);
        }
        round += 1;
    };
    drain.abort();
    result
}
