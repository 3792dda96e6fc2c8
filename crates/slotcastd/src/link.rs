//! The two directions between the center and the stream node in one process (role
//! `all`; across processes the same values travel over HTTP, see [`crate::node`]): the stream node asks the center whether a key may publish; the center asks the
//! stream node about viewers, live statistics, recordings and filler jobs, tells it to cut
//! a cancelled program and hands it the operator's filler uploads. Only these adapters know both sides, and only plain values cross
//! them (no paths, no shared state), so a network can take their place.

use std::sync::Arc;

use async_trait::async_trait;
use slotcast_center::ops::jobs::{PublishRefused, go_live};
use slotcast_center::port::{FillerFile, FillerJobView};
use slotcast_center::{LiveView, RecordingInfo};
use slotcast_domain::{ChannelId, Clock, ProgramStats, ReservationId};
use slotcast_store::Store;
use slotcast_stream::workshop::{FillerListing, JobState};
use slotcast_stream::{Grant, PublishAuthority, RecordingState, Refusal, StreamNode};

/// The center as the stream node's publish authority.
#[derive(Debug)]
pub struct CenterAuthority {
    /// Facts.
    pub store: Arc<dyn Store>,
    /// The center's clock.
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl PublishAuthority for CenterAuthority {
    async fn authorize(&self, key: &str) -> Result<Grant, Refusal> {
        match go_live(&*self.store, &*self.clock, key).await {
            Ok(r) => Ok(Grant {
                reservation: r.id,
                channel: r.channel,
                start: r.schedule.start,
                end: r.schedule.end,
                cut_at: r.schedule.connect_to,
            }),
            Err(PublishRefused::UnknownKey) => Err(Refusal::UnknownKey),
            Err(PublishRefused::NotNow(m)) => Err(Refusal::NotNow(m)),
            Err(PublishRefused::Unavailable(m)) => Err(Refusal::Unavailable(m)),
        }
    }
}

/// A program's live statistics as the center shows them.
pub fn live_view(s: slotcast_stream::LiveStats) -> LiveView {
    LiveView {
        on_air: s.on_air,
        publishing: s.publishing,
        viewers: s.viewers,
        bitrate_kbps: s.bitrate_kbps,
        width: s.width,
        height: s.height,
        fps: s.fps,
        recording: match s.recording {
            RecordingState::Idle => "idle".into(),
            RecordingState::Recording => "recording".into(),
            RecordingState::Done => "done".into(),
            RecordingState::Failed(why) => format!("failed: {why}"),
        },
    }
}

/// The stream node as the center's source of viewer counts and statistics.
#[derive(Debug)]
pub struct NodeStats(pub Arc<StreamNode>);

impl slotcast_center::StreamStats for NodeStats {
    fn viewers(&self, channel: ChannelId) -> u32 {
        self.0.viewers(channel)
    }

    fn program_stats(&self, reservation: ReservationId) -> Option<ProgramStats> {
        self.0.program_stats(reservation)
    }

    fn ack_program_stats(&self, reservation: ReservationId) {
        self.0.ack_program_stats(reservation);
    }

    fn live(&self, reservation: ReservationId) -> Option<LiveView> {
        self.0.live(reservation).map(live_view)
    }

    fn revoke(&self, reservation: ReservationId) {
        self.0.revoke(reservation);
    }

    fn recording(&self, reservation: ReservationId) -> Option<RecordingInfo> {
        self.0
            .recording(reservation)
            .map(|bytes| RecordingInfo { bytes })
    }
}

/// A node's filler listing as the operator's console shows it.
pub(crate) fn listing_view(l: FillerListing) -> (Vec<FillerFile>, Vec<FillerJobView>) {
    let files = l
        .files
        .into_iter()
        .map(|(name, bytes)| FillerFile { name, bytes })
        .collect();
    let jobs = l
        .jobs
        .into_iter()
        .map(|j| {
            let (state, percent, error) = match j.state {
                JobState::Encoding(p) => ("encoding", p, None),
                JobState::Done => ("done", 100, None),
                JobState::Failed(why) => ("failed", 0, Some(why)),
            };
            FillerJobView {
                id: j.id,
                file: j.file,
                state,
                percent,
                error,
            }
        })
        .collect();
    (files, jobs)
}

#[async_trait]
impl slotcast_center::FillerPort for NodeStats {
    async fn upload(
        &self,
        channel: ChannelId,
        name: &str,
        max_bytes: u64,
        body: slotcast_center::port::UploadBody<'_>,
    ) -> Result<u64, String> {
        self.0
            .upload_filler(channel, name, max_bytes, body)
            .await
            .map_err(|e| e.to_string())
    }

    async fn filler(
        &self,
        channel: ChannelId,
    ) -> Result<(Vec<FillerFile>, Vec<FillerJobView>), String> {
        let files = self.0.filler_files(channel).map_err(|e| e.to_string())?;
        Ok(listing_view(FillerListing {
            files,
            jobs: self.0.filler_jobs(channel),
        }))
    }

    async fn remove(&self, channel: ChannelId, file: &str) -> Result<(), String> {
        self.0
            .remove_filler(channel, file)
            .map_err(|e| e.to_string())
    }
}
