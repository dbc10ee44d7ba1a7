//! `Profile`: a user's personal information, validated as a whole, and `ProfileChanges`, the
//! difference between two profiles that a `ProfileUpdated` event records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest full name, in characters.
pub const FULL_NAME_MAX: usize = 100;
/// Longest headline ("Senior engineer at …").
pub const HEADLINE_MAX: usize = 120;
/// Longest phone number as typed.
pub const PHONE_MAX: usize = 30;
/// Longest location.
pub const LOCATION_MAX: usize = 100;
/// Longest website URL.
pub const WEBSITE_MAX: usize = 200;
/// Longest bio.
pub const BIO_MAX: usize = 2000;

/// What a profile form sends: untrusted text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileInput {
    pub full_name: String,
    pub headline: String,
    pub phone: String,
    pub location: String,
    pub website: String,
    pub bio: String,
}

/// A valid profile. Every field may be empty (not filled in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub full_name: String,
    pub headline: String,
    pub phone: String,
    pub location: String,
    pub website: String,
    pub bio: String,
}

/// Messages for invalid fields, by field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid profile: {0:?}")]
pub struct ProfileErrors(pub BTreeMap<&'static str, String>);

/// Fields whose value changed, with the new value ("" when cleared). Only changed fields are
/// present, so a `ProfileUpdated` event reads as what the user changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
}

/// Trims `text` and checks its length; multi-line only where allowed.
fn clean(
    errors: &mut BTreeMap<&'static str, String>,
    field: &'static str,
    label: &str,
    text: &str,
    max: usize,
    multiline: bool,
) -> String {
    let text = if multiline {
        text.trim().replace("\r\n", "\n")
    } else {
        text.trim().to_owned()
    };
    if text.chars().count() > max {
        errors.insert(field, format!("{label} must be at most {max} characters."));
    } else if text
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        errors.insert(
            field,
            format!("{label} contains characters that are not allowed."),
        );
    }
    text
}

/// Whether `url` is an absolute http(s) URL with a host and no whitespace.
fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && host.contains('.')
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        }
        None => false,
    }
}

impl Profile {
    /// Validates a form. Text is trimmed; errors name every bad field.
    pub fn parse(input: &ProfileInput) -> Result<Self, ProfileErrors> {
        let mut errors = BTreeMap::new();
        let full_name = clean(
            &mut errors,
            "full_name",
            "Full name",
            &input.full_name,
            FULL_NAME_MAX,
            false,
        );
        let headline = clean(
            &mut errors,
            "headline",
            "Headline",
            &input.headline,
            HEADLINE_MAX,
            false,
        );
        let phone = clean(
            &mut errors,
            "phone",
            "Phone",
            &input.phone,
            PHONE_MAX,
            false,
        );
        let location = clean(
            &mut errors,
            "location",
            "Location",
            &input.location,
            LOCATION_MAX,
            false,
        );
        let website = clean(
            &mut errors,
            "website",
            "Website",
            &input.website,
            WEBSITE_MAX,
            false,
        );
        let bio = clean(&mut errors, "bio", "Bio", &input.bio, BIO_MAX, true);

        if !phone.is_empty() && !errors.contains_key("phone") {
            let allowed = phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '(' | ')' | '-'));
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            if !allowed || digits < 3 {
                errors.insert(
                    "phone",
                    "Phone may contain only digits, spaces and + ( ) -.".to_owned(),
                );
            }
        }
        if !website.is_empty() && !errors.contains_key("website") && !is_web_url(&website) {
            errors.insert(
                "website",
                "Website must be a full address starting with http:// or https://.".to_owned(),
            );
        }
        if errors.is_empty() {
            Ok(Self {
                full_name,
                headline,
                phone,
                location,
                website,
                bio,
            })
        } else {
            Err(ProfileErrors(errors))
        }
    }

    /// The fields of `new` that differ from `self`.
    pub fn changes_to(&self, new: &Profile) -> ProfileChanges {
        let diff = |old: &String, new: &String| (old != new).then(|| new.clone());
        ProfileChanges {
            full_name: diff(&self.full_name, &new.full_name),
            headline: diff(&self.headline, &new.headline),
            phone: diff(&self.phone, &new.phone),
            location: diff(&self.location, &new.location),
            website: diff(&self.website, &new.website),
            bio: diff(&self.bio, &new.bio),
        }
    }

    /// This profile with `changes` applied.
    pub fn apply(&mut self, changes: &ProfileChanges) {
        let set = |field: &mut String, change: &Option<String>| {
            if let Some(value) = change {
                field.clone_from(value);
            }
        };
        set(&mut self.full_name, &changes.full_name);
        set(&mut self.headline, &changes.headline);
        set(&mut self.phone, &changes.phone);
        set(&mut self.location, &changes.location);
        set(&mut self.website, &changes.website);
        set(&mut self.bio, &changes.bio);
    }
}

impl ProfileChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Names of the changed fields, for history and the audit trail.
    pub fn field_names(&self) -> Vec<&'static str> {
        [
            ("full name", self.full_name.is_some()),
            ("headline", self.headline.is_some()),
            ("phone", self.phone.is_some()),
            ("location", self.location.is_some()),
            ("website", self.website.is_some()),
            ("bio", self.bio.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProfileInput {
        ProfileInput {
            full_name: "Ada Lovelace".into(),
            headline: "Analyst".into(),
            phone: "+44 (20) 7946-0958".into(),
            location: "London".into(),
            website: "https://ada.example.org/about".into(),
            bio: "First programmer.\r\nLikes engines.".into(),
        }
    }

    #[test]
    fn a_complete_profile_is_accepted_and_trimmed() {
        let mut form = input();
        form.full_name = "  Ada Lovelace  ".into();
        let profile = Profile::parse(&form).unwrap();
        assert_eq!(profile.full_name, "Ada Lovelace");
        assert_eq!(profile.bio, "First programmer.\nLikes engines.");
    }

    #[test]
    fn an_empty_profile_is_accepted() {
        assert_eq!(
            Profile::parse(&ProfileInput::default()),
            Ok(Profile::default())
        );
    }

    #[test]
    fn a_website_without_http_scheme_is_rejected() {
        for website in [
            "javascript:alert(1)",
            "ftp://x.org",
            "www.example.org",
            "https://",
            "https://localhost x",
        ] {
            let mut form = input();
            form.website = website.into();
            let errors = Profile::parse(&form).unwrap_err().0;
            assert!(errors.contains_key("website"), "{website}");
        }
    }

    #[test]
    fn a_phone_with_letters_is_rejected() {
        let mut form = input();
        form.phone = "call me maybe".into();
        assert!(Profile::parse(&form).unwrap_err().0.contains_key("phone"));
    }

    #[test]
    fn overlong_fields_are_each_named() {
        let form = ProfileInput {
            full_name: "n".repeat(FULL_NAME_MAX + 1),
            headline: "h".repeat(HEADLINE_MAX + 1),
            phone: "1".repeat(PHONE_MAX + 1),
            location: "l".repeat(LOCATION_MAX + 1),
            website: format!("https://{}.org", "w".repeat(WEBSITE_MAX)),
            bio: "b".repeat(BIO_MAX + 1),
        };
        let errors = Profile::parse(&form).unwrap_err().0;
        assert_eq!(errors.len(), 6, "{errors:?}");
    }

    #[test]
    fn a_field_at_its_limit_is_accepted() {
        let mut form = input();
        form.bio = "é".repeat(BIO_MAX);
        assert!(Profile::parse(&form).is_ok());
    }

    #[test]
    fn control_characters_in_single_line_fields_are_rejected() {
        let mut form = input();
        form.full_name = "Ada\u{0}Lovelace".into();
        assert!(Profile::parse(&form)
            .unwrap_err()
            .0
            .contains_key("full_name"));
    }

    #[test]
    fn changes_name_only_the_fields_that_differ() {
        let old = Profile::parse(&input()).unwrap();
        let mut form = input();
        form.headline = "Mathematician".into();
        form.phone = String::new();
        let new = Profile::parse(&form).unwrap();
        let changes = old.changes_to(&new);
        assert_eq!(
            changes,
            ProfileChanges {
                headline: Some("Mathematician".into()),
                phone: Some(String::new()),
                ..ProfileChanges::default()
            }
        );
        assert_eq!(changes.field_names(), vec!["headline", "phone"]);
    }

    #[test]
    fn applying_the_changes_gives_the_new_profile() {
        let old = Profile::default();
        let new = Profile::parse(&input()).unwrap();
        let mut rebuilt = old.clone();
        rebuilt.apply(&old.changes_to(&new));
        assert_eq!(rebuilt, new);
    }

    #[test]
    fn the_same_profile_has_no_changes() {
        let profile = Profile::parse(&input()).unwrap();
        assert!(profile.changes_to(&profile.clone()).is_empty());
    }
}
