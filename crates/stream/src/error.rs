//! The stream node's errors. [`PlayError`]: why it refuses a viewer, mapped in one place
//! to an HTTP status and the REST API's error shape `{"error": {"code", "message"}}`, so
//! that players and the first-party pages read the node's errors exactly like the
//! center's. [`StreamError`]: why it refuses a publisher or cannot make a recording or
//! filler.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slotcast_domain::ChannelId;
use slotcast_domain::token::{PlayKind, TokenError};

use crate::Refusal;

/// A refused publish, or a failure of the node's own files and tools.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The publish URL names another application than `live`.
    #[error("unknown application `{0}`: publish to /live/<key>")]
    UnknownApplication(String),
    /// The address sent too many wrong keys.
    #[error("too many wrong keys from this address; try again later")]
    RateLimited,
    /// The center refused the key.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The key's channel is served by another stream node.
    #[error("channel {0} is not on this stream node")]
    ChannelElsewhere(ChannelId),
    /// A second publisher for the same program.
    #[error("this program is already being published")]
    AlreadyPublishing,
    /// A file or directory of the node could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A tool (ffmpeg) could not be run.
    #[error("cannot run {}: {source}", program.display())]
    Spawn {
        /// The tool.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// ffmpeg ran and failed.
    #[error("ffmpeg failed ({status}) making {}", output.display())]
    Ffmpeg {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it was making.
        output: PathBuf,
    },
    /// An uploaded file that ffprobe finds no video in.
    #[error("{} is not a video ffmpeg can read", .0.display())]
    NotAVideo(PathBuf),
    /// The node has no such channel.
    #[error("channel {0} is not on this stream node")]
    NoChannel(ChannelId),
    /// An upload larger than the node takes.
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    /// An upload that broke off.
    #[error("the upload broke off: {0}")]
    UploadBroken(String),
    /// A filler file the channel does not have.
    #[error("no filler file `{0}`")]
    NoFile(String),
    /// A channel name that cannot be a directory name.
    #[error("unusable channel name `{0}`")]
    ChannelName(String),
}

impl StreamError {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StreamError {
        let path = path.into();
        move |source| StreamError::Io { path, source }
    }
}

/// A refused playback request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayError {
    /// No `token=` (or `session=` where one is needed) in the query.
    #[error("a play token is required: get one from POST /api/v1/programs/{{slug}}/play")]
    TokenRequired,
    /// The token does not verify.
    #[error("{0}")]
    Token(TokenError),
    /// The token is for another kind of access (a replay token on a live URL, …).
    #[error("this is a {got} token; this URL needs a {want} token")]
    WrongKind {
        /// What the token grants.
        got: PlayKind,
        /// What the URL needs.
        want: PlayKind,
    },
    /// The token is for another channel.
    #[error("this play token is for another channel")]
    WrongChannel,
    /// The token is for another program (a preview of another reservation).
    #[error("this token is for another program")]
    WrongProgram,
    /// The token's program is over: a live token admits nobody after the end, and a
    /// session is closed shortly after it.
    #[error("the program has ended")]
    ProgramEnded,
    /// The media asked for belongs to another program than the viewer's.
    #[error("this media belongs to another program")]
    NotThisProgram,
    /// No `session=` in a request that plays within a session.
    #[error("a play session is required: open the entry playlist with a play token first")]
    SessionRequired,
    /// No session with this id (never made, or idle too long): start again with a token.
    #[error("the play session has expired; ask for a new play token")]
    SessionExpired,
    /// An LL-HLS media request without the program's access key, or with a wrong one.
    #[error("this media needs its program's access key: use the URLs of your media playlist")]
    MediaAccess,
    /// The channel is full.
    #[error("the channel is full ({capacity} viewers); try again later")]
    ChannelFull {
        /// Its capacity.
        capacity: usize,
    },
    /// The node holds no such channel, resource or recording.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The node lost its lease ([`crate::StreamNode::fence`]): it serves nobody until the
    /// center renews it.
    #[error("this stream node is not serving its channels now; ask for a new play grant")]
    NotServing,
    /// An edge cannot reach the origin of the program it relays.
    #[error("the program's origin node does not answer; try again")]
    OriginUnavailable,
    /// The preview of a reservation that is not publishing.
    #[error("nothing is being published for this reservation")]
    NotPublishing,
    /// The recording is still being written.
    #[error("the recording can be replayed once the program has ended")]
    RecordingInProgress,
    /// A malformed request (HLS delivery directives, a byte range).
    #[error("{0}")]
    BadRequest(String),
    /// A blocking request asked too far beyond the live edge.
    #[error("the requested media sequence is too far beyond the live edge")]
    TooFarAhead,
    /// Not made yet; retry.
    #[error("not available yet; retry")]
    NotReady,
    /// Too many play sessions on this node.
    #[error("this stream node has too many play sessions; try again later")]
    Busy,
    /// An I/O failure on the node's side (logged, not described).
    #[error("the stream node failed to read media")]
    Internal,
}

impl PlayError {
    /// The HTTP status and the error code of the API's shape.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            PlayError::TokenRequired => (StatusCode::UNAUTHORIZED, "token_required"),
            PlayError::Token(TokenError::Expired { .. }) => {
                (StatusCode::UNAUTHORIZED, "token_expired")
            }
            PlayError::Token(_) => (StatusCode::UNAUTHORIZED, "token_invalid"),
            PlayError::SessionRequired => (StatusCode::UNAUTHORIZED, "session_required"),
            PlayError::SessionExpired => (StatusCode::UNAUTHORIZED, "session_expired"),
            PlayError::MediaAccess => (StatusCode::UNAUTHORIZED, "media_access"),
            PlayError::WrongKind { .. } => (StatusCode::FORBIDDEN, "wrong_kind"),
            PlayError::WrongChannel => (StatusCode::FORBIDDEN, "wrong_channel"),
            PlayError::WrongProgram => (StatusCode::FORBIDDEN, "wrong_program"),
            PlayError::ProgramEnded => (StatusCode::FORBIDDEN, "program_ended"),
            PlayError::NotThisProgram => (StatusCode::FORBIDDEN, "not_this_program"),
            PlayError::ChannelFull { .. } => (StatusCode::CONFLICT, "channel_full"),
            PlayError::RecordingInProgress => (StatusCode::CONFLICT, "recording_in_progress"),
            PlayError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            PlayError::NotPublishing => (StatusCode::NOT_FOUND, "not_publishing"),
            PlayError::NotServing => (StatusCode::SERVICE_UNAVAILABLE, "not_serving"),
            PlayError::OriginUnavailable => (StatusCode::BAD_GATEWAY, "origin_unavailable"),
            PlayError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            PlayError::TooFarAhead => (StatusCode::BAD_REQUEST, "too_far_ahead"),
            PlayError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            PlayError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            PlayError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<TokenError> for PlayError {
    fn from(e: TokenError) -> Self {
        PlayError::Token(e)
    }
}

impl From<slotcast_media::Full> for PlayError {
    fn from(e: slotcast_media::Full) -> Self {
        PlayError::ChannelFull {
            capacity: e.capacity,
        }
    }
}

impl IntoResponse for PlayError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        let mut r = (status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            axum::http::HeaderValue::from_static("*"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_have_the_api_shape() {
        let r = PlayError::ChannelFull { capacity: 5 }.into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "channel_full");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("5 viewers")
        );
        let (s, c) = PlayError::WrongKind {
            got: PlayKind::Replay,
            want: PlayKind::Live,
        }
        .status_and_code();
        assert_eq!((s, c), (StatusCode::FORBIDDEN, "wrong_kind"));
    }
}
