//! LL-HLS of relayed programs, mirrored from their origin: an edge answers its viewers'
//! media playlists, parts and segments with the origin's own — the same numbering, the
//! same bytes, under the same URLs (the origin's media access key) — so every node serves
//! the same playlist of a program and a CDN in front of all nodes caches each part once.
//!
//! The edge holds one play session at the origin per program (opened with the preview
//! token its relay pulls with; it takes no seat there), the viewers' sessions and seats
//! stay its own. Requests are coalesced: viewers asking for the same playlist update (the
//! same `_HLS_msn`/`_HLS_part`) or the same part make one request to the origin, and parts
//! are kept for a minute (at most [`CACHE_BYTES`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use slotcast_domain::playback::{self, query_param};
use tokio::sync::watch;

use crate::channel::Channel;
use crate::error::PlayError;

/// Media kept for the edge's viewers, at most.
pub const CACHE_BYTES: usize = 64 << 20;
/// How long media is kept.
const CACHE_FOR: Duration = Duration::from_secs(60);
/// A request to the origin gives up after this long (a blocking playlist reload waits
/// up to 6 s there).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the origin answered.
#[derive(Debug, Clone)]
struct Fetched {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

type Flight = Shared<BoxFuture<'static, Fetched>>;

/// Requests to the origin in flight, by what they fetch, each with its number (so that a
/// late waiter never forgets a newer one).
#[derive(Debug, Default)]
struct Flights {
    last: u64,
    by_key: HashMap<String, (u64, Flight)>,
}

/// One relayed program's LL-HLS, from its origin. See the [module](self) page.
#[derive(Debug)]
pub struct Mirror {
    /// The origin's preview URL of the program with its token, as the relay has it.
    source: watch::Receiver<String>,
    http: reqwest::Client,
    /// Our session at the origin.
    session: tokio::sync::Mutex<Option<String>>,
    flights: Mutex<Flights>,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    order: VecDeque<(String, Instant)>,
    map: HashMap<String, Fetched>,
    bytes: usize,
}

impl Cache {
    fn get(&self, key: &str) -> Option<Fetched> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: String, f: Fetched, now: Instant) {
        self.bytes += f.body.len();
        if let Some(old) = self.map.insert(key.clone(), f) {
            self.bytes -= old.body.len();
        } else {
            self.order.push_back((key, now));
        }
        while let Some((key, at)) = self.order.front() {
            if self.bytes <= CACHE_BYTES && now.duration_since(*at) < CACHE_FOR {
                break;
            }
            if let Some(old) = self.map.remove(key) {
                self.bytes -= old.body.len();
            }
            self.order.pop_front();
        }
    }
}

impl Mirror {
    /// A mirror of the program the relay pulls from `source`.
    pub(crate) fn new(source: watch::Receiver<String>) -> Mirror {
        Mirror {
            source,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(UPSTREAM_TIMEOUT)
                .build()
                .unwrap_or_default(),
            session: tokio::sync::Mutex::new(None),
            flights: Mutex::default(),
            cache: Mutex::default(),
        }
    }

    /// The origin's base URL and the preview token, from the relay's source.
    fn origin(&self) -> Result<(String, String), PlayError> {
        let source = self.source.borrow().clone();
        let (base, rest) = source
            .split_once("/preview/")
            .ok_or(PlayError::NotFound("origin"))?;
        let token = query_param(rest.split_once('?').map(|(_, q)| q), "token")
            .ok_or(PlayError::NotFound("origin"))?;
        Ok((base.to_owned(), token.to_owned()))
    }

    /// Our session at the origin, opened when there is none.
    async fn session(&self, channel: &str) -> Result<String, PlayError> {
        let mut session = self.session.lock().await;
        if let Some(s) = session.as_ref() {
            return Ok(s.clone());
        }
        let (base, token) = self.origin()?;
        let entry = format!(
            "{base}/live/{channel}/{}?token={token}",
            playback::ENTRY_PLAYLIST
        );
        let got = fetch(&self.http, &entry).await;
        let text = std::str::from_utf8(&got.body).unwrap_or_default();
        let id = text
            .split_once("session=")
            .filter(|_| got.status == StatusCode::OK)
            .map(|(_, rest)| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                    .collect::<String>()
            })
            .filter(|id| !id.is_empty())
            .ok_or(PlayError::OriginUnavailable)?;
        *session = Some(id.clone());
        Ok(id)
    }

    /// The origin's media playlist of the program on `ch` for the viewer's `query` (its
    /// delivery directives); the viewer's session stays here.
    pub(crate) async fn playlist(&self, ch: &Channel, query: Option<&str>) -> crate::http::Answer {
        let channel = &ch.name();
        let directives: String = query
            .unwrap_or_default()
            .split('&')
            .filter(|kv| kv.starts_with("_HLS_"))
            .map(|kv| format!("&{kv}"))
            .collect();
        for _ in 0..2 {
            let session = self.session(channel).await?;
            let (base, _) = self.origin()?;
            let url = format!(
                "{base}/live/{channel}/{}?session={session}{directives}",
                playback::MEDIA_PLAYLIST
            );
            let got = self.fetch_once(url.clone(), url).await;
            if got.status == StatusCode::UNAUTHORIZED {
                // Our session there ran out (or the origin restarted): open another.
                let mut s = self.session.lock().await;
                if s.as_deref() == Some(session.as_str()) {
                    *s = None;
                }
                continue;
            }
            return Ok(answer(ch, got, false));
        }
        Err(PlayError::OriginUnavailable)
    }

    /// The origin's init section, part or segment `file` of `ch` with `query` (the
    /// program and the origin's access key), from the cache when it is there.
    pub(crate) async fn media(&self, ch: &Channel, file: &str, query: &str) -> crate::http::Answer {
        let key = format!("{}/{file}?{query}", ch.name());
        let hit = self.cache.lock().expect("cache lock").get(&key);
        if let Some(hit) = hit {
            return Ok(answer(ch, hit, true));
        }
        let (base, _) = self.origin()?;
        let got = self
            .fetch_once(key.clone(), format!("{base}/live/{key}"))
            .await;
        if got.status == StatusCode::OK {
            self.cache
                .lock()
                .expect("cache lock")
                .put(key, got.clone(), Instant::now());
        }
        Ok(answer(ch, got, true))
    }

    /// Fetches `url`, sharing the request with whoever asks for the same `key` meanwhile.
    async fn fetch_once(&self, key: String, url: String) -> Fetched {
        let (id, flight) = {
            let mut f = self.flights.lock().expect("flights lock");
            match f.by_key.get(&key) {
                Some((id, flight)) => (*id, flight.clone()),
                None => {
                    f.last += 1;
                    let id = f.last;
                    let http = self.http.clone();
                    let flight = async move { fetch(&http, &url).await }.boxed().shared();
                    f.by_key.insert(key.clone(), (id, flight.clone()));
                    (id, flight)
                }
            }
        };
        let got = flight.await;
        let mut f = self.flights.lock().expect("flights lock");
        if f.by_key.get(&key).is_some_and(|(i, _)| *i == id) {
            f.by_key.remove(&key);
        }
        got
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Fetched {
    let gone = |why: String| {
        tracing::warn!(why, "mirror: the origin does not answer");
        Fetched {
            status: StatusCode::BAD_GATEWAY,
            content_type: Some(HeaderValue::from_static("application/json")),
            body: Bytes::from_static(
                br#"{"error":{"code":"origin_unavailable","message":"the program's origin node does not answer"}}"#,
            ),
        }
    };
    let res = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => return gone(e.without_url().to_string()),
    };
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    match res.bytes().await {
        Ok(body) => Fetched {
            status,
            content_type,
            body,
        },
        Err(e) => gone(e.without_url().to_string()),
    }
}

/// The origin's answer as ours (what `ch` sent): media cacheable as the origin made it,
/// playlists never.
fn answer(ch: &Channel, f: Fetched, media: bool) -> Response {
    if f.status == StatusCode::OK {
        ch.sent(f.body.len());
    }
    let mut r = Response::new(Body::from(f.body));
    *r.status_mut() = f.status;
    let h = r.headers_mut();
    if let Some(ct) = f.content_type {
        h.insert(header::CONTENT_TYPE, ct);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if media && f.status == StatusCode::OK {
            "public, max-age=60, immutable"
        } else {
            "no-cache"
        }),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(len: usize) -> Fetched {
        Fetched {
            status: StatusCode::OK,
            content_type: None,
            body: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn the_cache_keeps_a_minute_and_its_bound() {
        let t = Instant::now();
        let mut c = Cache::default();
        c.put("a".into(), media(CACHE_BYTES / 2), t);
        c.put(
            "b".into(),
            media(CACHE_BYTES / 2),
            t + Duration::from_secs(1),
        );
        assert!(c.get("a").is_some() && c.get("b").is_some());
        // Over the bound: the oldest goes.
        c.put("c".into(), media(10), t + Duration::from_secs(2));
        assert!(c.get("a").is_none() && c.get("b").is_some() && c.get("c").is_some());
        assert_eq!(c.bytes, CACHE_BYTES / 2 + 10);
        // A minute on, what came before goes with the next entry.
        c.put("d".into(), media(1), t + Duration::from_secs(62));
        assert!(c.get("b").is_none() && c.get("c").is_none() && c.get("d").is_some());
        assert_eq!((c.bytes, c.order.len(), c.map.len()), (1, 1, 1));
    }
}
