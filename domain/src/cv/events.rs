//! `CvEvent`: the facts recorded about a CV, and their stored JSON shape.
//!
//! Events are stored forever, so variant names, field names, `event_type` strings and the
//! JSON shape are a compatibility contract; the tests below pin them.

use std::collections::BTreeMap;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::aggregate::Cv;
use super::content::{CvContent, CvTitle, EntryFields, FieldValue, Section, BASICS_FIELDS};

/// Version of every `CvEvent` payload shape.
const EVENT_VERSION: &str = "1.0";

/// Where a new CV came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CvOrigin {
    /// Started from scratch.
    Blank,
    /// A copy of another CV as it was at `source_version`.
    Duplicate {
        source_id: Uuid,
        source_version: u64,
    },
    /// Imported from a JSON Resume document.
    Import,
}

/// Something that happened to a CV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CvEvent {
    /// The CV was created (version 1).
    Created {
        owner: Uuid,
        title: CvTitle,
        content: CvContent,
        origin: CvOrigin,
        /// When (UTC).
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
    },
    /// The title changed.
    Renamed { from: String, to: CvTitle },
    /// Basics changed; only the changed fields are present, "" meaning cleared.
    BasicsUpdated { changes: BTreeMap<String, String> },
    /// An entry was appended to a section.
    EntryAdded {
        section: Section,
        entry_id: Uuid,
        fields: EntryFields,
    },
    /// An entry changed; only the changed fields are present, an empty value (`""` or `[]`
    /// by the field's kind) meaning cleared.
    EntryUpdated {
        section: Section,
        entry_id: Uuid,
        changes: BTreeMap<String, FieldValue>,
    },
    /// An entry was removed; its fields are kept so that history can name it.
    EntryRemoved {
        section: Section,
        entry_id: Uuid,
        fields: EntryFields,
    },
    /// An entry moved from one position of its section to another (0-based).
    EntryMoved {
        section: Section,
        entry_id: Uuid,
        from: usize,
        to: usize,
    },
    /// The CV became read-only.
    Archived { by_admin: bool },
    /// The CV became editable again.
    Unarchived,
    /// The title and content went back to what they were at `version`.
    VersionRestored {
        version: u64,
        title: CvTitle,
        content: CvContent,
    },
}

impl CvEvent {
    /// A short sentence for the history page, given the CV as it was before this event, e.g.
    /// "changed work entry “Pied Piper”: position, end date". Names titles and fields only,
    /// never the text of a field.
    pub fn describe(&self, before: &Cv) -> String {
        match self {
            CvEvent::Created { title, origin, .. } => match origin {
                CvOrigin::Blank => format!("created the CV “{title}”"),
                CvOrigin::Duplicate { source_version, .. } => {
                    format!("created as a copy of version {source_version} of another CV")
                }
                CvOrigin::Import => "imported from a JSON Resume document".to_owned(),
            },
            CvEvent::Renamed { from, to } => format!("renamed from “{from}” to “{to}”"),
            CvEvent::BasicsUpdated { changes } => {
                let mut labels: Vec<String> = BASICS_FIELDS
                    .iter()
                    .filter(|spec| changes.contains_key(spec.name))
                    .map(|spec| short_label(spec.label))
                    .collect();
                labels.extend(
                    changes
                        .keys()
                        .filter(|name| !BASICS_FIELDS.iter().any(|spec| spec.name == *name))
                        .cloned(),
                );
                format!("updated basics: {}", labels.join(", "))
            }
            CvEvent::EntryAdded {
                section, fields, ..
            } => format!(
                "added {}{}",
                section.entry_noun(),
                quoted_title(*section, fields)
            ),
            CvEvent::EntryUpdated {
                section,
                entry_id,
                changes,
            } => {
                let mut labels: Vec<String> = section
                    .fields()
                    .iter()
                    .filter(|spec| changes.contains_key(spec.name))
                    .map(|spec| short_label(spec.label))
                    .collect();
                labels.extend(
                    changes
                        .keys()
                        .filter(|name| section.field(name).is_none())
                        .cloned(),
                );
                format!(
                    "changed {}{}: {}",
                    section.entry_noun(),
                    entry_title(before, *section, *entry_id),
                    labels.join(", ")
                )
            }
            CvEvent::EntryRemoved {
                section, fields, ..
            } => format!(
                "removed {}{}",
                section.entry_noun(),
                quoted_title(*section, fields)
            ),
            CvEvent::EntryMoved {
                section,
                entry_id,
                from,
                to,
            } => format!(
                "moved {}{} {}",
                section.entry_noun(),
                entry_title(before, *section, *entry_id),
                if to < from { "up" } else { "down" }
            ),
            CvEvent::Archived { by_admin: false } => "archived the CV".to_owned(),
            CvEvent::Archived { by_admin: true } => "archived by an administrator".to_owned(),
            CvEvent::Unarchived => "unarchived the CV".to_owned(),
            CvEvent::VersionRestored { version, .. } => format!("restored version {version}"),
        }
    }
}

/// A label as it reads inside a sentence: "Highlights (one per line)" → "highlights",
/// "End date" → "end date", "URL" → "URL".
fn short_label(label: &str) -> String {
    let label = label.split(" (").next().unwrap_or(label);
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_uppercase() => {
            label.to_owned()
        }
        (Some(first), _) => first.to_lowercase().chain(label.chars().skip(1)).collect(),
        (None, _) => String::new(),
    }
}

/// ` “Pied Piper”` (with a leading space) from the entry's title field, or "" if it has none.
fn quoted_title(section: Section, fields: &EntryFields) -> String {
    match fields.get(section.title_field()) {
        Some(FieldValue::Text(title)) if !title.is_empty() => format!(" “{title}”"),
        _ => String::new(),
    }
}

/// [`quoted_title`] of the entry `id` of `section` in `cv`, or "" if there is no such entry.
fn entry_title(cv: &Cv, section: Section, id: Uuid) -> String {
    cv.entry(section, id)
        .map(|entry| quoted_title(section, &entry.fields))
        .unwrap_or_default()
}

impl DomainEvent for CvEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CvEvent::Created { .. } => "CvCreated",
            CvEvent::Renamed { .. } => "CvRenamed",
            CvEvent::BasicsUpdated { .. } => "CvBasicsUpdated",
            CvEvent::EntryAdded { .. } => "CvEntryAdded",
            CvEvent::EntryUpdated { .. } => "CvEntryUpdated",
            CvEvent::EntryRemoved { .. } => "CvEntryRemoved",
            CvEvent::EntryMoved { .. } => "CvEntryMoved",
            CvEvent::Archived { .. } => "CvArchived",
            CvEvent::Unarchived => "CvUnarchived",
            CvEvent::VersionRestored { .. } => "CvVersionRestored",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::cv::content::Entry;

    const OWNER: Uuid = Uuid::from_u128(0x0000_0001_0000_0000_0000_0000_0000_0001);
    const ENTRY: Uuid = Uuid::from_u128(0x0000_0002_0000_0000_0000_0000_0000_0002);

    fn title(text: &str) -> CvTitle {
        CvTitle::parse(text).unwrap()
    }

    fn text(value: &str) -> FieldValue {
        FieldValue::Text(value.to_owned())
    }

    fn pied_piper() -> EntryFields {
        EntryFields::from([
            ("name".to_owned(), text("Pied Piper")),
            ("position".to_owned(), text("CEO")),
        ])
    }

    fn created(origin: CvOrigin) -> CvEvent {
        CvEvent::Created {
            owner: OWNER,
            title: title("Main"),
            content: CvContent::default(),
            origin,
            created_at: datetime!(2024-05-01 12:00 UTC),
        }
    }

    /// A CV with the Pied Piper work entry, as history sees it before an event.
    fn before() -> Cv {
        let mut cv = Cv::default();
        cv.content.sections.insert(
            Section::Work,
            vec![Entry {
                id: ENTRY,
                fields: pied_piper(),
            }],
        );
        cv
    }

    /// Serialises `event`, checks it against the literal stored JSON, and checks that the
    /// literal deserialises back to the same event.
    fn assert_round_trip(event: &CvEvent, json: &str) {
        assert_eq!(serde_json::to_string(event).unwrap(), json);
        assert_eq!(&serde_json::from_str::<CvEvent>(json).unwrap(), event);
    }

    #[test]
    fn created_has_a_stable_json_shape() {
        let mut content = CvContent::default();
        content.basics.insert("name".into(), "Richard".into());
        content.sections.insert(
            Section::Skills,
            vec![Entry {
                id: ENTRY,
                fields: EntryFields::from([
                    ("name".to_owned(), text("Compression")),
                    (
                        "keywords".to_owned(),
                        FieldValue::List(vec!["middle-out".into()]),
                    ),
                ]),
            }],
        );
        assert_round_trip(
            &CvEvent::Created {
                owner: OWNER,
                title: title("Main"),
                content,
                origin: CvOrigin::Blank,
                created_at: datetime!(2024-05-01 12:00 UTC),
            },
            r#"{"Created":{"owner":"00000001-0000-0000-0000-000000000001","title":"Main","content":{"basics":{"name":"Richard"},"sections":{"skills":[{"id":"00000002-0000-0000-0000-000000000002","fields":{"keywords":["middle-out"],"name":"Compression"}}]}},"origin":{"kind":"blank"},"created_at":"2024-05-01T12:00:00Z"}}"#,
        );
    }

    #[test]
    fn every_origin_has_a_stable_json_shape() {
        assert_round_trip(
            &created(CvOrigin::Duplicate {
                source_id: ENTRY,
                source_version: 3,
            }),
            r#"{"Created":{"owner":"00000001-0000-0000-0000-000000000001","title":"Main","content":{"basics":{},"sections":{}},"origin":{"kind":"duplicate","source_id":"00000002-0000-0000-0000-000000000002","source_version":3},"created_at":"2024-05-01T12:00:00Z"}}"#,
        );
        assert_round_trip(
            &created(CvOrigin::Import),
            r#"{"Created":{"owner":"00000001-0000-0000-0000-000000000001","title":"Main","content":{"basics":{},"sections":{}},"origin":{"kind":"import"},"created_at":"2024-05-01T12:00:00Z"}}"#,
        );
    }

    #[test]
    fn renamed_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::Renamed {
                from: "Main".into(),
                to: title("Short"),
            },
            r#"{"Renamed":{"from":"Main","to":"Short"}}"#,
        );
    }

    #[test]
    fn basics_updated_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::BasicsUpdated {
                changes: BTreeMap::from([
                    ("email".to_owned(), String::new()),
                    ("name".to_owned(), "Richard".to_owned()),
                ]),
            },
            r#"{"BasicsUpdated":{"changes":{"email":"","name":"Richard"}}}"#,
        );
    }

    #[test]
    fn entry_added_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::EntryAdded {
                section: Section::Work,
                entry_id: ENTRY,
                fields: pied_piper(),
            },
            r#"{"EntryAdded":{"section":"work","entry_id":"00000002-0000-0000-0000-000000000002","fields":{"name":"Pied Piper","position":"CEO"}}}"#,
        );
    }

    #[test]
    fn entry_updated_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::EntryUpdated {
                section: Section::Work,
                entry_id: ENTRY,
                changes: BTreeMap::from([
                    ("endDate".to_owned(), text("")),
                    ("highlights".to_owned(), FieldValue::List(vec![])),
                    ("position".to_owned(), text("CTO")),
                ]),
            },
            r#"{"EntryUpdated":{"section":"work","entry_id":"00000002-0000-0000-0000-000000000002","changes":{"endDate":"","highlights":[],"position":"CTO"}}}"#,
        );
    }

    #[test]
    fn entry_removed_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::EntryRemoved {
                section: Section::Work,
                entry_id: ENTRY,
                fields: pied_piper(),
            },
            r#"{"EntryRemoved":{"section":"work","entry_id":"00000002-0000-0000-0000-000000000002","fields":{"name":"Pied Piper","position":"CEO"}}}"#,
        );
    }

    #[test]
    fn entry_moved_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::EntryMoved {
                section: Section::Profiles,
                entry_id: ENTRY,
                from: 2,
                to: 1,
            },
            r#"{"EntryMoved":{"section":"profiles","entry_id":"00000002-0000-0000-0000-000000000002","from":2,"to":1}}"#,
        );
    }

    #[test]
    fn archived_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::Archived { by_admin: true },
            r#"{"Archived":{"by_admin":true}}"#,
        );
    }

    #[test]
    fn unarchived_has_a_stable_json_shape() {
        assert_round_trip(&CvEvent::Unarchived, r#""Unarchived""#);
    }

    #[test]
    fn version_restored_has_a_stable_json_shape() {
        assert_round_trip(
            &CvEvent::VersionRestored {
                version: 3,
                title: title("Main"),
                content: CvContent::default(),
            },
            r#"{"VersionRestored":{"version":3,"title":"Main","content":{"basics":{},"sections":{}}}}"#,
        );
    }

    #[test]
    fn event_types_are_stable_names() {
        let events = [
            created(CvOrigin::Blank),
            CvEvent::Renamed {
                from: "A".into(),
                to: title("B"),
            },
            CvEvent::BasicsUpdated {
                changes: BTreeMap::new(),
            },
            CvEvent::EntryAdded {
                section: Section::Work,
                entry_id: ENTRY,
                fields: pied_piper(),
            },
            CvEvent::EntryUpdated {
                section: Section::Work,
                entry_id: ENTRY,
                changes: BTreeMap::new(),
            },
            CvEvent::EntryRemoved {
                section: Section::Work,
                entry_id: ENTRY,
                fields: pied_piper(),
            },
            CvEvent::EntryMoved {
                section: Section::Work,
                entry_id: ENTRY,
                from: 0,
                to: 1,
            },
            CvEvent::Archived { by_admin: false },
            CvEvent::Unarchived,
            CvEvent::VersionRestored {
                version: 1,
                title: title("A"),
                content: CvContent::default(),
            },
        ];
        let types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
        assert_eq!(
            types,
            [
                "CvCreated",
                "CvRenamed",
                "CvBasicsUpdated",
                "CvEntryAdded",
                "CvEntryUpdated",
                "CvEntryRemoved",
                "CvEntryMoved",
                "CvArchived",
                "CvUnarchived",
                "CvVersionRestored"
            ]
        );
        assert!(events.iter().all(|event| event.event_version() == "1.0"));
    }

    #[test]
    fn creation_is_described_by_its_origin() {
        let cv = Cv::default();
        assert_eq!(
            created(CvOrigin::Blank).describe(&cv),
            "created the CV “Main”"
        );
        assert_eq!(
            created(CvOrigin::Duplicate {
                source_id: ENTRY,
                source_version: 3
            })
            .describe(&cv),
            "created as a copy of version 3 of another CV"
        );
        assert_eq!(
            created(CvOrigin::Import).describe(&cv),
            "imported from a JSON Resume document"
        );
    }

    #[test]
    fn a_rename_is_described_with_both_titles() {
        let event = CvEvent::Renamed {
            from: "A".into(),
            to: title("B"),
        };
        assert_eq!(event.describe(&before()), "renamed from “A” to “B”");
    }

    #[test]
    fn a_basics_update_names_the_changed_fields_in_form_order() {
        let event = CvEvent::BasicsUpdated {
            changes: BTreeMap::from([
                ("email".to_owned(), "r@example.com".to_owned()),
                ("label".to_owned(), String::new()),
                ("name".to_owned(), "Richard".to_owned()),
            ]),
        };
        assert_eq!(
            event.describe(&before()),
            "updated basics: name, label, email"
        );
    }

    #[test]
    fn an_added_entry_is_described_by_its_title() {
        let event = CvEvent::EntryAdded {
            section: Section::Work,
            entry_id: ENTRY,
            fields: pied_piper(),
        };
        assert_eq!(
            event.describe(&Cv::default()),
            "added work entry “Pied Piper”"
        );
    }

    #[test]
    fn an_entry_without_a_title_is_described_by_its_kind_only() {
        let event = CvEvent::EntryAdded {
            section: Section::Skills,
            entry_id: ENTRY,
            fields: EntryFields::from([("level".to_owned(), text("Expert"))]),
        };
        assert_eq!(event.describe(&Cv::default()), "added skill");
    }

    #[test]
    fn an_entry_change_names_the_entry_before_and_the_changed_fields_only() {
        let event = CvEvent::EntryUpdated {
            section: Section::Work,
            entry_id: ENTRY,
            changes: BTreeMap::from([
                ("endDate".to_owned(), text("2015")),
                ("name".to_owned(), text("Hooli")),
                ("summary".to_owned(), text("A very long secret text")),
                ("url".to_owned(), text("https://hooli.xyz")),
            ]),
        };
        let description = event.describe(&before());
        assert_eq!(
            description,
            "changed work entry “Pied Piper”: company, website, end date, summary"
        );
        assert!(!description.contains("secret"));
    }

    #[test]
    fn a_removal_and_a_move_are_described() {
        let removed = CvEvent::EntryRemoved {
            section: Section::Work,
            entry_id: ENTRY,
            fields: pied_piper(),
        };
        assert_eq!(
            removed.describe(&before()),
            "removed work entry “Pied Piper”"
        );
        let moved = CvEvent::EntryMoved {
            section: Section::Work,
            entry_id: ENTRY,
            from: 1,
            to: 0,
        };
        assert_eq!(
            moved.describe(&before()),
            "moved work entry “Pied Piper” up"
        );
    }

    #[test]
    fn archiving_and_restoring_are_described() {
        let cv = before();
        assert_eq!(
            CvEvent::Archived { by_admin: false }.describe(&cv),
            "archived the CV"
        );
        assert_eq!(
            CvEvent::Archived { by_admin: true }.describe(&cv),
            "archived by an administrator"
        );
        assert_eq!(CvEvent::Unarchived.describe(&cv), "unarchived the CV");
        let restored = CvEvent::VersionRestored {
            version: 3,
            title: title("Main"),
            content: CvContent::default(),
        };
        assert_eq!(restored.describe(&cv), "restored version 3");
    }

    #[test]
    fn labels_read_well_inside_sentences() {
        assert_eq!(short_label("Highlights (one per line)"), "highlights");
        assert_eq!(short_label("Start date"), "start date");
        assert_eq!(short_label("URL"), "URL");
    }
}
