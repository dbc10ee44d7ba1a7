//! `cvm seed`: realistic demo and benchmark data, produced by the real aggregates.
//!
//! Every event is decided by the `User` and `Cv` aggregates from the same commands the pages
//! send, and stored sealed by the event log exactly as a command would store it; what differs
//! from the command path is only the batching: events are written in large transactions (one
//! `synchronous=FULL` commit per batch instead of one per command), and the read models are
//! built afterwards by the projector's rebuild. Times are spread over the last `days`
//! days and the log is written in time order, so the audit trail and the charts look lived in.
//!
//! The password of every account is hashed once (argon2id, as at registration): the superuser
//! `admin@example.com` has [`ADMIN_PASSWORD`], every user `userNNNNNN@example.com` has
//! [`USER_PASSWORD`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use domain::{
    CvCommand, CvContent, CvOrigin, CvTitle, Email, EntryFields, FieldValue, HashingError,
    Password, PasswordHash, PasswordHasher, ProfileInput, Role, Section, UserCommand, UserServices,
    Username,
};
use projections::claims::{self, ClaimKind};
use projections::event_log::BulkAppender;
use projections::EventMetadata;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::app::Core;

/// The seeded superuser's password (`admin@example.com`).
pub const ADMIN_PASSWORD: &str = "seeded chief passphrase";
/// Every seeded user's password (`user000001@example.com`, …).
pub const USER_PASSWORD: &str = "seeded member passphrase";

/// Events written per transaction.
const BATCH: usize = 20_000;

/// How much to make.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    /// Ordinary users (one superuser comes on top).
    pub users: u64,
    /// CVs per user.
    pub cvs_per_user: u32,
    /// Days the history spreads over, ending now.
    pub days: u32,
    /// Logins per user after signing up.
    pub logins_per_user: u32,
    /// Seed of the pseudo-random choices (same seed, same data, other than ids and times).
    pub seed: u64,
}

/// What a seeding produced.
#[derive(Debug, Clone, Copy)]
pub struct SeedReport {
    pub users: u64,
    pub cvs: u64,
    pub events: u64,
    /// Seconds to decide and store the events.
    pub write_seconds: f64,
    /// Seconds for the projector to build the read models.
    pub project_seconds: f64,
}

/// A hasher that knows the one hash of the seeding's shared password: the aggregates hash and
/// verify through it as through argon2, at no cost after the first hash.
struct OneHash {
    password: String,
    hash: PasswordHash,
}

#[async_trait::async_trait]
impl PasswordHasher for OneHash {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashingError> {
        if password.expose() == self.password {
            Ok(self.hash.clone())
        } else {
            Err(HashingError(
                "the seed hashes only its shared password".into(),
            ))
        }
    }

    async fn verify(&self, hash: &PasswordHash, candidate: &str) -> bool {
        hash == &self.hash && candidate == self.password
    }
}

/// SplitMix64: reproducible choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Radia",
    "Linus",
    "Frances",
    "John",
    "Katherine",
    "Dennis",
    "Hedy",
    "Tim",
    "Sophie",
    "Niklaus",
    "Shafi",
    "Leslie",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Torvalds",
    "Allen",
    "Backus",
    "Johnson",
    "Ritchie",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "Wirth",
    "Goldwasser",
    "Lamport",
];
const CITIES: &[&str] = &[
    "Berlin",
    "Lisbon",
    "Toronto",
    "Nairobi",
    "Osaka",
    "Melbourne",
    "Bogotá",
    "Tallinn",
    "Edinburgh",
    "Montréal",
];
const COMPANIES: &[&str] = &[
    "Analytical Engines Ltd",
    "Bletchley Systems",
    "Harvard Computation Lab",
    "Mathematisch Centrum",
    "Bell Labs",
    "Xerox PARC",
    "Draper Laboratory",
    "Sun Microsystems",
    "DEC",
    "Transmeta",
];
const POSITIONS: &[&str] = &[
    "Software engineer",
    "Senior engineer",
    "Staff engineer",
    "Engineering manager",
    "Data scientist",
    "Site reliability engineer",
    "Research scientist",
    "Technical lead",
];
const SCHOOLS: &[&str] = &[
    "University of Cambridge",
    "ETH Zürich",
    "MIT",
    "University of Tokyo",
    "TU Delft",
    "University of Helsinki",
    "Universidade de Lisboa",
];
const SKILLS: &[&str] = &[
    "Rust",
    "Distributed systems",
    "PostgreSQL",
    "Kubernetes",
    "Machine learning",
    "Compilers",
    "TypeScript",
    "Observability",
    "Security",
    "Embedded C",
];
const LANGUAGES: &[&str] = &[
    "English",
    "German",
    "Portuguese",
    "French",
    "Japanese",
    "Spanish",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
];

fn text(value: &str) -> FieldValue {
    FieldValue::Text(value.to_owned())
}

fn fields(pairs: &[(&str, FieldValue)]) -> EntryFields {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

/// The events of one seeding, in the order they are decided, each with its time.
///
/// Kept as the aggregates' own events and turned into the log's JSON only batch by batch,
/// while the batch before is written ([`Recorded::serialized`]): as JSON trees the whole log
/// of the 999,144-event seed held 3.4 GB, and touching that much new memory for the first time
/// was most of the deciding time in `perf` (the kernel zeroing pages).
struct Timeline {
    events: Vec<Recorded>,
}

/// One decided event: what the log will store, before it is serialised.
struct Recorded {
    at: OffsetDateTime,
    aggregate_id: Uuid,
    sequence: usize,
    event: AnyEvent,
    /// Shared by the events of one command.
    metadata: Arc<EventMetadata>,
}

/// An event of either aggregate.
enum AnyEvent {
    User(domain::UserEvent),
    Cv(domain::CvEvent),
}

impl From<domain::UserEvent> for AnyEvent {
    fn from(event: domain::UserEvent) -> Self {
        Self::User(event)
    }
}

impl From<domain::CvEvent> for AnyEvent {
    fn from(event: domain::CvEvent) -> Self {
        Self::Cv(event)
    }
}

impl Recorded {
    /// The event as the log stores it (before sealing), as a command's would be.
    fn serialized(self) -> Result<SerializedEvent, serde_json::Error> {
        fn serialize<A: Aggregate>(
            recorded: &Recorded,
            event: &A::Event,
        ) -> Result<SerializedEvent, serde_json::Error> {
            Ok(SerializedEvent::new(
                recorded.aggregate_id.to_string(),
                recorded.sequence,
                A::TYPE.to_owned(),
                event.event_type(),
                event.event_version(),
                serde_json::to_value(event)?,
                serde_json::to_value(recorded.metadata.to_map())?,
            ))
        }
        match &self.event {
            AnyEvent::User(event) => serialize::<domain::User>(&self, event),
            AnyEvent::Cv(event) => serialize::<domain::Cv>(&self, event),
        }
    }
}

impl Timeline {
    fn record<A: Aggregate>(
        &mut self,
        id: Uuid,
        first_sequence: usize,
        events: Vec<A::Event>,
        metadata: &EventMetadata,
    ) -> anyhow::Result<()>
    where
        A::Event: Into<AnyEvent>,
    {
        let at = metadata.at.context("seeded events have a time")?;
        let metadata = Arc::new(metadata.clone());
        for (offset, event) in events.into_iter().enumerate() {
            self.events.push(Recorded {
                at,
                aggregate_id: id,
                sequence: first_sequence + offset,
                event: event.into(),
                metadata: metadata.clone(),
            });
        }
        Ok(())
    }
}

/// Runs `command` on `aggregate` (its state advances) and records the events.
async fn decide<A: Aggregate>(
    timeline: &mut Timeline,
    aggregate: &mut A,
    sequence: &mut usize,
    id: Uuid,
    command: A::Command,
    services: &A::Services,
    metadata: &EventMetadata,
) -> anyhow::Result<()>
where
    A::Error: std::error::Error + Send + Sync + 'static,
    A::Event: Into<AnyEvent>,
{
    let sink = EventSink::default();
    aggregate.handle(command, services, &sink).await?;
    let events = sink.collect().await;
    let count = events.len();
    timeline.record::<A>(id, *sequence + 1, events, metadata)?;
    *sequence += count;
    Ok(())
}

fn metadata(rng: &mut Rng, actor: Option<Uuid>, at: OffsetDateTime) -> EventMetadata {
    EventMetadata {
        actor,
        ip: Some(format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        )),
        user_agent: Some(rng.pick(USER_AGENTS).to_owned()),
        request_id: Uuid::from_u64_pair(rng.next(), rng.next()).to_string(),
        at: Some(at),
    }
}

/// Fills `core`'s (empty) database with `plan`'s data.
pub async fn seed(core: &Core, plan: SeedPlan) -> anyhow::Result<SeedReport> {
    if projections::users::count(&core.pool).await? > 0 {
        bail!("the database already holds accounts: seed an empty data directory");
    }
    let started = Instant::now();
    let mut rng = Rng(plan.seed);
    let now = OffsetDateTime::now_utc();
    let span = Duration::days(i64::from(plan.days.max(1)));
    let start = now - span;
    // Each password is checked against the policy with the account it belongs to, below.
    let hash = |password: &str| crate::passwords::hash_blocking(password);
    let user_services = UserServices::new(Arc::new(OneHash {
        password: USER_PASSWORD.to_owned(),
        hash: hash(USER_PASSWORD)?,
    }));
    let admin_services = UserServices::new(Arc::new(OneHash {
        password: ADMIN_PASSWORD.to_owned(),
        hash: hash(ADMIN_PASSWORD)?,
    }));

    let mut timeline = Timeline { events: Vec::new() };
    let mut claims_to_take = Vec::new();
    let admin = rng.uuid();
    {
        let mut user = domain::User::default();
        let mut sequence = 0;
        let username = Username::parse("admin")?;
        let email = Email::parse("admin@example.com")?;
        claims_to_take.push((ClaimKind::Username, username.canonical(), admin.to_string()));
        claims_to_take.push((
            ClaimKind::Email,
            email.as_str().to_owned(),
            admin.to_string(),
        ));
        let password = Password::parse(ADMIN_PASSWORD, "admin", "admin@example.com")
            .map_err(|error| anyhow::anyhow!("seed password: {error:?}"))?;
        let command = UserCommand::Register {
            username,
            email,
            password,
            role: Role::Superuser,
            at: start,
        };
        let meta = metadata(&mut rng, None, start);
        decide(
            &mut timeline,
            &mut user,
            &mut sequence,
            admin,
            command,
            &admin_services,
            &meta,
        )
        .await?;
    }

    let span_seconds = span.whole_seconds().max(7_200);
    // The users are decided in two halves at once (the aggregates are independent), each with
    // its own reproducible choices; the log is put in time order below.
    let half = plan.users / 2;
    let parts = [(1, half), (half + 1, plan.users)].map(|(first, last)| {
        let services = user_services.clone();
        // A well-mixed start of its own: SplitMix64 streams whose starts differ by a multiple
        // of its step are the same stream shifted (and would repeat each other's ids).
        let rng = Rng(Rng(plan.seed.wrapping_add(first << 32)).next());
        tokio::spawn(decide_users(
            first..=last,
            rng,
            plan,
            (start, now, span_seconds),
            services,
        ))
    });
    let mut cvs = 0;
    for part in parts {
        let decided = part.await??;
        timeline.events.extend(decided.timeline.events);
        claims_to_take.extend(decided.claims);
        cvs += decided.cvs;
    }

    // The log in time order (a stable sort keeps each aggregate's events in sequence).
    timeline.events.sort_by_key(|recorded| recorded.at);
    let total = timeline.events.len() as u64;
    tracing::info!(
        events = total,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "events decided"
    );
    claims::claim_all(&core.pool, &claims_to_take).await?;
    // Each batch is sealed here while the one before it is written on a task of its own: the
    // sealing (CPU) and the inserts (SQLite's worker thread) overlap on the two cores.
    let mut appender = BulkAppender::new(core.log.clone());
    let mut events = timeline.events.into_iter().map(Recorded::serialized);
    let mut writing: Option<tokio::task::JoinHandle<Result<(), sqlx::Error>>> = None;
    loop {
        let batch: Vec<SerializedEvent> = events.by_ref().take(BATCH).collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        let sealed = appender.seal(batch);
        if let Some(previous) = writing.take() {
            previous.await??;
        }
        let log = appender.log().clone();
        writing = Some(tokio::spawn(async move { sealed.write(&log).await }));
    }
    if let Some(last) = writing {
        last.await??;
    }
    let write_seconds = started.elapsed().as_secs_f64();
    let projecting = Instant::now();
    // The read models are empty: build them as a rebuild does, with the big tables' secondary
    // indexes made once at the end (the same events applied by the same code as a catch-up).
    core.projector.rebuild(|_| {}).await?;
    Ok(SeedReport {
        users: plan.users + 1,
        cvs,
        events: total,
        write_seconds,
        project_seconds: projecting.elapsed().as_secs_f64(),
    })
}

/// What deciding a range of users produced.
struct Decided {
    timeline: Timeline,
    claims: Vec<(ClaimKind, String, String)>,
    cvs: u64,
}

/// Decides the users numbered `users`: their sign-ups, profiles, CVs and logins.
async fn decide_users(
    users: std::ops::RangeInclusive<u64>,
    mut rng: Rng,
    plan: SeedPlan,
    (start, now, span_seconds): (OffsetDateTime, OffsetDateTime, i64),
    user_services: UserServices,
) -> anyhow::Result<Decided> {
    let mut timeline = Timeline { events: Vec::new() };
    let mut claims_to_take = Vec::new();
    let mut cvs = 0;
    for n in users {
        let id = rng.uuid();
        let name = format!("user{n:06}");
        let email = format!("{name}@example.com");
        let username = Username::parse(&name)?;
        let email = Email::parse(&email)?;
        claims_to_take.push((ClaimKind::Username, username.canonical(), id.to_string()));
        claims_to_take.push((ClaimKind::Email, email.as_str().to_owned(), id.to_string()));
        let password = Password::parse(USER_PASSWORD, &name, email.as_str())
            .map_err(|error| anyhow::anyhow!("seed password: {error:?}"))?;
        // Sign-ups are spread over the period; everything a user does comes after.
        let joined = start + Duration::seconds(rng.below(span_seconds as u64 - 3_600) as i64);
        let mut clock = joined;
        let mut tick = |rng: &mut Rng, up_to_minutes: u64| {
            clock += Duration::seconds(1 + rng.below(up_to_minutes * 60) as i64);
            clock.min(now)
        };
        let mut user = domain::User::default();
        let mut sequence = 0;
        let register = UserCommand::Register {
            username,
            email,
            password,
            role: Role::User,
            at: joined,
        };
        let meta = metadata(&mut rng, None, joined);
        decide(
            &mut timeline,
            &mut user,
            &mut sequence,
            id,
            register,
            &user_services,
            &meta,
        )
        .await?;
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let city = rng.pick(CITIES);
        let profile = domain::Profile::parse(&ProfileInput {
            full_name: format!("{first} {last}"),
            headline: rng.pick(POSITIONS).to_owned(),
            phone: format!("+44 20 7946 {:04}", rng.below(10_000)),
            location: city.to_owned(),
            website: format!("https://{}.example.com/", name),
            bio: format!(
                "{first} builds dependable software in {city} and writes about {}.",
                rng.pick(SKILLS)
            ),
        })
        .map_err(|errors| anyhow::anyhow!("seed profile: {errors:?}"))?;
        let at = tick(&mut rng, 10);
        let meta = metadata(&mut rng, Some(id), at);
        decide(
            &mut timeline,
            &mut user,
            &mut sequence,
            id,
            UserCommand::UpdateProfile { profile },
            &user_services,
            &meta,
        )
        .await?;

        for _ in 0..plan.cvs_per_user {
            cvs += 1;
            seed_cv(&mut timeline, &mut rng, id, &mut tick, first, last, city).await?;
        }

        // Logins from joining until now.
        let mut login_times: Vec<OffsetDateTime> = (0..plan.logins_per_user)
            .map(|_| {
                let room = (now - joined).whole_seconds().max(1) as u64;
                joined + Duration::seconds(rng.below(room) as i64)
            })
            .collect();
        login_times.sort();
        let mut last_at = clock;
        for at in login_times {
            let at = at.max(last_at + Duration::seconds(1)).min(now);
            last_at = at;
            let meta = metadata(&mut rng, None, at);
            let command = UserCommand::LogIn {
                password: USER_PASSWORD.to_owned(),
                at,
            };
            decide(
                &mut timeline,
                &mut user,
                &mut sequence,
                id,
                command,
                &user_services,
                &meta,
            )
            .await?;
        }
    }
    Ok(Decided {
        timeline,
        claims: claims_to_take,
        cvs,
    })
}

/// One CV with basics, work, education, skills and languages, then an edit.
async fn seed_cv(
    timeline: &mut Timeline,
    rng: &mut Rng,
    owner: Uuid,
    tick: &mut impl FnMut(&mut Rng, u64) -> OffsetDateTime,
    first: &str,
    last: &str,
    city: &str,
) -> anyhow::Result<()> {
    let id = rng.uuid();
    let mut cv = domain::Cv::default();
    let mut sequence = 0;
    let position = rng.pick(POSITIONS);
    let title = CvTitle::parse(&format!("{position} CV"))?;
    let at = tick(rng, 60 * 24);
    let meta = metadata(rng, Some(owner), at);
    let create = CvCommand::Create {
        owner,
        title,
        content: CvContent::default(),
        origin: CvOrigin::Blank,
        at,
    };
    decide(timeline, &mut cv, &mut sequence, id, create, &(), &meta).await?;

    let basics: BTreeMap<String, String> = [
        ("name", format!("{first} {last}")),
        ("label", position.to_owned()),
        (
            "email",
            format!("{}.{}@example.org", first.to_lowercase(), owner.simple()),
        ),
        ("city", city.to_owned()),
        (
            "summary",
            format!(
                "{position} with {} years of {} and {}.",
                2 + rng.below(20),
                rng.pick(SKILLS),
                rng.pick(SKILLS)
            ),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    // Each command carries the version its editor saw, as the forms do: one more per change.
    let mut commands = vec![CvCommand::UpdateBasics {
        actor: owner,
        expected_version: Some(1),
        basics,
    }];
    let jobs = 1 + rng.below(3);
    let mut first_job = None;
    for job in 0..jobs {
        let entry_id = rng.uuid();
        first_job.get_or_insert(entry_id);
        let start_year = 2005 + rng.below(15);
        commands.push(CvCommand::AddEntry {
            actor: owner,
            expected_version: Some(1 + commands.len() as u64),
            section: Section::Work,
            entry_id,
            fields: fields(&[
                ("name", text(rng.pick(COMPANIES))),
                ("position", text(rng.pick(POSITIONS))),
                ("startDate", text(&format!("{start_year}-0{}", 1 + job % 9))),
                (
                    "highlights",
                    FieldValue::List(vec![
                        format!("Led the move to {}", rng.pick(SKILLS)),
                        format!("Cut incident rate by {}%", 10 + rng.below(80)),
                    ]),
                ),
            ]),
        });
    }
    commands.push(CvCommand::AddEntry {
        actor: owner,
        expected_version: Some(1 + commands.len() as u64),
        section: Section::Education,
        entry_id: rng.uuid(),
        fields: fields(&[
            ("institution", text(rng.pick(SCHOOLS))),
            ("area", text("Computer science")),
            ("studyType", text("Master")),
        ]),
    });
    for _ in 0..1 + rng.below(2) {
        commands.push(CvCommand::AddEntry {
            actor: owner,
            expected_version: Some(1 + commands.len() as u64),
            section: Section::Skills,
            entry_id: rng.uuid(),
            fields: fields(&[
                ("name", text(rng.pick(SKILLS))),
                ("level", text("Advanced")),
                (
                    "keywords",
                    FieldValue::List(vec![rng.pick(SKILLS).to_owned(), "Testing".to_owned()]),
                ),
            ]),
        });
    }
    commands.push(CvCommand::AddEntry {
        actor: owner,
        expected_version: Some(1 + commands.len() as u64),
        section: Section::Languages,
        entry_id: rng.uuid(),
        fields: fields(&[
            ("language", text(rng.pick(LANGUAGES))),
            ("fluency", text("Professional working proficiency")),
        ]),
    });
    if let Some(entry_id) = first_job {
        commands.push(CvCommand::UpdateEntry {
            actor: owner,
            expected_version: Some(1 + commands.len() as u64),
            section: Section::Work,
            entry_id,
            fields: fields(&[
                ("name", text(rng.pick(COMPANIES))),
                ("position", text("Principal engineer")),
                ("startDate", text("2015-03")),
            ]),
        });
    }
    for command in commands {
        let at = tick(rng, 30);
        let meta = metadata(rng, Some(owner), at);
        decide(timeline, &mut cv, &mut sequence, id, command, &(), &meta).await?;
    }
    Ok(())
}
