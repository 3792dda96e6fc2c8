//! Chooses the storage backend by the URL's scheme.

use slotcast_store::{StorageError, Store};
use slotcast_store_postgres::PgStore;
use slotcast_store_sqlite::SqliteStore;
use std::sync::Arc;

enum Backend {
    Sqlite,
    Postgres,
}

fn backend(url: &str) -> Result<Backend, String> {
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    match scheme {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        "" => Err(format!(
            "{url:?} has no scheme: use sqlite://path/to/file.db or postgres://user:password@host/database"
        )),
        other => Err(format!(
            "unsupported database URL scheme `{other}`: use sqlite://path/to/file.db or postgres://user:password@host/database"
        )),
    }
}

/// Checks that the URL names a backend slotcast has.
pub fn check_url(url: &str) -> Result<(), String> {
    backend(url).map(|_| ())
}

/// Opens and migrates the database at `url`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StorageError> {
    Ok(match backend(url).map_err(StorageError::Config)? {
        Backend::Sqlite => Arc::new(SqliteStore::open(url).await?),
        Backend::Postgres => Arc::new(PgStore::open(url).await?),
    })
}
