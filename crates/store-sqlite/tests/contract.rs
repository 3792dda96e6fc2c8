//! The storage contract on SQLite (a fresh database file per test).

use slotcast_store::Store;
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{TempDir, store_contract};
use std::sync::Arc;

async fn open() -> Option<(Arc<dyn Store>, TempDir)> {
    let dir = TempDir::new("sqlite");
    let url = format!("sqlite://{}/slotcast.db", dir.path().display());
    let store = SqliteStore::open(&url).await.expect("open SQLite");
    Some((Arc::new(store), dir))
}

store_contract!(open());

/// One process has a SQLite database to itself: no hints, its users poll.
#[tokio::test]
async fn there_are_no_hints_to_listen_to() {
    let (store, _dir) = open().await.expect("SQLite opens");
    assert!(store.listen(&["slotcast_nodes"]).await.unwrap().is_none());
    store.notify("slotcast_nodes").await.unwrap();
}
