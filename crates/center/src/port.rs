//! The center's side of the center–stream port: what the center asks of the stream node
//! (viewers, live statistics, program totals, recordings, filler jobs) and tells it (cut a
//! cancelled program, take an uploaded filler video). Only plain, serialisable values cross it — no paths, no shared state — so the
//! same port works in one process (role `all`, wired in `slotcastd`) and over a network.

use crate::mail::ProgramStats;
use slotcast_domain::ReservationId;

/// What the center asks of the stream node about channels and programs. The center runs
/// without a stream node in tests and before one connects: then nobody is watching.
pub trait StreamStats: Send + Sync + std::fmt::Debug {
    /// Viewers currently admitted on a channel.
    fn viewers(&self, channel: slotcast_domain::ChannelId) -> u32;
    /// The totals of a program that ended, for the end-of-program summary, while the node
    /// still holds them: a peek, they stay until [`StreamStats::ack_program_stats`].
    /// `None` when the node measured nothing (the program never went on air).
    fn program_stats(&self, reservation: ReservationId) -> Option<ProgramStats>;
    /// The center stored the totals (or no longer needs them): the node may forget them.
    fn ack_program_stats(&self, reservation: ReservationId);
    /// Live statistics of a program while the stream node has it.
    fn live(&self, reservation: slotcast_domain::ReservationId) -> Option<LiveView>;
    /// The program lost its right to publish (cancelled): cut it at once.
    fn revoke(&self, reservation: slotcast_domain::ReservationId);
    /// The finished recording of a program, if the stream node has one (the node owns the
    /// file and serves it).
    fn recording(&self, reservation: slotcast_domain::ReservationId) -> Option<RecordingInfo>;
    /// The base URL of the node viewers reach program `reservation` of `channel` on (the
    /// node with its recording, else the channel's node); `None`: the center's own address.
    fn play_base(
        &self,
        _channel: slotcast_domain::ChannelId,
        _reservation: ReservationId,
    ) -> Option<String> {
        None
    }
    /// The base URL of the node a new live viewer of `channel` is sent to: the least
    /// loaded of the nodes serving it (its origin and the edges relaying it); `None`: the
    /// same as [`StreamStats::play_base`].
    fn live_base(&self, _channel: slotcast_domain::ChannelId) -> Option<String> {
        None
    }
    /// The origins (`scheme://host:port`) of the nodes players may be sent to, other than
    /// the center's own address: the pages' CSP lets their players fetch from them.
    fn media_origins(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The origin of `url` (`scheme://host:port`, without path or query), as CSP sources
/// name it.
pub fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url, |end| &url[..after_scheme + end])
}

/// An upload handed to the stream node: its bytes as they arrive (over a network, a
/// request body).
pub type UploadBody<'a> = futures_util::stream::BoxStream<'a, Result<bytes::Bytes, String>>;

/// What the operator's console asks of the stream node about a channel's filler (the
/// node owns the files): take an upload to re-encode into the channel's playlist, how the
/// jobs are going, what is in the playlist, take a file out.
#[async_trait::async_trait]
pub trait FillerPort: Send + Sync + std::fmt::Debug {
    /// Receives `body` (a video the operator's file `name`, at most `max_bytes`) for the
    /// filler of `channel`; the node re-encodes it in the background. The job's number, or
    /// why not.
    async fn upload(
        &self,
        channel: slotcast_domain::ChannelId,
        name: &str,
        max_bytes: u64,
        body: UploadBody<'_>,
    ) -> Result<u64, String>;
    /// The channel's filler files in playing order, and its recent jobs, newest first.
    async fn filler(
        &self,
        channel: slotcast_domain::ChannelId,
    ) -> Result<(Vec<FillerFile>, Vec<FillerJobView>), String>;
    /// Takes `file` out of the channel's playlist.
    async fn remove(&self, channel: slotcast_domain::ChannelId, file: &str) -> Result<(), String>;
}

/// A filler upload being re-encoded, or done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FillerJobView {
    /// Its number.
    pub id: u64,
    /// The file it makes.
    pub file: String,
    /// `encoding`, `done` or `failed`.
    pub state: &'static str,
    /// How far ffmpeg is (100 when done).
    pub percent: u8,
    /// Why it failed.
    pub error: Option<String>,
}

/// A file of a channel's filler playlist.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FillerFile {
    /// Its name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// A finished recording, as the stream node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordingInfo {
    /// Its size.
    pub bytes: u64,
}

/// Live statistics of a program, as the stream node measures them.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct LiveView {
    /// Whether the publisher's media reaches viewers now.
    pub on_air: bool,
    /// Whether a publisher is connected (before the start: preview only).
    pub publishing: bool,
    /// Viewers admitted on the channel.
    pub viewers: u32,
    /// Ingest bitrate.
    pub bitrate_kbps: u32,
    /// Picture width.
    pub width: Option<u32>,
    /// Picture height.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: f32,
    /// `idle`, `recording`, `done` or `failed: <reason>`.
    pub recording: String,
}

/// No stream node attached: no viewers, no statistics.
#[derive(Debug, Default)]
pub struct NoStreamNode;

impl StreamStats for NoStreamNode {
    fn viewers(&self, _: slotcast_domain::ChannelId) -> u32 {
        0
    }

    fn program_stats(&self, _: ReservationId) -> Option<ProgramStats> {
        None
    }

    fn ack_program_stats(&self, _: ReservationId) {}

    fn live(&self, _: slotcast_domain::ReservationId) -> Option<LiveView> {
        None
    }

    fn revoke(&self, _: slotcast_domain::ReservationId) {}

    fn recording(&self, _: slotcast_domain::ReservationId) -> Option<RecordingInfo> {
        None
    }
}

#[async_trait::async_trait]
impl FillerPort for NoStreamNode {
    async fn upload(
        &self,
        _: slotcast_domain::ChannelId,
        _: &str,
        _: u64,
        _: UploadBody<'_>,
    ) -> Result<u64, String> {
        Err("no stream node is attached".into())
    }

    async fn filler(
        &self,
        _: slotcast_domain::ChannelId,
    ) -> Result<(Vec<FillerFile>, Vec<FillerJobView>), String> {
        Err("no stream node is attached".into())
    }

    async fn remove(&self, _: slotcast_domain::ChannelId, _: &str) -> Result<(), String> {
        Err("no stream node is attached".into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_origin_is_scheme_host_and_port() {
        for (url, origin) in [
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("https://cdn.example.org/node-1/", "https://cdn.example.org"),
            ("https://tv.example.org?x=1", "https://tv.example.org"),
            ("http://[::1]:8080/a#b", "http://[::1]:8080"),
        ] {
            assert_eq!(super::origin_of(url), origin);
        }
    }
}
