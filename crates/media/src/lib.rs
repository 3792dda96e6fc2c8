//! # slotcast-media — the sans-IO media core
//!
//! This crate owns what a slotcast stream node does with media, as plain synchronous state
//! machines:
//!
//! - [`flv`]: the FLV/RTMP media model — [`flv::Tag`], classification of audio/video/script
//!   payloads (legacy FLV and enhanced RTMP), the AVC configuration and SPS readers, the
//!   HTTP-FLV writer and a strict FLV reader;
//! - [`hub`]: one channel's fan-out — GOP cache, late joiners at the cached keyframe,
//!   bounded per-viewer queues of shared buffers, lagging viewers resynced or dropped,
//!   publisher ↔ filler switches on keyframes with continuous timestamps (in the stream
//!   node its viewers are the channel's own consumers: the feeds, the LL-HLS packager, the
//!   recorder);
//! - [`feed`]: what connection-based viewers read — media encoded once per channel (FLV
//!   tags, per-frame fMP4 fragments) in a bounded broadcast log, one cursor per viewer,
//!   starting at sync points, lagging viewers resynced or dropped;
//! - [`admission`]: viewer capacity per channel, counted across every playback protocol;
//! - [`fmp4`]: the fMP4/CMAF fragmenter (FLV tags → init segment + zero-copy `moof`/`mdat`
//!   fragments, for MSE, LL-HLS and recordings) and a scanner indexing recorded files;
//! - [`hls`]: the LL-HLS packager of a channel (parts, segments, sliding window, playlist,
//!   blocking-reload decisions, strict request parsers) and VOD playlists of recordings;
//! - [`filler`]: real-time playback of a channel's filler playlist and "be right back" slate.
//!
//! It must not do I/O, read a clock, spawn tasks or depend on tokio: inputs arrive through
//! `handle_*` calls, outputs leave through `poll_*` calls, the next wake-up is reported by
//! `poll_timeout()`, and time is always an argument (tag timestamps for media time,
//! [`std::time::Instant`] values for wall-clock-free deadlines — never `Instant::now()`).
//! Sockets, timers and RTMP sessions live in the `stream` crate, which drives these
//! machines. Parsers here take untrusted input and must never panic; they are fuzz targets.

pub mod admission;
pub mod feed;
pub mod filler;
pub mod flv;
pub mod fmp4;
pub mod hls;
pub mod hub;

pub use admission::{Admission, Full};
pub use flv::{FlvError, FlvWriter, Tag, TagKind};
pub use fmp4::{
    FileIndex, FileScanner, Fmp4Error, Fragment, Fragmenter, FragmenterConfig, Output,
    scan_fragments,
};
pub use hls::{HlsError, Packager, PackagerConfig, vod_playlist};
pub use hub::{Hub, HubConfig, HubEvent, ViewerId};
