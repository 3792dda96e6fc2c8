//! The product flow a broadcaster and viewers go through, over slotcast's REST API: an
//! operator creates a channel, a premium member books it from the next slot boundary,
//! reads the reservation key from the e-mail outbox, confirms; viewers ask for play
//! tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};
use slotcast_domain::jiff::Timestamp;
use std::path::Path;
use std::time::{Duration, Instant};

pub const OPERATOR: &str = "operator@fanout.example.org";
pub const PASSWORD: &str = "a long enough fanout bench password";
const MEMBER: &str = "broadcaster@fanout.example.org";

/// A confirmed program.
pub struct Program {
    pub slug: String,
    pub key: String,
    pub channel: String,
    /// When the connect window opens (Unix seconds).
    pub connect_from: i64,
    /// When the program starts: viewers get the publisher's media from then on, filler
    /// before (Unix seconds).
    pub start: i64,
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<(StatusCode, Value), String> {
    let mut req = c.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let st = r.status();
    let b = r.bytes().await.map_err(|e| format!("POST {url}: {e}"))?;
    Ok((st, serde_json::from_slice(&b).unwrap_or(Value::Null)))
}

async fn sign_in(c: &reqwest::Client, api: &str, email: &str) -> Result<String, String> {
    let (st, v) = post(
        c,
        &format!("{api}/sessions"),
        None,
        &json!({"email": email, "password": PASSWORD}),
    )
    .await?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("sign in {email}: {st} {v}"))
}

/// Books and confirms a program on a new channel of `capacity` viewers at 2500 kbit/s,
/// from the next slot boundary at least `lead` ahead, for `minutes` one-minute slots.
pub async fn book(
    base: &str,
    data: &Path,
    capacity: u32,
    minutes: u32,
    lead: Duration,
) -> Result<Program, String> {
    let c = super::viewer::http_client();
    let api = format!("{base}/api/v1");
    let op = sign_in(&c, &api, OPERATOR).await?;
    let channel = "fanout";
    let (st, v) = post(
        &c,
        &format!("{api}/channels"),
        Some(&op),
        &json!({"name": channel, "capacity": capacity, "bitrate_kbps": 2500,
                "tariff_minor": 0, "currency": "JPY"}),
    )
    .await?;
    let channel_id = v["id"]
        .as_i64()
        .ok_or_else(|| format!("create channel: {st} {v}"))?;
    let (st, v) = post(
        &c,
        &format!("{api}/members"),
        None,
        &json!({"email": MEMBER, "password": PASSWORD, "display_name": "Fanout",
                "tier": "premium", "payment": {"card_number": "4242424242424242",
                "exp_month": 12, "exp_year": 2035, "holder": "Fanout Bench"}}),
    )
    .await?;
    if st != StatusCode::CREATED {
        return Err(format!("register the broadcaster: {st} {v}"));
    }
    let member = sign_in(&c, &api, MEMBER).await?;
    let now = Timestamp::now().as_second();
    let start = (now + lead.as_secs() as i64).div_euclid(60) * 60 + 60;
    let start_ts = Timestamp::from_second(start).map_err(|e| e.to_string())?;
    let (st, v) = post(
        &c,
        &format!("{api}/reservations"),
        Some(&member),
        &json!({"channel": channel_id, "start": start_ts.to_string(), "slots": minutes,
                "visibility": "public", "title": "fanout bench"}),
    )
    .await?;
    let (Some(id), Some(slug)) = (v["id"].as_i64(), v["slug"].as_str()) else {
        return Err(format!("book: {st} {v}"));
    };
    let slug = slug.to_owned();
    let connect_from = v["connect_window"]["from"]
        .as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map_or(start - 10, |t| t.as_second());
    let key = key_from_outbox(&data.join("outbox"), Duration::from_secs(20)).await?;
    let (st, v) = post(
        &c,
        &format!("{api}/reservations/{id}/confirm"),
        Some(&member),
        &json!({"reservation_key": key}),
    )
    .await?;
    if st != StatusCode::OK {
        return Err(format!("confirm: {st} {v}"));
    }
    Ok(Program {
        slug,
        key,
        channel: channel.to_owned(),
        connect_from,
        start,
    })
}

/// Waits for the key e-mail and reads the key from its `rtmp://…/live/<key>` line.
async fn key_from_outbox(dir: &Path, within: Duration) -> Result<String, String> {
    let until = Instant::now() + within;
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "eml")
                    && let Ok(text) = std::fs::read_to_string(&p)
                    && let Some(k) = find_key(&text)
                {
                    return Ok(k);
                }
            }
        }
        if Instant::now() > until {
            return Err(format!(
                "no reservation key e-mail in {} within {} s",
                dir.display(),
                within.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The reservation key in an e-mail: after `/live/`, 32 characters of a–z and 2–7. The
/// body may be 7-bit, quoted-printable or base64.
pub fn find_key(eml: &str) -> Option<String> {
    let qp = eml.replace("=\r\n", "").replace("=\n", "");
    let mut texts = vec![qp];
    // base64 parts: runs of base64 lines.
    let mut block = String::new();
    for line in eml.lines().chain([""]) {
        let l = line.trim();
        if !l.is_empty()
            && l.len() <= 100
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        {
            block.push_str(l);
        } else {
            if block.len() >= 40
                && let Some(d) = base64(&block)
            {
                texts.push(String::from_utf8_lossy(&d).into_owned());
            }
            block.clear();
        }
    }
    for t in texts {
        let mut rest = t.as_str();
        while let Some(at) = rest.find("/live/") {
            let cand: String = rest[at + 6..].chars().take(32).collect();
            if cand.len() == 32
                && cand
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
            {
                return Some(cand);
            }
            rest = &rest[at + 6..];
        }
    }
    None
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Play URLs for one viewer.
pub struct PlayUrls {
    pub flv: String,
    pub mse: String,
    pub hls: String,
}

/// `n` play grants (one token per viewer), 32 requests at a time.
pub async fn play_urls(base: &str, slug: &str, n: usize) -> Result<Vec<PlayUrls>, String> {
    let c = super::viewer::http_client();
    let url = format!("{base}/api/v1/programs/{slug}/play");
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (c, url, sem) = (c.clone(), url.clone(), sem.clone());
            tokio::spawn(async move {
                let _permit = sem.acquire().await.map_err(|e| e.to_string())?;
                let (st, v) = post(&c, &url, None, &json!({})).await?;
                let u = &v["urls"];
                match (u["flv"].as_str(), u["mse"].as_str(), u["hls"].as_str()) {
                    (Some(f), Some(m), Some(h)) => Ok(PlayUrls {
                        flv: f.to_owned(),
                        mse: m.to_owned(),
                        hls: h.to_owned(),
                    }),
                    _ => Err(format!("play grant: {st} {v}")),
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// The path and query of a URL (`http://host:port/p?q` → `/p?q`).
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |x| x.1);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_in_plain_qp_and_base64_mail() {
        let key = "abcdefghijklmnopqrstuvwxyz234567";
        let plain = format!("stream to rtmp://h:1935/live/{key}\n");
        assert_eq!(find_key(&plain).as_deref(), Some(key));
        let qp = format!(
            "stream to rtmp://h:1935/live/{}=\r\n{}\r\n",
            &key[..10],
            &key[10..]
        );
        assert_eq!(find_key(&qp).as_deref(), Some(key));
        // "rtmp://h/live/<key>" in base64.
        let b64 = "cnRtcDovL2gvbGl2ZS9hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejIzNDU2Nw==";
        assert_eq!(
            find_key(&format!("head\n\n{b64}\n\n")).as_deref(),
            Some(key)
        );
        assert_eq!(
            path_of("http://127.0.0.1:80/live/x.flv?token=t"),
            "/live/x.flv?token=t"
        );
    }
}
