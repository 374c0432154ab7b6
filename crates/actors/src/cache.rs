//! A small map whose entries are believed for a fixed time: what a node keeps of the
//! database's answers on the hottest read paths (getscores asks for the same account
//! and map again and again), so that those cost a lookup instead of a query.
//!
//! Bounded: at [`TtlCache::capacity`] entries the expired ones are dropped, and if that
//! frees nothing the whole map is (a cache refills itself; memory must not grow).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Entries by key, each believed for `ttl` after it was put.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // Every critical section is one map operation: a poisoned map is still whole.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key`, unless it is older than the time-to-live.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let (put, value) = entries.get(key)?;
        (put.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (put, _)| put.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets `key` (its value changed).
    pub fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_entry_is_believed_for_its_time_to_live_only() {
        let cache = TtlCache::new(Duration::from_secs(5), 10);
        cache.put("map", 1);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(cache.get(&"map"), Some(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get(&"map"), None);
        cache.put("map", 2);
        cache.remove(&"map");
        assert_eq!(cache.get(&"map"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_the_expired_first_and_never_grows_past_its_capacity() {
        let cache = TtlCache::new(Duration::from_secs(5), 3);
        cache.put(1, ());
        tokio::time::advance(Duration::from_secs(6)).await;
        cache.put(2, ());
        cache.put(3, ());
        cache.put(4, ());
        assert_eq!(cache.get(&1), None);
        assert!(
            [2, 3, 4].iter().all(|k| cache.get(k).is_some()),
            "only 1 had expired"
        );
        cache.put(5, ());
        assert!(cache.lock().len() <= cache.capacity());
        assert_eq!(cache.get(&5), Some(()));
    }
}
