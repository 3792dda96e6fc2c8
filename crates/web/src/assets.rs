//! The static assets, embedded in the binary: the stylesheet and the first-party ES
//! modules. Pages link them with `?v=<hash of every asset>`, so a new build gets new
//! addresses and a versioned address can be cached for a year.

use std::sync::LazyLock;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every asset: name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "site.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/site.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/app.js"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/player.js"),
    ),
    (
        "mse.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/mse.js"),
    ),
    (
        "llhls.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/llhls.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/dashboard.js"),
    ),
    (
        "filler.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/filler.js"),
    ),
    (
        "member.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/member.js"),
    ),
];

/// A short hash of every asset (FNV-1a), the `?v=` of their addresses.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, _, bytes) in FILES {
            for b in *bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:012x}", h & 0xffff_ffff_ffff)
    });
    &VERSION
}

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some((_, kind, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let current = query.as_deref() == Some(&format!("v={}", version()));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        *bytes,
    )
        .into_response()
}
