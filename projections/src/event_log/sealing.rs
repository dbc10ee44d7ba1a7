//! Which parts of an event are personal, and how they are sealed in the stored JSON.
//!
//! An event's payload is serde's externally tagged JSON, `{"Variant": {fields…}}`. Every field
//! is personal — sealed — unless [`PUBLIC_FIELDS`] names it: so a field added to an event later
//! is protected by default, and only facts that say nothing about a person (roles, times, ids,
//! counts, the section an entry is in) stay readable. The sealed fields are encrypted together
//! under the data key of the event's *subject* (the user it is about: the user of a `User`
//! event, the owner of a `Cv`) and stored as one `"$sealed"` string beside the public ones.
//!
//! Metadata is sealed the same way: `actor`, `request_id` and `at` stay readable, the rest (the
//! client's IP and user agent) is sealed under the key of the person who made the request — the
//! actor, or the subject for anonymous requests — and `subject` and `$sealed_by` record whose
//! keys were used.
//!
//! Ciphertexts are bound (as AEAD associated data) to their event's aggregate, sequence and
//! part, so a sealed value copied into another event does not open.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::Key;
use serde_json::{Map, Value};

use super::keys::{open_bytes, seal_bytes, KeyError};

/// The stored field holding the sealed (encrypted) part of a payload or of metadata.
pub(crate) const SEALED: &str = "$sealed";
/// Metadata: whose data key sealed the metadata's personal part.
pub(crate) const SEALED_BY: &str = "$sealed_by";
/// Metadata: whose data key sealed the payload (the person the event is about).
pub(crate) const SUBJECT: &str = "subject";

/// The payload fields that are not personal, by aggregate type and event variant. Everything
/// else in a payload is sealed.
const PUBLIC_FIELDS: &[(&str, &str, &[&str])] = &[
    ("User", "Registered", &["role", "registered_at"]),
    ("User", "LoggedIn", &["at"]),
    ("User", "LoginFailed", &["reason", "at"]),
    ("User", "RoleChanged", &["from", "to"]),
    ("User", "AvatarChanged", &["width", "height"]),
    ("User", "PasswordResetRequested", &["expires_at"]),
    ("Cv", "Created", &["owner", "origin", "created_at"]),
    ("Cv", "EntryAdded", &["section", "entry_id"]),
    ("Cv", "EntryUpdated", &["section", "entry_id"]),
    ("Cv", "EntryRemoved", &["section", "entry_id"]),
    ("Cv", "EntryMoved", &["section", "entry_id", "from", "to"]),
    ("Cv", "Archived", &["by_admin"]),
    ("Cv", "VersionRestored", &["version"]),
];

/// Aggregates whose subject is not the aggregate itself: the event (always the first) and its
/// public field that name the subject. Any other aggregate is about itself.
const SUBJECT_FIELDS: &[(&str, &str, &str)] = &[("Cv", "Created", "owner")];

/// The metadata fields that are not personal; the rest (IP address, user agent) is sealed.
const PUBLIC_METADATA: &[&str] = &["actor", "request_id", "at"];

/// Where an event sits, which its ciphertexts are bound to.
pub(crate) struct Position<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
}

impl Position<'_> {
    fn context(&self, part: &str) -> Vec<u8> {
        format!(
            "cvm event v1|{part}|{}|{}|{}",
            self.aggregate_type, self.aggregate_id, self.sequence
        )
        .into_bytes()
    }
}

fn public_fields(aggregate_type: &str, variant: &str) -> &'static [&'static str] {
    PUBLIC_FIELDS
        .iter()
        .find(|(aggregate, name, _)| *aggregate == aggregate_type && *name == variant)
        .map(|(_, _, fields)| *fields)
        .unwrap_or(&[])
}

/// The subject named by `payload` if it is the event that names its aggregate's subject.
pub(crate) fn subject_named_by(aggregate_type: &str, payload: &Value) -> Option<String> {
    if !SUBJECT_FIELDS
        .iter()
        .any(|(aggregate, _, _)| *aggregate == aggregate_type)
    {
        return None;
    }
    SUBJECT_FIELDS
        .iter()
        .filter(|(aggregate, _, _)| *aggregate == aggregate_type)
        .find_map(|(_, variant, field)| payload.get(variant)?.get(field)?.as_str())
        .map(str::to_owned)
}

/// The JSON path (for SQLite's `json_extract`) of the field naming the subject in the first
/// event of an `aggregate_type` aggregate, if its subject is not the aggregate itself.
pub(crate) fn subject_path(aggregate_type: &str) -> Option<String> {
    SUBJECT_FIELDS
        .iter()
        .find(|(aggregate, _, _)| *aggregate == aggregate_type)
        .map(|(_, variant, field)| format!("$.{variant}.{field}"))
}

/// Whether a stored payload has a sealed part.
pub(crate) fn is_sealed(payload: &Value) -> bool {
    match payload {
        Value::Object(outer) => {
            outer.contains_key(SEALED) || outer.values().any(|inner| inner.get(SEALED).is_some())
        }
        _ => false,
    }
}

/// Splits `fields` into what stays readable and what is sealed, seals the latter under `key`
/// and returns the stored object.
fn seal_object(
    mut fields: Map<String, Value>,
    is_public: impl Fn(&str) -> bool,
    key: &Key,
    context: &[u8],
) -> Map<String, Value> {
    let mut personal = Map::new();
    let names: Vec<String> = fields.keys().cloned().collect();
    for name in names {
        if !is_public(&name) {
            if let Some(value) = fields.remove(&name) {
                personal.insert(name, value);
            }
        }
    }
    if !personal.is_empty() {
        let plaintext = serde_json::to_vec(&personal).unwrap_or_default();
        let sealed = BASE64.encode(seal_bytes(key, context, &plaintext));
        fields.insert(SEALED.to_owned(), Value::String(sealed));
    }
    fields
}

/// Opens the `"$sealed"` part of `fields` with `key` and puts its fields back; with no key
/// (erased) just drops it. Returns whether a sealed part was found.
fn open_object(
    fields: &mut Map<String, Value>,
    key: Option<&Key>,
    context: &[u8],
) -> Result<bool, KeyError> {
    let Some(sealed) = fields.remove(SEALED) else {
        return Ok(false);
    };
    let Some(key) = key else {
        return Ok(true);
    };
    let bytes = sealed
        .as_str()
        .and_then(|text| BASE64.decode(text).ok())
        .ok_or(KeyError::Authentication)?;
    let plaintext = open_bytes(key, context, &bytes)?;
    let personal: Map<String, Value> =
        serde_json::from_slice(&plaintext).map_err(|_| KeyError::Authentication)?;
    fields.extend(personal);
    Ok(true)
}

/// The stored form of a payload: its personal fields sealed under `key` (the subject's).
pub(crate) fn seal_payload(payload: Value, at: &Position<'_>, key: &Key) -> Value {
    let context = at.context("payload");
    match payload {
        // `{"Variant": {fields}}`: seal the fields that are not public.
        Value::Object(outer) if outer.len() == 1 && outer.values().all(Value::is_object) => {
            let mut sealed = Map::new();
            for (variant, inner) in outer {
                let Value::Object(fields) = inner else {
                    unreachable!("checked above")
                };
                let public = public_fields(at.aggregate_type, &variant);
                let fields = seal_object(fields, |name| public.contains(&name), key, &context);
                sealed.insert(variant, Value::Object(fields));
            }
            Value::Object(sealed)
        }
        // A unit variant is only its name.
        Value::String(name) => Value::String(name),
        // Any other shape is sealed whole.
        other => {
            let mut wrapper = Map::new();
            wrapper.insert("$value".to_owned(), other);
            Value::Object(seal_object(wrapper, |_| false, key, &context))
        }
    }
}

/// The payload as it was before [`seal_payload`], or — with no key — its public fields only.
pub(crate) fn open_payload(
    mut payload: Value,
    at: &Position<'_>,
    key: Option<&Key>,
) -> Result<Value, KeyError> {
    let context = at.context("payload");
    if let Value::Object(outer) = &mut payload {
        if outer.contains_key(SEALED) {
            open_object(outer, key, &context)?;
            if let Some(value) = outer.remove("$value") {
                return Ok(value);
            }
            return Ok(payload);
        }
        for inner in outer.values_mut() {
            if let Value::Object(fields) = inner {
                open_object(fields, key, &context)?;
            }
        }
    }
    Ok(payload)
}

/// The stored form of metadata: IP and user agent sealed under `key`, the key of
/// `sealed_by`; `subject` names the person the payload is sealed for.
pub(crate) fn seal_metadata(
    metadata: Value,
    at: &Position<'_>,
    subject: &str,
    sealed_by: &str,
    key: &Key,
) -> Value {
    let fields = match metadata {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    let mut fields = seal_object(
        fields,
        |name| PUBLIC_METADATA.contains(&name),
        key,
        &at.context("metadata"),
    );
    if fields.contains_key(SEALED) {
        fields.insert(SEALED_BY.to_owned(), Value::String(sealed_by.to_owned()));
    }
    fields.insert(SUBJECT.to_owned(), Value::String(subject.to_owned()));
    Value::Object(fields)
}

/// Metadata with its personal part left out altogether (when its owner was erased).
pub(crate) fn strip_metadata(metadata: Value, subject: &str) -> Value {
    let mut fields = match metadata {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    fields.retain(|name, _| PUBLIC_METADATA.contains(&name.as_str()));
    fields.insert(SUBJECT.to_owned(), Value::String(subject.to_owned()));
    Value::Object(fields)
}

/// Metadata as the application wrote it (without `subject` and `$sealed_by`), or without its
/// personal part when there is no key.
pub(crate) fn open_metadata(
    mut metadata: Value,
    at: &Position<'_>,
    key: Option<&Key>,
) -> Result<Value, KeyError> {
    if let Value::Object(fields) = &mut metadata {
        fields.remove(SUBJECT);
        fields.remove(SEALED_BY);
        open_object(fields, key, &at.context("metadata"))?;
    }
    Ok(metadata)
}

/// The ids of the data keys a stored event needs: its subject's and its metadata's sealer's.
/// `None` for an event stored before sealing existed (a legacy, plaintext event).
pub(crate) fn key_owners(metadata: &Value) -> Option<(String, Option<String>)> {
    let subject = metadata.get(SUBJECT)?.as_str()?.to_owned();
    let sealed_by = metadata
        .get(SEALED_BY)
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((subject, sealed_by))
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::aead::Generate;
    use serde_json::json;

    use super::*;

    const AT: Position<'static> = Position {
        aggregate_type: "User",
        aggregate_id: "u1",
        sequence: 1,
    };

    #[test]
    fn personal_fields_are_sealed_and_public_ones_stay_readable() {
        let key = Key::generate();
        let payload = json!({"Registered": {
            "username": "alice", "email": "alice@example.com", "password_hash": "$argon2id$x",
            "role": "user", "registered_at": "2026-12-01T10:00:00Z"
        }});
        let stored = seal_payload(payload.clone(), &AT, &key);
        let text = stored.to_string();
        assert!(
            !text.contains("alice") && !text.contains("argon2"),
            "{text}"
        );
        assert_eq!(stored["Registered"]["role"], "user");
        assert_eq!(
            stored["Registered"]["registered_at"],
            "2026-12-01T10:00:00Z"
        );
        assert_eq!(open_payload(stored, &AT, Some(&key)).unwrap(), payload);
    }

    #[test]
    fn without_the_key_only_the_public_fields_remain() {
        let key = Key::generate();
        let payload = json!({"LoginFailed": {"reason": "wrong_password", "at": "t", "extra": "x"}});
        let stored = seal_payload(payload, &AT, &key);
        assert_eq!(
            open_payload(stored, &AT, None).unwrap(),
            json!({"LoginFailed": {"reason": "wrong_password", "at": "t"}})
        );
    }

    #[test]
    fn fields_of_an_unlisted_event_are_all_sealed() {
        let key = Key::generate();
        let stored = seal_payload(json!({"SomethingNew": {"note": "private"}}), &AT, &key);
        assert_eq!(stored["SomethingNew"].as_object().unwrap().len(), 1);
        assert!(stored["SomethingNew"][SEALED].is_string());
    }

    #[test]
    fn unit_variants_and_public_only_events_are_stored_as_they_are() {
        let key = Key::generate();
        assert_eq!(
            seal_payload(json!("Deactivated"), &AT, &key),
            json!("Deactivated")
        );
        let role = json!({"RoleChanged": {"from": "user", "to": "superuser"}});
        assert_eq!(seal_payload(role.clone(), &AT, &key), role);
    }

    #[test]
    fn a_sealed_value_does_not_open_in_another_event() {
        let key = Key::generate();
        let stored = seal_payload(
            json!({"ProfileUpdated": {"changes": {"bio": "b"}}}),
            &AT,
            &key,
        );
        let elsewhere = Position { sequence: 2, ..AT };
        assert!(open_payload(stored, &elsewhere, Some(&key)).is_err());
    }

    #[test]
    fn metadata_keeps_who_and_when_and_seals_where_from() {
        let key = Key::generate();
        let metadata = json!({"actor": "a1", "request_id": "r", "at": "t",
                              "ip": "203.0.113.9", "user_agent": "Firefox"});
        let stored = seal_metadata(metadata.clone(), &AT, "u1", "a1", &key);
        let text = stored.to_string();
        assert!(
            !text.contains("203.0.113.9") && !text.contains("Firefox"),
            "{text}"
        );
        assert_eq!(
            key_owners(&stored),
            Some(("u1".to_owned(), Some("a1".to_owned())))
        );
        assert_eq!(
            open_metadata(stored.clone(), &AT, Some(&key)).unwrap(),
            metadata
        );
        assert_eq!(
            open_metadata(stored, &AT, None).unwrap(),
            json!({"actor": "a1", "request_id": "r", "at": "t"})
        );
    }

    #[test]
    fn a_cv_is_about_the_owner_its_creation_names() {
        let created = json!({"Created": {"owner": "u7", "title": "t"}});
        assert_eq!(subject_named_by("Cv", &created).as_deref(), Some("u7"));
        assert_eq!(subject_named_by("Cv", &json!({"Renamed": {}})), None);
        assert_eq!(subject_named_by("User", &created), None);
        assert_eq!(subject_path("Cv").as_deref(), Some("$.Created.owner"));
        assert_eq!(subject_path("User"), None);
    }

    #[test]
    fn odd_payload_shapes_are_sealed_whole() {
        let key = Key::generate();
        let payload = json!({"Tuple": [1, 2]});
        let stored = seal_payload(payload.clone(), &AT, &key);
        assert!(!stored.to_string().contains("Tuple"));
        assert_eq!(open_payload(stored, &AT, Some(&key)).unwrap(), payload);
    }
}
