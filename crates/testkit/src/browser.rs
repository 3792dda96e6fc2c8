//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`): the few commands the page tests need — open a page, run a script,
//! resize, take a screenshot — spoken directly as WebDriver's JSON over HTTP.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::real_part_missing;

/// A headless Chromium session; the driver and the browser end when it is dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Browser {
    /// Ends the driver and every browser process it started: they share the driver's
    /// process group (killing the driver alone would leave Chromium running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.driver.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";

impl Browser {
    /// Starts `chromedriver` and a headless Chromium (autoplay allowed) at `width` ×
    /// `height`; `None` when either is missing (a failure in CI).
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let (Some(driver_bin), true) = (driver_bin, Path::new(CHROMIUM).exists()) else {
            real_part_missing("chromium and chromium-driver", "not installed");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        while b
            .http
            .get(format!("{}/status", b.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                "--disable-crash-reporter", "--disable-breakpad",
                format!("--window-size={width},{height}"),
            ]},
        }}});
        let session = b.call("POST", "/session", Some(caps)).await;
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        Some(b)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let res = req.send().await.expect("chromedriver answers");
        let v: Value = serde_json::from_slice(&res.bytes().await.expect("a body")).expect("JSON");
        if v["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Chooses the file at `path` in the file input `selector` finds (as a person picking
    /// it in the dialog).
    pub async fn choose_file(&self, selector: &str, path: &Path) {
        let el = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {selector}"))
            .to_owned();
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": path.display().to_string()})),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and gives its result.
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs an async `script` whose last argument is the callback to call with the result.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until `script` returns something truthy; its value. Panics after `limit`,
    /// naming `what` and the last value.
    pub async fn until(&self, what: &str, script: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let v = self.exec(script, json!([])).await;
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy {
                return v;
            }
            assert!(
                started.elapsed() < limit,
                "{what}: not within {limit:?} (last {v})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The page's text.
    pub async fn text(&self) -> String {
        self.exec("return document.body.innerText", json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Resizes the window.
    pub async fn size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the window as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let v = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("a PNG");
        std::fs::create_dir_all(dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }
}

/// Where tests keep screenshots: `$SLOTCAST_ARTIFACTS/screenshots`, by default
/// `target/artifacts/screenshots` of the workspace (CI keeps that folder).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("SLOTCAST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/artifacts"))
        .join("screenshots")
}

/// axe-core's script, installed by `scripts/test` from npm (`$SLOTCAST_AXE`, by default
/// `~/.cache/slotcast/node/node_modules/axe-core/axe.min.js`); `None` when missing (a
/// failure in CI).
pub fn axe_source() -> Option<String> {
    let path = std::env::var_os("SLOTCAST_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/slotcast/node/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            real_part_missing("axe-core", &format!("{}: {e}", path.display()));
            None
        }
    }
}

impl Browser {
    /// Runs axe-core on the open page: its serious and critical violations (`id`,
    /// `impact`, `help`, the first offending element).
    pub async fn accessibility_problems(&self, axe: &str) -> Vec<Value> {
        let script = format!(
            "{axe}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{resultTypes: ['violations']}}).then(r => done(r.violations\
               .filter(v => v.impact === 'serious' || v.impact === 'critical')\
               .map(v => ({{id: v.id, impact: v.impact, help: v.help, where: v.nodes[0] && v.nodes[0].html}}))))\
             .catch(e => done([{{id: 'axe-failed', help: String(e)}}]));"
        );
        match self.exec_async(&script, json!([])).await {
            Value::Array(v) => v,
            other => vec![other],
        }
    }
}
