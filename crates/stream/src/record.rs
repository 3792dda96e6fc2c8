//! Recording of a program to `<recordings_dir>/<reservation>.mp4`, a fragmented MP4 with
//! fragments of about one segment, written by a task of its own.
//!
//! The recorder is a viewer of the channel's hub drained synchronously with every tag, so
//! it records exactly what viewers saw between the start and the end (the slate included
//! while the publisher was away). Writing goes through a bounded queue: a slow or full
//! disk stops the recording — reported in the live statistics, the log and the metrics —
//! never the stream.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use slotcast_domain::ReservationId;
use slotcast_media::fmp4::{Fragmenter, FragmenterConfig};
use slotcast_media::hub::{Hub, ViewerId};
use std::io::Write as _;
use tokio::sync::mpsc;

use crate::error::StreamError;
use crate::{RecordingState, StreamConfig};

/// Outputs (init segments and fragments, ≈ 2 s each) queued for the disk, at most.
const QUEUE: usize = 64;

/// One program's recording. See the [module documentation](self).
#[derive(Debug)]
pub struct Recorder {
    viewer: ViewerId,
    fragmenter: Fragmenter,
    tx: Option<mpsc::Sender<Vec<Bytes>>>,
    failed: Arc<Mutex<Option<String>>>,
    queued_bytes: u64,
    max_bytes: u64,
}

impl Recorder {
    /// Opens the file and starts recording what `hub` delivers from its next keyframe (or
    /// its cached one).
    pub(crate) fn start(
        config: &StreamConfig,
        reservation: ReservationId,
        hub: &mut Hub,
    ) -> Result<Recorder, StreamError> {
        let path = config.recording_path(reservation);
        std::fs::create_dir_all(&config.recordings_dir)
            .map_err(StreamError::io(&config.recordings_dir))?;
        let file = std::fs::File::create(&path).map_err(StreamError::io(&path))?;
        let (tx, mut rx) = mpsc::channel::<Vec<Bytes>>(QUEUE);
        let failed = Arc::new(Mutex::new(None));
        let report = failed.clone();
        tokio::spawn(async move {
            // One hand-over to a blocking thread, and one write, per fragment (≈ 2 s),
            // not per chunk (a frame's header and data).
            let mut file = Some(file);
            let mut result = Ok(());
            while let Some(chunks) = rx.recv().await {
                let Some(mut f) = file.take() else { break };
                match tokio::task::spawn_blocking(move || f.write_all(&chunks.concat()).map(|()| f))
                    .await
                {
                    Ok(Ok(f)) => file = Some(f),
                    Ok(Err(e)) => {
                        result = Err(e);
                        break;
                    }
                    Err(e) => {
                        result = Err(std::io::Error::other(e));
                        break;
                    }
                }
            }
            if let (Ok(()), Some(f)) = (&result, file) {
                result = tokio::task::spawn_blocking(move || f.sync_all())
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            }
            if let Err(e) = result {
                tracing::error!(path = %path.display(), error = %e, "recording stopped: the stream goes on");
                metrics::counter!("slotcast_recording_failures_total").increment(1);
                *report.lock().expect("recording state") = Some(format!("write failed: {e}"));
            }
        });
        Ok(Recorder {
            viewer: hub.add_viewer(),
            fragmenter: Fragmenter::new(FragmenterConfig {
                fragment_ms: config.hls_segment_ms,
                segment_ms: config.hls_segment_ms,
                ..FragmenterConfig::default()
            }),
            tx: Some(tx),
            failed,
            queued_bytes: 0,
            max_bytes: config.max_recording_bytes,
        })
    }

    /// Where the recording stands.
    pub(crate) fn state(&self) -> RecordingState {
        match &*self.failed.lock().expect("recording state") {
            Some(reason) => RecordingState::Failed(reason.clone()),
            None if self.tx.is_some() => RecordingState::Recording,
            None => RecordingState::Done,
        }
    }

    fn fail(&mut self, reason: &str) {
        tracing::error!(reason, "recording stopped: the stream goes on");
        metrics::counter!("slotcast_recording_failures_total").increment(1);
        self.tx = None;
        self.failed
            .lock()
            .expect("recording state")
            .get_or_insert_with(|| reason.to_string());
    }

    /// Takes what the hub has for the recorder and queues the finished fragments.
    pub(crate) fn drain(&mut self, hub: &mut Hub) {
        while let Some(tag) = hub.poll_viewer(self.viewer) {
            if self.tx.is_some() {
                self.fragmenter.handle_tag(&tag);
            }
        }
        self.send();
    }

    fn send(&mut self) {
        while let Some(out) = self.fragmenter.poll_output() {
            let Some(tx) = &self.tx else {
                continue;
            };
            self.queued_bytes += out.len() as u64;
            if self.queued_bytes > self.max_bytes {
                self.fail("the recording reached its size limit");
            } else if tx.try_send(out.chunks().to_vec()).is_err() {
                self.fail("the disk does not keep up");
            }
        }
    }

    /// Writes what is pending and closes the file; the recorder leaves the hub.
    pub(crate) fn finish(&mut self, hub: &mut Hub) {
        self.drain(hub);
        self.fragmenter.flush();
        self.send();
        self.tx = None;
        hub.remove_viewer(self.viewer);
    }
}
