//! `slotcastd serve`: opens the store, seeds the configured channels on first start,
//! starts the time service, the scheduler, the mail sender and the stream node (RTMP
//! ingest, HTTP delivery merged into the center's router), serves until SIGINT or
//! SIGTERM, then drains and stops every part.

use crate::config::Config;
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
    s
}

/// Runs the server until a shutdown signal.
pub async fn serve(cfg: Config) -> Result<(), String> {
    // Handlers first: a SIGTERM that arrives right after start must stop us cleanly.
    let signal = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let running = start(&cfg, None).await?;
    tracing::info!("slotcast center listening on http://{}", running.http);
    tracing::info!(
        "slotcast stream node: RTMP ingest on rtmp://{}/live",
        running.rtmp
    );
    signal.await;
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
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
    stop_http: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    served: JoinHandle<std::io::Result<()>>,
    tasks: Vec<JoinHandle<()>>,
    time_task: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops HTTP first (letting requests finish), then the scheduler, the mail sender,
    /// RTMP ingest and the channel refresh.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.stop_http.send(true);
        let served = self.served.await;
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(t) = self.time_task {
            t.abort();
        }
        served
            .map_err(|e| format!("server error: {e}"))?
            .map_err(|e| format!("server error: {e}"))
    }
}

/// Opens the store, seeds the channels, starts every part (role `all`) and binds the
/// listeners of `cfg`; returns at once with the server running. `clock` replaces the
/// time service (NTP or the system clock) for every decision, the stream node's windows
/// included: tests pass a manual clock. [`serve`] is this with `None` and a signal.
pub async fn start(cfg: &Config, clock: Option<Arc<dyn Clock>>) -> Result<Running, String> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data_dir {}: {e}", cfg.data_dir.display()))?;
    let url = cfg.database_url();
    let store = crate::storage::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(backend = store.backend(), url = %crate::config::redact_url(&url), "database ready");
    seed_channels(&*store, cfg).await?;
    let secrets = Secrets::load_or_create(&cfg.data_dir)?;

    let (clock, time, time_task) = match clock {
        Some(c) => (c, None, None),
        None => {
            let time = TimeService::new(cfg.time.ntp_servers.clone());
            let task = time.clone().spawn(Duration::from_secs(64));
            let clock: Arc<dyn Clock> = time.clone();
            (clock, Some(time), Some(task))
        }
    };
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (http.listen): {e}", cfg.http.listen))?;
    let http = listener.local_addr().map_err(|e| e.to_string())?;
    let rtmp_listener = tokio::net::TcpListener::bind(cfg.rtmp.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (rtmp.listen): {e}", cfg.rtmp.listen))?;
    let rtmp = rtmp_listener.local_addr().map_err(|e| e.to_string())?;

    let settings = settings(cfg, rtmp.port());
    let sender = |t| {
        Sender::new(store.clone(), clock.clone(), t, &settings.mail_from).map_err(|e| e.to_string())
    };
    let mail_check = Arc::new(sender(transport(cfg))?);
    let mailer = sender(transport(cfg))?;
    slotcast_center::metrics::install();
    let node = start_stream_node(cfg, store.clone(), clock.clone(), secrets.play_public_key()).await?;
    let center = Arc::new(Center {
        store: store.clone(),
        clock: clock.clone(),
        settings,
        secrets,
        login_throttle: Throttle::new(50, SignedDuration::from_mins(15)),
        login_backoff: slotcast_center::state::Backoff::new(5, SignedDuration::from_mins(15)),
        password_throttle: Throttle::new(20, SignedDuration::from_mins(15)),
        signup_throttle: Throttle::new(20, SignedDuration::from_hours(1)),
        time,
        stats: Arc::new(crate::link::NodeStats(node.clone())),
        filler: Arc::new(crate::link::NodeStats(node.clone())),
        mail_check: Some(mail_check),
        scheduler: slotcast_center::SchedulerHealth::default(),
        listings: Default::default(),
    });

    let (stop, stop_rx) = watch::channel(false);
    let stopped = |rx: &watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let tasks = vec![
        tokio::spawn(Scheduler::new(center.clone()).run(Duration::from_secs(1), stopped(&stop_rx))),
        tokio::spawn(mailer.run(stopped(&stop_rx))),
        tokio::spawn(slotcast_stream::rtmp::serve(
            node.clone(),
            rtmp_listener,
            stopped(&stop_rx),
        )),
        tokio::spawn(refresh_channels(
            node.clone(),
            store.clone(),
            stopped(&stop_rx),
        )),
    ];
    let app = slotcast_web::router(center.clone())
        .merge(slotcast_center::router(center.clone()))
        .merge(slotcast_stream::http::router(node.clone()))
        .layer(axum::middleware::from_fn_with_state(
            center.clone(),
            slotcast_web::html_errors,
        ))
        .into_make_service_with_connect_info::<slotcast_center::net::Peer>();
    let (stop_http, stop_http_rx) = watch::channel(false);
    let http_stopped = stopped(&stop_http_rx);
    let served = tokio::spawn(async move {
        // A live response to a peer that stopped reading would hold its seat forever.
        let listener = slotcast_center::net::StallGuard::new(listener, Duration::from_secs(30));
        axum::serve(listener, app)
            .with_graceful_shutdown(http_stopped)
            .await
    });
    Ok(Running {
        http,
        rtmp,
        center,
        node,
        stop_http,
        stop,
        served,
        tasks,
        time_task,
    })
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

/// Starts the stream node on the store's channels; makes missing filler with ffmpeg in the
/// background when configured (the demo's test cards).
async fn start_stream_node(
    cfg: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    token_key: slotcast_domain::token::VerifyingKey,
) -> Result<Arc<StreamNode>, String> {
    let sc = stream_config(cfg);
    let authority = Arc::new(crate::link::CenterAuthority {
        store: store.clone(),
        clock: clock.clone(),
    });
    let node = StreamNode::new(sc.clone(), clock, authority, token_key);
    node.set_channels(channel_infos(&*store).await?);
    if cfg.filler.auto_generate
        && let Some(ffmpeg) = slotcast_stream::filler::find_ffmpeg()
    {
        let specs: Vec<FillerSpec> = store
            .channels()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| !sc.filler_dir.join(&c.name).is_dir())
            .map(|c| FillerSpec {
                channel: c.name,
                bitrate_kbps: c.bitrate_kbps,
                seconds: cfg.filler.seconds,
            })
            .collect();
        if !specs.is_empty() {
            let node = node.clone();
            // A thread of its own: a shutdown must not wait for ffmpeg.
            std::thread::spawn(move || {
                for spec in specs {
                    tracing::info!(channel = %spec.channel, "making test-card filler with ffmpeg");
                    if let Err(e) = slotcast_stream::filler::generate(
                        &ffmpeg,
                        &sc.filler_dir,
                        &sc.slate_dir,
                        &spec,
                    ) {
                        tracing::warn!(channel = %spec.channel, error = %e, "no filler made");
                    }
                }
                node.reload_filler();
            });
        }
    }
    Ok(node)
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
