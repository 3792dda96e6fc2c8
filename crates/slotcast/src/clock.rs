//! This machine's clock against the server's, NTP-style: each round trip to
//! `/api/v1/time` gives offset = server − (sent + received) / 2 within ± half the round
//! trip; the round trip with the shortest time gives the answer.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::api::Api;
use crate::{Error, Result};

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offset {
    /// How far the server's clock is ahead of this machine's, in milliseconds (negative:
    /// behind).
    pub server_ahead_ms: f64,
    /// The error bound: half the shortest round trip, in milliseconds.
    pub error_ms: f64,
    /// The server's time at the end of the measurement, in milliseconds since the epoch.
    pub server_now_ms: f64,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        * 1000.0
}

/// Measures with `samples` round trips.
pub async fn measure(api: &Api, samples: u32) -> Result<Offset> {
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..samples.clamp(1, 64) {
        let sent = now_ms();
        let started = Instant::now();
        let v = api.get("/time").await?;
        let rtt = started.elapsed().as_secs_f64() * 1000.0;
        let received = sent + rtt;
        let server = v["server_time"]
            .as_str()
            .and_then(|s| s.parse::<slotcast_domain::Timestamp>().ok())
            .ok_or_else(|| Error::Input("the server's time answer has no server_time".into()))?;
        let offset = server.as_millisecond() as f64 - (sent + received) / 2.0;
        if best.is_none_or(|(r, _)| rtt < r) {
            best = Some((rtt, offset));
        }
    }
    let (rtt, offset) = best.unwrap_or((0.0, 0.0));
    Ok(Offset {
        server_ahead_ms: offset,
        error_ms: rtt / 2.0,
        server_now_ms: now_ms() + offset,
    })
}
