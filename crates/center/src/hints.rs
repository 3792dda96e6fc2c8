//! Wake-up hints between replicas: a loop that polls the database waits on [`Hints`]
//! instead of a plain sleep, so that another replica's change (PostgreSQL `NOTIFY`) wakes
//! it at once. Hints may be lost (a dropped connection, SQLite has none), so the poll
//! goes on: every `every` without hints, `HINTED_POLLS` times less often with them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use slotcast_store::{BoxStream, Store};

/// While hints arrive, the poll behind them runs this many times less often.
const HINTED_POLLS: u32 = 5;

/// Hints arriving this close together make one wake-up.
const HINT_COALESCE: Duration = Duration::from_millis(200);

/// The hints of some topics, listened to again whenever the connection is lost.
pub struct Hints {
    store: Arc<dyn Store>,
    topics: &'static [&'static str],
    stream: Option<BoxStream<'static, String>>,
}

impl Hints {
    /// Hints of `topics` from `store` (listening starts with the first wait).
    pub fn new(store: Arc<dyn Store>, topics: &'static [&'static str]) -> Hints {
        Hints {
            store,
            topics,
            stream: None,
        }
    }

    /// Waits for a hint (with whatever follows it within `HINT_COALESCE`) or for the
    /// poll: `every`, or `HINTED_POLLS` × `every` while listening.
    pub async fn wait(&mut self, every: Duration) {
        if self.stream.is_none() {
            self.stream = self.store.listen(self.topics).await.ok().flatten();
        }
        let Some(stream) = &mut self.stream else {
            return tokio::time::sleep(every).await;
        };
        tokio::select! {
            () = tokio::time::sleep(every * HINTED_POLLS) => {}
            hint = stream.next() => match hint {
                Some(_) => {
                    tokio::time::sleep(HINT_COALESCE).await;
                    while let Some(Some(_)) = stream.next().now_or_never() {}
                }
                // The connection was lost: listen again at the next wait.
                None => self.stream = None,
            },
        }
    }
}
