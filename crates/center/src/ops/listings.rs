//! The facts behind the viewer listings — the same for every viewer — kept in memory until
//! a write that could change them. Today's live, the guide and the program page are the
//! hottest reads of the service; with this cache they cost no query between two writes.
//!
//! Every use case that writes a reservation, a pickup or a channel calls
//! [`Listings::changed`] after its write (booking, confirmation, program change,
//! cancellation, extension, the scheduler's state changes, pickups, channel edits). A
//! query that raced a write is stored under the generation it started in, so it is never
//! served after that write. What moves with time (on air, ended) and the seats taken are
//! worked out for each request from these facts, not cached. The publisher's `live`
//! transition changes nothing a listing shows (a confirmed and a live program list alike)
//! and does not invalidate.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use slotcast_domain::Timestamp;
use slotcast_store::{Channel, Member, Reservation};

/// A listed program's facts: its reservation, channel and broadcaster.
pub type Fact = (Reservation, Channel, Member);

/// Most entries kept per kind; past it the kind starts over (a bound on what requests for
/// many different days or slugs can make us hold).
const MAX_ENTRIES: usize = 4096;

type Entries<K> = Mutex<HashMap<K, (u64, Arc<Vec<Fact>>)>>;

/// The cache (one per center).
#[derive(Debug, Default)]
pub struct Listings {
    generation: AtomicU64,
    days: Entries<(Timestamp, Timestamp)>,
    slugs: Entries<String>,
    featured: Entries<()>,
    channels: Mutex<Option<(u64, Arc<Vec<Channel>>)>>,
}

impl Listings {
    /// Something a listing shows may have changed: forget everything.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The facts of `key`, from the cache or from `load` (run outside any lock).
    async fn get<K, F>(
        &self,
        entries: &Entries<K>,
        key: K,
        load: F,
    ) -> crate::error::ApiResult<Arc<Vec<Fact>>>
    where
        K: Hash + Eq,
        F: Future<Output = crate::error::ApiResult<Vec<Fact>>>,
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
}
