//! Strict parsers for what an HLS client sends: the resource name and the blocking
//! playlist reload directives. Untrusted input; they never panic (fuzz targets).

use super::HlsError;

/// A resource of one channel's LL-HLS tree (see the [module](super) documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `index.m3u8`: the entry (multivariant) playlist, where a play token is exchanged
    /// for a session.
    Entry,
    /// `media.m3u8`: the media playlist.
    Playlist,
    /// `init-<n>.mp4`.
    Init(u32),
    /// `part-<msn>.<part>.mp4`.
    Part {
        /// Media sequence number of the segment.
        msn: u64,
        /// Part index within the segment, from 0.
        part: u32,
    },
    /// `seg-<msn>.mp4`.
    Segment(u64),
}

impl Resource {
    /// The resource's name, as [`parse_resource`] accepts it.
    pub fn name(&self) -> String {
        match self {
            Resource::Entry => "index.m3u8".to_owned(),
            Resource::Playlist => "media.m3u8".to_owned(),
            Resource::Init(n) => format!("init-{n}.mp4"),
            Resource::Part { msn, part } => format!("part-{msn}.{part}.mp4"),
            Resource::Segment(msn) => format!("seg-{msn}.mp4"),
        }
    }
}

/// A canonical decimal: digits only, no sign, no leading zero (except `0` itself).
fn canonical<T: std::str::FromStr>(s: &str) -> Option<T> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse().ok()
}

/// Parses the last path component of a request (without the query) into a [`Resource`].
/// Only the exact names the packager writes are accepted.
pub fn parse_resource(name: &str) -> Option<Resource> {
    match name {
        "index.m3u8" => return Some(Resource::Entry),
        "media.m3u8" => return Some(Resource::Playlist),
        _ => {}
    }
    let stem = name.strip_suffix(".mp4")?;
    if let Some(n) = stem.strip_prefix("init-") {
        return canonical(n).map(Resource::Init);
    }
    if let Some(n) = stem.strip_prefix("seg-") {
        return canonical(n).map(Resource::Segment);
    }
    let rest = stem.strip_prefix("part-")?;
    let (msn, part) = rest.split_once('.')?;
    Some(Resource::Part {
        msn: canonical(msn)?,
        part: canonical(part)?,
    })
}

/// A blocking playlist reload: "answer when the playlist has segment `msn` (complete), or
/// part `part` of segment `msn`, or something later".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockingRequest {
    /// `_HLS_msn`.
    pub msn: u64,
    /// `_HLS_part`, if given.
    pub part: Option<u32>,
}

/// Decimal-integer as the HLS delivery directives use it (leading zeros allowed).
fn decimal<T: std::str::FromStr>(s: &str, param: &'static str) -> Result<T, HlsError> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return Err(HlsError::InvalidNumber { param });
    }
    s.parse().map_err(|_| HlsError::InvalidNumber { param })
}

/// Reads the delivery directives of a playlist request's query string (without the `?`):
/// `_HLS_msn=<n>[&_HLS_part=<m>]`, plus `_HLS_skip=YES|v2`, which is accepted and ignored
/// (the packager does not produce delta playlists). Other parameters (the play token, …)
/// are ignored. `Ok(None)`: not a blocking request.
pub fn parse_blocking_request(query: &str) -> Result<Option<BlockingRequest>, HlsError> {
    let mut msn = None;
    let mut part = None;
    let mut skip = false;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !key.starts_with("_HLS_") {
            continue;
        }
        match key {
            "_HLS_msn" => {
                if msn.is_some() {
                    return Err(HlsError::Duplicate { param: "_HLS_msn" });
                }
                msn = Some(decimal::<u64>(value, "_HLS_msn")?);
            }
            "_HLS_part" => {
                if part.is_some() {
                    return Err(HlsError::Duplicate { param: "_HLS_part" });
                }
                part = Some(decimal::<u32>(value, "_HLS_part")?);
            }
            "_HLS_skip" => {
                if skip {
                    return Err(HlsError::Duplicate { param: "_HLS_skip" });
                }
                if value != "YES" && value != "v2" {
                    return Err(HlsError::InvalidSkip);
                }
                skip = true;
            }
            other => {
                return Err(HlsError::UnknownDirective {
                    name: other.chars().take(40).collect(),
                });
            }
        }
    }
    match (msn, part) {
        (Some(msn), part) => Ok(Some(BlockingRequest { msn, part })),
        (None, Some(_)) => Err(HlsError::PartWithoutMsn),
        (None, None) => Ok(None),
    }
}
