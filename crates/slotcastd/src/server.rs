//! `slotcastd serve`: opens the store, seeds the configured channels on first start,
//! serves HTTP until SIGINT or SIGTERM, then drains and stops.

use crate::config::Config;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use slotcast_domain::{Clock, Currency, Money, Timestamp};
use slotcast_store::{NewChannel, Store};
use std::sync::Arc;

/// The system clock (NTP correction comes with the center's time service).
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

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

/// The HTTP routes of this server.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server_time,
        ))
        .with_state(state)
}

/// Every response carries the server's time.
async fn server_time(
    State(st): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    let now = format!("{:.3}", st.clock.now());
    if let Ok(v) = HeaderValue::from_str(&now) {
        res.headers_mut().insert("server-time", v);
    }
    res
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(st): State<AppState>) -> Response {
    match st.store.ping().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready", "database": st.store.backend() }))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// Runs the server until a shutdown signal.
pub async fn serve(cfg: Config) -> Result<(), String> {
    // Handlers first: a SIGTERM that arrives right after start must stop us cleanly.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("cannot create data_dir {}: {e}", cfg.data_dir.display()))?;
    let url = cfg.database_url();
    let store = crate::storage::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(backend = store.backend(), url = %crate::config::redact_url(&url), "database ready");
    seed_channels(&*store, &cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|e| format!("cannot listen on {} (http.listen): {e}", cfg.http.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("slotcast center listening on http://{addr}");
    let app = router(AppState {
        store,
        clock: Arc::new(SystemClock),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
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
