//! The baseline's page: a bare `<video>` on nginx-rtmp's HLS playlist, played by
//! Chromium's own HLS support. The page and the playlist must share an origin (else the
//! canvas that reads the frames is tainted, and nginx-rtmp's configuration sends no CORS
//! headers), so this small server serves the page and passes `/hls/…` through to nginx
//! unchanged (a loopback hop of well under a millisecond).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use slotcast_bench::Res;
use std::net::SocketAddr;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>glass baseline: nginx-rtmp HLS</title>
<style>body{margin:0;background:#222;color:#eee;font:14px sans-serif}
video{width:960px;height:540px;background:#000;display:block}</style></head>
<body><video id="video" src="/hls/bench.m3u8" autoplay muted playsinline></video>
<p>glass baseline: nginx-rtmp HLS in Chromium's own HLS player</p></body></html>"#;

#[derive(Clone)]
struct Upstream {
    nginx: SocketAddr,
    http: reqwest::Client,
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn hls(State(up): State<Upstream>, Path(rest): Path<String>) -> Response {
    let url = format!("http://{}/hls/{rest}", up.nginx);
    let res = match up.http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    match res.bytes().await {
        Ok(b) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, kind)
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(b))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Serves the page at `/` and nginx's `/hls/` on a loopback port; its address.
pub async fn start(nginx: SocketAddr) -> Res<SocketAddr> {
    let up = Upstream {
        nginx,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?,
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/hls/{*rest}", get(hls))
        .with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
