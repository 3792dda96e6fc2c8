//! Throw-away PostgreSQL databases. Each test gets its own database on the server at
//! `SLOTCAST_TEST_PG` (default `postgres://slotcast:slotcast@127.0.0.1:5432/postgres`,
//! the role `scripts/test` creates), dropped again when the guard goes out of scope.
//!
//! A test that needs the database to go away and come back (an outage) gets a
//! [`PgCluster`] instead: a PostgreSQL server of its own, which it may stop and start
//! without disturbing the shared server the other tests use.

use crate::TempDir;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The administrative URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("SLOTCAST_TEST_PG")
        .unwrap_or_else(|_| "postgres://slotcast:slotcast@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists while this guard lives.
#[derive(Debug)]
pub struct TempPg {
    admin: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl TempPg {
    /// Creates a fresh database; `None` (after [`crate::real_part_missing`]) when the
    /// server cannot be reached outside CI.
    pub async fn create() -> Option<TempPg> {
        static N: AtomicU64 = AtomicU64::new(0);
        let admin = admin_url();
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                crate::real_part_missing("PostgreSQL", &format!("{admin}: {e}"));
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "slotcast_t_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(TempPg { admin, name, url })
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A private PostgreSQL server (`initdb` + `pg_ctl` from `/usr/lib/postgresql/*/bin` or
/// the `PATH`) in a temporary directory, listening on a free port of 127.0.0.1 with
/// password authentication (superuser `slotcast`, password `slotcast`). When the tests
/// run as root it runs as the `postgres` OS user (PostgreSQL refuses root). Dropping it
/// stops the server and removes the directory.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    as_postgres: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// URL of its `postgres` database.
    pub url: String,
}

impl PgCluster {
    /// Creates and starts a cluster; `None` (after [`crate::real_part_missing`]) when the
    /// PostgreSQL server programs are not installed outside CI. Blocks for a few seconds.
    pub fn create() -> Option<PgCluster> {
        let Some(bin) = server_bin() else {
            crate::real_part_missing(
                "PostgreSQL server programs (initdb, pg_ctl)",
                "not in /usr/lib/postgresql/*/bin nor on PATH",
            );
            return None;
        };
        let dir = TempDir::new("pgcluster");
        let as_postgres = std::fs::metadata(dir.path()).is_ok_and(|m| m.uid() == 0);
        std::fs::write(dir.path().join("pw"), "slotcast\n").expect("write the password file");
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output();
            if !chown.as_ref().is_ok_and(|o| o.status.success()) {
                crate::real_part_missing(
                    "a `postgres` OS user to run a private PostgreSQL as",
                    &format!("chown failed: {chown:?}"),
                );
                return None;
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("find a free port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        let c = PgCluster {
            bin,
            as_postgres,
            port,
            url: format!("postgres://slotcast:slotcast@127.0.0.1:{port}/postgres"),
            dir,
        };
        let data = c.data();
        c.run(
            c.tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "slotcast", "--pwfile=pw", "-E", "UTF8", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg("--no-instructions"),
            "initdb",
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = 32MB\nmax_connections = 60\n",
            c.dir.path().display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut f, conf.as_bytes()).expect("write postgresql.conf");
        c.start();
        Some(c)
    }

    /// Starts the server again (waits until it accepts connections).
    pub fn start(&self) {
        let log = self.dir.path().join("server.log");
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(log)
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
    }

    /// Stops the server (fast shutdown: open sessions are cut), as an outage would.
    pub fn stop(&self) {
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
            "pg_ctl stop",
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(self.dir.path()).env_remove("PGDATA");
        c
    }

    fn run(&self, cmd: &mut Command, what: &str) {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/<version>/bin`
/// (Debian), else the `PATH`.
fn server_bin() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_tools(bin))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .or_else(|| std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_tools(d)))
}
