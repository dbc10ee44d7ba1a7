//! In-process figures for `rebuild-projections`: `cargo bench --bench rebuild`.
//!
//! A rebuild reads and opens the log (decrypting each person's sealed fields) on one task
//! while it applies and writes the read models on another. This bench seeds a small database
//! once and times, per event, reading and opening the whole log alone, and the whole rebuild,
//! so that the part each side costs shows without the HTTP bench's 100,000-user seed.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cvm::app::{Core, CoreOptions};
use cvm::config::DataConfig;
use cvm::seed::{seed, SeedPlan};

/// The allocator of the `cvm` binary (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ordinary users seeded (about 13.5 events each).
const USERS: u64 = 2_000;

/// Events read per query, as a rebuild reads them.
const PAGE: i64 = 50_000;

struct Seeded {
    runtime: tokio::runtime::Runtime,
    core: Core,
    events: u64,
    _dir: tempfile::TempDir,
}

fn seeded() -> Seeded {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = DataConfig {
        data_dir: dir.path().to_owned(),
        master_key_file: None,
    };
    let plan = SeedPlan {
        users: USERS,
        cvs_per_user: 1,
        days: 90,
        logins_per_user: 3,
        seed: 1,
    };
    let (core, events) = runtime.block_on(async {
        let core = Core::open(&data, CoreOptions::defaults())
            .await
            .expect("the database opens");
        let report = seed(&core, plan).await.expect("the seed runs");
        (core, report.events)
    });
    Seeded {
        runtime,
        core,
        events,
        _dir: dir,
    }
}

/// Reads and opens every event of the log, a page at a time; returns how many there were.
async fn read_whole_log(core: &Core) -> u64 {
    let mut conn = core.pool.acquire().await.expect("a connection");
    let (mut position, mut read) = (0, 0);
    loop {
        let page = core
            .log
            .read_after_on(&mut conn, position, PAGE)
            .await
            .expect("the log reads");
        let Some(last) = page.last() else {
            return read;
        };
        position = last.position;
        read += page.len() as u64;
    }
}

fn rebuild(c: &mut Criterion) {
    let seeded = seeded();
    let mut group = c.benchmark_group("rebuild");
    group.throughput(Throughput::Elements(seeded.events));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("read and open the log", |b| {
        b.iter_custom(|iterations| {
            seeded.runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    assert_eq!(read_whole_log(&seeded.core).await, seeded.events);
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("rebuild-projections", |b| {
        b.iter_custom(|iterations| {
            seeded.runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let applied = seeded.core.projector.rebuild(|_| {}).await;
                    assert_eq!(applied.expect("the rebuild runs"), seeded.events);
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, rebuild);
criterion_main!(benches);
