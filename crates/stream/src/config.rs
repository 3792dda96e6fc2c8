//! The stream node's settings (loaded by `slotcastd`, passed down).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of a stream node.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Where RTMP ingest listens.
    pub rtmp_listen: SocketAddr,
    /// Public base URL of HTTP delivery (for logs and previews).
    pub public_url: String,
    /// Filler playlists: `<filler_dir>/<channel>/*.flv`, played in name order.
    pub filler_dir: PathBuf,
    /// "Be right back" slates: `<slate_dir>/<channel>.flv`.
    pub slate_dir: PathBuf,
    /// Recordings: `<recordings_dir>/<reservation>.mp4`.
    pub recordings_dir: PathBuf,
    /// Connections that have not yet published with a valid key, at most; beyond it the
    /// least advanced, oldest one makes room (see `rtmp`).
    pub max_pending_connections: usize,
    /// Pending connections from one address, at most; beyond it that address's own least
    /// advanced one makes room.
    pub max_pending_per_address: usize,
    /// Time a connection has to send its first bytes.
    pub idle_timeout: Duration,
    /// Time a connection has to complete the handshake and publish with a valid key.
    pub handshake_timeout: Duration,
    /// Failed keys per address before it is refused for `key_failure_window`.
    pub max_key_failures: u32,
    /// See `max_key_failures`.
    pub key_failure_window: Duration,
    /// LL-HLS part target (milliseconds).
    pub hls_part_ms: u32,
    /// LL-HLS segment target (milliseconds).
    pub hls_segment_ms: u32,
    /// Largest recording per program; beyond it the recording stops (the stream goes on).
    pub max_recording_bytes: u64,
    /// HTTP-FLV and fMP4 viewers are woken at most this often, and get what arrived
    /// meanwhile in one write: fewer, larger writes for up to this much more latency.
    /// Zero: at every video frame.
    pub write_interval: Duration,
    /// A live viewer who stays past its program's end sees the filler this long, then is
    /// closed (at once if another program follows).
    pub linger_after_end: Duration,
    /// A replay session ends after this long without a request (a player may pause).
    pub vod_idle: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            rtmp_listen: SocketAddr::from(([127, 0, 0, 1], 1935)),
            public_url: "http://localhost:8080".into(),
            filler_dir: PathBuf::from("data/filler"),
            slate_dir: PathBuf::from("data/slate"),
            recordings_dir: PathBuf::from("data/recordings"),
            max_pending_connections: 128,
            max_pending_per_address: 16,
            idle_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            max_key_failures: 10,
            key_failure_window: Duration::from_secs(60),
            hls_part_ms: 500,
            hls_segment_ms: 2000,
            max_recording_bytes: 8 << 30,
            write_interval: Duration::from_millis(100),
            linger_after_end: Duration::from_secs(15),
            vod_idle: Duration::from_secs(3600),
        }
    }
}

impl StreamConfig {
    /// Defaults with every directory under `data_dir`.
    pub fn under(data_dir: &std::path::Path) -> StreamConfig {
        StreamConfig {
            filler_dir: data_dir.join("filler"),
            slate_dir: data_dir.join("slate"),
            recordings_dir: data_dir.join("recordings"),
            ..StreamConfig::default()
        }
    }

    /// [`StreamConfig::linger_after_end`] on the wall clock.
    pub fn linger(&self) -> slotcast_domain::jiff::SignedDuration {
        slotcast_domain::jiff::SignedDuration::try_from(self.linger_after_end).unwrap_or_default()
    }

    /// A live LL-HLS session (and its seat) ends after this long without a request:
    /// three segment targets.
    pub fn hls_idle(&self) -> Duration {
        Duration::from_millis(3 * u64::from(self.hls_segment_ms.max(1000)))
    }

    /// The recording file of a reservation.
    pub fn recording_path(&self, reservation: slotcast_domain::ReservationId) -> PathBuf {
        self.recordings_dir.join(format!("{}.mp4", reservation.0))
    }
}
