//! Headless Chromium over WebDriver (Debian's `chromium` and `chromium-driver`), with the
//! one thing testkit's browser does not offer: chromedriver's DevTools pass-through
//! (`goog/cdp/execute`), used to run a script in every new document before the page's
//! own scripts (the LL-HLS path hides `MediaSource` from the player that way).

use base64::Engine as _;
use serde_json::{Value, json};
use slotcast_bench::Res;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A running chromedriver; it and every browser it started (its process group) end on
/// drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser (a WebDriver session).
pub struct Session {
    url: String,
    http: reqwest::Client,
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Res<Value> {
    let req = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or_else(|| json!({})).to_string()),
    };
    let res = req
        .send()
        .await
        .map_err(|e| format!("WebDriver {method} {url}: {e}"))?;
    let bytes = res
        .bytes()
        .await
        .map_err(|e| format!("WebDriver {method} {url}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("WebDriver {method} {url}: not JSON: {e}"))?;
    if v["value"]["error"].is_string() {
        return Err(format!(
            "WebDriver {method} {url}: {} {}",
            v["value"]["error"],
            v["value"]["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    Ok(v["value"].clone())
}

impl Driver {
    pub async fn start() -> Res<Driver> {
        let bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or("chromedriver is missing: apt-get install chromium chromium-driver")?;
        if !Path::new(CHROMIUM).exists() {
            return Err("chromium is missing: apt-get install chromium chromium-driver".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(bin)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start chromedriver: {e}"))?;
        let d = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())?,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while d
            .http
            .get(format!("{}/status", d.base))
            .send()
            .await
            .is_err()
        {
            if Instant::now() > until {
                return Err("chromedriver never answered".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(d)
    }

    /// A new headless Chromium with autoplay allowed, muted, `width` × `height`.
    pub async fn session(&self, width: u32, height: u32) -> Res<Session> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                "--disable-crash-reporter", "--disable-breakpad",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                format!("--window-size={width},{height}"),
            ]},
        }}});
        let v = call(
            &self.http,
            "POST",
            &format!("{}/session", self.base),
            Some(caps),
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no WebDriver session: {v}"))?;
        Ok(Session {
            url: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        })
    }
}

impl Session {
    /// Runs `source` in every document this browser opens from now on, before the
    /// document's own scripts (DevTools `Page.addScriptToEvaluateOnNewDocument`).
    pub async fn before_page_scripts(&self, source: &str) -> Res<()> {
        call(
            &self.http,
            "POST",
            &format!("{}/goog/cdp/execute", self.url),
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument",
                        "params": {"source": source}})),
        )
        .await
        .map(drop)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> Res<()> {
        call(
            &self.http,
            "POST",
            &format!("{}/url", self.url),
            Some(json!({ "url": url })),
        )
        .await
        .map(drop)
    }

    /// Runs `script` (a function body; `arguments` are `args`); its result.
    pub async fn exec(&self, script: &str, args: Value) -> Res<Value> {
        call(
            &self.http,
            "POST",
            &format!("{}/execute/sync", self.url),
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Saves a PNG of the window at `path`.
    pub async fn screenshot(&self, path: &Path) -> Res<()> {
        let v = call(&self.http, "GET", &format!("{}/screenshot", self.url), None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().ok_or("screenshot: not base64")?)
            .map_err(|e| format!("screenshot: {e}"))?;
        std::fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// Ends the browser.
    pub async fn close(self) {
        let _ = call(&self.http, "DELETE", &self.url, None).await;
    }
}
