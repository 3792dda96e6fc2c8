//! The `slotcast` binary against a real slotcastd (in this process, on loopback, SQLite,
//! e-mail to a real SMTP server): sign in, book, confirm with the e-mailed key (the
//! profile is stored encrypted for the device, mode 0600), the clock offset, and one clear
//! line with its exit code for each kind of bad input, writing nothing.

#[path = "../../center/tests/common/smtp.rs"]
mod smtp;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use slotcast_domain::{Clock, Timestamp};
use slotcast_testkit::{ManualClock, TempDir};
use slotcastd::config::Config;
use slotcastd::server::{self, Running};

/// A running server, its clock and its SMTP sink.
struct Server {
    run: Running,
    clock: Arc<ManualClock>,
    inbox: smtp::Inbox,
    _dir: TempDir,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.run.http)
    }
}

async fn server(now: Timestamp) -> Server {
    server_with(now, &[]).await
}

async fn server_with(now: Timestamp, extra: &[(&str, String)]) -> Server {
    let dir = TempDir::new("cli");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mail = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mail_port = mail.local_addr().unwrap().port();
    let inbox = smtp::start_smtp(mail);
    let env = [
        ("DATA_DIR", dir.path().join("data").display().to_string()),
        ("HTTP__LISTEN", format!("127.0.0.1:{port}")),
        ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("RTMP__LISTEN", "127.0.0.1:0".into()),
        ("FILLER__AUTO_GENERATE", "false".into()),
        ("MAIL__TRANSPORT", "smtp".into()),
        ("MAIL__SMTP__HOST", "127.0.0.1".into()),
        ("MAIL__SMTP__PORT", mail_port.to_string()),
        ("MAIL__SMTP__TLS", "none".into()),
    ]
    .into_iter()
    .chain(extra.iter().map(|(k, v)| (*k, v.clone())))
    .map(|(k, v)| (format!("SLOTCAST__{k}"), v));
    let cfg = Config::load(None, env).expect("a valid configuration");
    let clock = Arc::new(ManualClock::new(now));
    let run = server::start(&cfg, Some(clock.clone() as Arc<dyn Clock>))
        .await
        .expect("server starts");
    Server {
        run,
        clock,
        inbox,
        _dir: dir,
    }
}

/// Runs `slotcast` with `args` on `data` and `stdin`.
fn slotcast(data: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_slotcast"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slotcast runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `slotcast login` to `s` as the registered member, typing `password` (a line).
async fn login(s: &Server, data: &Path, password: &str) -> Output {
    let url = s.url();
    run(
        data,
        &["login", "--server", &url, "--email", "cas@example.org"],
        password,
    )
    .await
}

/// `slotcast` run off the async runtime (the server runs on it).
async fn run(data: &Path, args: &[&str], stdin: &str) -> Output {
    let (data, args, stdin) = (
        data.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
        stdin.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slotcast(&data, &args, &stdin)
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn register(s: &Server, email: &str) {
    let body = json!({"email": email, "password": "a long enough password", "display_name": "Cas",
        "tier": "premium", "payment": {"card_number": "4242 4242 4242 4242", "exp_month": 12,
        "exp_year": 2031, "holder": "Cas Ter"}});
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/members", s.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// The reservation key of reservation `id`, from the e-mail the SMTP server received.
async fn key_from_mail(s: &Server, id: &str) -> String {
    for _ in 0..150 {
        let found = s.inbox.lock().unwrap().iter().find_map(|m| {
            let text = m.mail().plain();
            (text.contains("reservation key") && text.contains(&format!("#{id}")))
                .then(|| {
                    text.split_whitespace()
                        .find(|w| {
                            w.len() == 32
                                && w.bytes()
                                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
                        })
                        .map(str::to_owned)
                })
                .flatten()
        });
        if let Some(k) = found {
            return k;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no key e-mail for #{id}");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reserve_confirm_stores_the_profile_encrypted_for_this_device() {
    let s = server("2026-11-21T12:00:00Z".parse().unwrap()).await;
    register(&s, "cas@example.org").await;
    let home = TempDir::new("cli-home");
    let data = home.path().join("slotcast");
    let login = login(&s, &data, "a long enough password\n").await;
    assert!(login.status.success(), "{:?}", text(&login));
    assert_eq!(mode(&data.join("session.json")), 0o600);

    let channels = run(&data, &["channels"], "").await;
    assert!(
        text(&channels).0.contains("medium"),
        "{:?}",
        text(&channels)
    );
    let grid = run(&data, &["availability", "--date", "2026-11-22"], "").await;
    let (out, _) = text(&grid);
    assert!(
        out.contains("small") && out.contains("10:00") && out.contains('.'),
        "{out}"
    );

    let reserve = run(
        &data,
        &[
            "reserve",
            "--channel",
            "small",
            "--start",
            "2026-11-22T10:00:00Z",
            "--slots",
            "2",
            "--title",
            "Terminal show",
            "--invitee",
            "friend@example.org",
            "--yes",
        ],
        "",
    )
    .await;
    let (out, err) = text(&reserve);
    assert!(reserve.status.success(), "{out} {err}");
    assert!(
        out.contains("fee:") && out.contains("confirm before:"),
        "{out}"
    );
    let id = booked(&reserve);

    // Confirm with the key from the e-mail: the profile is stored, encrypted, 0600.
    let key = key_from_mail(&s, &id).await;
    let confirm = run(&data, &["confirm", &id], &format!("{key}\n")).await;
    let (out, err) = text(&confirm);
    assert!(confirm.status.success(), "{out} {err}");
    assert!(
        !out.contains(&key) && !err.contains(&key),
        "the key is never echoed"
    );
    let profile = data.join(format!("profiles/{id}.age"));
    assert_eq!(mode(&profile), 0o600);
    assert_eq!(mode(&data.join("device.key")), 0o600);
    let armored = std::fs::read_to_string(&profile).unwrap();
    assert!(
        armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{armored}"
    );
    let identity: age::x25519::Identity = std::fs::read_to_string(data.join("device.key"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let p = slotcast_center::profile::decrypt(&armored, &identity).expect("it decrypts");
    let p = serde_json::to_value(&p).unwrap();
    assert_eq!(p["reservation_key"], key.as_str(), "{p}");
    assert_eq!(p["reservation"].to_string(), id, "{p}");
    assert!(p["ingest"].to_string().contains("/live"), "{p}");

    // Listed and shown, with the profile stored here.
    let list = run(&data, &["list", "--json"], "").await;
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["status"], "confirmed", "{v}");
    let show = run(&data, &["show", &id], "").await;
    assert!(
        text(&show).0.contains("stored on this device"),
        "{:?}",
        text(&show)
    );
    // Changed and, on another device, registered again.
    let change = run(
        &data,
        &["change", &id, "--title", "Terminal show, live"],
        "",
    )
    .await;
    assert!(change.status.success(), "{:?}", text(&change));
    let other = home.path().join("laptop");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(data.join("session.json"), other.join("session.json")).unwrap();
    let again = run(&other, &["profile", &id, "--key", &key], "").await;
    assert!(again.status.success(), "{:?}", text(&again));
    assert!(other.join(format!("profiles/{id}.age")).exists());
    let out = run(&data, &["logout"], "").await;
    assert!(out.status.success() && !data.join("session.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_shows_the_servers_offset_within_its_error_bound() {
    let ahead = slotcast_domain::jiff::SignedDuration::from_secs(90);
    let s = server(slotcast_domain::jiff::Timestamp::now() + ahead).await;
    register(&s, "cas@example.org").await;
    let home = TempDir::new("cli-time");
    let data = home.path().join("slotcast");
    let login = login(&s, &data, "a long enough password\n").await;
    assert!(login.status.success(), "{:?}", text(&login));
    // The test's clock stands still while the measurement runs: keep it in step.
    let keep = {
        let clock = s.clock.clone();
        tokio::spawn(async move {
            loop {
                clock.set(slotcast_domain::jiff::Timestamp::now() + ahead);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let out = run(&data, &["time", "--json"], "").await;
    keep.abort();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let measured = v["server_ahead_ms"].as_f64().unwrap();
    let bound = v["error_ms"].as_f64().unwrap() + 20.0;
    assert!((measured - 90_000.0).abs() <= bound, "{v}");
    let human = run(&data, &["time"], "").await;
    assert!(
        text(&human).0.contains("behind the server"),
        "{:?}",
        text(&human)
    );
    // Setting the clock is refused clearly where it is not permitted (a `date` that says
    // so stands in here, so that the test never moves this machine's clock).
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("date"),
        "#!/bin/sh\necho 'date: cannot set date: Operation not permitted' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("date"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_slotcast"))
            .arg("--data-dir")
            .arg(&data)
            .args(["time", "--set-clock", "--samples", "2"])
            .env("PATH", &bin)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (_, e) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{e}");
    assert!(
        e.contains("cannot be set here") && e.contains("Operation not permitted"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_clear_line_and_writes_nothing() {
    let s = server("2026-11-21T12:00:00Z".parse().unwrap()).await;
    register(&s, "cas@example.org").await;
    let home = TempDir::new("cli-bad");
    let data = home.path().join("slotcast");
    let one_line = |o: &Output, code: i32, says: &str| {
        let (out, err) = text(o);
        assert_eq!(o.status.code(), Some(code), "{out} {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("slotcast: ") && err.contains(says), "{err}");
        assert!(out.is_empty(), "{out}");
    };
    // Not signed in.
    one_line(&run(&data, &["list"], "").await, 3, "not signed in");
    assert!(!data.exists(), "nothing written");
    // No server there.
    let none = run(
        &data,
        &[
            "login",
            "--server",
            "http://127.0.0.1:9",
            "--email",
            "cas@example.org",
        ],
        "a long enough password\n",
    )
    .await;
    one_line(&none, 6, "cannot reach http://127.0.0.1:9");
    assert!(!data.join("session.json").exists());
    // A wrong password.
    let wrong = login(&s, &data, "not the password\n").await;
    one_line(&wrong, 5, "wrong e-mail address or password");
    assert!(!data.join("session.json").exists());
    let ok = login(&s, &data, "a long enough password\n").await;
    assert!(ok.status.success());
    // An unknown reservation; a wrong key (nothing stored).
    one_line(&run(&data, &["show", "99999999"], "").await, 4, "not found");
    let r = run(
        &data,
        &[
            "reserve",
            "--channel",
            "small",
            "--start",
            "2026-11-22T10:00:00Z",
            "--title",
            "X",
            "--yes",
        ],
        "",
    )
    .await;
    let id = booked(&r);
    let bad_key = run(
        &data,
        &["confirm", &id, "--key", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        "",
    )
    .await;
    one_line(&bad_key, 5, "reservation key is not valid");
    assert!(!data.join(format!("profiles/{id}.age")).exists());
    // A field the server refuses names the field.
    let bad = run(
        &data,
        &[
            "reserve",
            "--channel",
            "small",
            "--start",
            "tomorrow",
            "--title",
            "X",
            "--yes",
        ],
        "",
    )
    .await;
    one_line(&bad, 5, "start");
    // A session the server no longer knows.
    std::fs::write(
        data.join("session.json"),
        json!({"server": s.url(), "token": "x".repeat(43)}).to_string(),
    )
    .unwrap();
    one_line(&run(&data, &["list"], "").await, 3, "the session has ended");
}

/// A free port on loopback (nothing listens there once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// A server with one-minute slots whose node ingests on `rtmp_port` (its profiles name
/// `endpoints`, a TOML list, else the node), a member signed in with the tool, and a
/// confirmed one-slot program `title` at 12:01 whose profile the tool stored: the server,
/// the tool's home, its data directory and the reservation.
async fn one_minute_show(
    title: &str,
    rtmp_port: u16,
    endpoints: Option<String>,
) -> (Server, TempDir, std::path::PathBuf, String) {
    let mut env = vec![
        ("RTMP__LISTEN", format!("127.0.0.1:{rtmp_port}")),
        ("SLOTS__MINUTES", "1".into()),
        ("SLOTS__CONFIRM_LEAD_MINUTES", "1".into()),
        ("SLOTS__CONNECT_BEFORE_SECONDS", "15".into()),
        ("SLOTS__CONNECT_AFTER_SECONDS", "10".into()),
    ];
    env.extend(endpoints.map(|e| ("RTMP__ENDPOINTS", e)));
    let s = server_with("2026-11-21T12:00:00Z".parse().unwrap(), &env).await;
    register(&s, "cas@example.org").await;
    let home = TempDir::new("cli-show");
    let data = home.path().join("slotcast");
    let login = login(&s, &data, "a long enough password\n").await;
    assert!(login.status.success(), "{:?}", text(&login));
    let r = run(
        &data,
        &[
            "reserve",
            "--channel",
            "small",
            "--start",
            "2026-11-21T12:01:00Z",
            "--title",
            title,
            "--yes",
        ],
        "",
    )
    .await;
    let id = booked(&r);
    let key = key_from_mail(&s, &id).await;
    let c = run(&data, &["confirm", &id, "--key", &key], "").await;
    assert!(c.status.success(), "{:?}", text(&c));
    (s, home, data, id)
}

/// The reservation `slotcast reserve` says it booked.
fn booked(o: &Output) -> String {
    text(o)
        .0
        .lines()
        .find_map(|l| l.strip_prefix("booked: reservation "))
        .unwrap_or_else(|| panic!("not booked: {:?}", text(o)))
        .trim()
        .to_owned()
}

/// The server's clock runs on in real time from `from` (the agent reads it through the
/// API, as it would a real server's) until the task is aborted.
fn tick(s: &Server, from: Timestamp) -> tokio::task::JoinHandle<()> {
    let clock = s.clock.clone();
    let node = s.run.node.clone();
    clock.set(from);
    node.clock_changed();
    tokio::spawn(async move {
        let began = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let elapsed = slotcast_domain::jiff::SignedDuration::try_from(began.elapsed()).unwrap();
            clock.set(from + elapsed);
            node.clock_changed();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_goes_on_air_by_itself_through_the_second_endpoint_and_stops_at_the_end() {
    if !slotcast_testkit::media::tool("ffmpeg") {
        return;
    }
    // The first ingest endpoint refuses connections; the second is the node.
    let (rtmp_port, dead) = (free_port(), free_port());
    let endpoints =
        format!(r#"["rtmp://127.0.0.1:{dead}/live", "rtmp://127.0.0.1:{rtmp_port}/live"]"#);
    let (s, _home, data, id) = one_minute_show("Agent show", rtmp_port, Some(endpoints)).await;

    // Started 35 s before the window opens, the agent waits, then connects by itself.
    let _clock = tick(&s, "2026-11-21T12:00:10Z".parse().unwrap());
    let agent = std::process::Command::new(env!("CARGO_BIN_EXE_slotcast"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "agent",
            &id,
            "--source",
            "test",
            "--effect",
            "clock",
            "--effect",
            "title",
            "--remind-minutes",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent runs");
    let status = || async {
        let v: Value = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/programs/{}",
                s.url(),
                slug(&s, &id).await
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v
    };
    // On air at the start: a viewer decodes frames.
    let started = std::time::Instant::now();
    loop {
        let p = status().await;
        if p["state"] == "on_air" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "not on air: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let grant: Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/programs/{}/play",
            s.url(),
            slug(&s, &id).await
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flv = grant["urls"]["flv"]
        .as_str()
        .unwrap()
        .replace("localhost", "127.0.0.1");
    let decoded = tokio::task::spawn_blocking(move || {
        std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                &flv,
                "-frames:v",
                "10",
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    // It stops by itself after the end (12:02).
    let out = tokio::task::spawn_blocking(move || agent.wait_with_output().unwrap())
        .await
        .unwrap();
    let (log, err) = text(&out);
    assert!(out.status.success(), "{log} {err}");
    assert!(log.contains("reminder: \"Agent show\" starts"), "{log}");
    assert!(
        log.contains(&format!("connecting to rtmp://127.0.0.1:{dead}/live")),
        "{log}"
    );
    assert!(
        log.contains(&format!("connecting to rtmp://127.0.0.1:{rtmp_port}/live")),
        "{log}"
    );
    assert!(log.contains("ON AIR"), "{log}");
    assert!(
        log.contains("the program has ended; the agent stops"),
        "{log}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(150));
}

/// The program slug of reservation `id`.
async fn slug(s: &Server, id: &str) -> String {
    let r = s
        .run
        .center
        .store
        .reservation(slotcast_domain::ReservationId(id.parse().unwrap()))
        .await
        .unwrap();
    r.slug
}

/// A tmux server of its own for one test, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0]).stderr(Stdio::null());
        c
    }

    /// What the pane shows.
    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "agent"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn until(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let started = std::time::Instant::now();
        loop {
            let screen = self.screen();
            if f(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(90),
                "{what}: {screen}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_on_air_and_viewers_and_takes_the_extension_offer_by_a_key() {
    if !slotcast_testkit::media::tool("ffmpeg") {
        return;
    }
    if !Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        slotcast_testkit::real_part_missing("tmux", "not on PATH");
        return;
    }
    let (s, _home, data, id) = one_minute_show("Dashboard show", free_port(), None).await;
    let _clock = tick(&s, "2026-11-21T12:00:45Z".parse().unwrap());
    let tmux = Tmux(format!("slotcast-test-{}", std::process::id()));
    let agent = format!(
        "{} --data-dir {} agent {id} --source test",
        env!("CARGO_BIN_EXE_slotcast"),
        data.display()
    );
    let started = tmux
        .cmd()
        .args([
            "new-session",
            "-d",
            "-s",
            "agent",
            "-x",
            "110",
            "-y",
            "16",
            &agent,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    tmux.until("the dashboard on air", |sc| {
        sc.contains("ON AIR") && sc.contains("Dashboard show")
    })
    .await;
    // A viewer joins: the count changes.
    let slug = slug(&s, &id).await;
    let grant: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/programs/{slug}/play", s.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flv = grant["urls"]["flv"].as_str().unwrap().to_owned();
    let mut viewer = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "quiet",
            "-i",
            &flv,
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let screen = tmux
        .until("the viewer counted", |sc| sc.contains("viewers 1"))
        .await;
    let _ = viewer.kill();
    let _ = viewer.wait();
    assert!(screen.contains("extension offered"), "{screen}");
    // `e` takes one more slot.
    tmux.cmd()
        .args(["send-keys", "-t", "agent", "e"])
        .status()
        .unwrap();
    let screen = tmux
        .until("extended", |sc| {
            sc.contains("extended: the program now ends")
        })
        .await;
    // Kept beside the page screenshots, to be looked at.
    let shots = slotcast_testkit::browser::screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("agent-dashboard-terminal.txt"), &screen).unwrap();
    let r = s
        .run
        .center
        .store
        .reservation(slotcast_domain::ReservationId(id.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.schedule.end.to_string(), "2026-11-21T12:03:00Z");
    // `q` stops it.
    tmux.cmd()
        .args(["send-keys", "-t", "agent", "q"])
        .status()
        .unwrap();
    let gone = std::time::Instant::now();
    while tmux
        .cmd()
        .args(["has-session", "-t", "agent"])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            gone.elapsed() < std::time::Duration::from_secs(10),
            "the agent did not stop"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[test]
fn help_and_shell_completions_are_there() {
    let home = TempDir::new("cli-help");
    let help = slotcast(home.path(), &["--help"], "");
    let out = String::from_utf8_lossy(&help.stdout);
    for command in [
        "login",
        "reserve",
        "confirm",
        "agent",
        "time",
        "completions",
    ] {
        assert!(out.contains(command), "{command}: {out}");
    }
    let bash = slotcast(home.path(), &["completions", "bash"], "");
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_slotcast"));
    let agent_help = slotcast(home.path(), &["agent", "--help"], "");
    assert!(String::from_utf8_lossy(&agent_help.stdout).contains("--source"));
}
