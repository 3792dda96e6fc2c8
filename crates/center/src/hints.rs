//! Wake-up hints between replicas: a loop that polls the database waits on [`Hints`]
//! instead of a plain sleep, so that another replica's change (PostgreSQL `NOTIFY`) wakes
//! it at once. Hints may be lost (a dropped connection, SQLite has none), so the poll
//! goes on: every `every` without hints, `HINTED_POLLS` times less often with them.
//! The sending side ([`Hinter`]) sends one hint at a time: a burst of writes costs the
//! database a hint or two, not one each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
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

/// No hint on its way.
const IDLE: u8 = 0;
/// A hint on its way.
const SENDING: u8 = 1;
/// A hint on its way, and a write after it was sent: one more follows.
const AGAIN: u8 = 2;

/// Sends a topic's hint after writes, one at a time: writes made while a hint is on its
/// way make one more hint after it (so that none is hinted only before it committed),
/// however many they are.
#[derive(Debug, Default)]
pub struct Hinter {
    state: Arc<AtomicU8>,
}

impl Hinter {
    /// Hints `topic` through `store` soon (beside the caller's answer, not before it).
    pub fn send(&self, store: &Arc<dyn Store>, topic: &'static str) {
        let store = store.clone();
        self.send_by(move || {
            let store = store.clone();
            async move {
                if let Err(e) = store.notify(topic).await {
                    tracing::warn!(error = %e, topic, "cannot hint the other replicas");
                }
            }
        });
    }

    /// Runs `notify` soon, one at a time as [`Hinter::send`] says.
    fn send_by<F, Fut>(&self, notify: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        if step(&self.state, |s| if s == IDLE { SENDING } else { AGAIN }) != IDLE {
            return;
        }
        let state = self.state.clone();
        tokio::spawn(async move {
            loop {
                notify().await;
                if step(&state, |s| if s == AGAIN { SENDING } else { IDLE }) != AGAIN {
                    return;
                }
            }
        });
    }
}

/// Moves `state` by `f`; the state before.
fn step(state: &AtomicU8, f: impl Fn(u8) -> u8) -> u8 {
    match state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(f(s))) {
        Ok(s) | Err(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::sync::Semaphore;

    use super::*;

    /// A hinter whose hints wait for `gate` and are counted in `sent`.
    fn send(hinter: &Hinter, gate: &Arc<Semaphore>, sent: &Arc<AtomicUsize>) {
        let (gate, sent) = (gate.clone(), sent.clone());
        hinter.send_by(move || {
            let (gate, sent) = (gate.clone(), sent.clone());
            async move {
                gate.acquire().await.expect("gate").forget();
                sent.fetch_add(1, Ordering::SeqCst);
            }
        });
    }

    async fn settle(hinter: &Hinter) {
        while hinter.state.load(Ordering::Acquire) != IDLE {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_burst_of_writes_makes_two_hints_and_a_later_write_one_more() {
        let hinter = Hinter::default();
        let gate = Arc::new(Semaphore::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        // The first write's hint is on its way (held at the gate); a hundred more writes
        // make exactly one hint after it, so none is hinted only before it committed.
        for _ in 0..100 {
            send(&hinter, &gate, &sent);
        }
        tokio::task::yield_now().await;
        assert_eq!(sent.load(Ordering::SeqCst), 0);
        gate.add_permits(10);
        settle(&hinter).await;
        assert_eq!(sent.load(Ordering::SeqCst), 2);
        // Nothing on its way: the next write hints again, once.
        send(&hinter, &gate, &sent);
        settle(&hinter).await;
        assert_eq!(sent.load(Ordering::SeqCst), 3);
    }
}
