//! The command bus keeps aggregates in memory between commands (`cvm::aggregate_cache`). These
//! tests write to a CV from a second `Core` on the same database — as the CLI does beside a
//! running server — so that the first one's cached state is stale, and check that every
//! decision is still made on the state in the log.

use cvm::app::{Core, CoreOptions};
use cvm::config::DataConfig;
use domain::{CvCommand, CvContent, CvError, CvOrigin, CvTitle};
use projections::EventMetadata;
use uuid::Uuid;

use crate::helpers::{TestApp, GOOD_PASSWORD};

fn basics(label: &str) -> std::collections::BTreeMap<String, String> {
    [
        ("name".to_owned(), "Alice".to_owned()),
        ("label".to_owned(), label.to_owned()),
    ]
    .into()
}

fn update(owner: Uuid, expected: u64, label: &str) -> CvCommand {
    CvCommand::UpdateBasics {
        actor: owner,
        expected_version: Some(expected),
        basics: basics(label),
    }
}

/// A server-side app with one CV at version 2 (created, basics once: so it is cached), and a
/// second core over the same files.
async fn a_cached_cv() -> (TestApp, Core, Uuid, Uuid) {
    let mut app = TestApp::spawn().await;
    app.register("alice", "alice@example.com", GOOD_PASSWORD)
        .await;
    let owner = app.user_id("alice@example.com").await;
    let metadata = EventMetadata::now("test");
    let cvs = &app.core.cvs;
    let id = cvs
        .create(
            owner,
            CvTitle::parse("Cached").unwrap(),
            CvContent::default(),
            CvOrigin::Blank,
            &metadata,
        )
        .await
        .unwrap();
    cvs.execute(id, update(owner, 1, "first"), &metadata)
        .await
        .unwrap();
    let data = DataConfig {
        data_dir: app.data_dir().to_owned(),
        master_key_file: None,
    };
    let other = Core::open(&data, CoreOptions::defaults()).await.unwrap();
    (app, other, owner, id)
}

/// Version 2 → 3 from the second core, behind the first one's cache.
async fn edit_elsewhere(other: &Core, owner: Uuid, id: Uuid) {
    other
        .cvs
        .execute(
            id,
            update(owner, 2, "from elsewhere"),
            &EventMetadata::now("test"),
        )
        .await
        .unwrap();
}

async fn version_in_log(app: &TestApp, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT max(sequence) FROM events WHERE aggregate_id = ?")
        .bind(id.to_string())
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_edit_made_elsewhere_is_seen_by_the_next_command() {
    let (app, other, owner, id) = a_cached_cv().await;
    let metadata = EventMetadata::now("test");
    edit_elsewhere(&other, owner, id).await;

    // The cache says version 2; the log says 3. An editor who saw version 3 is right.
    app.core
        .cvs
        .execute(id, update(owner, 3, "after it"), &metadata)
        .await
        .expect("decided on the log's state, not the stale cache");
    assert_eq!(version_in_log(&app, id).await, 4);
}

#[tokio::test]
async fn an_editor_who_missed_an_edit_made_elsewhere_is_refused() {
    let (app, other, owner, id) = a_cached_cv().await;
    let metadata = EventMetadata::now("test");
    edit_elsewhere(&other, owner, id).await;

    // The cache would accept version 2; the append finds the log moved on and the command is
    // decided again: stale.
    let refused = app
        .core
        .cvs
        .execute(id, update(owner, 2, "overwrites it"), &metadata)
        .await
        .expect_err("the edit elsewhere is not overwritten");
    assert!(
        matches!(
            refused,
            cvm::cvs::CvFailure::Rejected(CvError::Stale { current: 3 })
        ),
        "{refused:?}"
    );
    assert_eq!(version_in_log(&app, id).await, 3);
    let document = projections::cvs::document(app.pool(), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(document.content.basic("label"), "from elsewhere");
}

#[tokio::test]
async fn a_no_op_is_judged_against_the_log_not_the_cache() {
    let (app, other, owner, id) = a_cached_cv().await;
    let metadata = EventMetadata::now("test");
    edit_elsewhere(&other, owner, id).await;

    // "first" is what the cache holds, so against it this changes nothing; against the log
    // (label "from elsewhere") it is a real edit and must be recorded.
    app.core
        .cvs
        .execute(id, update(owner, 3, "first"), &metadata)
        .await
        .unwrap();
    assert_eq!(version_in_log(&app, id).await, 4);
}

async fn version_in_read_model(app: &TestApp, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT version FROM cvs WHERE id = ?")
        .bind(id.to_string())
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// A caller that goes away (a client that disconnects: axum drops the handler) at any moment
/// of a command does not stop it halfway: the command runs to the end in its own task, so the
/// cache and the read models never stay behind the log. Each round gives up after a longer
/// wait: some before the append, some while it is committed, some during the catch-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_caller_gives_up_still_completes_and_reaches_the_read_models() {
    let (app, _other, owner, id) = a_cached_cv().await;
    let cvs = &app.core.cvs;
    for round in 0..60u64 {
        let version = version_in_log(&app, id).await;
        let give_up = std::time::Duration::from_micros(round * 50);
        let command = update(owner, version as u64, &format!("round {round}"));
        let _ = tokio::time::timeout(
            give_up,
            cvs.execute(id, command, &EventMetadata::now("test")),
        )
        .await;
        // With no other write to bring them along, the edit lands and the read models show it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (log, read) = (
                version_in_log(&app, id).await,
                version_in_read_model(&app, id).await,
            );
            if log == version + 1 && read == log {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: from {version}, the log is at {log} and the read model at {read}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    // And the cache kept up: an editor who saw the latest version is not refused.
    let version = version_in_log(&app, id).await as u64;
    cvs.execute(
        id,
        update(owner, version, "last"),
        &EventMetadata::now("test"),
    )
    .await
    .unwrap();
    assert_eq!(version_in_log(&app, id).await as u64, version + 1);
}

/// What cqrs-es' own loader makes of the log: the whole history at once.
async fn loaded_whole(core: &Core, id: Uuid) -> (serde_json::Value, usize) {
    use cqrs_es::persist::PersistedEventStore;
    use cqrs_es::EventStore;
    let store = PersistedEventStore::<_, domain::Cv>::new_event_store(core.log.clone());
    let context = store.load_aggregate(&id.to_string()).await.unwrap();
    (
        serde_json::to_value(&context.aggregate).unwrap(),
        context.current_sequence,
    )
}

async fn replayed(core: &Core, id: Uuid) -> (serde_json::Value, usize) {
    let context = core
        .log
        .replay::<domain::Cv>(&id.to_string())
        .await
        .unwrap();
    (
        serde_json::to_value(&context.aggregate).unwrap(),
        context.current_sequence,
    )
}

#[tokio::test]
async fn a_history_of_several_replay_pages_loads_as_the_whole_history_does() {
    use projections::event_log::REPLAY_PAGE;
    let (app, other, owner, id) = a_cached_cv().await;
    let metadata = EventMetadata::now("test");
    let page = REPLAY_PAGE as u64;
    // Exactly two pages, then two pages and a few events.
    for last in [2 * page, 2 * page + 5] {
        let now = version_in_log(&app, id).await as u64;
        for version in now..last {
            app.core
                .cvs
                .execute(
                    id,
                    update(owner, version, &format!("edit {version}")),
                    &metadata,
                )
                .await
                .unwrap();
        }
        let (state, sequence) = replayed(&other, id).await;
        assert_eq!(sequence as u64, last);
        assert_eq!((state, sequence), loaded_whole(&other, id).await);
    }
    // The second core has nothing cached: its command is decided on the replayed state.
    other
        .cvs
        .execute(id, update(owner, 2 * page + 5, "replayed"), &metadata)
        .await
        .unwrap();
    assert_eq!(version_in_log(&app, id).await as u64, 2 * page + 6);
    let refused = other
        .cvs
        .execute(id, update(owner, 2 * page, "stale"), &metadata)
        .await;
    assert!(refused.is_err(), "a stale version is refused: {refused:?}");
}

#[tokio::test]
async fn an_erased_persons_aggregate_replays_as_no_history() {
    let (app, _other, owner, id) = a_cached_cv().await;
    let user = projections::users::find_by_id(app.pool(), owner)
        .await
        .unwrap()
        .unwrap();
    app.core
        .privacy
        .erase(&user, None, &EventMetadata::now("test"))
        .await
        .unwrap();
    let (state, sequence) = replayed(&app.core, id).await;
    assert_eq!(sequence, 0);
    assert_eq!(
        state,
        serde_json::to_value(domain::Cv::default()).unwrap(),
        "nothing of the erased CV is replayed"
    );
    assert_eq!((state, sequence), loaded_whole(&app.core, id).await);
}
