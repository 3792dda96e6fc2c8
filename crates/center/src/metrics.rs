//! Prometheus metrics: requests by route and status, bookings, confirmations, expiries,
//! e-mails queued/sent/failed, the scheduler's failed ticks and health. One process-wide
//! recorder, rendered at `/metrics`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

fn handle() -> &'static PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
    })
}

/// Installs the recorder (idempotent); call once at start.
pub fn install() {
    handle();
}

/// `GET /metrics`.
pub async fn render() -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        handle().render(),
    )
}

/// Counts requests by route template (never the raw path: ids would explode the series).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("slotcast_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("slotcast_http_request_duration_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    res
}

/// Counts a domain event (`bookings`, `confirms`, `expiries`, `completions`, `cancellations`).
pub fn event(name: &'static str) {
    metrics::counter!("slotcast_reservation_events_total", "event" => name).increment(1);
}

/// Counts e-mails by outcome (`queued`, `sent`, `retried`, `failed`).
pub fn emails(outcome: &'static str, n: u64) {
    metrics::counter!("slotcast_emails_total", "outcome" => outcome).increment(n);
}

/// Records the outcome of a scheduler tick: failed ticks are counted
/// (`slotcast_scheduler_tick_failures_total`) and `slotcast_scheduler_healthy` is 1 after
/// a good tick, 0 after a failed one.
pub fn scheduler_tick(ok: bool) {
    metrics::counter!("slotcast_scheduler_tick_failures_total").increment(u64::from(!ok));
    metrics::gauge!("slotcast_scheduler_healthy").set(if ok { 1.0 } else { 0.0 });
}
