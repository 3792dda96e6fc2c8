//! Replays: the stream node serves the recordings it owns.
//!
//! The recording is indexed by [`FileScanner`] reading box headers and `moov`/`moof` boxes
//! with seeks — never the media payloads, never the whole file into memory — and served
//! as an HLS VOD playlist of byte ranges or as the file itself with `Range` support (the
//! first-party player, VLC, ffplay, and the broadcaster's download).

use std::io::SeekFrom;
use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use slotcast_media::fmp4::{FileIndex, FileScanner};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::PlayError;

/// Bytes read per chunk of a file response.
const CHUNK: usize = 64 << 10;

/// Indexes the recording at `path` by seeking from box to box.
pub(crate) async fn index(path: &Path) -> Result<FileIndex, PlayError> {
    let mut file = open(path).await?;
    let len = file.metadata().await.map_err(|e| io(path, &e))?.len();
    let mut scanner = FileScanner::new(len);
    let mut buf = Vec::new();
    while let Some(range) = scanner.wanted() {
        let size = usize::try_from(range.end - range.start).map_err(|_| PlayError::Internal)?;
        buf.resize(size, 0);
        file.seek(SeekFrom::Start(range.start))
            .await
            .map_err(|e| io(path, &e))?;
        let mut got = 0;
        while got < size {
            match file.read(&mut buf[got..]).await.map_err(|e| io(path, &e))? {
                0 => break,
                n => got += n,
            }
        }
        scanner.push(range.start, &buf[..got]).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "recording unreadable");
            PlayError::Internal
        })?;
    }
    scanner.finish().map_err(|e| {
        tracing::error!(path = %path.display(), error = %e, "recording unreadable");
        PlayError::Internal
    })
}

async fn open(path: &Path) -> Result<tokio::fs::File, PlayError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PlayError::NotFound("recording"),
            _ => io(path, &e),
        })
}

fn io(path: &Path, e: &std::io::Error) -> PlayError {
    tracing::error!(path = %path.display(), error = %e, "recording I/O");
    PlayError::Internal
}

/// Streams the file at `path`, honouring one `Range: bytes=a-b`; as an attachment named
/// `download_name` when given.
pub(crate) async fn send_file(
    path: &Path,
    headers: &HeaderMap,
    download_name: Option<String>,
) -> Result<Response, PlayError> {
    let mut file = open(path).await?;
    let len = file.metadata().await.map_err(|e| io(path, &e))?.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(r);
        }
    };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| io(path, &e))?;
    let body = Body::from_stream(chunks(file.take(end - start)));
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).expect("ascii"),
        );
    }
    if let Some(name) = download_name {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).expect("ascii"),
        );
    }
    Ok(r)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` → the half-open range, `None` when unsatisfiable.
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().ok()?, len),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(len),
        ),
    };
    (start < end && start < len).then_some((start, end))
}

fn chunks<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 1000)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }
}
