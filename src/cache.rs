//! In-memory caches of what reads need, kept correct by invalidation from the write path.
//!
//! A miss hands out a *ticket* (the slot's generation). Filling with a ticket succeeds only
//! if nothing invalidated the key in between, so a reader that loaded a value just before a
//! change committed can never put that stale value back after the change's invalidation.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

struct Slot<V> {
    generation: u64,
    value: Option<V>,
}

/// The result of a lookup.
#[derive(Debug)]
pub enum Lookup<V> {
    /// Cached.
    Hit(V),
    /// Not cached: load it, then [`ViewCache::fill`] with this ticket.
    Miss(Ticket),
}

/// Permission to fill one key, valid until the key is invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// A bounded, sharded map whose entries are invalidated by writers.
pub struct ViewCache<K, V> {
    shards: Vec<Mutex<HashMap<K, Slot<V>>>>,
    hasher: RandomState,
    generation: AtomicU64,
    per_shard: usize,
}

impl<K, V> std::fmt::Debug for ViewCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCache").field("per_shard", &self.per_shard).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ViewCache<K, V> {
    /// A cache holding about `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            generation: AtomicU64::new(1),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, Slot<V>>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding the lock cannot leave a slot half-written, so the data is
        // still consistent; keep serving rather than propagate the poison.
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Looks `key` up; a miss reserves a ticket for filling it.
    pub fn get(&self, key: &K) -> Lookup<V> {
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get(key) {
            return match &slot.value {
                Some(v) => Lookup::Hit(v.clone()),
                None => Lookup::Miss(Ticket(slot.generation)),
            };
        }
        if shard.len() >= self.per_shard {
            // Dropping slots is always safe: tickets for them simply stop matching.
            shard.clear();
        }
        let generation = self.next_generation();
        shard.insert(key.clone(), Slot { generation, value: None });
        Lookup::Miss(Ticket(generation))
    }

    /// Stores a loaded value unless the key was invalidated since the ticket was issued.
    pub fn fill(&self, key: &K, ticket: Ticket, value: V) -> bool {
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(slot) if slot.generation == ticket.0 => {
                slot.value = Some(value);
                true
            }
            _ => false,
        }
    }

    /// Stores `value` written by the caller itself (write-through), unless the cached value
    /// is at least as new (`is_newer(cached)` false). Outstanding tickets become void.
    pub fn put(&self, key: &K, value: V, is_newer: impl FnOnce(&V) -> bool) {
        let generation = self.next_generation();
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(slot) => {
                slot.generation = generation;
                if slot.value.as_ref().is_none_or(is_newer) {
                    slot.value = Some(value);
                }
            }
            None => {
                if shard.len() >= self.per_shard {
                    shard.clear();
                }
                shard.insert(key.clone(), Slot { generation, value: Some(value) });
            }
        }
    }

    /// Forgets `key`; outstanding tickets for it become void.
    pub fn invalidate(&self, key: &K) {
        let generation = self.next_generation();
        let mut shard = self.shard(key);
        if let Some(slot) = shard.get_mut(key) {
            slot.generation = generation;
            slot.value = None;
        }
    }

    /// Forgets everything (e.g. after missing change notifications).
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        }
    }
}

/// A small map whose entries expire, for values that may lag a little behind the database
/// (authenticated API tokens; revocation through kiln clears it at once).
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    /// Bumped by every `clear`: a value read from the database before a clear must not be
    /// stored after it (a token revoked while its lookup was running would live on).
    generation: std::sync::atomic::AtomicU64,
    ttl: Duration,
    capacity: usize,
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    /// A cache whose entries live for `ttl`, holding at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { entries: Mutex::new(HashMap::new()), generation: std::sync::atomic::AtomicU64::new(0), ttl, capacity }
    }

    /// The generation to pass to [`TtlCache::insert`], taken before reading the value.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The value, if present and fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    /// Stores a value read while the cache was at `generation`, unless it was cleared since.
    pub fn insert(&self, generation: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation() != generation {
            return;
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_after_miss(cache: &ViewCache<u32, &'static str>, key: u32, value: &'static str) -> bool {
        match cache.get(&key) {
            Lookup::Miss(ticket) => cache.fill(&key, ticket, value),
            Lookup::Hit(_) => false,
        }
    }

    #[test]
    fn a_filled_value_is_served_until_invalidated() {
        let cache = ViewCache::new(100);
        assert!(fill_after_miss(&cache, 1, "v1"));
        assert!(matches!(cache.get(&1), Lookup::Hit("v1")));
        cache.invalidate(&1);
        assert!(matches!(cache.get(&1), Lookup::Miss(_)));
    }

    #[test]
    fn a_value_loaded_before_an_invalidation_is_never_stored() {
        let cache = ViewCache::new(100);
        let Lookup::Miss(stale_ticket) = cache.get(&7) else { panic!("miss") };
        // A change commits and invalidates while the slow reader is still loading.
        cache.invalidate(&7);
        assert!(!cache.fill(&7, stale_ticket, "old"), "the stale value is refused");
        assert!(fill_after_miss(&cache, 7, "new"));
        assert!(matches!(cache.get(&7), Lookup::Hit("new")));
    }

    #[test]
    fn evicted_slots_void_their_tickets_and_clear_voids_all() {
        let cache = ViewCache::new(SHARDS);
        let Lookup::Miss(ticket) = cache.get(&1) else { panic!("miss") };
        for k in 2..200 {
            let _ = cache.get(&k);
        }
        let _ = cache.get(&1);
        assert!(!cache.fill(&1, ticket, "late"), "a ticket from before an eviction does not match a new slot");
        assert!(fill_after_miss(&cache, 3, "x"));
        cache.clear();
        assert!(matches!(cache.get(&3), Lookup::Miss(_)));
    }

    #[test]
    fn write_through_keeps_the_newest_and_voids_readers_tickets() {
        let cache: ViewCache<u32, (i64, &str)> = ViewCache::new(100);
        let Lookup::Miss(reader) = cache.get(&1) else { panic!("miss") };
        cache.put(&1, (3, "v3"), |old| old.0 < 3);
        assert!(!cache.fill(&1, reader, (2, "v2 read before the write")));
        cache.put(&1, (2, "late v2"), |old| old.0 < 2);
        assert!(matches!(cache.get(&1), Lookup::Hit((3, "v3"))), "an older write never replaces a newer one");
    }

    #[test]
    fn ttl_entries_expire() {
        let cache = TtlCache::new(Duration::from_millis(30), 10);
        cache.insert(cache.generation(), "a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn a_value_read_before_a_clear_is_not_stored_after_it() {
        let cache = TtlCache::new(Duration::from_secs(30), 10);
        let before = cache.generation();
        cache.clear(); // e.g. the token was revoked while its lookup ran
        cache.insert(before, "token", "still active?");
        assert_eq!(cache.get(&"token"), None);
        cache.insert(cache.generation(), "token", "read after");
        assert_eq!(cache.get(&"token"), Some("read after"));
    }
}
