//! The `Cv` aggregate: the state rebuilt from a CV's events and the rules deciding which
//! event (at most one) each command produces.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::commands::{CvCommand, MoveDirection};
use super::content::{
    check_basics, check_entry, CvContent, Entry, EntryFields, FieldErrors, FieldKind, FieldValue,
    Section, ENTRIES_MAX,
};
use super::error::CvError;
use super::events::CvEvent;

/// A CV. Fields are the state rebuilt from events by `apply`; they are public for reading
/// (e.g. in snapshots and projections) but should only change through commands and events.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Cv {
    /// Whether a `Created` event has been applied.
    pub created: bool,
    /// The user who owns the CV; `None` until created.
    pub owner: Option<Uuid>,
    /// The title; empty until created.
    pub title: String,
    /// Whether the CV is archived (read-only).
    pub archived: bool,
    /// How many events have been applied: 1 after creation, one more per accepted change.
    pub version: u64,
    /// What the CV says, kept canonical: no empty values, no empty sections.
    #[serde(default)]
    pub content: CvContent,
    /// When the CV was created (UTC); `None` until created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

impl Cv {
    /// Whether `user` owns this CV.
    pub fn is_owned_by(&self, user: Uuid) -> bool {
        self.owner == Some(user)
    }

    /// The entry `id` of `section`, if there is one.
    pub fn entry(&self, section: Section, id: Uuid) -> Option<&Entry> {
        self.content
            .entries(section)
            .iter()
            .find(|entry| entry.id == id)
    }

    /// The position of the entry `id` within `section`, if there is one.
    fn position(&self, section: Section, id: Uuid) -> Option<usize> {
        self.content
            .entries(section)
            .iter()
            .position(|entry| entry.id == id)
    }

    fn ensure_created(&self) -> Result<(), CvError> {
        if self.created {
            Ok(())
        } else {
            Err(CvError::NotFound)
        }
    }

    fn ensure_owner(&self, actor: Uuid) -> Result<(), CvError> {
        if self.is_owned_by(actor) {
            Ok(())
        } else {
            Err(CvError::NotOwner)
        }
    }

    fn ensure_version(&self, expected: Option<u64>) -> Result<(), CvError> {
        match expected {
            Some(expected) if expected != self.version => Err(CvError::Stale {
                current: self.version,
            }),
            _ => Ok(()),
        }
    }

    /// The checks every editing command goes through, in order: the CV exists, the actor
    /// owns it, the editor saw the current version, and it is not archived.
    fn ensure_editable(&self, actor: Uuid, expected: Option<u64>) -> Result<(), CvError> {
        self.ensure_created()?;
        self.ensure_owner(actor)?;
        self.ensure_version(expected)?;
        if self.archived {
            return Err(CvError::Archived);
        }
        Ok(())
    }

    /// The event `command` produces, if any: the whole of the aggregate's decision, kept
    /// synchronous and separate from recording.
    fn decide(&self, command: CvCommand) -> Result<Option<CvEvent>, CvError> {
        let event = match command {
            CvCommand::Create {
                owner,
                title,
                content,
                origin,
                at,
            } => {
                if self.created {
                    return Err(CvError::AlreadyCreated);
                }
                let content = canonical(content);
                check_content(&content).map_err(CvError::InvalidEntry)?;
                CvEvent::Created {
                    owner,
                    title,
                    content,
                    origin,
                    created_at: at,
                }
            }
            CvCommand::Rename {
                actor,
                expected_version,
                title,
            } => {
                self.ensure_editable(actor, expected_version)?;
                if title.as_str() == self.title {
                    return Ok(None);
                }
                CvEvent::Renamed {
                    from: self.title.clone(),
                    to: title,
                }
            }
            CvCommand::UpdateBasics {
                actor,
                expected_version,
                basics,
            } => {
                self.ensure_editable(actor, expected_version)?;
                let basics: BTreeMap<String, String> = basics
                    .into_iter()
                    .filter(|(_, text)| !text.is_empty())
                    .collect();
                check_basics(&basics).map_err(CvError::InvalidEntry)?;
                let old = &self.content.basics;
                let mut changes: BTreeMap<String, String> = old
                    .keys()
                    .filter(|name| !basics.contains_key(*name))
                    .map(|name| (name.clone(), String::new()))
                    .collect();
                changes.extend(
                    basics
                        .into_iter()
                        .filter(|(name, text)| old.get(name) != Some(text)),
                );
                if changes.is_empty() {
                    return Ok(None);
                }
                CvEvent::BasicsUpdated { changes }
            }
            CvCommand::AddEntry {
                actor,
                expected_version,
                section,
                entry_id,
                fields,
            } => {
                self.ensure_editable(actor, expected_version)?;
                let fields = without_empty_values(fields);
                if fields.is_empty() {
                    return Err(CvError::EmptyEntry);
                }
                if self.position(section, entry_id).is_some() {
                    return Err(CvError::DuplicateEntry);
                }
                if self.content.entries(section).len() >= ENTRIES_MAX {
                    return Err(CvError::SectionFull);
                }
                check_entry(section, &fields).map_err(CvError::InvalidEntry)?;
                CvEvent::EntryAdded {
                    section,
                    entry_id,
                    fields,
                }
            }
            CvCommand::UpdateEntry {
                actor,
                expected_version,
                section,
                entry_id,
                fields,
            } => {
                self.ensure_editable(actor, expected_version)?;
                let entry = self
                    .entry(section, entry_id)
                    .ok_or(CvError::EntryNotFound)?;
                let fields = without_empty_values(fields);
                check_entry(section, &fields).map_err(CvError::InvalidEntry)?;
                if fields.is_empty() {
                    return Err(CvError::EmptyEntry);
                }
                let old = &entry.fields;
                let mut changes: BTreeMap<String, FieldValue> = old
                    .iter()
                    .filter(|(name, _)| !fields.contains_key(*name))
                    .map(|(name, value)| (name.clone(), cleared(section, name, value)))
                    .collect();
                changes.extend(
                    fields
                        .into_iter()
                        .filter(|(name, value)| old.get(name) != Some(value)),
                );
                if changes.is_empty() {
                    return Ok(None);
                }
                CvEvent::EntryUpdated {
                    section,
                    entry_id,
                    changes,
                }
            }
            CvCommand::RemoveEntry {
                actor,
                expected_version,
                section,
                entry_id,
            } => {
                self.ensure_editable(actor, expected_version)?;
                let entry = self
                    .entry(section, entry_id)
                    .ok_or(CvError::EntryNotFound)?;
                CvEvent::EntryRemoved {
                    section,
                    entry_id,
                    fields: entry.fields.clone(),
                }
            }
            CvCommand::MoveEntry {
                actor,
                expected_version,
                section,
                entry_id,
                direction,
            } => {
                self.ensure_editable(actor, expected_version)?;
                let from = self
                    .position(section, entry_id)
                    .ok_or(CvError::EntryNotFound)?;
                let len = self.content.entries(section).len();
                let to = match direction {
                    MoveDirection::Up if from > 0 => from - 1,
                    MoveDirection::Down if from + 1 < len => from + 1,
                    // Already at that edge: nothing moves.
                    _ => return Ok(None),
                };
                CvEvent::EntryMoved {
                    section,
                    entry_id,
                    from,
                    to,
                }
            }
            CvCommand::Archive { actor, by_admin } => {
                self.ensure_created()?;
                if !by_admin {
                    self.ensure_owner(actor)?;
                }
                if self.archived {
                    return Err(CvError::AlreadyArchived);
                }
                // A superuser archiving their own CV is just its owner archiving it.
                CvEvent::Archived {
                    by_admin: by_admin && !self.is_owned_by(actor),
                }
            }
            CvCommand::Unarchive { actor } => {
                self.ensure_created()?;
                self.ensure_owner(actor)?;
                if !self.archived {
                    return Err(CvError::NotArchived);
                }
                CvEvent::Unarchived
            }
            CvCommand::RestoreVersion {
                actor,
                expected_version,
                version,
                title,
                content,
            } => {
                self.ensure_editable(actor, expected_version)?;
                if version == 0 || version >= self.version {
                    return Err(CvError::InvalidVersion);
                }
                // Not validated again: it is a state this CV has already been in.
                let content = canonical(content);
                if title.as_str() == self.title && content == self.content {
                    return Ok(None);
                }
                CvEvent::VersionRestored {
                    version,
                    title,
                    content,
                }
            }
        };
        Ok(Some(event))
    }
}

/// The fields without the empty ones (absent = empty).
fn without_empty_values(fields: EntryFields) -> EntryFields {
    fields
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// `content` without empty basics, empty field values, empty entries or empty sections, so
/// that equal-looking CVs compare equal.
fn canonical(mut content: CvContent) -> CvContent {
    content.basics.retain(|_, text| !text.is_empty());
    for entries in content.sections.values_mut() {
        for entry in entries.iter_mut() {
            entry.fields.retain(|_, value| !value.is_empty());
        }
        entries.retain(|entry| !entry.fields.is_empty());
    }
    content.sections.retain(|_, entries| !entries.is_empty());
    content
}

/// Validates whole content (on creation): basics and entries by the same rules as forms, at
/// most [`ENTRIES_MAX`] entries per section, no id twice in a section. Messages are keyed by
/// `basics.name`, `section` and `section[index].name` (or `section[index]` for the id).
fn check_content(content: &CvContent) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    if let Err(basics) = check_basics(&content.basics) {
        errors.extend(
            basics
                .into_iter()
                .map(|(name, message)| (format!("basics.{name}"), message)),
        );
    }
    for (section, entries) in &content.sections {
        if entries.len() > ENTRIES_MAX {
            errors.insert(
                section.as_str().to_owned(),
                format!("At most {ENTRIES_MAX} entries."),
            );
        }
        let mut ids = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            if !ids.insert(entry.id) {
                errors.insert(format!("{section}[{index}]"), "Duplicate entry id.".into());
            }
            if let Err(fields) = check_entry(*section, &entry.fields) {
                errors.extend(
                    fields
                        .into_iter()
                        .map(|(name, message)| (format!("{section}[{index}].{name}"), message)),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The empty value that clears the field `name` (empty text, or an empty list for list fields).
fn cleared(section: Section, name: &str, old: &FieldValue) -> FieldValue {
    let is_list = match section.field(name) {
        Some(spec) => spec.kind == FieldKind::List,
        None => matches!(old, FieldValue::List(_)),
    };
    if is_list {
        FieldValue::List(Vec::new())
    } else {
        FieldValue::Text(String::new())
    }
}

impl Aggregate for Cv {
    const TYPE: &'static str = "Cv";

    type Command = CvCommand;
    type Event = CvEvent;
    type Error = CvError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        match event {
            CvEvent::Created {
                owner,
                title,
                content,
                origin: _,
                created_at,
            } => {
                self.created = true;
                self.owner = Some(owner);
                self.title = title.as_str().to_owned();
                self.archived = false;
                self.content = content;
                self.created_at = Some(created_at);
            }
            CvEvent::Renamed { from: _, to } => self.title = to.as_str().to_owned(),
            CvEvent::BasicsUpdated { changes } => {
                for (name, text) in changes {
                    if text.is_empty() {
                        self.content.basics.remove(&name);
                    } else {
                        self.content.basics.insert(name, text);
                    }
                }
            }
            CvEvent::EntryAdded {
                section,
                entry_id,
                fields,
            } => self
                .content
                .sections
                .entry(section)
                .or_default()
                .push(Entry {
                    id: entry_id,
                    fields,
                }),
            CvEvent::EntryUpdated {
                section,
                entry_id,
                changes,
            } => {
                let entry = self
                    .content
                    .sections
                    .get_mut(&section)
                    .and_then(|entries| entries.iter_mut().find(|entry| entry.id == entry_id));
                if let Some(entry) = entry {
                    for (name, value) in changes {
                        if value.is_empty() {
                            entry.fields.remove(&name);
                        } else {
                            entry.fields.insert(name, value);
                        }
                    }
                }
            }
            CvEvent::EntryRemoved {
                section, entry_id, ..
            } => {
                if let Some(entries) = self.content.sections.get_mut(&section) {
                    entries.retain(|entry| entry.id != entry_id);
                    if entries.is_empty() {
                        self.content.sections.remove(&section);
                    }
                }
            }
            CvEvent::EntryMoved {
                section,
                entry_id,
                from: _,
                to,
            } => {
                // Found by id rather than trusting `from`, so an odd event cannot move the
                // wrong entry or panic.
                if let Some(entries) = self.content.sections.get_mut(&section) {
                    if let Some(from) = entries.iter().position(|entry| entry.id == entry_id) {
                        let entry = entries.remove(from);
                        let to = to.min(entries.len());
                        entries.insert(to, entry);
                    }
                }
            }
            CvEvent::Archived { .. } => self.archived = true,
            CvEvent::Unarchived => self.archived = false,
            CvEvent::VersionRestored {
                version: _,
                title,
                content,
            } => {
                self.title = title.as_str().to_owned();
                self.content = content;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use time::macros::datetime;

    use super::*;
    use crate::cv::content::CvTitle;
    use crate::cv::events::CvOrigin;

    type CvTest = TestFramework<Cv>;

    const OWNER: Uuid = Uuid::from_u128(0x0000_0001_0000_0000_0000_0000_0000_0001);
    const OTHER: Uuid = Uuid::from_u128(0x0000_0001_0000_0000_0000_0000_0000_0002);
    const ADMIN: Uuid = Uuid::from_u128(0x0000_0001_0000_0000_0000_0000_0000_0003);
    const E1: Uuid = Uuid::from_u128(0x0000_0002_0000_0000_0000_0000_0000_0001);
    const E2: Uuid = Uuid::from_u128(0x0000_0002_0000_0000_0000_0000_0000_0002);
    const E3: Uuid = Uuid::from_u128(0x0000_0002_0000_0000_0000_0000_0000_0003);
    const AT: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

    fn title(text: &str) -> CvTitle {
        CvTitle::parse(text).unwrap()
    }

    fn text(value: &str) -> FieldValue {
        FieldValue::Text(value.to_owned())
    }

    fn list(items: &[&str]) -> FieldValue {
        FieldValue::List(items.iter().map(|item| (*item).to_owned()).collect())
    }

    fn fields(pairs: &[(&str, FieldValue)]) -> EntryFields {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }

    fn basics(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn work(company: &str) -> EntryFields {
        fields(&[("name", text(company)), ("position", text("CEO"))])
    }

    fn create(content: CvContent) -> CvCommand {
        CvCommand::Create {
            owner: OWNER,
            title: title("Main"),
            content,
            origin: CvOrigin::Blank,
            at: AT,
        }
    }

    fn created() -> CvEvent {
        CvEvent::Created {
            owner: OWNER,
            title: title("Main"),
            content: CvContent::default(),
            origin: CvOrigin::Blank,
            created_at: AT,
        }
    }

    fn added(id: Uuid, company: &str) -> CvEvent {
        CvEvent::EntryAdded {
            section: Section::Work,
            entry_id: id,
            fields: work(company),
        }
    }

    /// A CV (version 4) with three work entries: Pied Piper, Hooli, Raviga.
    fn with_three_entries() -> Vec<CvEvent> {
        vec![
            created(),
            added(E1, "Pied Piper"),
            added(E2, "Hooli"),
            added(E3, "Raviga"),
        ]
    }

    fn archived() -> Vec<CvEvent> {
        let mut events = with_three_entries();
        events.push(CvEvent::Archived { by_admin: false });
        events
    }

    fn rename(to: &str) -> CvCommand {
        CvCommand::Rename {
            actor: OWNER,
            expected_version: None,
            title: title(to),
        }
    }

    fn update_basics(pairs: &[(&str, &str)]) -> CvCommand {
        CvCommand::UpdateBasics {
            actor: OWNER,
            expected_version: None,
            basics: basics(pairs),
        }
    }

    fn add_entry(id: Uuid, fields: EntryFields) -> CvCommand {
        CvCommand::AddEntry {
            actor: OWNER,
            expected_version: None,
            section: Section::Work,
            entry_id: id,
            fields,
        }
    }

    fn update_entry(id: Uuid, fields: EntryFields) -> CvCommand {
        CvCommand::UpdateEntry {
            actor: OWNER,
            expected_version: None,
            section: Section::Work,
            entry_id: id,
            fields,
        }
    }

    fn remove_entry(id: Uuid) -> CvCommand {
        CvCommand::RemoveEntry {
            actor: OWNER,
            expected_version: None,
            section: Section::Work,
            entry_id: id,
        }
    }

    fn move_entry(id: Uuid, direction: MoveDirection) -> CvCommand {
        CvCommand::MoveEntry {
            actor: OWNER,
            expected_version: None,
            section: Section::Work,
            entry_id: id,
            direction,
        }
    }

    fn restore(version: u64) -> CvCommand {
        CvCommand::RestoreVersion {
            actor: OWNER,
            expected_version: None,
            version,
            title: title("Main"),
            content: CvContent::default(),
        }
    }

    fn state(events: Vec<CvEvent>) -> Cv {
        let mut cv = Cv::default();
        for event in events {
            cv.apply(event);
        }
        cv
    }

    // Creation

    #[test]
    fn a_new_cv_can_be_created() {
        CvTest::with(())
            .given_no_previous_events()
            .when(create(CvContent::default()))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_copy_records_where_it_came_from() {
        let origin = CvOrigin::Duplicate {
            source_id: E1,
            source_version: 3,
        };
        CvTest::with(())
            .given_no_previous_events()
            .when(CvCommand::Create {
                owner: OWNER,
                title: title("Main"),
                content: CvContent::default(),
                origin,
                at: AT,
            })
            .then_expect_events(vec![CvEvent::Created {
                owner: OWNER,
                title: title("Main"),
                content: CvContent::default(),
                origin,
                created_at: AT,
            }]);
    }

    #[test]
    fn creating_an_existing_cv_is_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(create(CvContent::default()))
            .then_expect_error(CvError::AlreadyCreated);
    }

    #[test]
    fn creating_with_a_bad_date_is_rejected() {
        let mut content = CvContent::default();
        content.sections.insert(
            Section::Work,
            vec![Entry {
                id: E1,
                fields: fields(&[("startDate", text("May 2014"))]),
            }],
        );
        CvTest::with(())
            .given_no_previous_events()
            .when(create(content))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "work[0].startDate".to_owned(),
                "Use YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2021-09).".to_owned(),
            )])));
    }

    #[test]
    fn creating_with_too_many_entries_in_a_section_is_rejected() {
        let mut content = CvContent::default();
        let entries = (0..=ENTRIES_MAX as u128)
            .map(|n| Entry {
                id: Uuid::from_u128(n + 1),
                fields: fields(&[("name", text("Rust"))]),
            })
            .collect();
        content.sections.insert(Section::Skills, entries);
        CvTest::with(())
            .given_no_previous_events()
            .when(create(content))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "skills".to_owned(),
                "At most 100 entries.".to_owned(),
            )])));
    }

    #[test]
    fn creating_with_invalid_basics_is_rejected() {
        let content = CvContent {
            basics: basics(&[("email", "nope")]),
            ..CvContent::default()
        };
        CvTest::with(())
            .given_no_previous_events()
            .when(create(content))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "basics.email".to_owned(),
                "Enter a valid email address.".to_owned(),
            )])));
    }

    #[test]
    fn creating_with_the_same_entry_id_twice_is_rejected() {
        let mut content = CvContent::default();
        let entry = Entry {
            id: E1,
            fields: work("Hooli"),
        };
        content
            .sections
            .insert(Section::Work, vec![entry.clone(), entry]);
        CvTest::with(())
            .given_no_previous_events()
            .when(create(content))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "work[1]".to_owned(),
                "Duplicate entry id.".to_owned(),
            )])));
    }

    #[test]
    fn created_content_is_stored_without_empty_values() {
        let mut content = CvContent {
            basics: basics(&[("name", "Richard"), ("email", "")]),
            ..CvContent::default()
        };
        content.sections.insert(
            Section::Work,
            vec![
                Entry {
                    id: E1,
                    fields: fields(&[("name", text("Hooli")), ("highlights", list(&[]))]),
                },
                Entry {
                    id: E2,
                    fields: fields(&[("name", text(""))]),
                },
            ],
        );
        content.sections.insert(Section::Skills, vec![]);
        let mut expected = CvContent {
            basics: basics(&[("name", "Richard")]),
            ..CvContent::default()
        };
        expected.sections.insert(
            Section::Work,
            vec![Entry {
                id: E1,
                fields: fields(&[("name", text("Hooli"))]),
            }],
        );
        CvTest::with(())
            .given_no_previous_events()
            .when(create(content))
            .then_expect_events(vec![CvEvent::Created {
                owner: OWNER,
                title: title("Main"),
                content: expected,
                origin: CvOrigin::Blank,
                created_at: AT,
            }]);
    }

    #[test]
    fn editing_a_cv_that_does_not_exist_is_not_found() {
        CvTest::with(())
            .given_no_previous_events()
            .when(rename("Other"))
            .then_expect_error(CvError::NotFound);
    }

    #[test]
    fn archiving_a_cv_that_does_not_exist_is_not_found() {
        CvTest::with(())
            .given_no_previous_events()
            .when(CvCommand::Archive {
                actor: ADMIN,
                by_admin: true,
            })
            .then_expect_error(CvError::NotFound);
    }

    // Renaming, ownership and versions

    #[test]
    fn the_owner_can_rename_the_cv() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Rename {
                actor: OWNER,
                expected_version: Some(1),
                title: title("For startups"),
            })
            .then_expect_events(vec![CvEvent::Renamed {
                from: "Main".into(),
                to: title("For startups"),
            }]);
    }

    #[test]
    fn renaming_to_the_same_title_records_nothing() {
        CvTest::with(())
            .given(vec![created()])
            .when(rename("Main"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_the_owner_can_edit() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Rename {
                actor: OTHER,
                expected_version: None,
                title: title("Mine now"),
            })
            .then_expect_error(CvError::NotOwner);
    }

    #[test]
    fn an_edit_based_on_an_older_version_is_stale() {
        CvTest::with(())
            .given(with_three_entries())
            .when(CvCommand::Rename {
                actor: OWNER,
                expected_version: Some(3),
                title: title("Other"),
            })
            .then_expect_error(CvError::Stale { current: 4 });
    }

    #[test]
    fn ownership_is_checked_before_the_version() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Rename {
                actor: OTHER,
                expected_version: Some(9),
                title: title("Other"),
            })
            .then_expect_error(CvError::NotOwner);
    }

    #[test]
    fn the_version_is_checked_before_the_archive_state() {
        CvTest::with(())
            .given(archived())
            .when(CvCommand::Rename {
                actor: OWNER,
                expected_version: Some(4),
                title: title("Other"),
            })
            .then_expect_error(CvError::Stale { current: 5 });
    }

    // Basics

    #[test]
    fn a_basics_update_records_only_the_changed_fields() {
        CvTest::with(())
            .given(vec![
                created(),
                CvEvent::BasicsUpdated {
                    changes: basics(&[("name", "Richard"), ("email", "r@example.com")]),
                },
            ])
            .when(update_basics(&[
                ("name", "Richard"),
                ("email", ""),
                ("city", "Palo Alto"),
            ]))
            .then_expect_events(vec![CvEvent::BasicsUpdated {
                changes: basics(&[("city", "Palo Alto"), ("email", "")]),
            }]);
    }

    #[test]
    fn unchanged_basics_record_nothing() {
        CvTest::with(())
            .given(vec![
                created(),
                CvEvent::BasicsUpdated {
                    changes: basics(&[("name", "Richard")]),
                },
            ])
            .when(update_basics(&[("name", "Richard"), ("phone", "")]))
            .then_expect_events(vec![]);
    }

    #[test]
    fn invalid_basics_are_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(update_basics(&[("url", "javascript:alert(1)")]))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "url".to_owned(),
                "Use a full address starting with http:// or https://.".to_owned(),
            )])));
    }

    // Adding entries

    #[test]
    fn an_entry_can_be_added() {
        CvTest::with(())
            .given(vec![created()])
            .when(add_entry(E1, work("Pied Piper")))
            .then_expect_events(vec![added(E1, "Pied Piper")]);
    }

    #[test]
    fn an_added_entry_is_stored_without_empty_values() {
        let mut submitted = work("Pied Piper");
        submitted.insert("summary".into(), text(""));
        submitted.insert("highlights".into(), list(&[]));
        CvTest::with(())
            .given(vec![created()])
            .when(add_entry(E1, submitted))
            .then_expect_events(vec![added(E1, "Pied Piper")]);
    }

    #[test]
    fn adding_an_empty_entry_is_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(add_entry(E1, fields(&[("name", text(""))])))
            .then_expect_error(CvError::EmptyEntry);
    }

    #[test]
    fn adding_an_entry_with_an_id_already_in_the_section_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(add_entry(E2, work("Aviato")))
            .then_expect_error(CvError::DuplicateEntry);
    }

    #[test]
    fn adding_to_a_full_section_is_rejected() {
        let mut events = vec![created()];
        events.extend((0..ENTRIES_MAX as u128).map(|n| CvEvent::EntryAdded {
            section: Section::Work,
            entry_id: Uuid::from_u128(1000 + n),
            fields: work("Hooli"),
        }));
        CvTest::with(())
            .given(events)
            .when(add_entry(E1, work("Aviato")))
            .then_expect_error(CvError::SectionFull);
    }

    #[test]
    fn adding_an_entry_with_a_bad_date_is_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(add_entry(
                E1,
                fields(&[
                    ("name", text("Hooli")),
                    ("startDate", text("2015")),
                    ("endDate", text("2014-02")),
                ]),
            ))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "endDate".to_owned(),
                "The end date is before the start date.".to_owned(),
            )])));
    }

    // Updating entries

    #[test]
    fn an_entry_update_records_only_the_changed_fields() {
        CvTest::with(())
            .given(vec![
                created(),
                CvEvent::EntryAdded {
                    section: Section::Work,
                    entry_id: E1,
                    fields: fields(&[
                        ("name", text("Pied Piper")),
                        ("position", text("CEO")),
                        ("endDate", text("2015")),
                        ("highlights", list(&["Middle-out"])),
                    ]),
                },
            ])
            .when(update_entry(
                E1,
                fields(&[
                    ("name", text("Pied Piper")),
                    ("position", text("CTO")),
                    ("startDate", text("2014")),
                ]),
            ))
            .then_expect_events(vec![CvEvent::EntryUpdated {
                section: Section::Work,
                entry_id: E1,
                changes: BTreeMap::from([
                    ("endDate".to_owned(), text("")),
                    ("highlights".to_owned(), list(&[])),
                    ("position".to_owned(), text("CTO")),
                    ("startDate".to_owned(), text("2014")),
                ]),
            }]);
    }

    #[test]
    fn updating_an_unknown_entry_is_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(update_entry(E1, work("Hooli")))
            .then_expect_error(CvError::EntryNotFound);
    }

    #[test]
    fn updating_an_entry_with_a_bad_date_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(update_entry(E1, fields(&[("endDate", text("2021-13"))])))
            .then_expect_error(CvError::InvalidEntry(FieldErrors::from([(
                "endDate".to_owned(),
                "Use YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2021-09).".to_owned(),
            )])));
    }

    #[test]
    fn emptying_an_entry_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(update_entry(E1, fields(&[("name", text(""))])))
            .then_expect_error(CvError::EmptyEntry);
    }

    #[test]
    fn an_unchanged_entry_records_nothing() {
        CvTest::with(())
            .given(with_three_entries())
            .when(update_entry(E2, work("Hooli")))
            .then_expect_events(vec![]);
    }

    // Removing and moving entries

    #[test]
    fn a_removed_entry_is_recorded_with_its_fields() {
        CvTest::with(())
            .given(with_three_entries())
            .when(remove_entry(E2))
            .then_expect_events(vec![CvEvent::EntryRemoved {
                section: Section::Work,
                entry_id: E2,
                fields: work("Hooli"),
            }]);
    }

    #[test]
    fn removing_an_unknown_entry_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(CvCommand::RemoveEntry {
                actor: OWNER,
                expected_version: None,
                section: Section::Education,
                entry_id: E1,
            })
            .then_expect_error(CvError::EntryNotFound);
    }

    #[test]
    fn an_entry_can_be_moved_up() {
        CvTest::with(())
            .given(with_three_entries())
            .when(move_entry(E2, MoveDirection::Up))
            .then_expect_events(vec![CvEvent::EntryMoved {
                section: Section::Work,
                entry_id: E2,
                from: 1,
                to: 0,
            }]);
    }

    #[test]
    fn an_entry_can_be_moved_down() {
        CvTest::with(())
            .given(with_three_entries())
            .when(move_entry(E2, MoveDirection::Down))
            .then_expect_events(vec![CvEvent::EntryMoved {
                section: Section::Work,
                entry_id: E2,
                from: 1,
                to: 2,
            }]);
    }

    #[test]
    fn moving_the_first_entry_up_records_nothing() {
        CvTest::with(())
            .given(with_three_entries())
            .when(move_entry(E1, MoveDirection::Up))
            .then_expect_events(vec![]);
    }

    #[test]
    fn moving_the_last_entry_down_records_nothing() {
        CvTest::with(())
            .given(with_three_entries())
            .when(move_entry(E3, MoveDirection::Down))
            .then_expect_events(vec![]);
    }

    #[test]
    fn moving_an_unknown_entry_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(move_entry(Uuid::from_u128(99), MoveDirection::Up))
            .then_expect_error(CvError::EntryNotFound);
    }

    // Archiving

    #[test]
    fn the_owner_can_archive_the_cv() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Archive {
                actor: OWNER,
                by_admin: false,
            })
            .then_expect_events(vec![CvEvent::Archived { by_admin: false }]);
    }

    #[test]
    fn an_administrator_can_archive_someone_elses_cv() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Archive {
                actor: ADMIN,
                by_admin: true,
            })
            .then_expect_events(vec![CvEvent::Archived { by_admin: true }]);
    }

    #[test]
    fn an_administrator_archiving_their_own_cv_is_recorded_as_the_owner() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Archive {
                actor: OWNER,
                by_admin: true,
            })
            .then_expect_events(vec![CvEvent::Archived { by_admin: false }]);
    }

    #[test]
    fn only_the_owner_can_archive_without_administrator_rights() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Archive {
                actor: OTHER,
                by_admin: false,
            })
            .then_expect_error(CvError::NotOwner);
    }

    #[test]
    fn archiving_an_archived_cv_is_rejected() {
        CvTest::with(())
            .given(archived())
            .when(CvCommand::Archive {
                actor: OWNER,
                by_admin: false,
            })
            .then_expect_error(CvError::AlreadyArchived);
    }

    #[test]
    fn the_owner_can_unarchive_the_cv() {
        CvTest::with(())
            .given(archived())
            .when(CvCommand::Unarchive { actor: OWNER })
            .then_expect_events(vec![CvEvent::Unarchived]);
    }

    #[test]
    fn only_the_owner_can_unarchive() {
        CvTest::with(())
            .given(archived())
            .when(CvCommand::Unarchive { actor: ADMIN })
            .then_expect_error(CvError::NotOwner);
    }

    #[test]
    fn unarchiving_a_cv_that_is_not_archived_is_rejected() {
        CvTest::with(())
            .given(vec![created()])
            .when(CvCommand::Unarchive { actor: OWNER })
            .then_expect_error(CvError::NotArchived);
    }

    #[test]
    fn an_unarchived_cv_can_be_edited_again() {
        let mut events = archived();
        events.push(CvEvent::Unarchived);
        CvTest::with(())
            .given(events)
            .when(rename("Back"))
            .then_expect_events(vec![CvEvent::Renamed {
                from: "Main".into(),
                to: title("Back"),
            }]);
    }

    // An archived CV is read-only, whatever the edit.

    fn assert_refused_when_archived(command: CvCommand) {
        CvTest::with(())
            .given(archived())
            .when(command)
            .then_expect_error(CvError::Archived);
    }

    #[test]
    fn an_archived_cv_cannot_be_renamed() {
        assert_refused_when_archived(rename("Other"));
    }

    #[test]
    fn an_archived_cvs_basics_cannot_change() {
        assert_refused_when_archived(update_basics(&[("name", "Richard")]));
    }

    #[test]
    fn an_archived_cv_cannot_get_entries() {
        assert_refused_when_archived(add_entry(Uuid::from_u128(99), work("Aviato")));
    }

    #[test]
    fn an_archived_cvs_entries_cannot_change() {
        assert_refused_when_archived(update_entry(E1, work("Aviato")));
    }

    #[test]
    fn an_archived_cvs_entries_cannot_be_removed() {
        assert_refused_when_archived(remove_entry(E1));
    }

    #[test]
    fn an_archived_cvs_entries_cannot_be_moved() {
        assert_refused_when_archived(move_entry(E2, MoveDirection::Up));
    }

    #[test]
    fn an_archived_cv_cannot_be_restored() {
        assert_refused_when_archived(restore(2));
    }

    // Restoring versions

    #[test]
    fn an_earlier_version_can_be_restored() {
        CvTest::with(())
            .given(with_three_entries())
            .when(CvCommand::RestoreVersion {
                actor: OWNER,
                expected_version: Some(4),
                version: 1,
                title: title("Main"),
                content: CvContent::default(),
            })
            .then_expect_events(vec![CvEvent::VersionRestored {
                version: 1,
                title: title("Main"),
                content: CvContent::default(),
            }]);
    }

    #[test]
    fn restoring_version_zero_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(restore(0))
            .then_expect_error(CvError::InvalidVersion);
    }

    #[test]
    fn restoring_the_current_version_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(restore(4))
            .then_expect_error(CvError::InvalidVersion);
    }

    #[test]
    fn restoring_a_later_version_is_rejected() {
        CvTest::with(())
            .given(with_three_entries())
            .when(restore(5))
            .then_expect_error(CvError::InvalidVersion);
    }

    #[test]
    fn restoring_a_version_identical_to_the_current_state_records_nothing() {
        CvTest::with(())
            .given(vec![
                created(),
                CvEvent::Archived { by_admin: false },
                CvEvent::Unarchived,
            ])
            .when(restore(1))
            .then_expect_events(vec![]);
    }

    // Applying events

    #[test]
    fn applying_events_rebuilds_the_content_and_counts_versions() {
        let cv = state(vec![
            created(),
            added(E1, "Pied Piper"),
            added(E2, "Hooli"),
            CvEvent::BasicsUpdated {
                changes: basics(&[("name", "Richard"), ("email", "r@example.com")]),
            },
            CvEvent::EntryUpdated {
                section: Section::Work,
                entry_id: E1,
                changes: BTreeMap::from([
                    ("position".to_owned(), text("")),
                    ("highlights".to_owned(), list(&["Middle-out"])),
                ]),
            },
            CvEvent::EntryMoved {
                section: Section::Work,
                entry_id: E2,
                from: 1,
                to: 0,
            },
            CvEvent::BasicsUpdated {
                changes: basics(&[("email", "")]),
            },
            CvEvent::Renamed {
                from: "Main".into(),
                to: title("Startups"),
            },
            CvEvent::EntryRemoved {
                section: Section::Work,
                entry_id: E2,
                fields: work("Hooli"),
            },
        ]);
        let mut expected = CvContent {
            basics: basics(&[("name", "Richard")]),
            ..CvContent::default()
        };
        expected.sections.insert(
            Section::Work,
            vec![Entry {
                id: E1,
                fields: fields(&[
                    ("name", text("Pied Piper")),
                    ("highlights", list(&["Middle-out"])),
                ]),
            }],
        );
        assert_eq!(cv.content, expected);
        assert_eq!(cv.version, 9);
        assert_eq!(cv.title, "Startups");
        assert_eq!(cv.owner, Some(OWNER));
        assert_eq!(cv.created_at, Some(AT));
        assert!(cv.created && !cv.archived);
    }

    #[test]
    fn every_event_adds_exactly_one_version() {
        let mut cv = state(vec![created()]);
        assert_eq!(cv.version, 1);
        let events = [
            CvEvent::Archived { by_admin: true },
            CvEvent::Unarchived,
            CvEvent::VersionRestored {
                version: 1,
                title: title("Main"),
                content: CvContent::default(),
            },
        ];
        for (n, event) in events.into_iter().enumerate() {
            cv.apply(event);
            assert_eq!(cv.version, n as u64 + 2);
        }
    }

    #[test]
    fn removing_the_last_entry_of_a_section_removes_the_section() {
        let cv = state(vec![
            created(),
            added(E1, "Hooli"),
            CvEvent::EntryRemoved {
                section: Section::Work,
                entry_id: E1,
                fields: work("Hooli"),
            },
        ]);
        assert_eq!(cv.content, CvContent::default());
    }

    #[test]
    fn events_about_unknown_entries_change_nothing_but_the_version() {
        let before = state(with_three_entries());
        let mut cv = before.clone();
        let unknown = Uuid::from_u128(99);
        cv.apply(CvEvent::EntryUpdated {
            section: Section::Work,
            entry_id: unknown,
            changes: BTreeMap::from([("name".to_owned(), text("X"))]),
        });
        cv.apply(CvEvent::EntryMoved {
            section: Section::Skills,
            entry_id: E1,
            from: 0,
            to: 5,
        });
        cv.apply(CvEvent::EntryRemoved {
            section: Section::Work,
            entry_id: unknown,
            fields: EntryFields::new(),
        });
        assert_eq!(cv.content, before.content);
        assert_eq!(cv.version, before.version + 3);
    }

    #[test]
    fn a_move_beyond_the_end_puts_the_entry_last() {
        let mut cv = state(with_three_entries());
        cv.apply(CvEvent::EntryMoved {
            section: Section::Work,
            entry_id: E1,
            from: 0,
            to: 42,
        });
        let ids: Vec<Uuid> = cv
            .content
            .entries(Section::Work)
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [E2, E3, E1]);
    }

    #[test]
    fn the_state_survives_a_snapshot_round_trip() {
        let cv = state(with_three_entries());
        let json = serde_json::to_string(&cv).unwrap();
        let back: Cv = serde_json::from_str(&json).unwrap();
        assert_eq!(back.content, cv.content);
        assert_eq!(back.created_at, Some(AT));
        assert_eq!(back.version, 4);
    }

    #[test]
    fn the_handle_future_is_send() {
        // cqrs-es requires it; this fails to compile if a non-Send value is ever held
        // across an await in `handle`.
        fn assert_send<T: Send>(_: &T) {}
        let mut cv = Cv::default();
        let sink = EventSink::<Cv>::default();
        let future = cv.handle(rename("Main"), &(), &sink);
        assert_send(&future);
    }
}
