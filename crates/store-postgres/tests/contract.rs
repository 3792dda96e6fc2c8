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
