//! The storage contract on PostgreSQL (a fresh database per test; fails in CI when the
//! server is unreachable, is skipped loudly elsewhere).

use slotcast_store::Store;
use slotcast_store_postgres::PgStore;
use slotcast_testkit::pg::TempPg;
use slotcast_testkit::store_contract;
use std::sync::Arc;

async fn open() -> Option<(Arc<dyn Store>, TempPg)> {
    let db = TempPg::create().await?;
    let store = PgStore::open(&db.url).await.expect("open PostgreSQL");
    Some((Arc::new(store), db))
}

store_contract!(open());

/// A hint sent through one connection pool reaches a listener on another (as between
/// replicas), and the listener's stream yields its topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_reach_the_other_replicas() {
    use futures_util::StreamExt as _;
    use slotcast_store::Wakeups as _;
    let Some((a, db)) = open().await else {
        return;
    };
    let b = PgStore::open(&db.url).await.expect("open PostgreSQL");
    let mut hints = b.listen(&["slotcast_nodes"]).await.unwrap().expect("hints");
    a.notify("other_topic").await.unwrap();
    a.notify("slotcast_nodes").await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), hints.next()).await;
    assert_eq!(got.ok().flatten().as_deref(), Some("slotcast_nodes"));
}
