//! The `Email` value type: a normalised (trimmed, lower-cased) email address.

use std::fmt;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};

/// Longest address accepted; the practical SMTP limit (RFC 5321 path length
/// minus the angle brackets), measured in bytes as SMTP does.
const MAX_LEN: usize = 254;

/// A validated email address, stored trimmed and lower-cased so that two
/// spellings of the same address compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why a candidate email address was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing (or only whitespace) was entered.
    #[error("Enter your email address.")]
    Empty,
    /// Not a syntactically valid address with a dotted domain.
    #[error("Enter a valid email address, like name@example.com.")]
    Invalid,
    /// Longer than 254 bytes.
    #[error("Email address must be at most 254 characters.")]
    TooLong,
}

impl Email {
    /// Parses an email address: trims, lower-cases, then validates.
    pub fn parse(candidate: &str) -> Result<Self, EmailError> {
        let normalised = candidate.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(EmailError::Empty);
        }
        if normalised.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // The crate's default options accept `Name <addr>` display text and
        // `[127.0.0.1]` domain literals; neither is a bare address we can
        // store, so both are switched off.
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = EmailAddress::parse_with_options(&normalised, options)
            .map_err(|_| EmailError::Invalid)?;
        // `user@localhost` is valid syntax but never deliverable for our users;
        // requiring a dot in the domain catches the common typo of a missing TLD.
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::Invalid);
        }
        Ok(Self(normalised))
    }

    /// The address as stored (trimmed and lower-cased).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_address_is_accepted() {
        assert_eq!(
            Email::parse("alice@example.com").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn an_address_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Alice.Smith@Example.COM \n")
                .unwrap()
                .as_str(),
            "alice.smith@example.com"
        );
    }

    #[test]
    fn plus_addressing_is_accepted() {
        assert!(Email::parse("alice+cv@example.co.uk").is_ok());
    }

    #[test]
    fn an_empty_address_is_rejected_as_empty() {
        assert_eq!(Email::parse(""), Err(EmailError::Empty));
    }

    #[test]
    fn a_whitespace_only_address_is_rejected_as_empty() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
    }

    #[test]
    fn an_email_without_at_sign_is_rejected() {
        assert_eq!(Email::parse("alice.example.com"), Err(EmailError::Invalid));
    }

    #[test]
    fn an_email_without_a_dot_in_the_domain_is_rejected() {
        assert_eq!(Email::parse("alice@localhost"), Err(EmailError::Invalid));
    }

    #[test]
    fn an_email_with_an_empty_local_part_is_rejected() {
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Invalid));
    }

    #[test]
    fn an_email_with_two_at_signs_is_rejected() {
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::Invalid));
    }

    #[test]
    fn an_email_with_inner_spaces_is_rejected() {
        assert_eq!(
            Email::parse("alice smith@example.com"),
            Err(EmailError::Invalid)
        );
    }

    #[test]
    fn an_email_with_display_text_is_rejected() {
        assert_eq!(
            Email::parse("Alice <alice@example.com>"),
            Err(EmailError::Invalid)
        );
    }

    #[test]
    fn an_email_with_a_domain_literal_is_rejected() {
        assert_eq!(Email::parse("alice@[127.0.0.1]"), Err(EmailError::Invalid));
    }

    #[test]
    fn an_email_of_254_characters_is_accepted() {
        // 64-character local part (the maximum) plus a long dotted domain.
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let address = format!("{local}@{domain}");
        assert_eq!(address.len(), 254);
        assert!(Email::parse(&address).is_ok());
    }

    #[test]
    fn an_email_over_254_characters_is_too_long() {
        let address = format!("{}@example.com", "a".repeat(243));
        assert_eq!(address.len(), 255);
        assert_eq!(Email::parse(&address), Err(EmailError::TooLong));
    }

    #[test]
    fn it_displays_as_stored() {
        assert_eq!(
            Email::parse("Alice@Example.com").unwrap().to_string(),
            "alice@example.com"
        );
    }

    #[test]
    fn it_serializes_as_a_plain_string() {
        let email = Email::parse("alice@example.com").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            r#""alice@example.com""#
        );
        let back: Email = serde_json::from_str(r#""alice@example.com""#).unwrap();
        assert_eq!(back, email);
    }
}
