//! `GET /time`: the server's time and where it comes from. Clients measure their offset
//! NTP-style: t0 = send, t3 = receive, offset ≈ server_time − (t0 + t3) / 2.

use super::views::ts;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// The server's time.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeView {
    /// Now, RFC 3339 UTC with milliseconds.
    pub server_time: String,
    /// `ntp` when synchronised with a configured NTP server, else `system`.
    pub source: String,
    /// The NTP server of the last good sync.
    pub ntp_server: Option<String>,
    /// When it was.
    pub last_sync: Option<String>,
    /// Estimated error of `server_time`.
    pub estimated_error_ms: f64,
    /// The service's time zone (IANA).
    pub time_zone: String,
}

/// The server's time.
#[utoipa::path(get, path = "/api/v1/time", tag = "time", responses((status = 200, body = TimeView)))]
pub async fn time(State(st): State<AppState>) -> Json<TimeView> {
    let now = st.clock.now();
    let status = st.time.as_ref().map(|t| t.status());
    Json(TimeView {
        server_time: format!("{now:.3}"),
        source: status
            .as_ref()
            .map_or("system".into(), |s| s.source.to_string()),
        ntp_server: status.as_ref().and_then(|s| s.ntp_server.clone()),
        last_sync: status.as_ref().and_then(|s| s.last_sync).map(ts),
        estimated_error_ms: status.as_ref().map_or(1000.0, |s| s.estimated_error_ms),
        time_zone: st.settings.time_zone.clone(),
    })
}
