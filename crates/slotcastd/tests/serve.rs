//! `slotcastd` as a person runs it: the real binary, started and stopped by signal.

use slotcast_store::ChannelStore;
use slotcast_testkit::TempDir;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn slotcastd(dir: &TempDir, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slotcastd"));
    c.current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("SLOTCAST__HTTP__LISTEN", "127.0.0.1:0")
        .env("SLOTCAST__RTMP__LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Starts `serve` and waits for the address it listens on.
#[allow(clippy::zombie_processes)] // the caller waits in `stop`
fn start(dir: &TempDir, env: &[(&str, &str)]) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = slotcastd(dir, env)
        .arg("serve")
        .spawn()
        .expect("spawn slotcastd");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline - Instant::now())
            .expect("slotcastd did not report its address");
        if let Some(addr) = line.split("listening on http://").nth(1) {
            return (child, addr.trim().parse().expect("address"), rx);
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn stop(mut child: Child, signal: &str) {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "slotcastd exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "slotcastd did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_health_on_embedded_defaults_and_stops_on_signals() {
    let dir = TempDir::new("serve");
    let (child, addr, _log) = start(&dir, &[]);
    let (status, head, body) = get(addr, "/healthz");
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"status":"ok"}"#);
    let server_time = head
        .lines()
        .find_map(|l| l.strip_prefix("server-time: "))
        .expect("Server-Time header");
    assert!(
        server_time.ends_with('z') && server_time.len() == "2026-11-21t19:00:00.000z".len(),
        "{server_time}"
    );
    let (status, _, body) = get(addr, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"database":"sqlite","mail":"ok","scheduler":"ok","status":"ready"}"#
        )
    );
    stop(child, "-TERM");
    assert!(dir.path().join("data/slotcast.db").exists());

    // A second start keeps the seeded demo channels and does not add them again; Ctrl-C stops it.
    let (child, _, _) = start(&dir, &[]);
    stop(child, "-INT");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}/data/slotcast.db", dir.path().display());
    let names: Vec<String> = rt.block_on(async {
        let store = slotcast_store_sqlite::SqliteStore::open(&url)
            .await
            .unwrap();
        store
            .channels()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect()
    });
    assert_eq!(names, vec!["small", "medium", "large"]);
}

#[test]
fn runs_on_postgres_when_the_url_says_so() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(slotcast_testkit::pg::TempPg::create()) else {
        return;
    };
    let dir = TempDir::new("serve-pg");
    let (child, addr, _log) = start(&dir, &[("SLOTCAST__DATABASE__URL", &db.url)]);
    let (status, _, body) = get(addr, "/readyz");
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"database":"postgres","mail":"ok","scheduler":"ok","status":"ready"}"#
        )
    );
    stop(child, "-TERM");
}

fn fails_with(env: &[(&str, &str)]) -> String {
    let dir = TempDir::new("badcfg");
    let out = slotcastd(&dir, env).arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "exit code for {env:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn bad_configuration_is_one_line_naming_the_problem() {
    assert_eq!(
        fails_with(&[("SLOTCAST__DATABASE__URL", "mysql://db/slotcast")]).trim(),
        "slotcastd: invalid configuration key `database.url`: unsupported database URL scheme `mysql`: use sqlite://path/to/file.db or postgres://user:password@host/database"
    );
    assert!(fails_with(&[("SLOTCAST__SLOTS__MINUTES", "7")]).contains("`slots.minutes`"));
    assert!(fails_with(&[("SLOTCAST__QUOTA__SLOTS", "3")]).contains("unknown field `slots`"));
    let dir = TempDir::new("badfile");
    std::fs::write(dir.path().join("bad.toml"), "time_zone = \n").unwrap();
    let out = slotcastd(&dir, &[])
        .args(["--config", "bad.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("slotcastd: config file bad.toml is not valid TOML")
            && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn unreachable_database_is_a_clear_error() {
    let dir = TempDir::new("nodb");
    let out = slotcastd(
        &dir,
        &[(
            "SLOTCAST__DATABASE__URL",
            "postgres://nobody:pw@127.0.0.1:1/none",
        )],
    )
    .arg("serve")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(
            "slotcastd: database unavailable: cannot connect to PostgreSQL at 127.0.0.1:1/none"
        ),
        "{err}"
    );
    assert!(!err.contains("pw@"), "password leaked: {err}");
}

fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

#[test]
fn admin_creates_an_operator_who_can_sign_in() {
    let dir = TempDir::new("operator");
    let mut child = slotcastd(&dir, &[])
        .args([
            "admin",
            "create-operator",
            "--email",
            "Op@Example.org",
            "--name",
            "Ops",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long operator password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("operator Op@Example.org created"));
    let short = slotcastd(&dir, &[])
        .args(["admin", "create-operator", "--email", "x@example.org"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(!short.status.success(), "an empty password is refused");

    let (child, addr, _log) = start(&dir, &[]);
    let (status, body) = post_json(
        addr,
        "/api/v1/sessions",
        r#"{"email":"op@example.org","password":"a long operator password"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(r#""role":"operator""#), "{body}");
    stop(child, "-TERM");
}
