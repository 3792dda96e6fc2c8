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

/// Queuing mail hints the senders of every replica as the transaction commits; a message
/// queued twice (its dedupe key already there) hints nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_hints_the_senders() {
    use futures_util::StreamExt as _;
    use slotcast_store::Wakeups as _;
    use slotcast_store::{MAIL_TOPIC, NewMessage};
    let Some((a, db)) = open().await else {
        return;
    };
    let b = PgStore::open(&db.url).await.expect("open PostgreSQL");
    let mut hints = b.listen(&[MAIL_TOPIC]).await.unwrap().expect("hints");
    let message = NewMessage {
        dedupe_key: "hint/1".into(),
        to: slotcast_domain::EmailAddress::parse("a@example.org").unwrap(),
        subject: "s".into(),
        text: "t".into(),
        html: None,
        ics: None,
        reservation: None,
    };
    let now = slotcast_domain::Timestamp::now();
    assert_eq!(a.enqueue(vec![message.clone()], now).await.unwrap(), 1);
    let wait = std::time::Duration::from_secs(5);
    let got = tokio::time::timeout(wait, hints.next()).await;
    assert_eq!(got.ok().flatten().as_deref(), Some(MAIL_TOPIC));
    assert_eq!(a.enqueue(vec![message], now).await.unwrap(), 0);
    let again = tokio::time::timeout(std::time::Duration::from_secs(1), hints.next()).await;
    assert!(again.is_err(), "a duplicate hinted: {again:?}");
}
