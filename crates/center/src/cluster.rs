//! The center's side of scale-out: the internal HTTP API stream nodes talk to, and the
//! view of the nodes every center replica serves its pages and API from.
//!
//! PostgreSQL is the one source of truth; HTTP carries the control traffic. A stream node
//! (role `stream`) authenticates with its own credential (only its SHA-256 is stored,
//! compared in constant time; `slotcastd admin add-node` makes one) and
//! - renews its **lease** with a heartbeat ([`Heartbeat`]) carrying its addresses, the
//!   channels it may serve, its live report, the grants of the viewers it admits (their
//!   **seats** are renewed with the lease, the seats of viewers who left are freed, and a
//!   node that stops renewing loses them all with its lease) and the totals of programs
//!   that ended; the
//!   answer ([`HeartbeatReply`]) names the channels **placed** on it (claimed with one
//!   conditional statement per channel, with an epoch that grows when a channel moves),
//!   the totals the center stored (the node may forget them), the programs that lost
//!   their right to publish (cut them) and the public key play tokens are checked with;
//!   to an **edge** (a node that lists channels under `relays`) it also names, per relayed
//!   channel, the programs the channel's origin has a publisher for, with the origin's
//!   preview URL and a token to pull each with;
//! - asks whether a reservation key may publish ([`PublishAsk`]), which is refused unless
//!   the key's channel is placed on the asking node: a stale node cannot take a program.
//!
//! This API is never part of the public one: it listens on its own address
//! (`cluster.listen`). Failed credentials are throttled per address.
//!
//! [`ClusterView`] is the [`StreamStats`] of a center that has no stream node in its
//! process: a snapshot of the nodes' reports, placements and handed-over totals (a relayed
//! program's added up over the nodes that served it), read from the database every
//! second, so every replica answers alike; it sends each new live viewer to the node
//! serving the channel with the fewest viewers.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::hints::Hints;
use crate::mail::ProgramStats;
use crate::ops::jobs::{PublishRefused, go_live};
use crate::port::{LiveView, RecordingInfo, StreamStats, origin_of};
use crate::state::{AppState, Throttle};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{ChannelId, ReservationId, Status, Timestamp, ViewerCurve};
use slotcast_store::{Channel, NodeHeartbeat, StorageError, Store};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What a node sends with each lease renewal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Base URL viewers reach its play routes at, e.g. `https://node1.example.org`.
    pub play_url: String,
    /// Its RTMP ingest URL, e.g. `rtmp://node1.example.org:1935/live`.
    pub ingest_url: String,
    /// Names of the channels it may serve (it is given those no live node holds).
    pub channels: Vec<String>,
    /// Names of the channels it relays as an edge, from the node each is placed on.
    #[serde(default)]
    pub relays: Vec<String>,
    /// What it measures now.
    pub report: Report,
    /// Per channel, the grants of the viewers it admits (their seats are renewed) and of
    /// the viewers who left since the last heartbeat (their seats are freed).
    pub seats: Vec<(ChannelId, Vec<u64>, Vec<u64>)>,
    /// Totals of programs that ended, until the center says it stored them.
    pub finished: Vec<(ReservationId, Totals)>,
}

/// A node's live report, as every replica reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Viewers per channel.
    pub viewers: Vec<(ChannelId, u32)>,
    /// Live statistics per program, with its channel.
    pub live: Vec<(ReservationId, ChannelId, LiveView)>,
    /// Finished recordings (newest first) and their sizes.
    pub recordings: Vec<(ReservationId, u64)>,
}

/// The totals of a program, on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Most viewers at once.
    pub peak_viewers: u32,
    /// Distinct viewers.
    pub unique_viewers: u32,
    /// Minutes watched.
    pub viewer_minutes: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Seconds on air.
    pub seconds_on_air: u64,
    /// Viewers over the program (`step:p1,p2,…`).
    pub curve: String,
}

impl From<&ProgramStats> for Totals {
    fn from(s: &ProgramStats) -> Self {
        Totals {
            peak_viewers: s.peak_viewers,
            unique_viewers: s.unique_viewers,
            viewer_minutes: s.viewer_minutes,
            bytes_out: s.bytes_out,
            seconds_on_air: s.seconds_on_air,
            curve: s.curve.encode(),
        }
    }
}

impl Totals {
    fn stats(&self) -> Option<ProgramStats> {
        Some(ProgramStats {
            peak_viewers: self.peak_viewers,
            unique_viewers: self.unique_viewers,
            viewer_minutes: self.viewer_minutes,
            bytes_out: self.bytes_out,
            seconds_on_air: self.seconds_on_air,
            curve: ViewerCurve::decode(&self.curve)?,
        })
    }
}

/// The center's answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The public key play tokens are checked with (base64url).
    pub public_key: String,
    /// How long the lease runs from now; renew well before.
    pub lease_ms: i64,
    /// The channels placed on the node.
    pub placements: Vec<PlacedChannel>,
    /// The channels it relays, with the programs their origin holds now.
    #[serde(default)]
    pub relayed: Vec<RelayedChannel>,
    /// Programs whose totals are stored: forget them.
    pub stored: Vec<ReservationId>,
    /// Programs that lost their right to publish (cancelled): cut them.
    pub revoked: Vec<ReservationId>,
    /// The center's clock.
    pub server_time: Timestamp,
}

/// A channel placed on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedChannel {
    /// Its id.
    pub id: ChannelId,
    /// Its name.
    pub name: String,
    /// Viewers at most.
    pub capacity: u32,
    /// Nominal bitrate.
    pub bitrate_kbps: u32,
    /// The placement's epoch.
    pub epoch: i64,
}

/// A channel an edge node relays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedChannel {
    /// Its id.
    pub id: ChannelId,
    /// Its name.
    pub name: String,
    /// Viewers at most (across every node serving it).
    pub capacity: u32,
    /// Nominal bitrate.
    pub bitrate_kbps: u32,
    /// The programs its origin holds now (none while it has no origin).
    pub programs: Vec<RelayedProgram>,
}

/// A program an edge pulls from its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayedProgram {
    /// The reservation.
    pub reservation: ReservationId,
    /// Viewers get it from here …
    pub start: Timestamp,
    /// … to here.
    pub end: Timestamp,
    /// Its connect window closes here.
    pub cut_at: Timestamp,
    /// The origin's preview of it (HTTP-FLV) with a token the center signed.
    pub source: String,
}

/// A node's question: may this key publish now?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishAsk {
    /// The RTMP stream key.
    pub key: String,
}

/// The answer to a [`PublishAsk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum PublishAnswer {
    /// Yes: this program, on this channel, in this window.
    Granted {
        /// The reservation.
        reservation: ReservationId,
        /// Its channel.
        channel: ChannelId,
        /// Viewers get it from here …
        start: Timestamp,
        /// … to here.
        end: Timestamp,
        /// The publisher is cut here.
        cut_at: Timestamp,
    },
    /// No reservation has this key.
    UnknownKey,
    /// Not now, not here: why.
    NotNow {
        /// For the log and the publisher.
        reason: String,
    },
}

/// The internal API's settings.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSettings {
    /// How long a node's lease (and its placements) last without a renewal.
    pub node_lease: SignedDuration,
}

#[derive(Debug, Clone)]
struct Internal {
    center: AppState,
    settings: ClusterSettings,
    failures: Arc<Throttle>,
}

/// The internal API for stream nodes, to be served on its own address.
pub fn router(center: AppState, settings: ClusterSettings) -> Router {
    Router::new()
        .route("/internal/v1/nodes/{name}/heartbeat", post(heartbeat))
        .route("/internal/v1/nodes/{name}/publish", post(publish))
        .with_state(Internal {
            center,
            settings,
            failures: Arc::new(Throttle::new(20, SignedDuration::from_mins(15))),
        })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(4 << 20))
}

/// The SHA-256 (hex) of a node credential, as stored.
pub fn credential_hash(credential: &str) -> String {
    Sha256::digest(credential.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A request body, read only once its sender is known.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not what this route takes: {e}"),
        )
    })
}

/// Checks the node's bearer credential; failures are throttled per address.
async fn authenticate(
    st: &Internal,
    name: &str,
    headers: &HeaderMap,
    peer: &crate::net::Peer,
) -> ApiResult<()> {
    let now = st.center.clock.now();
    let key = peer.0.ip().to_string();
    if let Some(wait) = st.failures.wait(&key, now).await? {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            "too many failed node credentials from this address",
            wait,
        ));
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let stored = match st.center.store.node_credential(name).await {
        Ok(h) => Some(h),
        Err(StorageError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let given = credential_hash(given);
    let ok = stored
        .as_deref()
        .is_some_and(|h| subtle::ConstantTimeEq::ct_eq(h.as_bytes(), given.as_bytes()).into());
    if ok {
        Ok(())
    } else {
        st.failures.fail(&key, now).await?;
        Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "unknown node or wrong node credential",
        ))
    }
}

async fn heartbeat(
    State(st): State<Internal>,
    Path(name): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<crate::net::Peer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<HeartbeatReply>> {
    authenticate(&st, &name, &headers, &peer).await?;
    let hb: Heartbeat = parse(&body)?;
    let c = &st.center;
    let store = &*c.store;
    let now = c.clock.now();
    let lease_ms = st.settings.node_lease.as_millis() as i64;

    let mut stored = Vec::new();
    for (r, totals) in &hb.finished {
        let known = match store.reservation(*r).await {
            Ok(_) => true,
            Err(StorageError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        match totals.stats() {
            Some(stats) if known => store.put_node_totals(*r, &name, &stats).await?,
            // Nothing to keep: let the node forget them.
            _ => {
                tracing::warn!(node = %name, reservation = %r, "totals dropped: unknown program or unreadable")
            }
        }
        stored.push(*r);
    }

    let channels = store.channels().await?;
    let before = if hb.channels.is_empty() {
        Vec::new()
    } else {
        store.placements().await?
    };
    let mut placements = Vec::new();
    let mut moved = Vec::new();
    for ch in &channels {
        if !hb.channels.contains(&ch.name) {
            continue;
        }
        if let Some(p) = store.claim_placement(ch.id, &name, now, lease_ms).await? {
            if let Some(old) = before.iter().find(|b| b.channel == ch.id && b.node != name) {
                moved.push(old.clone());
            }
            placements.push(PlacedChannel {
                id: ch.id,
                name: ch.name.clone(),
                capacity: ch.capacity,
                bitrate_kbps: ch.bitrate_kbps,
                epoch: p.epoch,
            });
        }
    }
    let placed = |id: ChannelId| placements.iter().any(|p| p.id == id);
    outages(
        c,
        &moved,
        &hb.report,
        &placements,
        now,
        st.settings.node_lease,
    )
    .await?;
    let relays: Vec<&Channel> = channels
        .iter()
        .filter(|ch| hb.relays.contains(&ch.name) && !placed(ch.id))
        .collect();
    let relayed = relayed(c, &relays, now).await?;
    let served = |id: ChannelId| placed(id) || relayed.iter().any(|r| r.id == id);
    for (channel, admitted, left) in &hb.seats {
        if served(*channel) {
            let text = |v: &Vec<u64>| v.iter().map(u64::to_string).collect::<Vec<_>>();
            store
                .hold_seats(*channel, &name, &text(admitted), &text(left), now, lease_ms)
                .await?;
        }
    }
    // Programs this node holds that lost their right to publish (an edge's too).
    let mut revoked = Vec::new();
    for (r, _, _) in &hb.report.live {
        match store.reservation(*r).await {
            Ok(res) if matches!(res.status, Status::Confirmed | Status::Live) => {}
            Ok(_) | Err(StorageError::NotFound { .. }) => revoked.push(*r),
            Err(e) => return Err(e.into()),
        }
    }
    // Viewers count wherever they watch; a program's live statistics are its origin's.
    let mut report = hb.report;
    report.viewers.retain(|(ch, _)| served(*ch));
    report.live.retain(|(_, ch, _)| placed(*ch));
    let report_json = serde_json::to_string(&report).map_err(ApiError::internal)?;
    store
        .renew_node(
            NodeHeartbeat {
                name: &name,
                play_url: hb.play_url.trim_end_matches('/'),
                ingest_url: &hb.ingest_url,
                report: &report_json,
            },
            now,
            lease_ms,
        )
        .await?;
    if let Err(e) = store.notify(NODES_TOPIC).await {
        tracing::debug!(error = %e, "no wake-up hint for the other replicas; they poll");
    }

    Ok(Json(HeartbeatReply {
        public_key: slotcast_domain::token::public_key_text(&c.secrets.play_public_key()),
        lease_ms,
        placements,
        relayed,
        stored,
        revoked,
        server_time: now,
    }))
}

/// Operator-side outages. A channel that `moved` here from a node whose lease ran out had
/// its programs stopped from that node's last renewal on: an outage is opened for each
/// that node held ([`mark_lost`] does the same for channels no node took over). A program
/// on air on a channel placed here closes its open outage, if it has one.
async fn outages(
    c: &crate::state::Center,
    moved: &[slotcast_store::Placement],
    report: &Report,
    placed: &[PlacedChannel],
    now: Timestamp,
    lease: SignedDuration,
) -> Result<(), StorageError> {
    if !moved.is_empty() {
        let nodes = c.store.nodes().await?;
        for old in moved {
            open_outages(c, old, &nodes, lease).await?;
        }
    }
    let here = |ch: ChannelId| placed.iter().any(|p| p.id == ch);
    for (r, ch, live) in &report.live {
        if live.on_air && here(*ch) {
            c.store.close_outages(*r, now).await?;
        }
    }
    Ok(())
}

/// Opens an outage for each live program the node of placement `old` held when it last
/// reported, from its last renewal (its lease is `lease` long) on.
async fn open_outages(
    c: &crate::state::Center,
    old: &slotcast_store::Placement,
    nodes: &[slotcast_store::NodeRecord],
    lease: SignedDuration,
) -> Result<usize, StorageError> {
    let Some(node) = nodes.iter().find(|n| n.name == old.node) else {
        return Ok(0);
    };
    let last_renewal = node.lease_until - lease;
    let held: Report = serde_json::from_str(&node.report).unwrap_or_default();
    let mut opened = 0;
    for (r, _, _) in held.live.iter().filter(|(_, ch, _)| *ch == old.channel) {
        match c.store.reservation(*r).await {
            Ok(res) if res.status == Status::Live && res.schedule.end > last_renewal => {
                tracing::warn!(reservation = %r, node = %old.node, channel = %old.channel,
                    "the channel's node went away during the program: an operator-side outage");
                c.store.open_outage(*r, &old.node, last_renewal).await?;
                opened += 1;
            }
            Ok(_) | Err(StorageError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(opened)
}

/// The scheduler's part of outages: the programs of channels whose node's lease ran out
/// and that no other node took over get an outage too (nothing plays them). Programs
/// already marked are left as they are.
pub async fn mark_lost(
    c: &crate::state::Center,
    now: Timestamp,
    lease: SignedDuration,
) -> Result<usize, StorageError> {
    let lapsed: Vec<_> = c
        .store
        .placements()
        .await?
        .into_iter()
        .filter(|p| p.lease_until <= now)
        .collect();
    if lapsed.is_empty() {
        return Ok(0);
    }
    let nodes = c.store.nodes().await?;
    let mut opened = 0;
    for p in &lapsed {
        opened += open_outages(c, p, &nodes, lease).await?;
    }
    Ok(opened)
}

/// The channels an edge relays, each with the programs its origin (the node with a live
/// placement of it) reports having a publisher for, to be pulled from the origin's preview.
async fn relayed(
    c: &crate::state::Center,
    channels: &[&Channel],
    now: Timestamp,
) -> ApiResult<Vec<RelayedChannel>> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let store = &*c.store;
    let placements = store.placements().await?;
    let nodes = store.nodes().await?;
    let mut out = Vec::new();
    for ch in channels {
        let origin = placements
            .iter()
            .find(|p| p.channel == ch.id && p.lease_until > now)
            .and_then(|p| {
                nodes
                    .iter()
                    .find(|n| n.name == p.node && n.lease_until > now)
            });
        let mut programs = Vec::new();
        if let Some(origin) = origin {
            let report: Report = serde_json::from_str(&origin.report).unwrap_or_default();
            let held = report
                .live
                .iter()
                .filter(|(_, c, l)| *c == ch.id && l.publishing);
            for (r, _, _) in held {
                let res = match store.reservation(*r).await {
                    Ok(res) => res,
                    Err(StorageError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                };
                let Ok((token, _, _)) = crate::ops::play::preview(c, &res) else {
                    continue; // no longer confirmed or live
                };
                programs.push(RelayedProgram {
                    reservation: res.id,
                    start: res.schedule.start,
                    end: res.schedule.end,
                    cut_at: res.schedule.connect_to,
                    source: slotcast_domain::playback::preview(&origin.play_url, res.id, &token),
                });
            }
        }
        out.push(RelayedChannel {
            id: ch.id,
            name: ch.name.clone(),
            capacity: ch.capacity,
            bitrate_kbps: ch.bitrate_kbps,
            programs,
        });
    }
    Ok(out)
}

async fn publish(
    State(st): State<Internal>,
    Path(name): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<crate::net::Peer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<PublishAnswer>> {
    authenticate(&st, &name, &headers, &peer).await?;
    let ask: PublishAsk = parse(&body)?;
    let c = &st.center;
    let now = c.clock.now();
    // The key's channel must be on the asking node: look before recording anything.
    if let Ok(key) = slotcast_domain::ReservationKey::parse(&ask.key) {
        match c.store.reservation_by_key(&key.hash()).await {
            Ok(r) => {
                let here = c
                    .store
                    .placements()
                    .await?
                    .into_iter()
                    .any(|p| p.channel == r.channel && p.node == name && p.lease_until > now);
                if !here {
                    return Ok(Json(PublishAnswer::NotNow {
                        reason: format!(
                            "channel {} is not placed on node {name}; publish to the node that serves it",
                            r.channel
                        ),
                    }));
                }
            }
            Err(StorageError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(match go_live(&*c.store, &*c.clock, &ask.key).await {
        Ok(r) => PublishAnswer::Granted {
            reservation: r.id,
            channel: r.channel,
            start: r.schedule.start,
            end: r.schedule.end,
            cut_at: r.schedule.connect_to,
        },
        Err(PublishRefused::UnknownKey) => PublishAnswer::UnknownKey,
        Err(PublishRefused::NotNow(reason)) => PublishAnswer::NotNow { reason },
        Err(PublishRefused::Unavailable(m)) => {
            return Err(ApiError::new(ErrorCode::Unavailable, m));
        }
    }))
}

/// The wake-up topic a heartbeat sends after storing a node's report.
pub const NODES_TOPIC: &str = "slotcast_nodes";

/// What the replicas know of the nodes, refreshed from the database.
#[derive(Debug, Default)]
struct Snapshot {
    viewers: HashMap<ChannelId, u32>,
    live: HashMap<ReservationId, LiveView>,
    recordings: HashMap<ReservationId, (u64, String)>,
    totals: HashMap<ReservationId, ProgramStats>,
    channel_node: HashMap<ChannelId, String>,
    /// Per channel, the nodes serving it (origin and edges).
    serving: HashMap<ChannelId, Vec<Serving>>,
    /// The origins of the live nodes' play addresses, sorted.
    origins: Vec<String>,
}

/// A node serving a channel, as live grants are spread over them.
#[derive(Debug)]
struct Serving {
    name: String,
    url: String,
    /// Its viewers of the channel at its last report …
    viewers: u32,
    /// … and the viewers this replica sent it since.
    sent: u32,
    origin: bool,
}

/// The stream nodes as a center replica sees them (see the module page).
#[derive(Debug)]
pub struct ClusterView {
    store: Arc<dyn Store>,
    snapshot: RwLock<Snapshot>,
}

impl ClusterView {
    /// A view with nothing read yet.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(ClusterView {
            store,
            snapshot: RwLock::default(),
        })
    }

    /// Reads the nodes with a live lease, the live placements and the handed-over totals.
    pub async fn refresh(&self, now: Timestamp) -> Result<(), StorageError> {
        let nodes = self.store.nodes().await?;
        let placements = self.store.placements().await?;
        let totals = self.store.node_totals().await?;
        let mut s = Snapshot::default();
        // A relayed program was measured on each node that served it.
        for (r, t) in totals {
            match s.totals.entry(r) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let both = e.get().merge(&t);
                    e.insert(both);
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(t);
                }
            }
        }
        let mut urls = HashMap::new();
        for n in nodes.iter().filter(|n| n.lease_until > now) {
            urls.insert(n.name.clone(), n.play_url.clone());
            let Ok(report) = serde_json::from_str::<Report>(&n.report) else {
                tracing::warn!(node = %n.name, "unreadable node report");
                continue;
            };
            for (ch, v) in report.viewers {
                *s.viewers.entry(ch).or_default() += v;
                s.serving.entry(ch).or_default().push(Serving {
                    name: n.name.clone(),
                    url: n.play_url.clone(),
                    viewers: v,
                    sent: 0,
                    origin: false,
                });
            }
            for (r, _, live) in report.live {
                s.live.insert(r, live);
            }
            for (r, bytes) in report.recordings {
                s.recordings.insert(r, (bytes, n.play_url.clone()));
            }
        }
        s.origins = urls.values().map(|u| origin_of(u).to_owned()).collect();
        s.origins.sort();
        s.origins.dedup();
        for p in placements.into_iter().filter(|p| p.lease_until > now) {
            if let Some(url) = urls.get(&p.node) {
                for n in s.serving.entry(p.channel).or_default() {
                    n.origin |= n.url == *url;
                }
                s.channel_node.insert(p.channel, url.clone());
            }
        }
        *self.snapshot.write().expect("snapshot lock") = s;
        Ok(())
    }

    /// Refreshes until `stop`: at once when a heartbeat on any replica hints that a node
    /// reported ([`NODES_TOPIC`], PostgreSQL `NOTIFY`), and every `every` besides (less
    /// often while hints arrive, see [`Hints`]).
    pub async fn run(
        self: Arc<Self>,
        clock: Arc<dyn slotcast_domain::Clock>,
        every: Duration,
        stop: impl Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut hints = Hints::new(self.store.clone(), &[NODES_TOPIC]);
        loop {
            if let Err(e) = self.refresh(clock.now()).await {
                tracing::warn!(error = %e, "cannot read the stream nodes' reports");
            }
            tokio::select! {
                () = &mut stop => return,
                () = hints.wait(every) => {}
            }
        }
    }

    /// The names and play addresses of the live nodes holding `channel`, its origin
    /// first.
    pub fn nodes_of(&self, channel: ChannelId) -> Vec<(String, String)> {
        self.read(|s| {
            let mut nodes: Vec<_> = s.serving.get(&channel).into_iter().flatten().collect();
            nodes.sort_by_key(|n| !n.origin);
            nodes
                .into_iter()
                .map(|n| (n.name.clone(), n.url.clone()))
                .collect()
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.snapshot.read().expect("snapshot lock"))
    }
}

impl StreamStats for ClusterView {
    fn viewers(&self, channel: ChannelId) -> u32 {
        self.read(|s| s.viewers.get(&channel).copied().unwrap_or(0))
    }

    fn program_stats(&self, reservation: ReservationId) -> Option<ProgramStats> {
        self.read(|s| s.totals.get(&reservation).cloned())
    }

    fn ack_program_stats(&self, reservation: ReservationId) {
        self.snapshot
            .write()
            .expect("snapshot lock")
            .totals
            .remove(&reservation);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.drop_node_totals(reservation).await {
                tracing::warn!(%reservation, error = %e, "handed-over totals not dropped");
            }
        });
    }

    fn live(&self, reservation: ReservationId) -> Option<LiveView> {
        self.read(|s| s.live.get(&reservation).cloned())
    }

    /// Cancelled programs are cut by their node at its next heartbeat (the answer names
    /// them), so there is nothing to send from here.
    fn revoke(&self, _: ReservationId) {}

    fn recording(&self, reservation: ReservationId) -> Option<RecordingInfo> {
        self.read(|s| {
            s.recordings
                .get(&reservation)
                .map(|(bytes, _)| RecordingInfo { bytes: *bytes })
        })
    }

    /// The node with the fewest viewers of the channel (counting those sent there since
    /// its last report, so that a burst is spread too), the origin on a tie.
    fn live_base(&self, channel: ChannelId) -> Option<String> {
        let mut s = self.snapshot.write().expect("snapshot lock");
        let best = s
            .serving
            .get_mut(&channel)?
            .iter_mut()
            .min_by_key(|n| (n.viewers.saturating_add(n.sent), !n.origin))?;
        best.sent += 1;
        Some(best.url.clone())
    }

    fn play_base(&self, channel: ChannelId, reservation: ReservationId) -> Option<String> {
        self.read(|s| {
            s.recordings
                .get(&reservation)
                .map(|(_, url)| url.clone())
                .or_else(|| s.channel_node.get(&channel).cloned())
        })
    }

    fn media_origins(&self) -> Vec<String> {
        self.read(|s| s.origins.clone())
    }
}
