//! # slotcast-store-sqlite — slotcast's embedded storage
//!
//! Implements the `slotcast-store` traits on a SQLite file (`sqlite://path/to/file.db`),
//! the default that needs no server. It owns the connection settings that make SQLite safe
//! for slotcast — WAL journal, `synchronous = FULL` (an acknowledged booking survives a
//! power cut), foreign keys on, a busy timeout, write transactions opened with
//! `BEGIN IMMEDIATE` so concurrent writers queue instead of failing, and opened one at a
//! time in the order asked (`WriteTurns`), so no booking waits on SQLite's unfair busy
//! loop while later ones go through — and its embedded
//! migrations (`migrations/`). The SQL itself is shared with PostgreSQL through
//! `slotcast_store::impl_sql_store!`.

use slotcast_store::StorageError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "center", include_str!("../migrations/0002_center.sql")),
    (
        3,
        "time_indexes",
        include_str!("../migrations/0003_time_indexes.sql"),
    ),
    (4, "stream", include_str!("../migrations/0004_stream.sql")),
    (5, "pickup", include_str!("../migrations/0005_pickup.sql")),
    (6, "account", include_str!("../migrations/0006_account.sql")),
    (
        7,
        "viewer_curve",
        include_str!("../migrations/0007_viewer_curve.sql"),
    ),
    (
        8,
        "charge_events",
        include_str!("../migrations/0008_charge_events.sql"),
    ),
    (9, "cluster", include_str!("../migrations/0009_cluster.sql")),
    (
        10,
        "node_totals_per_node",
        include_str!("../migrations/0010_node_totals_per_node.sql"),
    ),
    (
        11,
        "outages",
        include_str!("../migrations/0011_outages.sql"),
    ),
    (
        12,
        "throttles",
        include_str!("../migrations/0012_throttles.sql"),
    ),
];

/// slotcast's storage on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    turns: slotcast_store::sql::WriteTurns,
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) and migrates the database at `url`,
    /// e.g. `sqlite://data/slotcast.db` or `sqlite:///var/lib/slotcast/slotcast.db`.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StorageError::Config(format!(
                    "database.url {url:?} is not a valid SQLite URL: {e}"
                ))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let file = opts.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Config(format!(
                    "cannot create the database directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(opts)
            .await
            .map_err(|e| {
                StorageError::Unavailable(
                    format!("cannot open SQLite database {}: {e}", file.display()).into(),
                )
            })?;
        sql_impl::migrate(&pool, MIGRATIONS).await?;
        Ok(Self {
            pool,
            turns: slotcast_store::sql::WriteTurns::one_at_a_time(),
        })
    }

    /// The connection pool (for benchmarks comparing against raw statements).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }
}

slotcast_store::impl_sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    backend = "sqlite",
    begin = "BEGIN IMMEDIATE",
    skip_locked = "",
    migration_lock = "",
    mail_hint = ""
);

/// One process has a SQLite database to itself: there is nobody to wake.
impl slotcast_store::Wakeups for SqliteStore {}
