//! Real-time playback of a filler playlist (or the "be right back" slate), sans-IO.
//!
//! A [`FillerPlayer`] holds the tags of pre-encoded FLV files and hands each tag out when
//! its time has come relative to [`FillerPlayer::start`], looping over the playlist with
//! timestamps that keep increasing across file boundaries. The I/O edge sleeps until
//! [`FillerPlayer::poll_timeout`] and then drains [`FillerPlayer::poll_tag`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flv::Tag;

/// Gap between the last tag of one file and the first of the next: about one frame.
const FILE_GAP_MS: u64 = 40;

/// Plays a list of FLV tag sequences in real time, in a loop.
#[derive(Debug, Clone)]
pub struct FillerPlayer {
    files: Vec<Arc<[Tag]>>,
    file: usize,
    index: usize,
    /// When output timestamp 0 is due.
    origin: Option<Instant>,
    /// Output timestamp of the current file's first tag.
    offset: u64,
    /// Highest output timestamp handed out.
    last: u64,
}

impl FillerPlayer {
    /// A player for `files` (each the tags of one file, in order); empty files are skipped.
    /// It plays nothing until [`FillerPlayer::start`].
    pub fn new(files: Vec<Vec<Tag>>) -> FillerPlayer {
        FillerPlayer {
            files: files
                .into_iter()
                .filter(|f| !f.is_empty())
                .map(Arc::from)
                .collect(),
            file: 0,
            index: 0,
            origin: None,
            offset: 0,
            last: 0,
        }
    }

    /// Whether there is nothing to play.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether it is playing (started and not stopped).
    pub fn is_playing(&self) -> bool {
        self.origin.is_some() && !self.is_empty()
    }

    /// Plays from the start of the playlist, the first tag due at `now`.
    pub fn start(&mut self, now: Instant) {
        self.file = 0;
        self.index = 0;
        self.offset = 0;
        self.last = 0;
        self.origin = Some(now);
    }

    /// Stops playing until the next [`FillerPlayer::start`].
    pub fn stop(&mut self) {
        self.origin = None;
    }

    fn current(&self) -> Option<(&Tag, u64)> {
        let file = self.files.get(self.file)?;
        let first = u64::from(file.first()?.timestamp_ms);
        let tag = file.get(self.index)?;
        let ts = self.offset + u64::from(tag.timestamp_ms).saturating_sub(first);
        Some((tag, ts))
    }

    /// When the next tag is due; `None` when stopped or empty.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let origin = self.origin?;
        let (_, ts) = self.current()?;
        Some(origin + Duration::from_millis(ts))
    }

    /// The next tag if it is due at `now`, with its timestamp on the player's timeline.
    pub fn poll_tag(&mut self, now: Instant) -> Option<Tag> {
        if self.poll_timeout()? > now {
            return None;
        }
        let (tag, ts) = self.current()?;
        let mut out = tag.clone();
        out.timestamp_ms = ts as u32;
        self.last = self.last.max(ts);
        self.index += 1;
        if self.index >= self.files[self.file].len() {
            self.index = 0;
            self.file = (self.file + 1) % self.files.len();
            self.offset = self.last + FILE_GAP_MS;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(stamps: &[u32]) -> Vec<Tag> {
        stamps
            .iter()
            .map(|&t| Tag::video(t, vec![0x17, 1]))
            .collect()
    }

    fn drain(p: &mut FillerPlayer, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| p.poll_tag(now))
            .map(|t| t.timestamp_ms)
            .collect()
    }

    #[test]
    fn plays_in_real_time_and_loops_with_increasing_timestamps() {
        let t0 = Instant::now();
        let mut p = FillerPlayer::new(vec![file(&[1000, 1040, 1080]), vec![], file(&[0, 40])]);
        assert_eq!(p.poll_timeout(), None, "nothing before start");
        p.start(t0);
        assert_eq!(drain(&mut p, t0), vec![0]);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(40)));
        assert_eq!(drain(&mut p, t0 + Duration::from_millis(79)), vec![40]);
        // The second file follows one gap after the first's last tag, then the loop.
        assert_eq!(
            drain(&mut p, t0 + Duration::from_millis(300)),
            vec![80, 120, 160, 200, 240, 280]
        );
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(320)));
    }

    #[test]
    fn stop_and_restart_begin_again() {
        let t0 = Instant::now();
        let mut p = FillerPlayer::new(vec![file(&[0, 40, 80])]);
        p.start(t0);
        drain(&mut p, t0 + Duration::from_millis(50));
        p.stop();
        assert!(!p.is_playing());
        assert_eq!(p.poll_tag(t0 + Duration::from_secs(9)), None);
        let t1 = t0 + Duration::from_secs(10);
        p.start(t1);
        assert_eq!(drain(&mut p, t1), vec![0]);
    }

    #[test]
    fn an_empty_playlist_plays_nothing() {
        let mut p = FillerPlayer::new(vec![vec![]]);
        p.start(Instant::now());
        assert!(p.is_empty());
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.poll_tag(Instant::now() + Duration::from_secs(1)), None);
    }
}
