//! `slotcastd serve`: starts the parts of the configured role, serves until SIGINT or
//! SIGTERM, then drains and stops every part. Role `all` opens the store, seeds the
//! configured channels on first start, starts the time service, the scheduler, the mail
//! sender and the stream node (RTMP ingest, HTTP delivery merged into the center's
//! router); role `center` is the same without the stream node, plus the internal API for
//! stream nodes; role `stream` is in [`crate::node`].

use crate::config::{Config, Role};
use slotcast_center::mail::{Sender, SmtpSettings, SmtpTls, Transport};
use slotcast_center::secrets::Secrets;
use slotcast_center::time::TimeService;
use slotcast_center::{Center, Scheduler, Settings, Throttle};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Currency, Money};
use slotcast_store::{NewChannel, Store};
use slotcast_stream::filler::FillerSpec;
use slotcast_stream::{ChannelInfo, StreamConfig, StreamNode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Creates the configured channels when the database has none.
pub async fn seed_channels(store: &dyn Store, cfg: &Config) -> Result<usize, String> {
    if !store
        .channels()
        .await
        .map_err(|e| e.to_string())?
        .is_empty()
    {
        return Ok(0);
    }
    let currency = Currency::parse(&cfg.billing.currency).map_err(|e| e.to_string())?;
    for c in &cfg.channels {
        store
            .create_channel(NewChannel {
                name: c.name.clone(),
                capacity: c.capacity,
                bitrate_kbps: c.bitrate_kbps,
                tariff: Money::new(c.tariff_per_slot, currency),
                stream_node: "local".into(),
            })
            .await
            .map_err(|e| format!("cannot create channel {}: {e}", c.name))?;
        tracing::info!(channel = %c.name, capacity = c.capacity, "created channel");
    }
    Ok(cfg.channels.len())
}

/// The mail transport the configuration names.
pub fn transport(cfg: &Config) -> Transport {
    if cfg.mail.transport == "smtp" {
        let s = &cfg.mail.smtp;
        Transport::Smtp(SmtpSettings {
            host: s.host.clone(),
            port: s.port,
            tls: match s.tls.as_str() {
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                _ => SmtpTls::StartTls,
            },
            username: s.username.clone(),
            password: s.password.as_ref().map(|p| p.0.clone()),
        })
    } else {
        Transport::File {
            dir: cfg.data_dir.join("outbox"),
        }
    }
}

/// The center's settings from the configuration, with RTMP ingest on `rtmp_port` (the
/// port actually bound: `rtmp.listen` may ask for any free one).
pub fn settings(cfg: &Config, rtmp_port: u16) -> Settings {
    let mut s = Settings::new(&cfg.public_url, &cfg.time_zone, cfg.policy());
    let host = s
        .public_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split([':', '/']).next())
        .unwrap_or("localhost")
        .to_owned();
    s.ingest = if cfg.rtmp.endpoints.is_empty() {
        vec![format!("rtmp://{host}:{rtmp_port}/live")]
    } else {
        cfg.rtmp.endpoints.clone()
    };
    s.invite_at_acceptance = cfg.programs.invite_at_acceptance;
    s.mail_from = cfg.mail.from.clone();
    s.trusted_proxies = cfg.http.proxies();
    s.exact_seats = cfg.role == Role::Center;
    s.node_lease = (cfg.role == Role::Center)
        .then(|| SignedDuration::from_secs(cfg.cluster.node_lease_seconds.into()));
    s
}

/// Runs the server in `cfg.role` until a shutdown signal.
pub async fn serve(cfg: Config) -> Result<(), String> {
    // Handlers first: a SIGTERM that arrives right after start must stop us cleanly.
    let signal = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    cfg.check_role(cfg.role).map_err(|e| e.to_string())?;
    let parts = match cfg.role {
        Role::All => {
            let running = start(&cfg, None).await?;
            tracing::info!("slotcast center listening on http://{}", running.http);
            tracing::info!(
                "slotcast stream node: RTMP ingest on rtmp://{}/live",
                running.rtmp
            );
            running.parts
        }
        Role::Center => start_center(&cfg).await?,
        Role::Stream => crate::node::start(&cfg).await?,
    };
    signal.await;
    parts.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The running parts of a role: listeners and background tasks, stopped in order by
/// [`Parts::shutdown`].
#[derive(Debug)]
pub struct Parts {
    stop_http: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    served: Vec<JoinHandle<std::io::Result<()>>>,
    tasks: Vec<JoinHandle<()>>,
    time_task: Option<JoinHandle<()>>,
}

impl Parts {
    /// Parts with no listener and no task yet; `time_task` is aborted at the end.
    pub fn new(time_task: Option<JoinHandle<()>>) -> Self {
        Parts {
            stop_http: watch::channel(false).0,
            stop: watch::channel(false).0,
            served: Vec::new(),
            tasks: Vec::new(),
            time_task,
        }
    }

    /// Resolves when the background tasks are to stop.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_for(self.stop.subscribe())
    }

    /// Runs `task` until shutdown (it must end when [`Parts::stopped`] resolves).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Serves `app` on `listener` until shutdown, letting requests finish.
    pub fn serve_http(&mut self, listener: tokio::net::TcpListener, app: axum::Router) {
        self.serve_http_with(listener, app, None);
    }

    /// [`Parts::serve_http`], where `node`'s live viewers leave HTTP once admitted and
    /// are written by their channels ([`slotcast_stream::direct`]).
    pub fn serve_http_and_live(
        &mut self,
        listener: tokio::net::TcpListener,
        app: axum::Router,
        node: &Arc<StreamNode>,
    ) {
        let node = node.clone();
        let takeover: slotcast_center::net::Takeover =
            Arc::new(move |io| Box::pin(slotcast_stream::direct::take_live(node.clone(), io)));
        self.serve_http_with(listener, app, Some(takeover));
    }

    fn serve_http_with(
        &mut self,
        listener: tokio::net::TcpListener,
        app: axum::Router,
        takeover: Option<slotcast_center::net::Takeover>,
    ) {
        let app = app.into_make_service_with_connect_info::<slotcast_center::net::Peer>();
        let stopped = wait_for(self.stop_http.subscribe());
        self.served.push(tokio::spawn(async move {
            // A live response to a peer that stopped reading would hold its seat forever.
            let mut listener =
                slotcast_center::net::StallGuard::new(listener, slotcast_stream::direct::STALL);
            if let Some(t) = takeover {
                listener = listener.with_takeover(t);
            }
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }));
    }

    /// Stops HTTP first (letting requests finish), then every background task.
    pub async fn shutdown(self) -> Result<(), String> {
        self.stop_http.send_replace(true);
        let mut result = Ok(());
        for served in self.served {
            if let Err(e) = served
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                result = Err(format!("server error: {e}"));
            }
        }
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(t) = self.time_task {
            t.abort();
        }
        result
    }
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A server started by [`start`]: every part runs on the current tokio runtime until
/// [`Running::shutdown`] (or until the runtime ends).
#[derive(Debug)]
pub struct Running {
    /// Where HTTP (center and delivery) listens.
    pub http: SocketAddr,
    /// Where RTMP ingest listens.
    pub rtmp: SocketAddr,
    /// The center (its store, clock, settings).
    pub center: Arc<Center>,
    /// The stream node.
    pub node: Arc<StreamNode>,
    parts: Parts,
}

impl Running {
    /// Stops HTTP first (letting requests finish), then the scheduler, the mail sender,
    /// RTMP ingest and the channel refresh.
    pub async fn shutdown(self) -> Result<(), String> {
        self.parts.shutdown().await
    }
}

/// The clock every decision uses, the time service behind it and the service's task.
pub type Timing = (
    Arc<dyn Clock>,
    Option<Arc<TimeService>>,
    Option<JoinHandle<()>>,
);

/// The clock every decision uses: `clock` (tests) or the time service (NTP or the system
/// clock), with the service's task.
pub fn clock_of(cfg: &Config, clock: Option<Arc<dyn Clock>>) -> Timing {
    match clock {
        Some(c) => (c, None, None),
        None => {
            let time = TimeService::new(cfg.time.ntp_servers.clone());
            let task = time.clone().spawn(Duration::from_secs(64));
            let clock: Arc<dyn Clock> = time.clone();
            (clock, Some(time), Some(task))
        }
    }
}

/// Binds `addr` (`key` names the configuration key in the error).
pub async fn bind(addr: SocketAddr, key: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({key}): {e}"))
}

/// Opens (and migrates) the store, seeds the channels on first start and loads the
/// server secret.
async fn open_store(cfg: &Config) -> Result<(Arc<dyn Store>, Secrets), String> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data_dir {}: {e}", cfg.data_dir.display()))?;
    let url = cfg.database_url();
    let store = crate::storage::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(backend = store.backend(), url = %crate::config::redact_url(&url), "database ready");
    seed_channels(&*store, cfg).await?;
    let secrets = Secrets::load_or_create(&cfg.data_dir)?;
    Ok((store, secrets))
}

/// The center's half of a process: the center over `store` with `stream` as its stream
/// node, its scheduler and mail sender started in `parts`.
fn start_center_part(
    cfg: &Config,
    (store, secrets): (Arc<dyn Store>, Secrets),
    (clock, time): (Arc<dyn Clock>, Option<Arc<TimeService>>),
    rtmp_port: u16,
    stream: StreamPart,
    parts: &mut Parts,
) -> Result<Arc<Center>, String> {
    let settings = settings(cfg, rtmp_port);
    let sender = |t| {
        Sender::new(store.clone(), clock.clone(), t, &settings.mail_from).map_err(|e| e.to_string())
    };
    let mail_check = Arc::new(sender(transport(cfg))?);
    let mailer = sender(transport(cfg))?;
    slotcast_center::metrics::install();
    let mut login_throttle = Throttle::new(50, SignedDuration::from_mins(15));
    let mut login_backoff = slotcast_center::state::Backoff::new(5, SignedDuration::from_mins(15));
    let mut password_throttle = Throttle::new(20, SignedDuration::from_mins(15));
    let mut signup_throttle = Throttle::new(20, SignedDuration::from_hours(1));
    if cfg.role == Role::Center {
        // Replicas count the same failures, whichever one a request reaches.
        login_throttle = login_throttle.shared(store.clone(), "login");
        login_backoff = login_backoff.shared(store.clone(), "login-pair");
        password_throttle = password_throttle.shared(store.clone(), "viewer-password");
        signup_throttle = signup_throttle.shared(store.clone(), "signup");
    }
    let center = Arc::new(Center {
        store: store.clone(),
        clock: clock.clone(),
        settings,
        secrets,
        login_throttle,
        login_backoff,
        password_throttle,
        signup_throttle,
        time,
        stats: stream.stats,
        filler: stream.filler,
        mail_check: Some(mail_check),
        scheduler: slotcast_center::SchedulerHealth::default(),
        listings: Default::default(),
        sessions: Default::default(),
    });
    parts.spawn(Scheduler::new(center.clone()).run(Duration::from_secs(1), parts.stopped()));
    parts.spawn(mailer.run(parts.stopped()));
    if cfg.role == Role::Center {
        // Another replica's booking changes what this one's listings show.
        let (c, stopped) = (center.clone(), parts.stopped());
        parts.spawn(async move {
            c.listings
                .follow(c.store.clone(), Duration::from_secs(5), stopped)
                .await;
        });
    }
    Ok(center)
}

/// What stands for the stream node in a center.
struct StreamPart {
    stats: Arc<dyn slotcast_center::StreamStats>,
    filler: Arc<dyn slotcast_center::FillerPort>,
}

/// The pages and the public API of `center`, with HTML error pages for browsers.
fn public_app(center: &Arc<Center>) -> axum::Router {
    slotcast_web::router(center.clone()).merge(slotcast_center::router(center.clone()))
}

fn with_html_errors(center: &Arc<Center>, app: axum::Router) -> axum::Router {
    app.layer(axum::middleware::from_fn_with_state(
        center.clone(),
        slotcast_web::html_errors,
    ))
}

/// Opens the store, seeds the channels, starts every part (role `all`) and binds the
/// listeners of `cfg`; returns at once with the server running. `clock` replaces the
/// time service (NTP or the system clock) for every decision, the stream node's windows
/// included: tests pass a manual clock. [`serve`] is this with `None` and a signal.
pub async fn start(cfg: &Config, clock: Option<Arc<dyn Clock>>) -> Result<Running, String> {
    let (clock, time, time_task) = clock_of(cfg, clock);
    let mut parts = Parts::new(time_task);
    let listener = bind(cfg.http.listen, "http.listen").await?;
    let http = listener.local_addr().map_err(|e| e.to_string())?;
    let rtmp_listener = bind(cfg.rtmp.listen, "rtmp.listen").await?;
    let rtmp = rtmp_listener.local_addr().map_err(|e| e.to_string())?;

    let (store, secrets) = open_store(cfg).await?;
    let authority = Arc::new(crate::link::CenterAuthority {
        store: store.clone(),
        clock: clock.clone(),
    });
    let node = start_stream_node(cfg, authority, clock.clone(), secrets.play_public_key());
    let stream = StreamPart {
        stats: Arc::new(crate::link::NodeStats(node.clone())),
        filler: Arc::new(crate::link::NodeStats(node.clone())),
    };
    let center = start_center_part(
        cfg,
        (store, secrets),
        (clock, time),
        rtmp.port(),
        stream,
        &mut parts,
    )?;
    node.set_channels(channel_infos(&*center.store).await?);
    make_missing_filler(cfg, &node, &*center.store).await?;
    parts.spawn(slotcast_stream::rtmp::serve(
        node.clone(),
        rtmp_listener,
        parts.stopped(),
    ));
    parts.spawn(refresh_channels(
        node.clone(),
        center.store.clone(),
        parts.stopped(),
    ));
    let app = public_app(&center).merge(slotcast_stream::http::router(node.clone()));
    parts.serve_http_and_live(listener, with_html_errors(&center, app), &node);
    Ok(Running {
        http,
        rtmp,
        center,
        node,
        parts,
    })
}

/// Role `center`: a replica of the center on PostgreSQL, with the internal API for stream
/// nodes on `cluster.listen` and the nodes' reports as its view of the stream side.
pub async fn start_center(cfg: &Config) -> Result<Parts, String> {
    let (clock, time, time_task) = clock_of(cfg, None);
    let mut parts = Parts::new(time_task);
    let listener = bind(cfg.http.listen, "http.listen").await?;
    let internal = bind(cfg.cluster.listen, "cluster.listen").await?;
    let (store, secrets) = open_store(cfg).await?;
    let view = slotcast_center::cluster::ClusterView::new(store.clone());
    let stream = StreamPart {
        stats: view.clone(),
        filler: Arc::new(crate::remote_filler::RemoteFiller::new(
            view.clone(),
            secrets.play_key().clone(),
            clock.clone(),
            cfg.data_dir.join("filler-uploads"),
        )),
    };
    let center = start_center_part(
        cfg,
        (store, secrets),
        (clock.clone(), time),
        cfg.rtmp.listen.port(),
        stream,
        &mut parts,
    )?;
    parts.spawn(view.run(clock, Duration::from_secs(1), parts.stopped()));
    parts.serve_http(listener, with_html_errors(&center, public_app(&center)));
    parts.serve_http(
        internal,
        slotcast_center::cluster::router(
            center.clone(),
            slotcast_center::cluster::ClusterSettings {
                node_lease: SignedDuration::from_secs(cfg.cluster.node_lease_seconds.into()),
            },
        ),
    );
    tracing::info!(
        "slotcast center replica listening on http://{} (internal API for stream nodes on http://{})",
        cfg.http.listen,
        cfg.cluster.listen
    );
    Ok(parts)
}

/// The stream node's settings from the configuration.
pub fn stream_config(cfg: &Config) -> StreamConfig {
    StreamConfig {
        rtmp_listen: cfg.rtmp.listen,
        public_url: cfg.public_url.clone(),
        write_interval: Duration::from_millis(cfg.delivery.write_interval_ms.into()),
        linger_after_end: Duration::from_secs(cfg.delivery.linger_seconds.into()),
        vod_idle: Duration::from_secs(cfg.delivery.replay_idle_seconds.into()),
        ..StreamConfig::under(&cfg.data_dir)
    }
}

async fn channel_infos(store: &dyn Store) -> Result<Vec<ChannelInfo>, String> {
    Ok(store
        .channels()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| ChannelInfo {
            id: c.id,
            name: c.name,
            capacity: c.capacity,
            bitrate_kbps: c.bitrate_kbps,
        })
        .collect())
}

/// A stream node of `cfg` asking `authority` whether keys may publish and checking play
/// tokens with `token_key`. It has no channels yet.
pub fn start_stream_node(
    cfg: &Config,
    authority: Arc<dyn slotcast_stream::PublishAuthority>,
    clock: Arc<dyn Clock>,
    token_key: slotcast_domain::token::VerifyingKey,
) -> Arc<StreamNode> {
    StreamNode::new(stream_config(cfg), clock, authority, token_key)
}

/// Makes the missing test-card filler of `store`'s channels with ffmpeg in the background
/// when configured (the demo's).
async fn make_missing_filler(
    cfg: &Config,
    node: &Arc<StreamNode>,
    store: &dyn Store,
) -> Result<(), String> {
    let names: Vec<(String, u32)> = store
        .channels()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| (c.name, c.bitrate_kbps))
        .collect();
    make_filler_for(cfg, node, names);
    Ok(())
}

/// Makes the missing test-card filler of the `channels` (name, bitrate) with ffmpeg on a
/// thread of its own, when `filler.auto_generate` is on and ffmpeg is installed.
pub fn make_filler_for(cfg: &Config, node: &Arc<StreamNode>, channels: Vec<(String, u32)>) {
    let sc = stream_config(cfg);
    if !cfg.filler.auto_generate {
        return;
    }
    let Some(ffmpeg) = slotcast_stream::filler::find_ffmpeg() else {
        return;
    };
    let specs: Vec<FillerSpec> = channels
        .into_iter()
        .filter(|(name, _)| !sc.filler_dir.join(name).is_dir())
        .map(|(channel, bitrate_kbps)| FillerSpec {
            channel,
            bitrate_kbps,
            seconds: cfg.filler.seconds,
        })
        .collect();
    if specs.is_empty() {
        return;
    }
    let node = node.clone();
    // A thread of its own: a shutdown must not wait for ffmpeg.
    std::thread::spawn(move || {
        for spec in specs {
            tracing::info!(channel = %spec.channel, "making test-card filler with ffmpeg");
            if let Err(e) =
                slotcast_stream::filler::generate(&ffmpeg, &sc.filler_dir, &sc.slate_dir, &spec)
            {
                tracing::warn!(channel = %spec.channel, error = %e, "no filler made");
            }
        }
        node.reload_filler();
    });
}

/// Keeps the stream node's channel list (capacities, new channels) in step with the
/// operator's changes.
async fn refresh_channels(
    node: Arc<StreamNode>,
    store: Arc<dyn Store>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        match channel_infos(&*store).await {
            Ok(list) => node.set_channels(list),
            Err(e) => tracing::warn!(error = %e, "channel refresh failed"),
        }
    }
}

/// `slotcastd filler generate`: test-card filler and slates for every channel.
pub async fn generate_filler(cfg: &Config, channel: Option<&str>) -> Result<Vec<String>, String> {
    let ffmpeg = slotcast_stream::filler::find_ffmpeg()
        .ok_or("ffmpeg is not installed (Debian: apt-get install ffmpeg)")?;
    let store = crate::storage::open(&cfg.database_url())
        .await
        .map_err(|e| e.to_string())?;
    seed_channels(&*store, cfg).await?;
    let sc = stream_config(cfg);
    let mut made = Vec::new();
    for c in store.channels().await.map_err(|e| e.to_string())? {
        if channel.is_some_and(|n| n != c.name) {
            continue;
        }
        let spec = FillerSpec {
            channel: c.name.clone(),
            bitrate_kbps: c.bitrate_kbps,
            seconds: cfg.filler.seconds,
        };
        let (sc, ffmpeg) = (sc.clone(), ffmpeg.clone());
        let g = tokio::task::spawn_blocking(move || {
            slotcast_stream::filler::generate(&ffmpeg, &sc.filler_dir, &sc.slate_dir, &spec)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        made.push(format!(
            "{}: {} and {}",
            c.name,
            g.filler.display(),
            g.slate.display()
        ));
    }
    if made.is_empty() {
        return Err(format!(
            "no channel named `{}`",
            channel.unwrap_or_default()
        ));
    }
    Ok(made)
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    })
}

/// `slotcastd admin create-operator`: registers an operator (password from stdin).
pub async fn create_operator(
    cfg: &Config,
    email: &str,
    name: &str,
    password: &str,
) -> Result<i64, String> {
    let email = slotcast_domain::EmailAddress::parse(email).map_err(|e| format!("--email: {e}"))?;
    if password.chars().count() < 10 {
        return Err("the password must be at least 10 characters".into());
    }
    let store = crate::storage::open(&cfg.database_url())
        .await
        .map_err(|e| e.to_string())?;
    let hash = slotcast_center::secrets::hash_password(password)?;
    let m = store
        .create_member(slotcast_store::NewMember {
            email,
            password_hash: hash,
            display_name: name.to_owned(),
            tier: slotcast_store::Tier::General,
            role: slotcast_store::Role::Operator,
            payment: None,
            created_at: slotcast_domain::Timestamp::now(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(m.id.0)
}

/// `slotcastd admin add-node`: registers stream node `name` with a fresh credential (only
/// its hash is stored) and returns the credential.
pub async fn add_node(cfg: &Config, name: &str) -> Result<String, String> {
    if !crate::config::valid_node_name(name) {
        return Err("--name must be 1–64 letters, digits or dashes".into());
    }
    let store = crate::storage::open(&cfg.database_url())
        .await
        .map_err(|e| e.to_string())?;
    let credential = crate::node::new_credential();
    store
        .put_node(
            name,
            &slotcast_center::cluster::credential_hash(&credential),
            slotcast_domain::Timestamp::now(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(credential)
}
