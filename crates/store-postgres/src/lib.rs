//! # slotcast-store-postgres — slotcast's storage on PostgreSQL
//!
//! Implements the `slotcast-store` traits on PostgreSQL (`postgres://user:pass@host/db`),
//! for operators who run the center and several stream nodes against one database. It owns
//! the connection pool settings, its embedded migrations (`migrations/`, applied under an
//! advisory lock so that two processes starting at once do not race) and the
//! `FOR UPDATE SKIP LOCKED` lease of outbox rows, so several centers can send e-mail
//! without taking the same message. The SQL itself is shared with SQLite through
//! `slotcast_store::impl_sql_store!`; under PostgreSQL's default READ COMMITTED
//! isolation its conditional updates and unique claims keep every invariant.

use slotcast_store::StorageError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
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

/// slotcast's storage on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    turns: slotcast_store::sql::WriteTurns,
}

impl PgStore {
    /// Connects to and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StorageError> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| {
            StorageError::Config(format!("database.url is not a valid PostgreSQL URL: {e}"))
        })?;
        let target = format!(
            "{}:{}/{}",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("(default)")
        );
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(opts)
            .await
            .map_err(|e| {
                StorageError::Unavailable(
                    format!("cannot connect to PostgreSQL at {target}: {e}").into(),
                )
            })?;
        sql_impl::migrate(&pool, MIGRATIONS).await?;
        Ok(Self {
            pool,
            turns: slotcast_store::sql::WriteTurns::together(),
        })
    }

    /// The connection pool (for benchmarks comparing against raw statements).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

slotcast_store::impl_sql_store!(
    PgStore,
    sqlx::Postgres,
    backend = "postgres",
    begin = "BEGIN",
    skip_locked = " FOR UPDATE SKIP LOCKED",
    migration_lock = "SELECT pg_advisory_xact_lock(7140512301)",
    mail_hint = "SELECT pg_notify($1, '')"
);

/// Hints go through PostgreSQL's `NOTIFY`: delivered to every session `LISTEN`ing on the
/// topic, whichever replica it belongs to.
#[async_trait::async_trait]
impl slotcast_store::Wakeups for PgStore {
    async fn notify(&self, topic: &str) -> Result<(), StorageError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(topic)
            .execute(&self.pool)
            .await
            .map_err(|e| StorageError::Unavailable(e.into()))?;
        Ok(())
    }

    async fn listen(
        &self,
        topics: &[&str],
    ) -> Result<Option<slotcast_store::BoxStream<'static, String>>, StorageError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(|e| StorageError::Unavailable(e.into()))?;
        listener
            .listen_all(topics.iter().copied())
            .await
            .map_err(|e| StorageError::Unavailable(e.into()))?;
        // `try_recv` answers `None` when the connection was lost (hints may have been
        // missed meanwhile): the stream ends there and the caller listens again.
        let hints = futures_util::stream::unfold(listener, |mut l| async move {
            match l.try_recv().await {
                Ok(Some(n)) => Some((n.channel().to_owned(), l)),
                Ok(None) | Err(_) => None,
            }
        });
        Ok(Some(Box::pin(hints)))
    }
}
