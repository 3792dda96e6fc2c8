//! Filler the operator uploads (the source's "commercials in vacant time"): the node
//! stores the upload beside the filler, re-encodes it with ffmpeg to the channel's format
//! ([`filler::transcode`]) and adds it to the channel's playlist. Each upload is a job
//! whose progress the operator's page shows; the last jobs are kept in memory.
//!
//! In one process the center calls these methods directly; on N machines it sends the
//! same requests to [`FILLER_ROUTE`] of each node holding the channel ([`router`]), each
//! with a filler token it signed (a node cannot make one), and reads a [`FillerListing`].

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use slotcast_domain::ChannelId;
use tokio::io::AsyncWriteExt;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use slotcast_domain::playback::{FILLER_MAX_BYTES, FILLER_ROUTE};
use slotcast_domain::token::{self, PlayKind};

use crate::StreamNode;
use crate::error::StreamError;
use crate::filler::{self, FillerSpec};

/// Jobs kept for the operator's page.
const KEPT: usize = 20;
/// Longest filler made from an upload.
pub const MAX_FILLER_SECONDS: u32 = 1800;

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// ffmpeg is at this percent.
    Encoding(u8),
    /// In the playlist.
    Done,
    /// Why it failed (the upload was removed).
    Failed(String),
}

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillerJob {
    /// Its number.
    pub id: u64,
    /// For which channel.
    pub channel: ChannelId,
    /// The filler file it makes (`<name>.flv`).
    pub file: String,
    /// Where it is.
    pub state: JobState,
}

/// The node's filler jobs.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    next: u64,
    list: VecDeque<FillerJob>,
}

impl Jobs {
    fn set(&mut self, id: u64, state: JobState) {
        if let Some(j) = self.list.iter_mut().find(|j| j.id == id) {
            j.state = state;
        }
    }
}

/// A filler file's name from an upload's: the letters, digits, `-` and `_` of its stem
/// (at most 40), or `upload`.
pub fn file_stem(name: &str) -> String {
    let stem = name.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    let clean: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if clean.is_empty() {
        "upload".into()
    } else {
        clean
    }
}

impl StreamNode {
    fn filler_dir(&self, channel: ChannelId) -> Result<(PathBuf, u32), StreamError> {
        let ch = self
            .channel(channel)
            .ok_or(StreamError::NoChannel(channel))?;
        let name = ch.name();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(StreamError::ChannelName(name));
        }
        Ok((self.config.filler_dir.join(name), ch.bitrate_kbps()))
    }

    /// Receives an upload for `channel`'s filler (`name` as the operator's file was
    /// called; at most `max_bytes`), then re-encodes it in the background; the job's
    /// number.
    pub async fn upload_filler<S, E>(
        self: &Arc<Self>,
        channel: ChannelId,
        name: &str,
        max_bytes: u64,
        mut body: S,
    ) -> Result<u64, StreamError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (dir, bitrate_kbps) = self.filler_dir(channel)?;
        let ffmpeg = filler::find_ffmpeg().ok_or_else(|| StreamError::Spawn {
            program: "ffmpeg".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let uploads = self.config.filler_dir.join(".uploads");
        tokio::fs::create_dir_all(&uploads)
            .await
            .map_err(StreamError::io(&uploads))?;
        let id = {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            jobs.next += 1;
            jobs.next
        };
        let source = uploads.join(format!("{id}.upload"));
        let stored = async {
            let mut f = tokio::fs::File::create(&source)
                .await
                .map_err(StreamError::io(&source))?;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StreamError::UploadBroken(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(StreamError::TooLarge(max_bytes));
                }
                f.write_all(&chunk)
                    .await
                    .map_err(StreamError::io(&source))?;
            }
            f.flush().await.map_err(StreamError::io(&source))
        }
        .await;
        if let Err(e) = stored {
            let _ = tokio::fs::remove_file(&source).await;
            return Err(e);
        }
        let file = format!("{}.flv", file_stem(name));
        {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            jobs.list.push_front(FillerJob {
                id,
                channel,
                file: file.clone(),
                state: JobState::Encoding(0),
            });
            jobs.list.truncate(KEPT);
        }
        tracing::info!(%channel, job = id, %file, "filler upload received; encoding");
        let node = self.clone();
        let spec = FillerSpec {
            channel: String::new(),
            bitrate_kbps,
            seconds: MAX_FILLER_SECONDS,
        };
        tokio::task::spawn_blocking(move || {
            let out = dir.join(&file);
            let mut report = |p: u8| {
                node.jobs
                    .lock()
                    .expect("jobs lock")
                    .set(id, JobState::Encoding(p))
            };
            let done = filler::transcode(&ffmpeg, &source, &spec, &out, &mut report);
            let _ = std::fs::remove_file(&source);
            let state = match done {
                Ok(()) => {
                    if let Some(ch) = node.channel(channel) {
                        ch.reload_filler();
                    }
                    tracing::info!(%channel, job = id, file = %out.display(), "filler added");
                    JobState::Done
                }
                Err(e) => {
                    tracing::warn!(%channel, job = id, error = %e, "filler upload failed");
                    JobState::Failed(e.to_string())
                }
            };
            node.jobs.lock().expect("jobs lock").set(id, state);
        });
        Ok(id)
    }

    /// The recent filler jobs of `channel`, newest first.
    pub fn filler_jobs(&self, channel: ChannelId) -> Vec<FillerJob> {
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.list
            .iter()
            .filter(|j| j.channel == channel)
            .cloned()
            .collect()
    }

    /// The filler files of `channel` in playing order, with their sizes.
    pub fn filler_files(&self, channel: ChannelId) -> Result<Vec<(String, u64)>, StreamError> {
        let (dir, _) = self.filler_dir(channel)?;
        Ok(crate::channel::flv_files(&dir)
            .into_iter()
            .filter_map(|p| {
                let size = std::fs::metadata(&p).ok()?.len();
                Some((p.file_name()?.to_string_lossy().into_owned(), size))
            })
            .collect())
    }

    /// Takes filler file `file` out of `channel`'s playlist (and off the disk).
    pub fn remove_filler(&self, channel: ChannelId, file: &str) -> Result<(), StreamError> {
        let listed = self.filler_files(channel)?;
        if !listed.iter().any(|(f, _)| f == file) {
            return Err(StreamError::NoFile(file.to_owned()));
        }
        let (dir, _) = self.filler_dir(channel)?;
        let path = dir.join(file);
        std::fs::remove_file(&path).map_err(StreamError::io(&path))?;
        if let Some(ch) = self.channel(channel) {
            ch.reload_filler();
        }
        tracing::info!(%channel, %file, "filler removed");
        Ok(())
    }
}

/// A channel's filler on a node, as [`FILLER_ROUTE`] answers `GET`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FillerListing {
    /// The files in playing order, with their sizes.
    pub files: Vec<(String, u64)>,
    /// The recent jobs, newest first.
    pub jobs: Vec<FillerJob>,
}

/// The answer to an upload ([`FILLER_ROUTE`], `POST`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploaded {
    /// The job's number on this node.
    pub job: u64,
}

/// The query of [`FILLER_ROUTE`]: the center's filler token, and the upload's `name`
/// (`POST`) or the `file` to remove (`DELETE`).
#[derive(Debug, Deserialize)]
pub struct FillerQuery {
    token: String,
    name: Option<String>,
    file: Option<String>,
}

/// The filler routes, ordered by the center (see the module page).
pub fn router(node: Arc<StreamNode>) -> axum::Router {
    axum::Router::new()
        .route(
            FILLER_ROUTE,
            axum::routing::get(listing).post(upload).delete(remove),
        )
        .with_state(node)
}

/// Why a filler request was refused, answered as JSON the center passes on to the
/// operator.
#[derive(Debug)]
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"message": self.1}});
        (self.0, Json(body)).into_response()
    }
}

impl From<StreamError> for Refused {
    fn from(e: StreamError) -> Refused {
        let status = match e {
            StreamError::NoChannel(_) | StreamError::NoFile(_) => StatusCode::NOT_FOUND,
            StreamError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            StreamError::UploadBroken(_) => StatusCode::BAD_REQUEST,
            _ => {
                tracing::error!(error = %e, "filler request failed");
                return Refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the stream node could not do it; its log says why".into(),
                );
            }
        };
        Refused(status, e.to_string())
    }
}

/// The channel of the path, if the query's filler token orders work on it.
fn ordered(node: &StreamNode, channel: i64, q: &FillerQuery) -> Result<ChannelId, Refused> {
    let claims = token::verify(&node.token_key, &q.token, node.now())
        .map_err(|e| Refused(StatusCode::UNAUTHORIZED, e.to_string()))?;
    if claims.kind != PlayKind::Filler || claims.channel != ChannelId(channel) {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "the token orders no work on this channel's filler".into(),
        ));
    }
    Ok(claims.channel)
}

async fn listing(
    State(node): State<Arc<StreamNode>>,
    Path(channel): Path<i64>,
    Query(q): Query<FillerQuery>,
) -> Result<Json<FillerListing>, Refused> {
    let channel = ordered(&node, channel, &q)?;
    Ok(Json(FillerListing {
        files: node.filler_files(channel)?,
        jobs: node.filler_jobs(channel),
    }))
}

async fn upload(
    State(node): State<Arc<StreamNode>>,
    Path(channel): Path<i64>,
    Query(q): Query<FillerQuery>,
    req: Request,
) -> Result<Json<Uploaded>, Refused> {
    let channel = ordered(&node, channel, &q)?;
    let name = q.name.as_deref().unwrap_or("upload");
    let body = req.into_body().into_data_stream();
    let job = node
        .upload_filler(channel, name, FILLER_MAX_BYTES, body)
        .await?;
    Ok(Json(Uploaded { job }))
}

async fn remove(
    State(node): State<Arc<StreamNode>>,
    Path(channel): Path<i64>,
    Query(q): Query<FillerQuery>,
) -> Result<StatusCode, Refused> {
    let channel = ordered(&node, channel, &q)?;
    let file = q
        .file
        .as_deref()
        .ok_or_else(|| Refused(StatusCode::BAD_REQUEST, "which file? (file=)".into()))?;
    node.remove_filler(channel, file)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn uploads_get_plain_file_names() {
        assert_eq!(file_stem("Spring sale (final).mp4"), "Springsalefinal");
        assert_eq!(file_stem("../../etc/passwd"), "passwd");
        assert_eq!(file_stem("C:\\clips\\ad-1_v2.mov"), "ad-1_v2");
        assert_eq!(file_stem(".hidden"), "upload");
        assert_eq!(file_stem("日本語.mp4"), "upload");
        assert_eq!(file_stem(&"x".repeat(100)).len(), 40);
    }
}
