//! Role `stream`: a stream node of a center that runs elsewhere. It reaches the center
//! only through the center's internal HTTP API (`slotcast_center::cluster`), with its own
//! credential: it asks whether a key may publish, and renews its lease with a heartbeat
//! that carries its report (viewers, live statistics, recordings) and the totals of ended
//! programs; the answers place channels on it, name the programs it relays from their
//! origin as an edge (`node.relays`), tell it which totals are stored and which programs
//! to cut, and give it the public key it checks play tokens with. It holds no
//! database and no private key: it can admit viewers, never grant access.

use crate::config::Config;
use crate::server::{Parts, bind, clock_of, make_filler_for, start_stream_node};
use async_trait::async_trait;
use slotcast_center::cluster::{
    Heartbeat, HeartbeatReply, PublishAnswer, PublishAsk, Report, Totals,
};
use slotcast_stream::{ChannelInfo, Grant, PublishAuthority, Refusal, RelaySource, StreamNode};
use std::sync::Arc;
use std::time::Duration;

/// Most finished recordings a heartbeat reports.
const REPORTED_RECORDINGS: usize = 500;

/// The center's internal API, as this node's credential reaches it.
#[derive(Debug, Clone)]
pub struct CenterLink {
    client: reqwest::Client,
    base: String,
    name: String,
    credential: String,
}

impl CenterLink {
    /// A link to `cfg.node.center_url` as node `cfg.node.name`.
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(CenterLink {
            client,
            base: cfg.node.center_url.trim_end_matches('/').to_owned(),
            name: cfg.node.name.clone(),
            credential: cfg
                .node
                .credential
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
        })
    }

    async fn post<T: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        body: &T,
    ) -> Result<R, String> {
        let url = format!("{}/internal/v1/nodes/{}/{what}", self.base, self.name);
        let resp = self
            .client
            .post(&url)
            .bearer_auth(&self.credential)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!(
                "{url}: {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

#[async_trait]
impl PublishAuthority for CenterLink {
    async fn authorize(&self, key: &str) -> Result<Grant, Refusal> {
        let ask = PublishAsk {
            key: key.to_owned(),
        };
        match self.post("publish", &ask).await {
            Ok(PublishAnswer::Granted {
                reservation,
                channel,
                start,
                end,
                cut_at,
            }) => Ok(Grant {
                reservation,
                channel,
                start,
                end,
                cut_at,
            }),
            Ok(PublishAnswer::UnknownKey) => Err(Refusal::UnknownKey),
            Ok(PublishAnswer::NotNow { reason }) => Err(Refusal::NotNow(reason)),
            Err(e) => Err(Refusal::Unavailable(e)),
        }
    }
}

/// What this node says of itself in every heartbeat besides its report.
#[derive(Debug, Clone)]
struct Identity {
    play_url: String,
    ingest_url: String,
    channels: Vec<String>,
    relays: Vec<String>,
}

impl Identity {
    fn heartbeat(&self, node: Option<&StreamNode>) -> Heartbeat {
        let mut hb = Heartbeat {
            play_url: self.play_url.clone(),
            ingest_url: self.ingest_url.clone(),
            channels: self.channels.clone(),
            relays: self.relays.clone(),
            ..Heartbeat::default()
        };
        if let Some(node) = node {
            let r = node.report(REPORTED_RECORDINGS);
            hb.report = Report {
                viewers: r.viewers,
                live: r
                    .live
                    .into_iter()
                    .map(|(id, ch, s)| (id, ch, crate::link::live_view(s)))
                    .collect(),
                recordings: r.recordings,
            };
            hb.seats = r.seats;
            hb.finished = r
                .finished
                .iter()
                .map(|(id, s)| (*id, Totals::from(s)))
                .collect();
        }
        hb
    }
}

/// The channels of the answer: placed on the node or relayed by it.
fn served(reply: &HeartbeatReply) -> Vec<ChannelInfo> {
    let placed = reply.placements.iter().map(|p| ChannelInfo {
        id: p.id,
        name: p.name.clone(),
        capacity: p.capacity,
        bitrate_kbps: p.bitrate_kbps,
    });
    let relayed = reply.relayed.iter().map(|r| ChannelInfo {
        id: r.id,
        name: r.name.clone(),
        capacity: r.capacity,
        bitrate_kbps: r.bitrate_kbps,
    });
    placed.chain(relayed).collect()
}

/// Applies the center's answer: the placed and relayed channels, the programs to pull
/// from their origin, the stored totals, the cut programs.
fn apply(node: &Arc<StreamNode>, reply: &HeartbeatReply) {
    node.set_channels(served(reply));
    node.set_relays(
        reply
            .relayed
            .iter()
            .flat_map(|ch| {
                ch.programs.iter().map(|p| RelaySource {
                    grant: Grant {
                        reservation: p.reservation,
                        channel: ch.id,
                        start: p.start,
                        end: p.end,
                        cut_at: p.cut_at,
                    },
                    url: p.source.clone(),
                })
            })
            .collect(),
    );
    for r in &reply.stored {
        node.ack_program_stats(*r);
    }
    for r in &reply.revoked {
        tracing::info!(reservation = %r, "the center revoked a program: cutting it");
        node.revoke(*r);
    }
}

/// Starts role `stream`: waits for the center to answer a first heartbeat (it gives the
/// public key and the channels), then serves RTMP ingest and HTTP delivery and renews
/// the lease at a third of its length.
pub async fn start(cfg: &Config) -> Result<Parts, String> {
    let link = Arc::new(CenterLink::new(cfg)?);
    let (clock, _, time_task) = clock_of(cfg, None);
    let mut parts = Parts::new(time_task);
    let listener = bind(cfg.http.listen, "http.listen").await?;
    let http = listener.local_addr().map_err(|e| e.to_string())?;
    let rtmp_listener = bind(cfg.rtmp.listen, "rtmp.listen").await?;
    let rtmp = rtmp_listener.local_addr().map_err(|e| e.to_string())?;
    let or = |s: &str, d: String| if s.is_empty() { d } else { s.to_owned() };
    let me = Identity {
        play_url: or(&cfg.node.play_url, format!("http://{http}")),
        ingest_url: or(&cfg.node.ingest_url, format!("rtmp://{rtmp}/live")),
        channels: cfg.node.channels.clone(),
        relays: cfg.node.relays.clone(),
    };

    let mut wait = Duration::from_millis(250);
    let first: HeartbeatReply = loop {
        match link.post("heartbeat", &me.heartbeat(None)).await {
            Ok(reply) => break reply,
            Err(e) => {
                tracing::warn!(error = %e, "the center does not answer yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    };
    let key = slotcast_domain::token::parse_public_key(&first.public_key)
        .map_err(|e| format!("the center sent an unusable public key: {e}"))?;
    let node = start_stream_node(cfg, link.clone(), clock.clone(), key);
    apply(&node, &first);
    make_filler_for(
        cfg,
        &node,
        served(&first)
            .into_iter()
            .map(|c| (c.name, c.bitrate_kbps))
            .collect(),
    );
    parts.spawn(slotcast_stream::rtmp::serve(
        node.clone(),
        rtmp_listener,
        parts.stopped(),
    ));
    parts.spawn(renew(
        link,
        node.clone(),
        me,
        Duration::from_millis(first.lease_ms.max(300) as u64),
        parts.stopped(),
    ));
    let app = slotcast_stream::http::router(node.clone())
        .merge(slotcast_stream::workshop::router(node.clone()))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    parts.serve_http_and_live(listener, app, &node);
    tracing::info!(
        node = %cfg.node.name,
        placed = ?first.placements.iter().map(|p| &p.name).collect::<Vec<_>>(),
        relayed = ?first.relayed.iter().map(|r| &r.name).collect::<Vec<_>>(),
        "slotcast stream node: HTTP delivery on http://{http}, RTMP ingest on rtmp://{rtmp}/live"
    );
    Ok(parts)
}

/// Renews the `lease` at a third of its length until `stop`; a failed renewal is retried
/// at the next beat. When the lease ran out without a renewal the node fences itself
/// ([`StreamNode::fence`]): the center may have given its channels to another node.
async fn renew(
    link: Arc<CenterLink>,
    node: Arc<StreamNode>,
    me: Identity,
    lease: Duration,
    stop: impl Future<Output = ()>,
) {
    let every = lease / 3;
    let mut stop = std::pin::pin!(stop);
    let mut failing = false;
    let mut renewed = tokio::time::Instant::now();
    let mut fenced = false;
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
        // The center's lease runs from its receipt, so from no later than this.
        let sent = tokio::time::Instant::now();
        match link
            .post::<_, HeartbeatReply>("heartbeat", &me.heartbeat(Some(&node)))
            .await
        {
            Ok(reply) => {
                if failing {
                    tracing::info!("the center answers again");
                    failing = false;
                }
                renewed = sent;
                if fenced {
                    tracing::info!("lease renewed: serving the placed channels again");
                    node.unfence();
                    fenced = false;
                }
                apply(&node, &reply);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "lease renewal failed");
                    failing = true;
                }
                if !fenced && renewed.elapsed() >= lease {
                    tracing::error!(
                        "the lease ran out without a renewal: the center may have placed this \
                         node's channels elsewhere; cutting every program and viewer"
                    );
                    node.fence();
                    fenced = true;
                }
            }
        }
    }
}

/// A fresh node credential (64 hex digits) for `slotcastd admin add-node`.
pub fn new_credential() -> String {
    slotcast_center::secrets::random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
