//! Views computed from the read models, kept until the read models move on.
//!
//! The read models change only when the projector applies events, and every change moves its
//! checkpoint (`projections::projector::read_position`). A view computed at one position is
//! therefore valid for as long as the position stays the same, and reading the position is one
//! lookup by primary key. Busy admin pages (the dashboard, the audit trail) use this so that
//! their cost per view does not grow with the data (measured with bench/: the dashboard's
//! dozen queries, the audit trail's page query and name lookups).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Views by key, each computed at a read-model position. Keeps only views of the newest
/// position it has seen, at most `capacity` of them.
pub struct ViewMemo<K> {
    entries: Mutex<Entries<K>>,
    capacity: usize,
}

struct Entries<K> {
    position: i64,
    views: HashMap<K, minijinja::Value>,
}

impl<K: Eq + Hash> ViewMemo<K> {
    /// An empty memo of at most `capacity` views.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries {
                position: i64::MIN,
                views: HashMap::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// The view of `key` computed at `position`, if there is one.
    pub fn get(&self, position: i64, key: &K) -> Option<minijinja::Value> {
        let entries = self.entries();
        if entries.position != position {
            return None;
        }
        entries.views.get(key).cloned()
    }

    /// Keeps `view` of `key`, computed at `position`. A view of an older position than the
    /// newest kept is not stored; a newer position drops every older view.
    pub fn put(&self, position: i64, key: K, view: minijinja::Value) {
        let mut entries = self.entries();
        if position < entries.position {
            return;
        }
        if position > entries.position {
            entries.position = position;
            entries.views.clear();
        }
        if entries.views.len() >= self.capacity {
            entries.views.clear();
        }
        entries.views.insert(key, view);
    }

    /// The view of `key` at `position`: the kept one, else `compute`'s, which is then kept.
    pub async fn get_or_compute<E, F>(
        &self,
        position: i64,
        key: K,
        compute: F,
    ) -> Result<minijinja::Value, E>
    where
        F: std::future::Future<Output = Result<minijinja::Value, E>>,
    {
        if let Some(view) = self.get(position, &key) {
            return Ok(view);
        }
        let view = compute.await?;
        self.put(position, key, view.clone());
        Ok(view)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<K>> {
        // Every operation leaves the map consistent, so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The memos of the admin pages.
pub struct Memos {
    /// Dashboard figures by (minute, days): the "last 24 hours" windows and today's date
    /// move with the clock, so a view is also bound to its minute.
    pub dashboard: ViewMemo<(i64, u32)>,
    /// Audit-trail pages by their query string.
    pub audit: ViewMemo<String>,
}

impl Default for Memos {
    fn default() -> Self {
        Self {
            dashboard: ViewMemo::new(16),
            audit: ViewMemo::new(64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_valid_at_its_position_only() {
        let memo = ViewMemo::<u32>::new(4);
        memo.put(10, 1, minijinja::Value::from("at ten"));
        assert_eq!(memo.get(10, &1).unwrap().as_str(), Some("at ten"));
        assert!(memo.get(11, &1).is_none(), "the read models moved on");
        assert!(memo.get(10, &2).is_none());
    }

    #[test]
    fn a_newer_position_drops_older_views_and_an_older_one_is_not_kept() {
        let memo = ViewMemo::<u32>::new(4);
        memo.put(10, 1, minijinja::Value::from("old"));
        memo.put(12, 2, minijinja::Value::from("new"));
        assert!(memo.get(10, &1).is_none());
        memo.put(11, 3, minijinja::Value::from("late"));
        assert!(
            memo.get(11, &3).is_none(),
            "computed before the newest: not stored"
        );
        assert!(memo.get(12, &2).is_some());
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let memo = ViewMemo::<u32>::new(2);
        for key in 0..5 {
            memo.put(1, key, minijinja::Value::from(key));
        }
        assert!(memo.get(1, &4).is_some());
        let kept = (0..5).filter(|key| memo.get(1, key).is_some()).count();
        assert!(kept <= 2, "{kept}");
    }
}
