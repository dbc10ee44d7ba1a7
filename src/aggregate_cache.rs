//! Aggregates kept in memory between commands, so that a command on a busy CV does not replay
//! (and decrypt) its whole history first. Measured with bench/: a CV with a few hundred events
//! cost more to load than to change, and durable edits slowed down as CVs grew.
//!
//! The cache is only an optimisation and never decides anything alone: an entry holds the
//! state *and* the sequence it was built to, and a command decided on it appends with that
//! sequence. If anything else wrote to the aggregate meanwhile (the CLI, another server on the
//! same file), the append fails on the log's unique (aggregate, sequence) key, the entry is
//! dropped and the command runs again on state loaded from the log. A command that records
//! nothing (a refusal, a no-op) is decided again on the log's state, since no append checked
//! the cached one (`crate::commands`).

use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::Aggregate;

/// Entries kept per aggregate type; past it, an arbitrary entry makes room.
pub const CAPACITY: usize = 2_000;

/// Aggregate states by id, each with the sequence of its last event.
pub struct AggregateCache<A> {
    entries: Mutex<HashMap<String, (A, usize)>>,
    capacity: usize,
}

impl<A: Aggregate + Clone> AggregateCache<A> {
    /// An empty cache of at most `capacity` aggregates.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The cached state of `id` as a context to decide and commit on.
    pub fn get(&self, id: &str) -> Option<EventStoreAggregateContext<A>> {
        let entries = self.entries();
        let (aggregate, sequence) = entries.get(id)?;
        Some(EventStoreAggregateContext {
            aggregate_id: id.to_owned(),
            aggregate: aggregate.clone(),
            current_sequence: *sequence,
            current_snapshot: None,
        })
    }

    /// Remembers `aggregate` as of `sequence`.
    pub fn put(&self, id: &str, aggregate: A, sequence: usize) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(id) {
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(id.to_owned(), (aggregate, sequence));
    }

    /// Drops `id` (its state may be stale).
    pub fn forget(&self, id: &str) {
        self.entries().remove(id);
    }

    /// How many aggregates are cached.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (A, usize)>> {
        // Each operation leaves the map consistent, so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use domain::Cv;

    use super::*;

    #[test]
    fn an_entry_comes_back_with_its_sequence() {
        let cache = AggregateCache::<Cv>::new(10);
        assert!(cache.get("a").is_none());
        cache.put("a", Cv::default(), 7);
        let context = cache.get("a").expect("cached");
        assert_eq!(context.current_sequence, 7);
        assert_eq!(context.aggregate_id, "a");
        cache.forget("a");
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = AggregateCache::<Cv>::new(3);
        for n in 0..10 {
            cache.put(&n.to_string(), Cv::default(), n);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("9").is_some(), "the newest entry is kept");
    }
}
