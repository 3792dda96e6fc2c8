//! The REST API as the tool uses it: JSON in and out, the bearer token of the session,
//! the API's errors (`{"error": {"code", "message", "fields"}}`) turned into [`Error`]s.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Error, Result};

/// A client of one server, signed in or not.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Api {
    /// A client of `server` (its base address), with `token` when signed in.
    pub fn new(server: &str, token: Option<String>) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            server: server.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// The server's base address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Calls `method path` with `body`; the answer's JSON (`null` when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| Error::Unreachable {
            server: self.server.clone(),
            reason: e.to_string(),
        })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| Error::Unreachable {
            server: self.server.clone(),
            reason: e.to_string(),
        })?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        if status == StatusCode::UNAUTHORIZED && self.token.is_some() {
            return Err(Error::SessionEnded);
        }
        let e = &v["error"];
        let mut message = e["message"]
            .as_str()
            .map_or_else(|| format!("the server answered {status}"), str::to_owned);
        if let Some(fields) = e["fields"].as_object().filter(|f| !f.is_empty()) {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("")))
                .collect();
            message = format!("{message}: {}", parts.join("; "));
        }
        Err(Error::Refused {
            status: status.as_u16(),
            code: e["code"].as_str().unwrap_or("").to_owned(),
            message,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// A Server-Sent Events stream of the API, one JSON event at a time.
#[derive(Debug)]
pub struct Events {
    res: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next event's data, `None` when the stream ends.
    pub async fn next_event(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(v) = serde_json::from_str(&data) {
                    return Some(v);
                }
                continue;
            }
            let chunk = self.res.chunk().await.ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            if self.buf.len() > 1 << 20 {
                return None;
            }
        }
    }
}

impl Api {
    /// Opens the event stream at `path` (no overall time limit: it lasts).
    pub async fn events(&self, path: &str) -> Result<Events> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut req = http.get(format!("{}/api/v1{path}", self.server));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|e| Error::Unreachable {
            server: self.server.clone(),
            reason: e.to_string(),
        })?;
        if !res.status().is_success() {
            return Err(Error::Refused {
                status: res.status().as_u16(),
                code: String::new(),
                message: format!("the event stream answered {}", res.status()),
            });
        }
        Ok(Events {
            res,
            buf: String::new(),
        })
    }
}
