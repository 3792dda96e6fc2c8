//! The facts behind the viewer listings — the same for every viewer — kept in memory until
//! a write that could change them. Today's live, the guide and the program page are the
//! hottest reads of the service; with this cache they cost no query between two writes.
//!
//! Every use case that writes a reservation, a pickup, a channel or a broadcaster's name
//! calls [`Center::listings_changed`] after its write (booking, confirmation, program
//! change, cancellation, extension, the scheduler's state changes, pickups, channel
//! edits, names), which hints the other center replicas ([`LISTINGS_TOPIC`]); each follows
//! the hints ([`Listings::follow`]) and, since a hint can be lost, forgets everything
//! at each of its polls too. A
//! query that raced a write is stored under the generation it started in, so it is never
//! served after that write. What moves with time (on air, ended) and the seats taken are
//! worked out for each request from these facts, not cached. The publisher's `live`
//! transition changes nothing a listing shows (a confirmed and a live program list alike)
//! and does not invalidate.
//!
//! A day's availability is kept the same way, for as long as the first slot still
//! bookable stays the same. The answers rendered from these (the API's JSON) are kept
//! too ([`Listings::answer`]), for as long as they are rendered from the same facts with
//! the same state of what moves.

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use slotcast_domain::Timestamp;
use slotcast_store::{Channel, LISTINGS_TOPIC, Member, Reservation, Store};

use crate::hints::{Hinter, Hints};
use crate::state::Center;

use super::reservations::Availability;

/// A listed program's facts: its reservation, channel and broadcaster.
pub type Fact = (Reservation, Channel, Member);

/// Most entries kept per kind; past it the kind starts over (a bound on what requests for
/// many different days or slugs can make us hold).
const MAX_ENTRIES: usize = 4096;

type Entries<K, V = Vec<Fact>> = Mutex<HashMap<K, (u64, Arc<V>)>>;

/// What an answer says it answers: its kind and the span it covers.
pub type AnswerKey = (&'static str, Timestamp, Timestamp);

/// An answer rendered from `source` (kept, so that it is never freed and its address
/// reused while the answer is kept) when what moves was `moving`.
struct Answer {
    source: Arc<dyn Any + Send + Sync>,
    moving: Vec<u8>,
    body: Bytes,
}

/// The cache (one per center).
#[derive(Default)]
pub struct Listings {
    generation: AtomicU64,
    days: Entries<(Timestamp, Timestamp)>,
    slugs: Entries<String>,
    featured: Entries<()>,
    channels: Mutex<Option<(u64, Arc<Vec<Channel>>)>>,
    /// By (start of the day, end of the day, first slot still bookable).
    availability: Entries<(Timestamp, Timestamp, Timestamp), Availability>,
    answers: Mutex<HashMap<AnswerKey, Answer>>,
    /// Tells the other replicas.
    hinter: Hinter,
}

impl std::fmt::Debug for Listings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listings")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Listings {
    /// Something a listing shows may have changed: forget everything.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets the listings whenever another replica hints that it changed them, and at
    /// each poll (every `every` without hints, less often with them), until `stop`.
    /// Only where replicas share the database (role `center`).
    pub async fn follow(
        &self,
        store: Arc<dyn Store>,
        every: std::time::Duration,
        stop: impl Future<Output = ()>,
    ) {
        let mut stop = std::pin::pin!(stop);
        let mut hints = Hints::new(store, &[LISTINGS_TOPIC]);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = hints.wait(every) => self.changed(),
            }
        }
    }

    fn now(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The facts of `key`, from the cache or from `load` (run outside any lock).
    async fn get<K, V, F>(
        &self,
        entries: &Entries<K, V>,
        key: K,
        load: F,
    ) -> crate::error::ApiResult<Arc<V>>
    where
        K: Hash + Eq,
        F: Future<Output = crate::error::ApiResult<V>>,
    {
        let generation = self.now();
        if let Some((g, facts)) = entries.lock().expect("listings lock").get(&key)
            && *g == generation
        {
            return Ok(facts.clone());
        }
        let facts = Arc::new(load.await?);
        let mut map = entries.lock().expect("listings lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (generation, facts.clone()));
        Ok(facts)
    }

    /// The listed programs overlapping `[from, to)`.
    pub(crate) async fn day<F>(
        &self,
        from: Timestamp,
        to: Timestamp,
        load: F,
    ) -> crate::error::ApiResult<Arc<Vec<Fact>>>
    where
        F: Future<Output = crate::error::ApiResult<Vec<Fact>>>,
    {
        self.get(&self.days, (from, to), load).await
    }

    /// The program with `slug` (one fact; found programs only are kept).
    pub(crate) async fn slug<F>(
        &self,
        slug: &str,
        load: F,
    ) -> crate::error::ApiResult<Arc<Vec<Fact>>>
    where
        F: Future<Output = crate::error::ApiResult<Vec<Fact>>>,
    {
        self.get(&self.slugs, slug.to_owned(), load).await
    }

    /// Every channel (the guide's grid has a column for each).
    pub async fn channels(
        &self,
        store: &dyn slotcast_store::Store,
    ) -> crate::error::ApiResult<Arc<Vec<Channel>>> {
        let generation = self.now();
        if let Some((g, channels)) = &*self.channels.lock().expect("listings lock")
            && *g == generation
        {
            return Ok(channels.clone());
        }
        let channels = Arc::new(store.channels().await?);
        *self.channels.lock().expect("listings lock") = Some((generation, channels.clone()));
        Ok(channels)
    }

    /// The featured programs.
    pub(crate) async fn featured<F>(&self, load: F) -> crate::error::ApiResult<Arc<Vec<Fact>>>
    where
        F: Future<Output = crate::error::ApiResult<Vec<Fact>>>,
    {
        self.get(&self.featured, (), load).await
    }

    /// A day's availability, by (start, end, first slot still bookable).
    pub(crate) async fn availability<F>(
        &self,
        key: (Timestamp, Timestamp, Timestamp),
        load: F,
    ) -> crate::error::ApiResult<Arc<Availability>>
    where
        F: Future<Output = crate::error::ApiResult<Availability>>,
    {
        self.get(&self.availability, key, load).await
    }

    /// The answer `key` rendered from `source` while what moves (on air, full, …) is
    /// `moving`: the kept one if it was rendered from this very `source` with the same
    /// `moving`, else `render`'s (kept for the next request).
    pub fn answer<S: Any + Send + Sync>(
        &self,
        key: AnswerKey,
        source: &Arc<S>,
        moving: Vec<u8>,
        render: impl FnOnce() -> Bytes,
    ) -> Bytes {
        let same_source =
            |a: &Answer| std::ptr::addr_eq(Arc::as_ptr(&a.source), Arc::as_ptr(source));
        if let Some(a) = self.answers.lock().expect("listings lock").get(&key)
            && same_source(a)
            && a.moving == moving
        {
            return a.body.clone();
        }
        let body = render();
        let mut map = self.answers.lock().expect("listings lock");
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let source: Arc<dyn Any + Send + Sync> = source.clone();
        map.insert(
            key,
            Answer {
                source,
                moving,
                body: body.clone(),
            },
        );
        body
    }
}

impl Center {
    /// A write changed what the listings show: this replica forgets them at once, the
    /// others when the hint reaches them (sent beside the answer, not before it).
    pub fn listings_changed(&self) {
        self.listings.changed();
        self.listings.hinter.send(&self.store, LISTINGS_TOPIC);
    }
}
