//! Throw-away PostgreSQL databases. Each test gets its own database on the server at
//! `SLOTCAST_TEST_PG` (default `postgres://slotcast:slotcast@127.0.0.1:5432/postgres`,
//! the role `scripts/test` creates), dropped again when the guard goes out of scope.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
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
