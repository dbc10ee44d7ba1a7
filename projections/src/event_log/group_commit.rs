//! The write gate and group commit: how this process's appends reach the database.
//!
//! Every writer to the log's database within the process (a command's append, a projector
//! batch) passes the [`WriteGate`] one at a time, in the order they come. Without it they meet
//! in SQLite's write lock, where a writer that finds it taken sleeps in the busy handler (1, 2,
//! 5, 10 ms and longer) however soon the lock is free. Other processes (the CLI) still meet it
//! in SQLite, with the busy timeout.
//!
//! Appends that queue at the gate together are committed together: whoever gets through takes
//! every append waiting and writes them in one transaction, one `INSERT` per append, so a
//! group costs one `BEGIN`, one `COMMIT` and one fsync however many commands it holds. Each
//! append still succeeds or fails on its own: a constraint failure (the optimistic lock on
//! `(aggregate_type, aggregate_id, sequence)`, the refusal of events about an erased person)
//! undoes only the statement that hit it and leaves the transaction open for the others. Any
//! other error fails the whole group, with nothing of it written. No append is reported
//! before the transaction holding it has committed.

use std::sync::{Arc, Mutex};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use sqlx::SqlitePool;
use tokio::sync::{oneshot, MutexGuard, OwnedMutexGuard};

/// The gate, with the appends waiting at it. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct WriteGate {
    lock: Arc<tokio::sync::Mutex<()>>,
    waiting: Arc<Mutex<Vec<Append>>>,
}

/// One command's events, sealed, waiting to be appended, with their payload and metadata as
/// the JSON text that is stored.
struct Append {
    rows: Vec<(SerializedEvent, String, String)>,
    done: oneshot::Sender<Result<(), PersistenceError>>,
}

/// Why a whole group was not written (every append in it gets this).
#[derive(Debug, thiserror::Error)]
#[error("the append could not be committed: {0}")]
struct GroupFailed(String);

impl WriteGate {
    /// Waits for this process's other writers to finish; write while holding the guard.
    pub(crate) async fn enter(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Appends `events` (one command's, sealed) to the log in `pool`, with whatever other
    /// appends are waiting; returns once they are committed, or why not.
    pub(crate) async fn append(
        &self,
        pool: &SqlitePool,
        events: Vec<SerializedEvent>,
    ) -> Result<(), PersistenceError> {
        let (done, mut outcome) = oneshot::channel();
        // The text sqlite-es stored (sqlx encodes a JSON value with serde_json).
        let rows = events
            .into_iter()
            .map(|event| {
                let (payload, metadata) = (event.payload.to_string(), event.metadata.to_string());
                (event, payload, metadata)
            })
            .collect();
        self.queue().push(Append { rows, done });
        tokio::select! {
            biased;
            // Committed by a group that went through the gate ahead of this call.
            result = &mut outcome => return received(result),
            guard = self.lock.clone().lock_owned() => self.lead(pool, guard),
        }
        received(outcome.await)
    }

    /// Commits every waiting append (possibly none: an earlier group took them all), in a task
    /// of its own: a request cancelled meanwhile (a client gone) must not abandon the appends
    /// of others halfway. The gate stays closed until the group is committed and answered.
    fn lead(&self, pool: &SqlitePool, guard: OwnedMutexGuard<()>) {
        let mut group = std::mem::take(&mut *self.queue());
        // A caller that gave up before its append was taken has it withdrawn, unwritten.
        group.retain(|append| !append.done.is_closed());
        if group.is_empty() {
            return;
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, group).await;
            drop(guard);
        });
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Append>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn received(
    result: Result<Result<(), PersistenceError>, oneshot::error::RecvError>,
) -> Result<(), PersistenceError> {
    result.unwrap_or_else(|_| {
        Err(PersistenceError::UnknownError(Box::new(GroupFailed(
            "the writer stopped before answering".to_owned(),
        ))))
    })
}

/// Writes `group` in one transaction and answers each append.
async fn commit(pool: &SqlitePool, group: Vec<Append>) {
    let mut outcomes = Vec::with_capacity(group.len());
    let written = async {
        let mut tx = pool.begin().await?;
        for append in &group {
            // One statement per append, so that its events are stored all or none.
            match super::insert_events(&mut tx, &append.rows).await {
                Ok(()) => outcomes.push(Ok(())),
                // SQLite undid this statement alone; the transaction goes on.
                Err(error) if is_constraint(&error) => outcomes.push(Err(refusal(error))),
                // Anything else may have ended the transaction: stop, write nothing.
                Err(error) => return Err(error),
            }
        }
        tx.commit().await
    }
    .await;
    match written {
        Ok(()) => {
            for (append, outcome) in group.into_iter().zip(outcomes) {
                let _ = append.done.send(outcome);
            }
        }
        Err(error) => {
            tracing::error!(%error, appends = group.len(), "a group of appends failed");
            let message = error.to_string();
            for append in group {
                let failed = GroupFailed(message.clone());
                let _ = append
                    .done
                    .send(Err(PersistenceError::UnknownError(Box::new(failed))));
            }
        }
    }
}

/// The extended result code of a database error, if it is one.
fn code(error: &sqlx::Error) -> Option<i32> {
    match error {
        sqlx::Error::Database(error) => error.code()?.parse().ok(),
        _ => None,
    }
}

/// Whether `error` is a constraint failure (`SQLITE_CONSTRAINT_*`), which rolls back only the
/// statement (`ABORT`, the conflict resolution of every constraint and trigger here).
fn is_constraint(error: &sqlx::Error) -> bool {
    const SQLITE_CONSTRAINT: i32 = 19;
    code(error).is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
}

/// A refused append as cqrs-es expects it: a taken sequence is an optimistic-lock conflict
/// (the command is decided again on fresh state), as sqlite-es reports it.
fn refusal(error: sqlx::Error) -> PersistenceError {
    const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
    if code(&error) == Some(SQLITE_CONSTRAINT_PRIMARYKEY) {
        PersistenceError::OptimisticLockError
    } else {
        PersistenceError::UnknownError(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(aggregate_id: &str, sequence: usize, metadata: serde_json::Value) -> SerializedEvent {
        SerializedEvent::new(
            aggregate_id.to_owned(),
            sequence,
            "Test".to_owned(),
            "Happened".to_owned(),
            "1".to_owned(),
            json!({ "n": sequence }),
            metadata,
        )
    }

    /// Queues one append per entry of `appends` while the gate is held, so that all of them
    /// wait together, then opens it; returns each append's outcome, in order.
    async fn appended_together(
        gate: &WriteGate,
        pool: &SqlitePool,
        appends: Vec<Vec<SerializedEvent>>,
    ) -> Vec<Result<(), PersistenceError>> {
        let count = appends.len();
        let held = gate.enter().await;
        let tasks: Vec<_> = appends
            .into_iter()
            .map(|events| {
                let (gate, pool) = (gate.clone(), pool.clone());
                tokio::spawn(async move { gate.append(&pool, events).await })
            })
            .collect();
        while gate.queue().len() < count {
            tokio::task::yield_now().await;
        }
        drop(held);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    async fn stored(pool: &SqlitePool) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT aggregate_id, sequence FROM events ORDER BY rowid")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_waiting_together_are_committed_together_and_each_stands_alone() {
        let pool = crate::database::open_memory().await.unwrap();
        let gate = WriteGate::default();
        gate.append(&pool, vec![event("taken", 1, json!({}))])
            .await
            .unwrap();
        let appends = vec![
            vec![event("a", 1, json!({})), event("a", 2, json!({}))],
            // The sequence is taken: an optimistic-lock conflict, this append alone.
            vec![event("taken", 1, json!({}))],
            // About a person with no data key (erased): the database refuses it.
            vec![event("b", 1, json!({ "subject": "someone erased" }))],
            vec![event("c", 1, json!({}))],
            // Its second event collides: neither is stored.
            vec![event("d", 1, json!({})), event("taken", 1, json!({}))],
        ];
        let outcomes = appended_together(&gate, &pool, appends).await;

        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        assert!(
            matches!(outcomes[1], Err(PersistenceError::OptimisticLockError)),
            "{:?}",
            outcomes[1]
        );
        assert!(
            matches!(&outcomes[2], Err(PersistenceError::UnknownError(error))
                if error.to_string().contains("erased")),
            "{:?}",
            outcomes[2]
        );
        assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);
        assert!(
            matches!(outcomes[4], Err(PersistenceError::OptimisticLockError)),
            "{:?}",
            outcomes[4]
        );
        // The appends queued in whatever order their tasks ran: compare as sets.
        let mut stored = stored(&pool).await;
        stored.sort();
        let expected = [("a", 1), ("a", 2), ("c", 1), ("taken", 1)];
        assert_eq!(
            stored,
            expected.map(|(id, sequence)| (id.to_owned(), sequence))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_that_fails_otherwise_writes_nothing_and_fails_every_append() {
        let pool = crate::database::open_memory().await.unwrap();
        // An error that is not a constraint failure, when the statement runs.
        sqlx::query(
            "CREATE TRIGGER poison AFTER INSERT ON events WHEN NEW.aggregate_id = 'poison'
             BEGIN SELECT json_extract('not json', '$'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
        let gate = WriteGate::default();
        let appends = vec![
            vec![event("a", 1, json!({}))],
            vec![event("poison", 1, json!({}))],
            vec![event("c", 1, json!({}))],
        ];
        let outcomes = appended_together(&gate, &pool, appends).await;

        assert!(
            outcomes.iter().all(|outcome| matches!(outcome,
                Err(PersistenceError::UnknownError(error)) if error.to_string().contains("malformed JSON"))),
            "{outcomes:?}"
        );
        assert!(stored(&pool).await.is_empty());
        // The gate is open again and the log writable.
        gate.append(&pool, vec![event("a", 1, json!({}))])
            .await
            .unwrap();
        assert_eq!(stored(&pool).await, vec![("a".to_owned(), 1)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_parallel_appends_are_each_stored_once() {
        let pool = crate::database::open_memory().await.unwrap();
        let gate = WriteGate::default();
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let (gate, pool) = (gate.clone(), pool.clone());
                tokio::spawn(async move {
                    // Two appends race for every aggregate's first event.
                    let id = format!("cv{}", n / 2);
                    gate.append(&pool, vec![event(&id, 1, json!({}))]).await
                })
            })
            .collect();
        let mut conflicts = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => {}
                Err(PersistenceError::OptimisticLockError) => conflicts += 1,
                Err(error) => panic!("{error}"),
            }
        }
        assert_eq!(conflicts, 100);
        let stored = stored(&pool).await;
        let ids: std::collections::BTreeSet<_> = stored.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!((stored.len(), ids.len()), (100, 100));
    }
}
