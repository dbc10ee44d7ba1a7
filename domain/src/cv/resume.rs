//! Conversion between a CV and a JSON Resume document (schema 1.2.1).
//!
//! Export writes every non-empty field under its JSON Resume property name (our field names
//! are those names) and keeps the CV title in `meta.cvTitle`. Import is lenient about what it
//! does not know (unknown properties and sections are ignored, `null` means absent, names from
//! older schema versions are accepted) and strict about what it keeps: every value goes
//! through the same rules as the forms, and the first problem is reported with a JSON pointer
//! to the offending property.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::content::{
    check_basics, check_entry, CvContent, CvTitle, Entry, EntryFields, FieldErrors, FieldKind,
    FieldValue, Section, BASICS_FIELDS, ENTRIES_MAX, LOCATION_FIELDS,
};

/// The `$schema` link written into exports.
const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/jsonresume/resume-schema/v1.0.0/schema.json";
/// The `meta.version` written into exports.
const SCHEMA_VERSION: &str = "v1.0.0";
/// The `meta` property that carries the CV title.
const TITLE_PROPERTY: &str = "cvTitle";

/// Where in the document an import failed (a JSON pointer, "" for the root) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location_prefix(.pointer))]
pub struct ImportError {
    /// The JSON pointer (RFC 6901) of the offending value; "" for the whole document.
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

fn location_prefix(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!("{pointer}: ")
    }
}

impl ImportError {
    fn new(pointer: &str, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

/// A CV read from a JSON Resume document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCv {
    /// The title stored in `meta.cvTitle` by [`to_json_resume`], when it is a valid title.
    pub title: Option<String>,
    /// What the CV says.
    pub content: CvContent,
}

/// The CV as a JSON Resume 1.2.1 document.
///
/// Only non-empty fields are written; entries with nothing in them and sections with no
/// such entries are left out, so exporting what an import produced gives the same document.
pub fn to_json_resume(title: &str, content: &CvContent) -> Value {
    let mut basics = Map::new();
    let mut location = Map::new();
    for spec in BASICS_FIELDS {
        let text = content.basic(spec.name).trim();
        if text.is_empty() {
            continue;
        }
        let target = if LOCATION_FIELDS.contains(&spec.name) {
            &mut location
        } else {
            &mut basics
        };
        target.insert(spec.name.to_owned(), Value::String(text.to_owned()));
    }
    if !location.is_empty() {
        basics.insert("location".to_owned(), Value::Object(location));
    }
    let profiles = export_entries(Section::Profiles, content.entries(Section::Profiles));
    if !profiles.is_empty() {
        basics.insert("profiles".to_owned(), Value::Array(profiles));
    }

    let mut document = Map::new();
    document.insert("$schema".to_owned(), Value::String(SCHEMA_URL.to_owned()));
    document.insert("basics".to_owned(), Value::Object(basics));
    for section in top_level_sections() {
        let entries = export_entries(section, content.entries(section));
        if !entries.is_empty() {
            document.insert(section.as_str().to_owned(), Value::Array(entries));
        }
    }
    let mut meta = Map::new();
    meta.insert(
        "version".to_owned(),
        Value::String(SCHEMA_VERSION.to_owned()),
    );
    meta.insert(TITLE_PROPERTY.to_owned(), Value::String(title.to_owned()));
    document.insert("meta".to_owned(), Value::Object(meta));
    Value::Object(document)
}

/// The sections that are top-level arrays (profiles live in `basics`).
fn top_level_sections() -> impl Iterator<Item = Section> {
    Section::ALL
        .into_iter()
        .filter(|section| *section != Section::Profiles)
}

fn export_entries(section: Section, entries: &[Entry]) -> Vec<Value> {
    entries
        .iter()
        .map(|entry| export_fields(section, &entry.fields))
        .filter(|object| !object.is_empty())
        .map(Value::Object)
        .collect()
}

/// The schema's fields of one entry, each in the shape the schema gives it. Values of the
/// wrong kind cannot come out of validation, but are converted rather than dropped so that
/// an export never loses text nor breaks the schema.
fn export_fields(section: Section, fields: &EntryFields) -> Map<String, Value> {
    let mut object = Map::new();
    for spec in section.fields() {
        let Some(value) = fields.get(spec.name) else {
            continue;
        };
        let exported = if spec.kind == FieldKind::List {
            let items: Vec<Value> = match value {
                FieldValue::List(items) => items.iter().map(String::as_str).collect::<Vec<_>>(),
                FieldValue::Text(text) => text.lines().collect(),
            }
            .into_iter()
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| Value::String(item.to_owned()))
            .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        } else {
            let text = value.as_form_text();
            let text = text.trim();
            (!text.is_empty()).then(|| Value::String(text.to_owned()))
        };
        if let Some(exported) = exported {
            object.insert(spec.name.to_owned(), exported);
        }
    }
    object
}

/// Parses text then imports it with [`from_json_resume`]. Text that is not JSON is refused
/// at the root with the line and column where reading stopped.
pub fn parse_json_resume(
    text: &str,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<ImportedCv, ImportError> {
    // Editors on some systems save UTF-8 with a byte order mark, which JSON does not allow.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        let full = error.to_string();
        let reason = full
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&full);
        ImportError::new(
            "",
            format!("not valid JSON (line {line}, column {column}): {reason}"),
        )
    })?;
    from_json_resume(&document, new_id)
}

/// Reads a JSON Resume document. Entry ids come from `new_id` (the domain stays free of
/// randomness; callers pass `Uuid::new_v4`). Returns the title stored in `meta` by
/// [`to_json_resume`] if any.
///
/// Unknown properties and sections are ignored, `null` counts as absent, strings are
/// trimmed and empty ones count as absent, entries with nothing in them are skipped, and the
/// older names `company` (work), `website` (any `url`) and `gpa` (education) are read when
/// the current name is absent. Everything kept is validated like form input; the first
/// problem is returned.
pub fn from_json_resume(
    document: &Value,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<ImportedCv, ImportError> {
    let root = document
        .as_object()
        .ok_or_else(|| ImportError::new("", "expected a JSON Resume object"))?;
    let mut content = CvContent::default();

    if let Some(basics) = present(root, "basics") {
        let pointer = child("", "basics");
        let basics = as_object(basics, &pointer)?;
        content.basics = import_basics(basics, &pointer)?;
        if let Some(profiles) = present(basics, "profiles") {
            let entries = import_section(
                Section::Profiles,
                profiles,
                &child(&pointer, "profiles"),
                new_id,
            )?;
            if !entries.is_empty() {
                content.sections.insert(Section::Profiles, entries);
            }
        }
    }

    for section in top_level_sections() {
        let Some(value) = present(root, section.as_str()) else {
            continue;
        };
        let entries = import_section(section, value, &child("", section.as_str()), new_id)?;
        if !entries.is_empty() {
            content.sections.insert(section, entries);
        }
    }

    Ok(ImportedCv {
        title: import_title(root),
        content,
    })
}

/// The title from `meta.cvTitle`. `meta` belongs to other tools as much as to us, so a
/// missing or unusable title is no reason to refuse the CV.
fn import_title(root: &Map<String, Value>) -> Option<String> {
    let title = present(root, "meta")?
        .as_object()?
        .get(TITLE_PROPERTY)?
        .as_str()?;
    CvTitle::parse(title)
        .ok()
        .map(|title| title.as_str().to_owned())
}

fn import_basics(
    basics: &Map<String, Value>,
    pointer: &str,
) -> Result<BTreeMap<String, String>, ImportError> {
    let location_pointer = child(pointer, "location");
    let location = present(basics, "location")
        .map(|value| as_object(value, &location_pointer))
        .transpose()?;

    let mut raw = BTreeMap::new();
    // Which property each field was read from, for error pointers.
    let mut sources: BTreeMap<&str, String> = BTreeMap::new();
    for spec in BASICS_FIELDS {
        let (object, parent) = if LOCATION_FIELDS.contains(&spec.name) {
            match location {
                Some(location) => (location, location_pointer.as_str()),
                None => continue,
            }
        } else {
            (basics, pointer)
        };
        let Some((key, value)) = property(object, spec.name, legacy_names(None, spec.name)) else {
            continue;
        };
        let at = child(parent, key);
        let Some(mut text) = read_text(value, &at, spec.kind)? else {
            continue;
        };
        if spec.name == "address" {
            // JSON Resume allows multi-line addresses; the address field is one line.
            text = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
        }
        raw.insert(spec.name.to_owned(), text);
        sources.insert(spec.name, at);
    }

    check_basics(&raw).map_err(|errors| {
        first_error(
            BASICS_FIELDS.iter().map(|spec| spec.name),
            &errors,
            |name| {
                sources
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| pointer.to_owned())
            },
        )
    })?;
    Ok(raw)
}

fn import_section(
    section: Section,
    value: &Value,
    pointer: &str,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Result<Vec<Entry>, ImportError> {
    let items = value
        .as_array()
        .ok_or_else(|| ImportError::new(pointer, "expected a list of entries"))?;
    let mut entries = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let at = child(pointer, &index.to_string());
        let object = as_object(item, &at)?;
        let fields = import_entry(section, object, &at)?;
        if fields.is_empty() {
            continue;
        }
        if entries.len() == ENTRIES_MAX {
            return Err(ImportError::new(
                pointer,
                format!("At most {ENTRIES_MAX} entries."),
            ));
        }
        entries.push(Entry {
            id: new_id(),
            fields,
        });
    }
    Ok(entries)
}

/// The known fields of one entry, validated; empty when it has none.
fn import_entry(
    section: Section,
    object: &Map<String, Value>,
    pointer: &str,
) -> Result<EntryFields, ImportError> {
    let mut fields = EntryFields::new();
    let mut sources: BTreeMap<&str, &str> = BTreeMap::new();
    for spec in section.fields() {
        let Some((key, value)) =
            property(object, spec.name, legacy_names(Some(section), spec.name))
        else {
            continue;
        };
        let at = child(pointer, key);
        let read = if spec.kind == FieldKind::List {
            read_list(value, &at)?.map(FieldValue::List)
        } else {
            read_text(value, &at, spec.kind)?.map(FieldValue::Text)
        };
        if let Some(read) = read {
            fields.insert(spec.name.to_owned(), read);
            sources.insert(spec.name, key);
        }
    }
    if !fields.is_empty() {
        check_entry(section, &fields).map_err(|errors| {
            first_error(
                section.fields().iter().map(|spec| spec.name),
                &errors,
                |name| child(pointer, sources.get(name).copied().unwrap_or(name)),
            )
        })?;
    }
    Ok(fields)
}

/// The names older JSON Resume versions used for a field (`None` is `basics`).
fn legacy_names(section: Option<Section>, name: &str) -> &'static [&'static str] {
    match (section, name) {
        (_, "url") => &["website"],
        (Some(Section::Work), "name") => &["company"],
        (Some(Section::Education), "score") => &["gpa"],
        _ => &[],
    }
}

/// The first non-null value among `name` and its legacy names, with the key it was found at.
fn property<'a>(
    object: &'a Map<String, Value>,
    name: &'static str,
    legacy: &'static [&'static str],
) -> Option<(&'static str, &'a Value)> {
    std::iter::once(name)
        .chain(legacy.iter().copied())
        .find_map(|key| present(object, key).map(|value| (key, value)))
}

/// The value of `key`, unless it is absent or null.
fn present<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

fn as_object<'a>(value: &'a Value, pointer: &str) -> Result<&'a Map<String, Value>, ImportError> {
    value
        .as_object()
        .ok_or_else(|| ImportError::new(pointer, "expected an object"))
}

/// A text property, trimmed with line endings normalised; `None` when empty.
fn read_text(value: &Value, pointer: &str, kind: FieldKind) -> Result<Option<String>, ImportError> {
    let Some(text) = value.as_str() else {
        let message = if kind == FieldKind::Date {
            "expected a string (YYYY, YYYY-MM or YYYY-MM-DD)"
        } else {
            "expected a string"
        };
        return Err(ImportError::new(pointer, message));
    };
    let text = text.replace("\r\n", "\n").trim().to_owned();
    Ok((!text.is_empty()).then_some(text))
}

/// A list property: trimmed strings, empty and null items dropped; `None` when none are left.
fn read_list(value: &Value, pointer: &str) -> Result<Option<Vec<String>>, ImportError> {
    let items = value
        .as_array()
        .ok_or_else(|| ImportError::new(pointer, "expected a list of strings"))?;
    let mut texts = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if item.is_null() {
            continue;
        }
        let text = item
            .as_str()
            .ok_or_else(|| {
                ImportError::new(&child(pointer, &index.to_string()), "expected a string")
            })?
            .trim();
        if !text.is_empty() {
            texts.push(text.to_owned());
        }
    }
    Ok((!texts.is_empty()).then_some(texts))
}

/// The first field (in form order) with an error, at the pointer `pointer_of` gives for it.
fn first_error<'a>(
    order: impl Iterator<Item = &'a str>,
    errors: &FieldErrors,
    pointer_of: impl Fn(&str) -> String,
) -> ImportError {
    let mut ordered = order.filter_map(|name| errors.get_key_value(name));
    match ordered.next().or_else(|| errors.iter().next()) {
        Some((name, message)) => ImportError::new(&pointer_of(name), message.clone()),
        None => ImportError::new(&pointer_of(""), "Invalid value."),
    }
}

/// `pointer` extended by `key`, escaped as RFC 6901 requires.
fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::is_partial_date;
    use serde_json::json;

    const SAMPLE: &str = include_str!("jsonresume/sample.resume.json");
    const SCHEMA: &str = include_str!("jsonresume/schema.json");

    fn ids() -> impl FnMut() -> Uuid {
        let mut next = 0u128;
        move || {
            next += 1;
            Uuid::from_u128(next)
        }
    }

    fn import(document: &Value) -> Result<ImportedCv, ImportError> {
        from_json_resume(document, &mut ids())
    }

    fn import_error(document: Value) -> ImportError {
        import(&document).expect_err("the document should be refused")
    }

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).expect("the sample is JSON")
    }

    fn without_ids(content: &CvContent) -> CvContent {
        let mut content = content.clone();
        for entries in content.sections.values_mut() {
            for entry in entries {
                entry.id = Uuid::nil();
            }
        }
        content
    }

    /// A CV with every basics field and every field of every section filled in.
    fn full_content() -> CvContent {
        let mut next_id = ids();
        let mut content = CvContent::default();
        for spec in BASICS_FIELDS {
            let value = match spec.kind {
                FieldKind::Email => "ada@example.org".to_owned(),
                FieldKind::Url => "https://ada.example.org".to_owned(),
                FieldKind::LongText => "First line.\nSecond line.".to_owned(),
                _ => format!("basics {}", spec.name),
            };
            content.basics.insert(spec.name.to_owned(), value);
        }
        for section in Section::ALL {
            let entries = (0..2)
                .map(|index| {
                    let fields = section
                        .fields()
                        .iter()
                        .map(|spec| {
                            let value = match (spec.kind, spec.name) {
                                (FieldKind::List, _) => FieldValue::List(vec![
                                    format!("{section} {} one", spec.name),
                                    format!("{section} {} two", spec.name),
                                ]),
                                (FieldKind::Date, "endDate") => FieldValue::Text("2021-02".into()),
                                (FieldKind::Date, _) => FieldValue::Text("2019-11-30".into()),
                                (FieldKind::Url, _) => {
                                    FieldValue::Text(format!("https://example.org/{section}"))
                                }
                                _ => FieldValue::Text(format!("{section} {} {index}", spec.name)),
                            };
                            (spec.name.to_owned(), value)
                        })
                        .collect();
                    Entry {
                        id: next_id(),
                        fields,
                    }
                })
                .collect();
            content.sections.insert(section, entries);
        }
        content
    }

    /// Type problems of `value` against a schema node, by pointer.
    fn shape_problems(schema: &Value, node: &Value, value: &Value, pointer: &str) -> Vec<String> {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let definition = reference
                .strip_prefix('#')
                .and_then(|path| schema.pointer(path))
                .expect("references point into the schema");
            return shape_problems(schema, definition, value, pointer);
        }
        if let Some(pattern) = node.get("pattern") {
            assert_eq!(pattern, &schema["definitions"]["iso8601"]["pattern"]);
            if !value.as_str().is_some_and(is_partial_date) {
                return vec![format!("{pointer}: not an iso8601 date: {value}")];
            }
        }
        let expected = node.get("type").and_then(Value::as_str);
        let matches = match expected {
            Some("string") => value.is_string(),
            Some("array") => value.is_array(),
            Some("object") => value.is_object(),
            Some(other) => panic!("unexpected schema type {other}"),
            None => true,
        };
        if !matches {
            return vec![format!("{pointer}: expected {expected:?}, got {value}")];
        }
        let mut problems = Vec::new();
        if let (Some(items), Some(values)) = (node.get("items"), value.as_array()) {
            for (index, item) in values.iter().enumerate() {
                problems.extend(shape_problems(
                    schema,
                    items,
                    item,
                    &format!("{pointer}/{index}"),
                ));
            }
        }
        if let (Some(properties), Some(object)) = (
            node.get("properties").and_then(Value::as_object),
            value.as_object(),
        ) {
            for (key, property_value) in object {
                let at = format!("{pointer}/{key}");
                match properties.get(key) {
                    Some(property) => {
                        problems.extend(shape_problems(schema, property, property_value, &at));
                    }
                    // `meta` is ours to extend; everything else should be a schema property.
                    None if pointer == "/meta" => {}
                    None => problems.push(format!("{at}: not in the schema")),
                }
            }
        }
        problems
    }

    fn assert_matches_schema(document: &Value) {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        let problems = shape_problems(&schema, &schema, document, "");
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_schema_check_notices_wrong_shapes() {
        // Arrange
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        let document = json!({
            "basics": {"name": ["Ada"], "profiles": {}},
            "work": [{"startDate": "May 2020", "highlights": [1]}],
        });

        // Act
        let problems = shape_problems(&schema, &schema, &document, "");

        // Assert
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn the_shared_sample_imports_with_its_entries_and_basics() {
        // Arrange
        let document = sample();

        // Act
        let imported = import(&document).expect("the sample imports");

        // Assert
        let content = &imported.content;
        assert_eq!(imported.title, None);
        assert_eq!(content.basic("name"), "Richard Hendriks");
        assert_eq!(content.basic("city"), "San Francisco");
        assert_eq!(content.basic("countryCode"), "US");
        let work = content.entries(Section::Work);
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].text("name"), "Pied Piper");
        assert_eq!(work[0].text("startDate"), "2013-12-01");
        assert_eq!(work[0].list("highlights").len(), 3);
        assert_eq!(
            work[0].list("highlights")[1],
            "Successfully won Techcrunch Disrupt"
        );
        assert_eq!(content.entries(Section::Education)[0].text("score"), "4.0");
        let networks: Vec<&str> = content
            .entries(Section::Profiles)
            .iter()
            .map(|profile| profile.text("network"))
            .collect();
        assert_eq!(networks, ["Twitter", "SoundCloud"]);
        assert_eq!(content.entries(Section::Skills).len(), 2);
        assert_eq!(
            content.entries(Section::Projects)[0].list("roles"),
            ["Team lead", "Designer"]
        );
    }

    #[test]
    fn imported_entries_get_their_ids_from_the_caller() {
        // Arrange
        let document = sample();

        // Act
        let imported = import(&document).expect("the sample imports");

        // Assert
        let mut ids: Vec<Uuid> = imported
            .content
            .sections
            .values()
            .flatten()
            .map(|entry| entry.id)
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
        assert!(ids.iter().all(|id| id.as_u128() >= 1 && id.as_u128() <= 20));
    }

    #[test]
    fn the_sample_survives_export_and_import_unchanged() {
        // Arrange
        let imported = import(&sample()).expect("the sample imports");
        let exported = to_json_resume("Sample", &imported.content);

        // Act
        let reimported = import(&exported).expect("the export imports");
        let reexported = to_json_resume("Sample", &reimported.content);

        // Assert
        assert_eq!(reexported, exported);
        assert_eq!(reimported.title.as_deref(), Some("Sample"));
        assert_eq!(
            without_ids(&reimported.content),
            without_ids(&imported.content)
        );
    }

    #[test]
    fn a_cv_with_every_field_survives_export_and_import_unchanged() {
        // Arrange
        let content = full_content();
        let exported = to_json_resume("Everything", &content);

        // Act
        let imported = import(&exported).expect("the export imports");
        let reexported = to_json_resume("Everything", &imported.content);

        // Assert
        assert_eq!(reexported, exported);
        assert_eq!(without_ids(&imported.content), without_ids(&content));
        assert_eq!(imported.title.as_deref(), Some("Everything"));
    }

    #[test]
    fn exports_have_the_shapes_the_schema_gives() {
        // Arrange
        let full = full_content();
        let sample = import(&sample()).expect("the sample imports").content;

        // Act
        let exports = [
            to_json_resume("Everything", &full),
            to_json_resume("Sample", &sample),
        ];

        // Assert
        for export in &exports {
            assert_matches_schema(export);
        }
        let full = &exports[0];
        for section in Section::ALL {
            let entries = if section == Section::Profiles {
                &full["basics"]["profiles"]
            } else {
                &full[section.as_str()]
            };
            assert_eq!(entries.as_array().map(Vec::len), Some(2), "{section}");
        }
        assert_eq!(full["basics"]["location"]["city"], "basics city");
        assert_eq!(full["$schema"], SCHEMA_URL);
        assert_eq!(
            full["meta"],
            json!({"version": "v1.0.0", "cvTitle": "Everything"})
        );
    }

    #[test]
    fn empty_fields_entries_and_sections_are_left_out_of_exports() {
        // Arrange
        let mut content = CvContent::default();
        content.basics.insert("name".into(), "Ada".into());
        content.basics.insert("label".into(), String::new());
        content.sections.insert(Section::Work, vec![]);
        content.sections.insert(
            Section::Skills,
            vec![
                Entry {
                    id: Uuid::nil(),
                    fields: EntryFields::from([("keywords".into(), FieldValue::List(vec![]))]),
                },
                Entry {
                    id: Uuid::nil(),
                    fields: EntryFields::from([("name".into(), FieldValue::Text("Rust".into()))]),
                },
            ],
        );

        // Act
        let exported = to_json_resume("CV", &content);

        // Assert
        assert_eq!(
            exported,
            json!({
                "$schema": SCHEMA_URL,
                "basics": {"name": "Ada"},
                "skills": [{"name": "Rust"}],
                "meta": {"version": "v1.0.0", "cvTitle": "CV"},
            })
        );
    }

    #[test]
    fn legacy_property_names_are_read_into_the_current_fields() {
        // Arrange
        let document = json!({
            "work": [{"company": "Hooli", "website": "https://hooli.example"}],
            "education": [{"institution": "X", "gpa": "4.0"}],
            "basics": {"website": "https://me.example"},
        });

        // Act
        let content = import(&document).expect("legacy names import").content;

        // Assert
        let work = &content.entries(Section::Work)[0];
        assert_eq!(work.text("name"), "Hooli");
        assert_eq!(work.text("url"), "https://hooli.example");
        assert_eq!(content.entries(Section::Education)[0].text("score"), "4.0");
        assert_eq!(content.basic("url"), "https://me.example");
    }

    #[test]
    fn current_property_names_win_over_legacy_ones() {
        // Arrange
        let document = json!({
            "work": [{"name": "New", "company": "Old", "url": "https://new.example", "website": "nope"}],
        });

        // Act
        let content = import(&document).expect("the document imports").content;

        // Assert
        let work = &content.entries(Section::Work)[0];
        assert_eq!(work.text("name"), "New");
        assert_eq!(work.text("url"), "https://new.example");
    }

    #[test]
    fn unknown_properties_and_sections_are_ignored() {
        // Arrange
        let document = json!({
            "$schema": 42,
            "basics": {"name": "Ada", "image": "https://ada.example/me.png", "nickname": {"x": 1}},
            "work": [{"name": "Hooli", "team": ["a"], "isCurrent": true}],
            "hobbies": "everything",
            "meta": {"canonical": 5, "cvTitle": ["not a title"]},
        });

        // Act
        let imported = import(&document).expect("the document imports");

        // Assert
        assert_eq!(imported.title, None);
        assert_eq!(
            imported.content.basics,
            BTreeMap::from([("name".to_owned(), "Ada".to_owned())])
        );
        let work = imported.content.entries(Section::Work);
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].fields.len(), 1);
    }

    #[test]
    fn nulls_blanks_and_empty_entries_count_as_absent() {
        // Arrange
        let document = json!({
            "basics": {"name": "  Ada  ", "email": null, "location": null, "profiles": null},
            "work": [
                {"name": null, "position": "   ", "highlights": [null, " ", "Shipped "]},
                {"name": null, "unknown": "x"},
                {},
            ],
            "skills": null,
            "education": [],
        });

        // Act
        let content = import(&document).expect("the document imports").content;

        // Assert
        assert_eq!(content.basic("name"), "Ada");
        assert_eq!(content.basics.len(), 1);
        let work = content.entries(Section::Work);
        assert_eq!(
            work.len(),
            1,
            "entries with nothing known in them are skipped"
        );
        assert_eq!(
            work[0].fields,
            EntryFields::from([(
                "highlights".into(),
                FieldValue::List(vec!["Shipped".into()])
            )])
        );
        assert!(!content.sections.contains_key(&Section::Skills));
        assert!(!content.sections.contains_key(&Section::Education));
    }

    #[test]
    fn a_multi_line_address_becomes_one_line() {
        // Arrange
        let document = json!({"basics": {"location": {"address": "1 Main St\r\n  Flat 2\n"}}});

        // Act
        let content = import(&document).expect("the document imports").content;

        // Assert
        assert_eq!(content.basic("address"), "1 Main St, Flat 2");
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused_at_the_root() {
        // Act
        let error = import_error(json!([{"basics": {}}]));

        // Assert
        assert_eq!(error.pointer, "");
        assert_eq!(error.to_string(), error.message);
    }

    #[test]
    fn a_section_that_is_not_a_list_is_refused_at_the_section() {
        // Act
        let error = import_error(json!({"work": {"name": "Hooli"}}));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/work", "expected a list of entries")
        );
        assert_eq!(error.to_string(), "/work: expected a list of entries");
    }

    #[test]
    fn an_entry_that_is_not_an_object_is_refused_at_the_entry() {
        // Act
        let error = import_error(json!({"basics": {"profiles": [{"network": "X"}, "Y"]}}));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/basics/profiles/1", "expected an object")
        );
    }

    #[test]
    fn a_basics_that_is_not_an_object_is_refused() {
        // Act
        let basics = import_error(json!({"basics": "Ada"}));
        let location = import_error(json!({"basics": {"location": "London"}}));

        // Assert
        assert_eq!(basics.pointer, "/basics");
        assert_eq!(location.pointer, "/basics/location");
    }

    #[test]
    fn a_date_that_is_not_a_string_is_refused_at_the_date() {
        // Act
        let error =
            import_error(json!({"work": [{"name": "A"}, {"name": "B", "startDate": 2020}]}));

        // Assert
        assert_eq!(
            error,
            ImportError::new(
                "/work/1/startDate",
                "expected a string (YYYY, YYYY-MM or YYYY-MM-DD)"
            )
        );
    }

    #[test]
    fn a_text_that_is_not_a_string_is_refused_at_the_text() {
        // Act
        let error = import_error(json!({"skills": [{"name": true}]}));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/skills/0/name", "expected a string")
        );
    }

    #[test]
    fn a_date_in_words_is_refused_with_the_form_message() {
        // Act
        let error = import_error(json!({"work": [{"name": "Hooli", "startDate": "May 2020"}]}));

        // Assert
        assert_eq!(
            error,
            ImportError::new(
                "/work/0/startDate",
                "Use YYYY, YYYY-MM or YYYY-MM-DD (e.g. 2021-09)."
            )
        );
    }

    #[test]
    fn a_list_item_that_is_not_a_string_is_refused_at_the_item() {
        // Act
        let item = import_error(json!({"work": [{"highlights": ["Shipped", 3]}]}));
        let list = import_error(json!({"skills": [{"keywords": "rust, sql"}]}));

        // Assert
        assert_eq!(
            item,
            ImportError::new("/work/0/highlights/1", "expected a string")
        );
        assert_eq!(list.pointer, "/skills/0/keywords");
    }

    #[test]
    fn a_script_url_in_basics_is_refused() {
        // Act
        let error = import_error(json!({"basics": {"url": "javascript:alert(1)"}}));

        // Assert
        assert_eq!(
            error,
            ImportError::new(
                "/basics/url",
                "Use a full address starting with http:// or https://."
            )
        );
    }

    #[test]
    fn an_error_in_a_legacy_property_points_at_that_property() {
        // Act
        let basics = import_error(json!({"basics": {"website": "ftp://me.example"}}));
        let work = import_error(json!({"work": [{"company": "x".repeat(201)}]}));

        // Assert
        assert_eq!(basics.pointer, "/basics/website");
        assert_eq!(work.pointer, "/work/0/company");
    }

    #[test]
    fn a_too_long_city_is_refused_inside_location() {
        // Act
        let error = import_error(json!({"basics": {"location": {"city": "c".repeat(201)}}}));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/basics/location/city", "At most 200 characters.")
        );
    }

    #[test]
    fn an_implausible_email_is_refused() {
        // Act
        let error = import_error(json!({"basics": {"email": "ada at home"}}));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/basics/email", "Enter a valid email address.")
        );
    }

    #[test]
    fn too_many_entries_are_refused_at_the_section() {
        // Arrange
        let skills: Vec<Value> = (0..=ENTRIES_MAX)
            .map(|index| json!({"name": format!("Skill {index}")}))
            .collect();

        // Act
        let error = import_error(json!({"skills": skills}));

        // Assert
        assert_eq!(error, ImportError::new("/skills", "At most 100 entries."));
    }

    #[test]
    fn exactly_the_maximum_of_entries_is_accepted() {
        // Arrange
        let skills: Vec<Value> = (0..ENTRIES_MAX)
            .map(|index| json!({"name": format!("Skill {index}")}))
            .chain([json!({})])
            .collect();

        // Act
        let content = import(&json!({"skills": skills}))
            .expect("the skills import")
            .content;

        // Assert
        assert_eq!(content.entries(Section::Skills).len(), ENTRIES_MAX);
    }

    #[test]
    fn an_end_date_before_the_start_date_is_refused_at_the_end_date() {
        // Act
        let error = import_error(json!({
            "work": [{"name": "Hooli", "startDate": "2020-05", "endDate": "2019"}],
        }));

        // Assert
        assert_eq!(
            error,
            ImportError::new("/work/0/endDate", "The end date is before the start date.")
        );
    }

    #[test]
    fn text_that_is_not_json_is_refused_with_its_line_and_column() {
        // Arrange
        let text = "{\n  \"basics\": {\n    \"name\": \"Ada\",\n  }\n}";

        // Act
        let error = parse_json_resume(text, &mut ids()).expect_err("the text is not JSON");

        // Assert
        assert_eq!(error.pointer, "");
        assert!(error.message.contains("line 4"), "{}", error.message);
        assert!(error.message.contains("column 3"), "{}", error.message);
    }

    #[test]
    fn json_text_is_parsed_then_imported() {
        // Arrange
        let text = format!("\u{feff}{SAMPLE}");

        // Act
        let imported = parse_json_resume(&text, &mut ids()).expect("the sample parses");

        // Assert
        assert_eq!(imported, import(&sample()).expect("the sample imports"));
    }

    #[test]
    fn pointer_segments_are_escaped() {
        // Act
        let pointer = child("/a", "b/c~d");

        // Assert
        assert_eq!(pointer, "/a/b~1c~0d");
    }
}
