//! The `Username` value type: the name a person signs in with.
//!
//! Only ASCII letters, digits and `_ . -` are allowed so that look-alike
//! characters from other scripts (Cyrillic `а` for Latin `a`, say) cannot be
//! used to impersonate another account.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fewest characters a username may have.
const MIN_LEN: usize = 3;
/// Most characters a username may have.
const MAX_LEN: usize = 30;

/// A validated username, stored exactly as typed (minus surrounding
/// whitespace). Uniqueness is case-insensitive: compare [`Username::canonical`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a candidate username was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than 3 characters after trimming.
    #[error("Username must be at least 3 characters.")]
    TooShort,
    /// More than 30 characters after trimming.
    #[error("Username must be at most 30 characters.")]
    TooLong,
    /// Contains something other than ASCII letters, digits, `_`, `.` or `-`.
    #[error("Username may contain only letters, digits, and _ . -")]
    InvalidCharacter,
}

impl Username {
    /// Parses a username, trimming surrounding whitespace first.
    pub fn parse(candidate: &str) -> Result<Self, UsernameError> {
        let trimmed = candidate.trim();
        // Count characters, not bytes, so a multibyte character is reported as
        // an invalid character rather than making the name "too long".
        let len = trimmed.chars().count();
        if len < MIN_LEN {
            return Err(UsernameError::TooShort);
        }
        if len > MAX_LEN {
            return Err(UsernameError::TooLong);
        }
        if !trimmed.chars().all(is_allowed) {
            return Err(UsernameError::InvalidCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The username as typed (case preserved).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-case form, used to enforce case-insensitive uniqueness.
    pub fn canonical(&self) -> String {
        // ASCII-only by construction, so ASCII lower-casing is complete.
        self.0.to_ascii_lowercase()
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_username_is_accepted() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(Username::parse("  alice\t\n").unwrap().as_str(), "alice");
    }

    #[test]
    fn case_is_preserved_as_typed() {
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "Alice");
    }

    #[test]
    fn the_canonical_form_is_lower_case() {
        assert_eq!(Username::parse("AlIcE").unwrap().canonical(), "alice");
    }

    #[test]
    fn usernames_differing_only_in_case_share_a_canonical_form() {
        let a = Username::parse("Bob.Smith").unwrap();
        let b = Username::parse("bob.smith").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn three_characters_is_long_enough() {
        assert!(Username::parse("abc").is_ok());
    }

    #[test]
    fn two_characters_is_too_short() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::TooShort));
    }

    #[test]
    fn an_empty_username_is_too_short() {
        assert_eq!(Username::parse(""), Err(UsernameError::TooShort));
    }

    #[test]
    fn whitespace_does_not_count_towards_the_minimum_length() {
        assert_eq!(Username::parse("  ab  "), Err(UsernameError::TooShort));
    }

    #[test]
    fn thirty_characters_is_allowed() {
        assert!(Username::parse(&"a".repeat(30)).is_ok());
    }

    #[test]
    fn thirty_one_characters_is_too_long() {
        assert_eq!(
            Username::parse(&"a".repeat(31)),
            Err(UsernameError::TooLong)
        );
    }

    #[test]
    fn digits_underscore_dot_and_hyphen_are_allowed() {
        assert!(Username::parse("a_b.c-d9").is_ok());
    }

    #[test]
    fn an_inner_space_is_rejected() {
        assert_eq!(
            Username::parse("alice smith"),
            Err(UsernameError::InvalidCharacter)
        );
    }

    #[test]
    fn an_at_sign_is_rejected() {
        assert_eq!(
            Username::parse("alice@home"),
            Err(UsernameError::InvalidCharacter)
        );
    }

    #[test]
    fn a_cyrillic_look_alike_username_is_rejected() {
        // The first letter is CYRILLIC SMALL LETTER A (U+0430), not Latin "a".
        assert_eq!(
            Username::parse("\u{0430}dmin"),
            Err(UsernameError::InvalidCharacter)
        );
    }

    #[test]
    fn accented_latin_letters_are_rejected() {
        assert_eq!(
            Username::parse("jos\u{e9}"),
            Err(UsernameError::InvalidCharacter)
        );
    }

    #[test]
    fn it_displays_as_typed() {
        assert_eq!(Username::parse("Alice").unwrap().to_string(), "Alice");
    }

    #[test]
    fn it_serializes_as_a_plain_string() {
        let name = Username::parse("alice").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""alice""#);
        let back: Username = serde_json::from_str(r#""alice""#).unwrap();
        assert_eq!(back, name);
    }
}
