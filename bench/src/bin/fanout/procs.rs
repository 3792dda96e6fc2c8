//! The servers under test as child processes, and what `/proc` says about them: CPU time
//! (utime + stime) and resident memory (VmRSS) of a process and its children.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of `/proc/<pid>/stat` after the command name (index 0 is the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and its children (one level: nginx's master and its worker).
pub fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if stat_fields(p).and_then(|f| f.get(1).and_then(|x| x.parse::<u32>().ok()))
                == Some(pid)
            {
                out.push(p);
            }
        }
    }
    out
}

/// utime + stime of `pids`, in ticks.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .sum()
}

/// VmRSS of `pids`, in KiB.
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum()
}

/// A free loopback port (bound and released; the server binds it right after).
pub fn free_addr() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("find a free port: {e}"))
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, what: &str, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} does not listen on {addr}"))
}

/// A child process stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
pub struct Server {
    pub child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian's libnginx-mod-rtmp puts the module.
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx with the RTMP module, one worker, in a directory of its own.
pub struct Nginx {
    pub server: Server,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
}

impl Nginx {
    pub fn start(dir: &Path, max_viewers: usize) -> Result<Self, String> {
        if !Path::new("/usr/sbin/nginx").exists() || !Path::new(RTMP_MODULE).exists() {
            return Err(format!(
                "nginx or {RTMP_MODULE} is missing: apt-get install nginx libnginx-mod-rtmp"
            ));
        }
        for d in ["hls", "tmp", "logs"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
        }
        let rtmp = free_addr()?;
        let http = free_addr()?;
        let d = dir.display();
        let conns = max_viewers * 2 + 200;
        let conf = format!(
            "# Written by bench/fanout for one run.
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
worker_rlimit_nofile {nofile};
load_module {RTMP_MODULE};
events {{ worker_connections {conns}; }}
rtmp {{
    server {{
        listen {rtmp};
        chunk_size 4096;
        application live {{
            live on;
            hls on;
            hls_path {d}/hls;
            hls_fragment 1s;
            hls_playlist_length 4s;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen {http};
        location /hls/ {{
            alias {d}/hls/;
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            add_header Cache-Control no-cache;
        }}
    }}
}}
",
            nofile = conns * 2,
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).map_err(|e| e.to_string())?;
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start nginx: {e}"))?;
        let server = Server { child };
        wait_listening(rtmp, "nginx", Duration::from_secs(10)).map_err(|e| {
            let log = std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
            format!("{e}: {log}")
        })?;
        Ok(Self { server, rtmp, http })
    }

    /// Master and worker.
    pub fn pids(&self) -> Vec<u32> {
        family(self.server.pid())
    }
}

/// `slotcastd` with a data directory and listen addresses of its own.
pub struct Slotcastd {
    pub server: Server,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub data: PathBuf,
}

/// What every slotcastd of a run shares: one-minute slots, a file outbox, text logs.
fn env(
    cmd: &mut Command,
    data: &Path,
    http: SocketAddr,
    rtmp: SocketAddr,
    extra: &[(&str, String)],
) {
    cmd.env("SLOTCAST__DATA_DIR", data)
        .env("SLOTCAST__HTTP__LISTEN", http.to_string())
        .env("SLOTCAST__RTMP__LISTEN", rtmp.to_string())
        .env("SLOTCAST__PUBLIC_URL", format!("http://{http}"))
        .env("SLOTCAST__SLOTS__MINUTES", "1")
        .env("SLOTCAST__SLOTS__CONNECT_BEFORE_SECONDS", "10")
        .env("SLOTCAST__QUOTA__SLOTS_PER_MONTH", "1000")
        .env("SLOTCAST__MAIL__TRANSPORT", "file")
        .env("SLOTCAST__LOG__FORMAT", "text");
    for (k, v) in extra {
        cmd.env(format!("SLOTCAST__{k}"), v);
    }
}

/// Runs `slotcastd admin <args>` with `stdin` as its input; its standard output.
pub fn admin(
    bin: &Path,
    data: &Path,
    args: &[&str],
    extra: &[(&str, String)],
    stdin: &str,
) -> Result<String, String> {
    std::fs::create_dir_all(data).map_err(|e| e.to_string())?;
    let mut admin = Command::new(bin);
    admin.arg("admin").args(args);
    env(&mut admin, data, free_addr()?, free_addr()?, extra);
    let mut child = admin
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {} admin: {e}", bin.display()))?;
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        // A command that reads nothing may have exited already.
        let _ = writeln!(input, "{stdin}");
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "slotcastd admin {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Slotcastd {
    /// Creates the operator (`admin create-operator`), then starts `serve` (role `all`).
    pub fn start(
        bin: &Path,
        data: &Path,
        op_email: &str,
        op_password: &str,
    ) -> Result<Self, String> {
        admin(
            bin,
            data,
            &["create-operator", "--email", op_email],
            &[],
            op_password,
        )?;
        Self::serve(bin, data, "all", &[])
    }

    /// Starts `serve --role <role>` with `extra` settings (`SECTION__KEY`, value).
    pub fn serve(
        bin: &Path,
        data: &Path,
        role: &str,
        extra: &[(&str, String)],
    ) -> Result<Self, String> {
        std::fs::create_dir_all(data).map_err(|e| e.to_string())?;
        let http = free_addr()?;
        let rtmp = free_addr()?;
        let log = std::fs::File::create(data.join("slotcastd.log")).map_err(|e| e.to_string())?;
        let mut serve = Command::new(bin);
        serve.args(["serve", "--role", role]);
        env(&mut serve, data, http, rtmp, extra);
        let child = serve
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start slotcastd: {e}"))?;
        let server = Server { child };
        wait_listening(http, "slotcastd (HTTP)", Duration::from_secs(30))
            .map_err(|e| format!("{e}; its log: {}", tail(&data.join("slotcastd.log"))))?;
        Ok(Self {
            server,
            http,
            rtmp,
            data: data.to_owned(),
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        vec![self.server.pid()]
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.data.join("slotcastd.log"))
    }
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}
