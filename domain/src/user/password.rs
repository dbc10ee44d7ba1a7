//! Passwords: the validated plain-text `Password` that is about to be hashed,
//! the opaque `PasswordHash` that is stored, and the common-password list.
//!
//! The rules follow NIST SP 800-63B and Django's validators: a length range,
//! no all-digit passwords, nothing from a list of known-common passwords and
//! nothing that merely repeats the username or email. There are deliberately
//! no composition rules ("one upper-case, one symbol"), which push people
//! towards predictable patterns without adding real strength.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Fewest characters a password may have.
const MIN_LEN: usize = 12;
/// Most characters a password may have; bounds hashing cost.
const MAX_LEN: usize = 128;
/// Shortest username or email local part worth comparing against: shorter
/// fragments occur by chance in unrelated passwords.
const MIN_SIMILARITY_LEN: usize = 3;

/// Django's common-password list; see `COMMON-PASSWORDS-NOTICE.md`.
static COMMON_PASSWORDS_TEXT: &str = include_str!("common-passwords.txt");

/// The common-password list as a set, built on first use.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS_TEXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// Whether `s` appears, exactly, in the common-password list. The list is
/// lower-case, so callers should lower-case first for a case-insensitive check.
pub fn is_common_password(s: &str) -> bool {
    COMMON_PASSWORDS.contains(s)
}

/// A plain-text password that has passed the password rules and is about to
/// be hashed. It is never serialised and its `Debug` output is redacted.
#[derive(Clone)]
pub struct Password(String);

/// Why a candidate password was rejected, in the order the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than 12 characters.
    #[error("Password must be at least 12 characters.")]
    TooShort,
    /// More than 128 characters.
    #[error("Password must be at most 128 characters.")]
    TooLong,
    /// Only digits.
    #[error("Password cannot be entirely numeric.")]
    AllDigits,
    /// In the common-password list.
    #[error("This password is too common.")]
    TooCommon,
    /// Contains, or is contained in, the username or email.
    #[error("Password is too similar to your username or email.")]
    TooSimilar,
}

impl Password {
    /// Checks `candidate` against the password rules for an account with the
    /// given `username` and `email` (as typed; they are normalised here).
    pub fn parse(candidate: &str, username: &str, email: &str) -> Result<Self, PasswordError> {
        // Characters, not bytes: a password of multibyte characters should
        // face the same limits as an ASCII one.
        let len = candidate.chars().count();
        if len < MIN_LEN {
            return Err(PasswordError::TooShort);
        }
        if len > MAX_LEN {
            return Err(PasswordError::TooLong);
        }
        if candidate.chars().all(char::is_numeric) {
            return Err(PasswordError::AllDigits);
        }
        if is_too_common(candidate) {
            return Err(PasswordError::TooCommon);
        }
        if is_too_similar(candidate, username, email) {
            return Err(PasswordError::TooSimilar);
        }
        Ok(Self(candidate.to_owned()))
    }

    /// The plain text, for handing to a password hasher. Keep its use to that.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Whether the password, or an obvious variation of it, is in the list.
fn is_too_common(candidate: &str) -> bool {
    let lower = candidate.to_lowercase();
    let trimmed = lower.trim();
    // "password2024" is no stronger than "password": strip the trailing
    // digits people tack on to satisfy length or rotation rules.
    let without_trailing_digits = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
    is_common_password(&lower)
        || is_common_password(trimmed)
        || is_common_password(without_trailing_digits)
}

/// Whether the password is essentially the username or email local part.
fn is_too_similar(candidate: &str, username: &str, email: &str) -> bool {
    let password = candidate.to_lowercase();
    let username = username.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    // Everything before the last `@`; the whole string if there is none.
    let local_part = email.rsplit_once('@').map_or(email.as_str(), |(l, _)| l);

    let contains_either_way = |identity: &str| {
        identity.chars().count() >= MIN_SIMILARITY_LEN
            && (password.contains(identity) || identity.contains(password.as_str()))
    };
    if contains_either_way(&username) || contains_either_way(local_part) {
        return true;
    }

    // "Ada Lovelace 1815" against username "ada.lovelace.1815".
    let normalised_password = alphanumerics(&password);
    let equal_ignoring_punctuation = [username.as_str(), local_part, email.as_str()]
        .into_iter()
        .map(alphanumerics)
        .any(|identity| !identity.is_empty() && identity == normalised_password);
    equal_ignoring_punctuation
}

/// Only the alphanumeric characters of `s`.
fn alphanumerics(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// An opaque password hash in PHC string format (e.g. `$argon2id$...`).
/// The domain never looks inside; only a `PasswordHasher` does.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a hash produced by a `PasswordHasher`.
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage and verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    // Redacted so hashes never end up in logs, where they could be cracked
    // offline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERNAME: &str = "alice";
    const EMAIL: &str = "alice@example.com";

    fn parse(candidate: &str) -> Result<Password, PasswordError> {
        Password::parse(candidate, USERNAME, EMAIL)
    }

    #[test]
    fn a_long_uncommon_passphrase_is_accepted() {
        let password = parse("tangerine kayak forty seven").unwrap();
        assert_eq!(password.expose(), "tangerine kayak forty seven");
    }

    #[test]
    fn the_password_is_kept_exactly_as_typed() {
        let password = parse("  Tangerine Kayak  ").unwrap();
        assert_eq!(password.expose(), "  Tangerine Kayak  ");
    }

    #[test]
    fn twelve_characters_is_long_enough() {
        assert!(parse("tangerinekay").is_ok());
    }

    #[test]
    fn eleven_characters_is_too_short() {
        assert_eq!(parse("tangerineka").err(), Some(PasswordError::TooShort));
    }

    #[test]
    fn an_empty_password_is_too_short() {
        assert_eq!(parse("").err(), Some(PasswordError::TooShort));
    }

    #[test]
    fn one_hundred_and_twenty_eight_characters_is_allowed() {
        assert!(parse(&"tangerine kayak ".repeat(8)).is_ok());
    }

    #[test]
    fn one_hundred_and_twenty_nine_characters_is_too_long() {
        let candidate = format!("{}x", "tangerine kayak ".repeat(8));
        assert_eq!(parse(&candidate).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn multibyte_characters_count_as_one_character_each_for_the_minimum() {
        // 11 characters but 22 bytes: still too short.
        let candidate = "\u{e9}".repeat(11);
        assert_eq!(candidate.len(), 22);
        assert_eq!(parse(&candidate).err(), Some(PasswordError::TooShort));
    }

    #[test]
    fn twelve_multibyte_characters_is_long_enough() {
        assert!(parse(&"\u{e9}".repeat(12)).is_ok());
    }

    #[test]
    fn multibyte_characters_count_as_one_character_each_for_the_maximum() {
        // 128 characters but 256 bytes: still allowed.
        let candidate = "\u{e9}".repeat(128);
        assert_eq!(candidate.len(), 256);
        assert!(parse(&candidate).is_ok());
    }

    #[test]
    fn an_entirely_numeric_password_is_rejected() {
        assert_eq!(
            parse("918273645546372").err(),
            Some(PasswordError::AllDigits)
        );
    }

    #[test]
    fn length_is_checked_before_the_all_digits_rule() {
        assert_eq!(parse("12345").err(), Some(PasswordError::TooShort));
    }

    #[test]
    fn digits_with_a_single_letter_are_not_all_digits() {
        assert!(parse("9182736455463x").is_ok());
    }

    #[test]
    fn the_common_password_list_has_at_least_ten_thousand_entries() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
    }

    #[test]
    fn the_common_password_list_is_lower_case() {
        assert!(COMMON_PASSWORDS
            .iter()
            .all(|p| p.to_lowercase().as_str() == *p));
    }

    #[test]
    fn a_listed_password_is_reported_as_common() {
        assert!(is_common_password("password1234"));
    }

    #[test]
    fn an_unlisted_password_is_not_reported_as_common() {
        assert!(!is_common_password("tangerine kayak forty seven"));
    }

    #[test]
    fn a_common_password_is_rejected() {
        // "password1234" is in Django's list.
        assert_eq!(parse("password1234").err(), Some(PasswordError::TooCommon));
    }

    #[test]
    fn another_common_password_of_twelve_or_more_characters_is_rejected() {
        // "qwertyuiop123" is in Django's list.
        assert_eq!(parse("qwertyuiop123").err(), Some(PasswordError::TooCommon));
    }

    #[test]
    fn a_common_password_is_rejected_regardless_of_case() {
        assert_eq!(parse("PassWord1234").err(), Some(PasswordError::TooCommon));
    }

    #[test]
    fn a_common_password_with_surrounding_spaces_is_rejected() {
        assert_eq!(
            parse("  password1234  ").err(),
            Some(PasswordError::TooCommon)
        );
    }

    #[test]
    fn a_common_password_with_digits_appended_is_rejected() {
        // "sunshine" is listed; "sunshine20240101" is not.
        assert!(!is_common_password("sunshine20240101"));
        assert_eq!(
            parse("Sunshine20240101").err(),
            Some(PasswordError::TooCommon)
        );
    }

    #[test]
    fn a_password_containing_the_username_is_too_similar() {
        assert_eq!(
            Password::parse("xx-Alice_Wonder-xx", "alice_wonder", "someone@example.com").err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_password_containing_the_email_local_part_is_too_similar() {
        assert_eq!(
            Password::parse(
                "my jonathan.smith pw",
                "jsmith",
                "Jonathan.Smith@example.com"
            )
            .err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_password_contained_in_the_username_is_too_similar() {
        assert_eq!(
            Password::parse(
                "longusername_with",
                "averylongusername_with_pw_1234",
                "someone@example.com"
            )
            .err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_password_contained_in_the_email_local_part_is_too_similar() {
        assert_eq!(
            Password::parse(
                "tangerine.kayak",
                "someone",
                "the.tangerine.kayak.club@example.com"
            )
            .err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_password_equal_to_the_username_apart_from_punctuation_is_too_similar() {
        assert_eq!(
            Password::parse(
                "ada lovelace 1815",
                "Ada.Lovelace.1815",
                "someone@example.com"
            )
            .err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_password_equal_to_the_email_apart_from_punctuation_is_too_similar() {
        // The local part "jo" is too short for the containment rule, so only
        // the whole-address comparison can catch this.
        assert_eq!(
            Password::parse("Jo Example Com", "someone", "jo@example.com").err(),
            Some(PasswordError::TooSimilar)
        );
    }

    #[test]
    fn a_short_username_is_not_used_for_similarity() {
        // "al" is too short to be meaningful inside a longer password.
        assert!(Password::parse("tangerine kayak al", "al", "someone@example.com").is_ok());
    }

    #[test]
    fn a_short_email_local_part_is_not_used_for_similarity() {
        assert!(Password::parse("tangerine kayak jo", "someone", "jo@example.com").is_ok());
    }

    #[test]
    fn the_common_rule_is_checked_before_the_similarity_rule() {
        assert_eq!(
            Password::parse("password1234", "password1234", "password1234@example.com").err(),
            Some(PasswordError::TooCommon)
        );
    }

    #[test]
    fn a_password_debug_output_is_redacted() {
        let password = parse("tangerine kayak forty seven").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }

    #[test]
    fn a_password_hash_debug_output_is_redacted() {
        let hash = PasswordHash::new("$argon2id$v=19$secret".to_owned());
        assert_eq!(format!("{hash:?}"), "PasswordHash(***)");
    }

    #[test]
    fn a_password_hash_serializes_as_a_plain_string() {
        let hash = PasswordHash::new("$argon2id$v=19$abc".to_owned());
        assert_eq!(
            serde_json::to_string(&hash).unwrap(),
            r#""$argon2id$v=19$abc""#
        );
        assert_eq!(hash.as_str(), "$argon2id$v=19$abc");
    }
}
