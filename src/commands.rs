//! Runs commands against aggregates: load, decide, append, then bring the read models up to date.
//!
//! We drive cqrs-es' `PersistedEventStore` directly instead of going through `CqrsFramework`
//! because callers need the events a command produced (a login attempt is decided by the
//! aggregate, and the page depends on whether it emitted `LoggedIn` or `LoginFailed`), and
//! because the projector, not cqrs-es query dispatch, maintains the read models.

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use domain::{
    Cv, CvCommand, CvError, CvEvent, User, UserCommand, UserError, UserEvent, UserServices,
};
use projections::{EventLog, EventMetadata, Projector};
use uuid::Uuid;

/// Times a command is re-run from fresh state when another command on the same aggregate
/// committed first (`AggregateConflict`).
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
    users: PersistedEventStore<EventLog, User>,
    cvs: PersistedEventStore<EventLog, Cv>,
    user_services: UserServices,
    projector: Arc<Projector>,
}

impl CommandBus {
    /// A bus over `log`, with `projector` brought up to date after every command.
    pub fn new(log: EventLog, user_services: UserServices, projector: Arc<Projector>) -> Self {
        Self {
            users: PersistedEventStore::new_event_store(log.clone()),
            cvs: PersistedEventStore::new_event_store(log),
            user_services,
            projector,
        }
    }

    /// Runs a command on the user `id` and returns the events it recorded. When this returns,
    /// the read models include them (the caller may redirect to a page that shows them).
    pub async fn user(
        &self,
        id: Uuid,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Vec<UserEvent>, CommandError<UserError>> {
        let events = execute(&self.users, &self.user_services, id, command, metadata).await?;
        self.projector
            .catch_up()
            .await
            .map_err(|error| CommandError::Infrastructure(error.into()))?;
        Ok(events)
    }
}

impl CommandBus {
    /// Runs a command on the CV `id`; as [`CommandBus::user`].
    pub async fn cv(
        &self,
        id: Uuid,
        command: CvCommand,
        metadata: &EventMetadata,
    ) -> Result<Vec<CvEvent>, CommandError<CvError>> {
        let events = execute(&self.cvs, &(), id, command, metadata).await?;
        self.projector
            .catch_up()
            .await
            .map_err(|error| CommandError::Infrastructure(error.into()))?;
        Ok(events)
    }
}

async fn execute<A, S>(
    store: &S,
    services: &A::Services,
    id: Uuid,
    command: A::Command,
    metadata: &EventMetadata,
) -> Result<Vec<A::Event>, CommandError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone,
    A::Error: Send + Sync + 'static,
    S: EventStore<A>,
{
    let id = id.to_string();
    for _ in 0..ATTEMPTS {
        let mut context = store.load_aggregate(&id).await.map_err(infrastructure)?;
        let sink = EventSink::default();
        context
            .aggregate()
            .handle(command.clone(), services, &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        if events.is_empty() {
            return Ok(events);
        }
        match store
            .commit(events.clone(), context, metadata.to_map())
            .await
        {
            Ok(_) => return Ok(events),
            Err(AggregateError::AggregateConflict) => continue,
            Err(error) => return Err(infrastructure(error)),
        }
    }
    Err(CommandError::Conflict)
}

fn infrastructure<E, T>(error: AggregateError<T>) -> CommandError<E>
where
    E: std::error::Error,
    T: std::error::Error + Send + Sync + 'static,
{
    CommandError::Infrastructure(anyhow::anyhow!("{error}"))
}
