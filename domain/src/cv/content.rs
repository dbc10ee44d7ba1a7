//! What a CV contains, modelled on the JSON Resume schema (1.2.1): `basics` (one set of fields)
//! and sections of entries (`work`, `education`, …). Each section's fields are described by a
//! static schema ([`Section::fields`]), so forms, validation, history and JSON Resume
//! conversion all work from one description instead of one struct per section.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest one-line text field, in characters.
pub const TEXT_MAX: usize = 200;
/// Longest multi-line text field (summaries, descriptions).
pub const LONG_TEXT_MAX: usize = 5_000;
/// Most items in a list field (highlights, keywords, courses, roles).
pub const LIST_ITEMS_MAX: usize = 50;
/// Most entries in one section.
pub const ENTRIES_MAX: usize = 100;
/// Longest CV title.
pub const TITLE_MAX: usize = 120;

/// The kind of value a field holds, which decides its validation and its form control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines of text.
    LongText,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    Date,
    /// An absolute `http://` or `https://` URL.
    Url,
    /// An email address.
    Email,
    /// A list of one-line items (one per line in forms).
    List,
}

/// One field of a section's entries (or of `basics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FieldSpec {
    /// The JSON Resume property name (also the form field name).
    pub name: &'static str,
    /// What people read next to it.
    pub label: &'static str,
    /// Its kind.
    pub kind: FieldKind,
}

const fn field(name: &'static str, label: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec { name, label, kind }
}

use FieldKind::{Date, Email, List, LongText, Text, Url};

/// The fields of `basics`, flattened (`location.city` is `city`), as the HTTP contract names them.
pub const BASICS_FIELDS: &[FieldSpec] = &[
    field("name", "Name", Text),
    field("label", "Label (e.g. Software engineer)", Text),
    field("email", "Email", Email),
    field("phone", "Phone", Text),
    field("url", "Website", Url),
    field("summary", "Summary", LongText),
    field("address", "Address", Text),
    field("postalCode", "Postal code", Text),
    field("city", "City", Text),
    field("countryCode", "Country code", Text),
    field("region", "Region", Text),
];

/// The basics fields that JSON Resume nests under `location`.
pub const LOCATION_FIELDS: &[&str] = &["address", "postalCode", "city", "countryCode", "region"];

/// A section of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Section {
    /// `basics.profiles`: social and professional profiles.
    Profiles,
    Work,
    Volunteer,
    Education,
    Awards,
    Certificates,
    Publications,
    Skills,
    Languages,
    Interests,
    References,
    Projects,
}

/// A section name that is not one of the JSON Resume sections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown section: {0}")]
pub struct UnknownSection(pub String);

impl Section {
    /// Every section, in the order a CV shows them.
    pub const ALL: [Section; 12] = [
        Section::Profiles,
        Section::Work,
        Section::Projects,
        Section::Education,
        Section::Skills,
        Section::Languages,
        Section::Certificates,
        Section::Awards,
        Section::Publications,
        Section::Volunteer,
        Section::Interests,
        Section::References,
    ];

    /// The JSON Resume name (`work`, `education`, …; `profiles` for `basics.profiles`).
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Profiles => "profiles",
            Section::Work => "work",
            Section::Volunteer => "volunteer",
            Section::Education => "education",
            Section::Awards => "awards",
            Section::Certificates => "certificates",
            Section::Publications => "publications",
            Section::Skills => "skills",
            Section::Languages => "languages",
            Section::Interests => "interests",
            Section::References => "references",
            Section::Projects => "projects",
        }
    }

    /// The heading people read.
    pub fn title(self) -> &'static str {
        match self {
            Section::Profiles => "Profiles",
            Section::Work => "Work experience",
            Section::Volunteer => "Volunteering",
            Section::Education => "Education",
            Section::Awards => "Awards",
            Section::Certificates => "Certificates",
            Section::Publications => "Publications",
            Section::Skills => "Skills",
            Section::Languages => "Languages",
            Section::Interests => "Interests",
            Section::References => "References",
            Section::Projects => "Projects",
        }
    }

    /// The singular noun for one entry ("work entry", "skill"…), for history sentences.
    pub fn entry_noun(self) -> &'static str {
        match self {
            Section::Profiles => "profile",
            Section::Work => "work entry",
            Section::Volunteer => "volunteering entry",
            Section::Education => "education entry",
            Section::Awards => "award",
            Section::Certificates => "certificate",
            Section::Publications => "publication",
            Section::Skills => "skill",
            Section::Languages => "language",
            Section::Interests => "interest",
            Section::References => "reference",
            Section::Projects => "project",
        }
    }

    /// The fields of this section's entries, in form order.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Section::Profiles => &[
                FieldSpec {
                    name: "network",
                    label: "Network (e.g. GitHub)",
                    kind: Text,
                },
                FieldSpec {
                    name: "username",
                    label: "Username",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "URL",
                    kind: Url,
                },
            ],
            Section::Work => &[
                FieldSpec {
                    name: "name",
                    label: "Company",
                    kind: Text,
                },
                FieldSpec {
                    name: "position",
                    label: "Position",
                    kind: Text,
                },
                FieldSpec {
                    name: "location",
                    label: "Location",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "Website",
                    kind: Url,
                },
                FieldSpec {
                    name: "startDate",
                    label: "Start date",
                    kind: Date,
                },
                FieldSpec {
                    name: "endDate",
                    label: "End date",
                    kind: Date,
                },
                FieldSpec {
                    name: "description",
                    label: "Description of the company",
                    kind: Text,
                },
                FieldSpec {
                    name: "summary",
                    label: "Summary",
                    kind: LongText,
                },
                FieldSpec {
                    name: "highlights",
                    label: "Highlights (one per line)",
                    kind: List,
                },
            ],
            Section::Volunteer => &[
                FieldSpec {
                    name: "organization",
                    label: "Organization",
                    kind: Text,
                },
                FieldSpec {
                    name: "position",
                    label: "Position",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "Website",
                    kind: Url,
                },
                FieldSpec {
                    name: "startDate",
                    label: "Start date",
                    kind: Date,
                },
                FieldSpec {
                    name: "endDate",
                    label: "End date",
                    kind: Date,
                },
                FieldSpec {
                    name: "summary",
                    label: "Summary",
                    kind: LongText,
                },
                FieldSpec {
                    name: "highlights",
                    label: "Highlights (one per line)",
                    kind: List,
                },
            ],
            Section::Education => &[
                FieldSpec {
                    name: "institution",
                    label: "Institution",
                    kind: Text,
                },
                FieldSpec {
                    name: "area",
                    label: "Area of study",
                    kind: Text,
                },
                FieldSpec {
                    name: "studyType",
                    label: "Degree",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "Website",
                    kind: Url,
                },
                FieldSpec {
                    name: "startDate",
                    label: "Start date",
                    kind: Date,
                },
                FieldSpec {
                    name: "endDate",
                    label: "End date",
                    kind: Date,
                },
                FieldSpec {
                    name: "score",
                    label: "Score (e.g. GPA)",
                    kind: Text,
                },
                FieldSpec {
                    name: "courses",
                    label: "Courses (one per line)",
                    kind: List,
                },
            ],
            Section::Awards => &[
                FieldSpec {
                    name: "title",
                    label: "Title",
                    kind: Text,
                },
                FieldSpec {
                    name: "date",
                    label: "Date",
                    kind: Date,
                },
                FieldSpec {
                    name: "awarder",
                    label: "Awarded by",
                    kind: Text,
                },
                FieldSpec {
                    name: "summary",
                    label: "Summary",
                    kind: LongText,
                },
            ],
            Section::Certificates => &[
                FieldSpec {
                    name: "name",
                    label: "Name",
                    kind: Text,
                },
                FieldSpec {
                    name: "date",
                    label: "Date",
                    kind: Date,
                },
                FieldSpec {
                    name: "issuer",
                    label: "Issuer",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "URL",
                    kind: Url,
                },
            ],
            Section::Publications => &[
                FieldSpec {
                    name: "name",
                    label: "Title",
                    kind: Text,
                },
                FieldSpec {
                    name: "publisher",
                    label: "Publisher",
                    kind: Text,
                },
                FieldSpec {
                    name: "releaseDate",
                    label: "Release date",
                    kind: Date,
                },
                FieldSpec {
                    name: "url",
                    label: "URL",
                    kind: Url,
                },
                FieldSpec {
                    name: "summary",
                    label: "Summary",
                    kind: LongText,
                },
            ],
            Section::Skills => &[
                FieldSpec {
                    name: "name",
                    label: "Skill",
                    kind: Text,
                },
                FieldSpec {
                    name: "level",
                    label: "Level",
                    kind: Text,
                },
                FieldSpec {
                    name: "keywords",
                    label: "Keywords (one per line)",
                    kind: List,
                },
            ],
            Section::Languages => &[
                FieldSpec {
                    name: "language",
                    label: "Language",
                    kind: Text,
                },
                FieldSpec {
                    name: "fluency",
                    label: "Fluency",
                    kind: Text,
                },
            ],
            Section::Interests => &[
                FieldSpec {
                    name: "name",
                    label: "Interest",
                    kind: Text,
                },
                FieldSpec {
                    name: "keywords",
                    label: "Keywords (one per line)",
                    kind: List,
                },
            ],
            Section::References => &[
                FieldSpec {
                    name: "name",
                    label: "Name",
                    kind: Text,
                },
                FieldSpec {
                    name: "reference",
                    label: "Reference",
                    kind: LongText,
                },
            ],
            Section::Projects => &[
                FieldSpec {
                    name: "name",
                    label: "Name",
                    kind: Text,
                },
                FieldSpec {
                    name: "description",
                    label: "Description",
                    kind: LongText,
                },
                FieldSpec {
                    name: "entity",
                    label: "Organisation",
                    kind: Text,
                },
                FieldSpec {
                    name: "type",
                    label: "Type (e.g. application)",
                    kind: Text,
                },
                FieldSpec {
                    name: "url",
                    label: "URL",
                    kind: Url,
                },
                FieldSpec {
                    name: "startDate",
                    label: "Start date",
                    kind: Date,
                },
                FieldSpec {
                    name: "endDate",
                    label: "End date",
                    kind: Date,
                },
                FieldSpec {
                    name: "roles",
                    label: "Roles (one per line)",
                    kind: List,
                },
                FieldSpec {
                    name: "highlights",
                    label: "Highlights (one per line)",
                    kind: List,
                },
                FieldSpec {
                    name: "keywords",
                    label: "Keywords (one per line)",
                    kind: List,
                },
            ],
        }
    }

    /// The field that names an entry in lists and history ("Pied Piper", "Rust").
    pub fn title_field(self) -> &'static str {
        match self {
            Section::Profiles => "network",
            Section::Volunteer => "organization",
            Section::Education => "institution",
            Section::Awards => "title",
            Section::Languages => "language",
            _ => "name",
        }
    }

    /// The spec of `name` in this section.
    pub fn field(self, name: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|spec| spec.name == name)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Section {
    type Err = UnknownSection;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Section::ALL
            .into_iter()
            .find(|section| section.as_str() == name)
            .ok_or_else(|| UnknownSection(name.to_owned()))
    }
}

/// A field's value: text, or a list of items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Text(String),
    List(Vec<String>),
}

impl FieldValue {
    /// Whether the value says nothing (empty text or list).
    pub fn is_empty(&self) -> bool {
        match self {
            FieldValue::Text(text) => text.is_empty(),
            FieldValue::List(items) => items.is_empty(),
        }
    }

    /// The text (items joined by newlines for lists), as a form shows it.
    pub fn as_form_text(&self) -> String {
        match self {
            FieldValue::Text(text) => text.clone(),
            FieldValue::List(items) => items.join("\n"),
        }
    }
}

/// The fields of one entry (absent fields are empty).
pub type EntryFields = BTreeMap<String, FieldValue>;

/// One entry of a section, with a stable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: Uuid,
    pub fields: EntryFields,
}

impl Entry {
    /// The text of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        match self.fields.get(name) {
            Some(FieldValue::Text(text)) => text,
            _ => "",
        }
    }

    /// The items of `name`, or none.
    pub fn list(&self, name: &str) -> &[String] {
        match self.fields.get(name) {
            Some(FieldValue::List(items)) => items,
            _ => &[],
        }
    }
}

/// Everything a CV says, apart from its title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CvContent {
    /// The `basics` fields by name (flattened; see [`BASICS_FIELDS`]). Absent = empty.
    #[serde(default)]
    pub basics: BTreeMap<String, String>,
    /// Entries of each section, in display order. Absent = no entries.
    #[serde(default)]
    pub sections: BTreeMap<Section, Vec<Entry>>,
}

impl CvContent {
    /// The entries of `section`, in order.
    pub fn entries(&self, section: Section) -> &[Entry] {
        self.sections
            .get(&section)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The basics field `name`, or "".
    pub fn basic(&self, name: &str) -> &str {
        self.basics.get(name).map(String::as_str).unwrap_or("")
    }

    /// Number of entries in every section together.
    pub fn entry_count(&self) -> usize {
        self.sections.values().map(Vec::len).sum()
    }
}

/// Messages for invalid fields, by field name.
pub type FieldErrors = BTreeMap<String, String>;

/// A CV's title: trimmed, 1 to [`TITLE_MAX`] characters, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CvTitle(String);

/// Why a title was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvTitleError {
    #[error("Give the CV a title.")]
    Empty,
    #[error("The title must be at most 120 characters.")]
    TooLong,
    #[error("The title must be a single line.")]
    Multiline,
}

impl CvTitle {
    /// Validates a title.
    pub fn parse(text: &str) -> Result<Self, CvTitleError> {
        let text = text.trim();
        if text.is_empty() {
            Err(CvTitleError::Empty)
        } else if text.chars().count() > TITLE_MAX {
            Err(CvTitleError::TooLong)
        } else if text.chars().any(char::is_control) {
            Err(CvTitleError::Multiline)
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CvTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` is `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with a real month and day.
pub fn is_partial_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |part: &str, len: usize| -> Option<u32> {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        [year] => number(year, 4).is_some_and(|y| (1000..=2999).contains(&y)),
        [year, month] => {
            number(year, 4).is_some_and(|y| (1000..=2999).contains(&y))
                && number(month, 2).is_some_and(|m| (1..=12).contains(&m))
        }
        [year, month, day] => {
            let (Some(y), Some(m), Some(d)) = (number(year, 4), number(month, 2), number(day, 2))
            else {
                return false;
            };
            let Ok(month) = time::Month::try_from(m as u8) else {
                return false;
            };
            (1000..=2999).contains(&y)
                && time::Date::from_calendar_date(y as i32, month, d as u8).is_ok()
        }
        _ => false,
    }
}

/// Whether `end` is not before `start`, comparing at the precision both have (`2020` vs
/// `2020-05` compares the years only).
pub fn dates_in_order(start: &str, end: &str) -> bool {
    let precision = start.len().min(end.len());
    end[..precision] >= start[..precision]
}

/// Whether `url` is an absolute http(s) URL with a host and nothing that breaks out of an
/// attribute: only such URLs ever become links.
pub fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && !url.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`')
                })
        }
        None => false,
    }
}

fn check_text(errors: &mut FieldErrors, spec: &FieldSpec, text: &str) {
    let max = if spec.kind == LongText {
        LONG_TEXT_MAX
    } else {
        TEXT_MAX
    };
    let multiline = spec.kind == LongText;
    if text.chars().count() > max {
        errors.insert(spec.name.into(), format!("At most {max} characters."));
        return;
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t')))
    {
        errors.insert(
            spec.name.into(),
            "Contains characters that are not allowed.".into(),
        );
        return;
    }
    if text.is_empty() {
        return;
    }
    match spec.kind {
        Date if !is_partial_date(text) => {
            errors.insert(
                spec.name.into(),
                "Use YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2021-09).".into(),
            );
        }
        Url if !is_web_url(text) => {
            errors.insert(
                spec.name.into(),
                "Use a full address starting with http:// or https://.".into(),
            );
        }
        Email
            if !(text.contains('@')
                && text.contains('.')
                && !text.contains(char::is_whitespace)) =>
        {
            errors.insert(spec.name.into(), "Enter a valid email address.".into());
        }
        _ => {}
    }
}

/// Normalises form text: trims, and turns `\r\n` into `\n`.
fn normalise(text: &str) -> String {
    text.replace("\r\n", "\n").trim().to_owned()
}

/// Validates the raw text of an entry's form (lists as one item per line). Unknown names are
/// ignored (a form never gets to set fields it does not show); empty fields are left out.
pub fn parse_entry(
    section: Section,
    raw: &BTreeMap<String, String>,
) -> Result<EntryFields, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut fields = EntryFields::new();
    for spec in section.fields() {
        let text = raw.get(spec.name).map(|t| normalise(t)).unwrap_or_default();
        if spec.kind == List {
            let items: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect();
            if items.len() > LIST_ITEMS_MAX {
                errors.insert(spec.name.into(), format!("At most {LIST_ITEMS_MAX} items."));
            } else if let Some(long) = items.iter().find(|item| item.chars().count() > TEXT_MAX) {
                let _ = long;
                errors.insert(
                    spec.name.into(),
                    format!("Each item must be at most {TEXT_MAX} characters."),
                );
            } else if !items.is_empty() {
                fields.insert(spec.name.into(), FieldValue::List(items));
            }
            continue;
        }
        check_text(&mut errors, spec, &text);
        if !text.is_empty() {
            fields.insert(spec.name.into(), FieldValue::Text(text));
        }
    }
    check_date_order(&fields, &mut errors);
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(errors)
    }
}

fn check_date_order(fields: &EntryFields, errors: &mut FieldErrors) {
    if let (Some(FieldValue::Text(start)), Some(FieldValue::Text(end))) =
        (fields.get("startDate"), fields.get("endDate"))
    {
        if !errors.contains_key("startDate")
            && !errors.contains_key("endDate")
            && !dates_in_order(start, end)
        {
            errors.insert(
                "endDate".into(),
                "The end date is before the start date.".into(),
            );
        }
    }
}

/// Validates already-structured entry fields (from an import): the same rules as forms.
pub fn check_entry(section: Section, fields: &EntryFields) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    for (name, value) in fields {
        let Some(spec) = section.field(name) else {
            errors.insert(name.clone(), "Unknown field.".into());
            continue;
        };
        match (spec.kind, value) {
            (List, FieldValue::List(items)) => {
                if items.len() > LIST_ITEMS_MAX {
                    errors.insert(name.clone(), format!("At most {LIST_ITEMS_MAX} items."));
                } else if items
                    .iter()
                    .any(|item| item.chars().count() > TEXT_MAX || item.contains('\n'))
                {
                    errors.insert(
                        name.clone(),
                        format!("Each item must be one line of at most {TEXT_MAX} characters."),
                    );
                }
            }
            (List, FieldValue::Text(_)) => {
                errors.insert(name.clone(), "Expected a list.".into());
            }
            (_, FieldValue::List(_)) => {
                errors.insert(name.clone(), "Expected text.".into());
            }
            (_, FieldValue::Text(text)) => check_text(&mut errors, spec, text),
        }
    }
    check_date_order(fields, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validates the raw text of the basics form. Unknown names are ignored, empty ones left out.
pub fn parse_basics(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut basics = BTreeMap::new();
    for spec in BASICS_FIELDS {
        let text = raw.get(spec.name).map(|t| normalise(t)).unwrap_or_default();
        check_text(&mut errors, spec, &text);
        if !text.is_empty() {
            basics.insert(spec.name.to_owned(), text);
        }
    }
    if errors.is_empty() {
        Ok(basics)
    } else {
        Err(errors)
    }
}

/// Validates already-structured basics (from an import or a command): the same rules as the
/// basics form, and no names outside [`BASICS_FIELDS`].
pub fn check_basics(basics: &BTreeMap<String, String>) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    for (name, text) in basics {
        match BASICS_FIELDS.iter().find(|spec| spec.name == name) {
            Some(spec) => check_text(&mut errors, spec, text),
            None => {
                errors.insert(name.clone(), "Unknown field.".into());
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_section_round_trips_through_its_name() {
        for section in Section::ALL {
            assert_eq!(section.as_str().parse::<Section>(), Ok(section));
            assert!(section.field(section.title_field()).is_some(), "{section}");
        }
        assert!("basics".parse::<Section>().is_err());
    }

    #[test]
    fn partial_dates_are_accepted_and_nonsense_is_not() {
        for good in ["2021", "2021-09", "2020-02-29"] {
            assert!(is_partial_date(good), "{good}");
        }
        for bad in [
            "21",
            "2021-13",
            "2021-9",
            "2021-02-30",
            "2019-02-29",
            "2021/09",
            "soon",
            "3000",
        ] {
            assert!(!is_partial_date(bad), "{bad}");
        }
    }

    #[test]
    fn dates_compare_at_the_shared_precision() {
        assert!(dates_in_order("2020-05", "2020"));
        assert!(dates_in_order("2020-05", "2021-01-01"));
        assert!(!dates_in_order("2020-05", "2019-12"));
    }

    #[test]
    fn only_http_urls_are_web_urls() {
        assert!(is_web_url("https://example.org/x?y=1"));
        assert!(is_web_url("HTTP://EXAMPLE.ORG"));
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "//evil",
            "https://",
            "https://a\"b",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }

    #[test]
    fn an_entry_form_becomes_fields_with_lists_split_by_line() {
        let fields = parse_entry(
            Section::Work,
            &raw(&[
                ("name", " Pied Piper "),
                ("startDate", "2014-01"),
                ("highlights", "Built it\r\n\r\n  Sold it  \n"),
                ("role", "superuser"),
            ]),
        )
        .unwrap();
        assert_eq!(fields["name"], FieldValue::Text("Pied Piper".into()));
        assert_eq!(
            fields["highlights"],
            FieldValue::List(vec!["Built it".into(), "Sold it".into()])
        );
        assert!(
            !fields.contains_key("role"),
            "fields a form does not show are ignored"
        );
        assert!(!fields.contains_key("endDate"), "empty fields are left out");
    }

    #[test]
    fn an_end_before_the_start_is_refused() {
        let errors = parse_entry(
            Section::Education,
            &raw(&[("startDate", "2014-09"), ("endDate", "2013")]),
        )
        .unwrap_err();
        assert!(errors.contains_key("endDate"));
    }

    #[test]
    fn bad_dates_urls_and_lengths_are_named() {
        let long = "x".repeat(TEXT_MAX + 1);
        let errors = parse_entry(
            Section::Work,
            &raw(&[
                ("startDate", "May 2014"),
                ("url", "javascript:alert(1)"),
                ("name", &long),
            ]),
        )
        .unwrap_err();
        let mut names: Vec<&str> = errors.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["name", "startDate", "url"]);
    }

    #[test]
    fn too_many_list_items_are_refused() {
        let items = vec!["k"; LIST_ITEMS_MAX + 1].join("\n");
        assert!(parse_entry(Section::Skills, &raw(&[("keywords", &items)])).is_err());
    }

    #[test]
    fn basics_validate_email_and_url() {
        let errors = parse_basics(&raw(&[("email", "nope"), ("url", "ftp://x.org")])).unwrap_err();
        assert!(errors.contains_key("email") && errors.contains_key("url"));
        let basics = parse_basics(&raw(&[("name", "Ada"), ("city", "London")])).unwrap();
        assert_eq!(basics.len(), 2);
    }

    #[test]
    fn imported_fields_are_checked_by_kind() {
        let mut fields = EntryFields::new();
        fields.insert("keywords".into(), FieldValue::Text("rust".into()));
        fields.insert("name".into(), FieldValue::List(vec!["x".into()]));
        let errors = check_entry(Section::Skills, &fields).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn titles_are_trimmed_bounded_and_single_line() {
        assert_eq!(CvTitle::parse("  Main CV ").unwrap().as_str(), "Main CV");
        assert_eq!(CvTitle::parse("   "), Err(CvTitleError::Empty));
        assert_eq!(CvTitle::parse(&"t".repeat(121)), Err(CvTitleError::TooLong));
        assert_eq!(CvTitle::parse("a\nb"), Err(CvTitleError::Multiline));
    }

    #[test]
    fn content_serialises_sections_by_their_json_resume_names() {
        let mut content = CvContent::default();
        content.sections.insert(
            Section::Work,
            vec![Entry {
                id: Uuid::nil(),
                fields: EntryFields::from([("name".into(), FieldValue::Text("Hooli".into()))]),
            }],
        );
        let json = serde_json::to_value(&content).unwrap();
        assert_eq!(json["sections"]["work"][0]["fields"]["name"], "Hooli");
        assert_eq!(serde_json::from_value::<CvContent>(json).unwrap(), content);
    }
}
