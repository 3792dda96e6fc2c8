//! The operator's filler on N machines (role `center`): the console's requests go to
//! every stream node holding the channel (its origin, its edges), over HTTP with a filler
//! token the center signs ([`slotcast_stream::workshop`] answers them), so that whichever
//! node serves the channel plays the same filler. The listing shown is the origin's, with
//! every node's jobs.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use slotcast_center::cluster::ClusterView;
use slotcast_center::port::{FillerFile, FillerJobView, UploadBody};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::token::{self, PlayClaims, PlayKind, SigningKey};
use slotcast_domain::{ChannelId, Clock, ReservationId, playback};
use slotcast_stream::workshop::{FillerListing, Uploaded};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long a filler token is good for: one request.
const TOKEN_LIFE: SignedDuration = SignedDuration::from_mins(5);

/// The center's filler port over the network.
#[derive(Debug)]
pub struct RemoteFiller {
    view: Arc<ClusterView>,
    key: SigningKey,
    clock: Arc<dyn Clock>,
    /// Uploads are kept here while they go to each node.
    spool: PathBuf,
    http: reqwest::Client,
}

impl RemoteFiller {
    /// Filler on the nodes `view` sees, ordered with `key`; uploads spooled in `spool`.
    pub fn new(
        view: Arc<ClusterView>,
        key: SigningKey,
        clock: Arc<dyn Clock>,
        spool: PathBuf,
    ) -> RemoteFiller {
        RemoteFiller {
            view,
            key,
            clock,
            spool,
            http: reqwest::Client::new(),
        }
    }

    /// The nodes holding `channel` (origin first) and a request to each, with a token.
    fn requests(
        &self,
        channel: ChannelId,
        method: reqwest::Method,
    ) -> Result<Vec<(Node, reqwest::RequestBuilder)>, String> {
        let nodes = self.view.nodes_of(channel);
        if nodes.is_empty() {
            return Err("no stream node holds this channel now".into());
        }
        let now = self.clock.now();
        let token = token::sign(
            &self.key,
            &PlayClaims {
                kind: PlayKind::Filler,
                channel,
                reservation: ReservationId(0),
                grant: 0,
                program_end: now + TOKEN_LIFE,
                expires: now + TOKEN_LIFE,
            },
        );
        Ok(nodes
            .into_iter()
            .map(|(name, base)| {
                let req = self
                    .http
                    .request(method.clone(), playback::filler(&base, channel))
                    .query(&[("token", &token)]);
                (Node { name, base }, req)
            })
            .collect())
    }

    /// Sends `req` to `node`; its JSON answer, or what it said went wrong.
    async fn send<T: serde::de::DeserializeOwned>(
        node: &Node,
        req: reqwest::RequestBuilder,
    ) -> Result<Option<T>, String> {
        let Node { name, base } = node;
        let res = req.send().await.map_err(|e| {
            tracing::warn!(node = name, error = %e.without_url(), "filler request failed");
            format!("the stream node {name} ({base}) does not answer")
        })?;
        let status = res.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|_| format!("the stream node {name} answered {status}"))?;
        if !status.is_success() {
            let why = body["error"]["message"].as_str().unwrap_or("refused");
            return Err(format!("stream node {name}: {why}"));
        }
        serde_json::from_value(body)
            .map(Some)
            .map_err(|_| format!("the stream node {name} answered something else"))
    }

    /// Receives `body` into a spool file (at most `max_bytes`).
    async fn spool(&self, mut body: UploadBody<'_>, max_bytes: u64) -> Result<Spooled, String> {
        let io = |e: std::io::Error| {
            tracing::error!(error = %e, "filler upload not spooled");
            "the upload could not be kept for the stream nodes".to_string()
        };
        tokio::fs::create_dir_all(&self.spool).await.map_err(io)?;
        let name = format!("{:016x}.upload", slotcast_center::secrets::random_id());
        let spooled = Spooled(self.spool.join(name));
        let mut f = tokio::fs::File::create(&spooled.0).await.map_err(io)?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| format!("the upload broke off: {e}"))?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(format!("the upload is larger than {max_bytes} bytes"));
            }
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        Ok(spooled)
    }
}

/// A node holding a channel.
struct Node {
    name: String,
    base: String,
}

/// A spooled upload, removed when dropped.
struct Spooled(PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The file at `path` as a request body, read as it is sent.
async fn file_body(path: &std::path::Path) -> std::io::Result<reqwest::Body> {
    let file = tokio::fs::File::open(path).await?;
    let chunks = futures_util::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 << 10];
        let n = f.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>((n > 0).then_some((buf, f)))
    });
    Ok(reqwest::Body::wrap_stream(chunks))
}

#[async_trait]
impl slotcast_center::FillerPort for RemoteFiller {
    /// Every node holding the channel takes the upload; the origin's job number.
    async fn upload(
        &self,
        channel: ChannelId,
        name: &str,
        max_bytes: u64,
        body: UploadBody<'_>,
    ) -> Result<u64, String> {
        let requests = self.requests(channel, reqwest::Method::POST)?;
        let spooled = self.spool(body, max_bytes).await?;
        let mut first = None;
        for (node, req) in requests {
            let body = file_body(&spooled.0).await.map_err(|e| {
                tracing::error!(error = %e, "spooled filler upload unreadable");
                "the upload could not be read back".to_string()
            })?;
            let up: Option<Uploaded> =
                Self::send(&node, req.query(&[("name", name)]).body(body)).await?;
            first = first.or(up.map(|u| u.job));
        }
        first.ok_or_else(|| "the stream node started no job".into())
    }

    /// The origin's files; every node's jobs, named after their node when there are more
    /// (the `i`-th node's job numbers get `i` in their top bits, so they stay distinct).
    async fn filler(
        &self,
        channel: ChannelId,
    ) -> Result<(Vec<FillerFile>, Vec<FillerJobView>), String> {
        let requests = self.requests(channel, reqwest::Method::GET)?;
        let several = requests.len() > 1;
        let mut files = None;
        let mut jobs = Vec::new();
        for (i, (node, req)) in (0u64..).zip(requests) {
            let listing: FillerListing = Self::send(&node, req)
                .await?
                .ok_or_else(|| format!("the stream node {} listed nothing", node.name))?;
            let (f, j) = crate::link::listing_view(listing);
            files.get_or_insert(f);
            jobs.extend(j.into_iter().map(|mut j| {
                if several {
                    j.id |= i << 40;
                    j.file = format!("{} ({})", j.file, node.name);
                }
                j
            }));
        }
        Ok((files.unwrap_or_default(), jobs))
    }

    /// Taken out on every node holding the channel.
    async fn remove(&self, channel: ChannelId, file: &str) -> Result<(), String> {
        for (node, req) in self.requests(channel, reqwest::Method::DELETE)? {
            Self::send::<serde_json::Value>(&node, req.query(&[("file", file)])).await?;
        }
        Ok(())
    }
}
