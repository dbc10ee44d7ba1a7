//! Runs commands against aggregates: load, decide, append, then bring the read models up to date.
//!
//! We drive cqrs-es' `PersistedEventStore` directly instead of going through `CqrsFramework`
//! because callers need the events a command produced (a login attempt is decided by the
//! aggregate, and the page depends on whether it emitted `LoggedIn` or `LoginFailed`), and
//! because the projector, not cqrs-es query dispatch, maintains the read models.
//!
//! Commands on one aggregate take turns within the process ([`AggregateTurns`]). Optimistic
//! concurrency alone is not enough here: a login decides by verifying the password, which takes
//! tens of milliseconds (and may first wait for one of the few hashing slots), so parallel
//! logins to one account — even wrong passwords anyone can send — all load the same version,
//! all but one lose the append, and after a few re-runs the losers failed with a 500. Taking
//! turns makes them wait instead. The `AggregateConflict` re-run stays for the writers this
//! lock cannot see: another process on the same database (the CLI beside the server).
//!
//! Aggregates are decided on state kept in memory when there is some ([`AggregateCache`]); the
//! append checks it was current, and refusals are decided again on the log's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};

use crate::aggregate_cache::{self, AggregateCache};
use domain::{
    Cv, CvCommand, CvError, CvEvent, User, UserCommand, UserError, UserEvent, UserServices,
};
use projections::{EventLog, EventMetadata, Projector};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// Times a command is re-run from fresh state when another command on the same aggregate
/// committed first (`AggregateConflict`: in practice another process, see the module docs).
const ATTEMPTS: usize = 5;

/// Why a command produced no events.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Rejected(E),
    /// It kept losing races with other commands on the same aggregate.
    #[error("the record kept changing while the command ran")]
    Conflict,
    /// Storage failed.
    #[error(transparent)]
    Infrastructure(anyhow::Error),
}

/// Executes commands and keeps the read models in step.
pub struct CommandBus {
    log: EventLog,
    users: PersistedEventStore<EventLog, User>,
    cvs: PersistedEventStore<EventLog, Cv>,
    user_cache: AggregateCache<User>,
    cv_cache: AggregateCache<Cv>,
    user_services: UserServices,
    projector: Arc<Projector>,
    turns: AggregateTurns,
}

impl CommandBus {
    /// A bus over `log`, with `projector` brought up to date after every command.
    pub fn new(log: EventLog, user_services: UserServices, projector: Arc<Projector>) -> Self {
        Self {
            users: PersistedEventStore::new_event_store(log.clone()),
            cvs: PersistedEventStore::new_event_store(log.clone()),
            log,
            user_cache: AggregateCache::new(aggregate_cache::CAPACITY),
            cv_cache: AggregateCache::new(aggregate_cache::CAPACITY),
            user_services,
            projector,
            turns: AggregateTurns::default(),
        }
    }

    /// Runs a command on the user `id` and returns the events it recorded. When this returns,
    /// the read models include them (the caller may redirect to a page that shows them).
    ///
    /// The command runs in a task of its own, to the end: when the client goes away
    /// mid-request, axum drops the handler, and a command dropped with it could have its
    /// events committed (by a group commit, see `projections::event_log`) but neither the
    /// aggregate cache nor the read models told (found by bench/: the edit form then showed a
    /// version one behind the log, and the next edit was refused as a conflict).
    pub async fn user(
        self: &Arc<Self>,
        id: Uuid,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Vec<UserEvent>, CommandError<UserError>> {
        let bus = Arc::clone(self);
        let metadata = metadata.clone();
        to_the_end(async move {
            let events = {
                let _turn = bus.turns.take(id).await;
                execute(
                    &bus.log,
                    &bus.users,
                    &bus.user_cache,
                    &bus.user_services,
                    id,
                    command,
                    &metadata,
                )
                .await?
            };
            bus.bring_read_models_up_to_date().await?;
            Ok(events)
        })
        .await
    }

    /// Runs a command on the CV `id`; as [`CommandBus::user`].
    pub async fn cv(
        self: &Arc<Self>,
        id: Uuid,
        command: CvCommand,
        metadata: &EventMetadata,
    ) -> Result<Vec<CvEvent>, CommandError<CvError>> {
        let bus = Arc::clone(self);
        let metadata = metadata.clone();
        to_the_end(async move {
            let events = {
                let _turn = bus.turns.take(id).await;
                execute(
                    &bus.log,
                    &bus.cvs,
                    &bus.cv_cache,
                    &(),
                    id,
                    command,
                    &metadata,
                )
                .await?
            };
            bus.bring_read_models_up_to_date().await?;
            Ok(events)
        })
        .await
    }
}

/// Runs `command` in a task of its own and waits for it (see [`CommandBus::user`]).
async fn to_the_end<T, E>(
    command: impl std::future::Future<Output = Result<T, CommandError<E>>> + Send + 'static,
) -> Result<T, CommandError<E>>
where
    T: Send + 'static,
    E: std::error::Error + Send + 'static,
{
    tokio::spawn(command)
        .await
        .map_err(|error| CommandError::Infrastructure(error.into()))?
}

impl CommandBus {
    /// Waits until the read models include what was just appended (the command's task runs
    /// it to the end, see [`CommandBus::user`]).
    async fn bring_read_models_up_to_date<E: std::error::Error>(
        &self,
    ) -> Result<(), CommandError<E>> {
        let ticket = self.projector.ticket();
        self.projector
            .catch_up_for(ticket)
            .await
            .map_err(|error| CommandError::Infrastructure(error.into()))?;
        Ok(())
    }
}

/// Decides `command` on the aggregate's state (cached, else loaded from the log) and appends
/// what it decided; re-runs on fresh state when the append finds the aggregate moved on.
async fn execute<A>(
    log: &EventLog,
    store: &PersistedEventStore<EventLog, A>,
    cache: &AggregateCache<A>,
    services: &A::Services,
    id: Uuid,
    command: A::Command,
    metadata: &EventMetadata,
) -> Result<Vec<A::Event>, CommandError<A::Error>>
where
    A: Aggregate + Clone,
    A::Command: Clone,
    A::Error: Send + Sync + 'static,
{
    let id = id.to_string();
    for attempt in 0..ATTEMPTS {
        let cached = if attempt == 0 { cache.get(&id) } else { None };
        let from_cache = cached.is_some();
        let mut context = match cached {
            Some(context) => context,
            // Replayed a page at a time (cqrs-es' `load_aggregate` holds the whole history).
            None => log
                .replay::<A>(&id)
                .await
                .map_err(|error| CommandError::Infrastructure(error.into()))?,
        };
        let sink = EventSink::default();
        let decided = context
            .aggregate()
            .handle(command.clone(), services, &sink)
            .await;
        let events = sink.collect().await;
        if from_cache && (decided.is_err() || events.is_empty()) {
            // Only an append checks that the cached state was current. A refusal or a no-op
            // appends nothing, so it is decided again on the state in the log (the cache may be
            // behind it when a request was dropped between its commit and the cache update).
            cache.forget(&id);
            continue;
        }
        decided.map_err(CommandError::Rejected)?;
        if events.is_empty() {
            return Ok(events);
        }
        // `handle` applied its events as it wrote them (cqrs-es' `EventSink::write`): this is
        // the state after them, as of the sequence the commit will reach.
        let next = context.aggregate.clone();
        let sequence = context.current_sequence + events.len();
        match store
            .commit(events.clone(), context, metadata.to_map())
            .await
        {
            Ok(_) => {
                cache.put(&id, next, sequence);
                return Ok(events);
            }
            Err(AggregateError::AggregateConflict) => {
                cache.forget(&id);
                continue;
            }
            Err(error) => {
                cache.forget(&id);
                return Err(infrastructure(error));
            }
        }
    }
    Err(CommandError::Conflict)
}

/// One async lock per aggregate with a command running or waiting, so that commands on one
/// aggregate run one at a time while commands on different aggregates run in parallel. Keyed by
/// the aggregate id alone: ids are random UUIDs, never shared between a user and a CV.
#[derive(Default)]
struct AggregateTurns {
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one command on one aggregate; the next command's turn starts when it drops.
struct Turn<'a> {
    turns: &'a AggregateTurns,
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
}

impl AggregateTurns {
    /// Waits until no other command of this process runs on aggregate `id`.
    async fn take(&self, id: Uuid) -> Turn<'_> {
        let lock = Arc::clone(self.map().entry(id).or_default());
        let guard = lock.lock_owned().await;
        Turn {
            turns: self,
            id,
            guard: Some(guard),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        // The map is only ever left consistent (one insert or remove per lock), so a panic
        // elsewhere while it was held does not make it unusable.
        self.locks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drop for Turn<'_> {
    /// Ends the turn and forgets the aggregate's lock when no one else holds or awaits it, so
    /// the map only holds aggregates that are busy right now.
    fn drop(&mut self) {
        let mut locks = self.turns.map();
        drop(self.guard.take());
        // Under the map lock no one can pick up a new handle, and every waiter holds one: the
        // map's handle alone means nobody is waiting. (A waiter whose request was dropped
        // while it waited leaves the entry behind until that aggregate's next command.)
        if locks
            .get(&self.id)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

fn infrastructure<E, T>(error: AggregateError<T>) -> CommandError<E>
where
    E: std::error::Error,
    T: std::error::Error + Send + Sync + 'static,
{
    CommandError::Infrastructure(anyhow::anyhow!("{error}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn commands_on_one_aggregate_take_turns() {
        let turns = AggregateTurns::default();
        let id = Uuid::new_v4();
        let first = turns.take(id).await;
        let second = tokio::time::timeout(Duration::from_millis(50), turns.take(id)).await;
        assert!(second.is_err(), "the second waits while the first runs");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), turns.take(id)).await;
        assert!(second.is_ok(), "and goes once the first is done");
    }

    #[tokio::test]
    async fn commands_on_different_aggregates_do_not_wait_for_each_other() {
        let turns = AggregateTurns::default();
        let _first = turns.take(Uuid::new_v4()).await;
        let other = tokio::time::timeout(Duration::from_millis(50), turns.take(Uuid::new_v4()));
        assert!(other.await.is_ok());
    }

    #[tokio::test]
    async fn an_aggregate_is_forgotten_once_no_command_runs_or_waits_on_it() {
        let turns = AggregateTurns::default();
        let id = Uuid::new_v4();
        let first = turns.take(id).await;
        let mut second = Box::pin(turns.take(id));
        let waited = tokio::time::timeout(Duration::from_millis(20), &mut second).await;
        assert!(waited.is_err(), "the second is waiting");

        drop(first);
        assert_eq!(turns.map().len(), 1, "kept for the waiting command");
        drop(second.await);
        assert!(turns.map().is_empty());
    }
}
