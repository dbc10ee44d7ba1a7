//! `UserEvent`: the facts recorded about a user, and their stored JSON shape.
//!
//! Events are stored forever, so variant names, field names, `event_type`
//! strings and the JSON shape are a compatibility contract; the tests below
//! pin them.

use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::email::Email;
use super::password::PasswordHash;
use super::profile::ProfileChanges;
use super::role::Role;
use super::username::Username;

/// Version of every `UserEvent` payload shape.
const EVENT_VERSION: &str = "1.0";

/// Something that happened to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    /// The account was created.
    Registered {
        /// The name to sign in with.
        username: Username,
        /// The contact address.
        email: Email,
        /// The hash of the initial password.
        password_hash: PasswordHash,
        /// The initial role.
        role: Role,
        /// When the account was created (UTC).
        #[serde(with = "time::serde::rfc3339")]
        registered_at: OffsetDateTime,
    },
    /// The user logged in successfully.
    LoggedIn {
        /// When (UTC).
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A login attempt was refused.
    LoginFailed {
        /// Why it was refused.
        reason: LoginFailureReason,
        /// When (UTC).
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The user's role changed.
    RoleChanged {
        /// The role before.
        from: Role,
        /// The role after.
        to: Role,
    },
    /// The account was deactivated and can no longer log in.
    Deactivated,
    /// The account was reactivated.
    Activated,
    /// Personal information changed; only the changed fields are present.
    ProfileUpdated { changes: ProfileChanges },
    /// A new profile picture: its content hash and size, never its bytes.
    AvatarChanged {
        content_hash: String,
        width: u32,
        height: u32,
    },
    /// The profile picture was removed.
    AvatarRemoved,
    /// The password was changed by its owner (who knew the current one).
    PasswordChanged { password_hash: PasswordHash },
    /// A reset link was sent; the token itself is never stored, only its SHA-256.
    PasswordResetRequested {
        token_hash: String,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// The password was set through a reset link, which is now used up.
    PasswordReset {
        password_hash: PasswordHash,
        token_hash: String,
    },
    /// The account was erased. The event holds nothing personal: it is what remains, with the
    /// types and times of the account's other events, once the personal data is destroyed.
    Erased,
}

/// Why a login attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailureReason {
    /// The password did not match.
    WrongPassword,
    /// The password matched but the account is deactivated.
    AccountDeactivated,
}

impl LoginFailureReason {
    /// A short human phrase, e.g. "wrong password".
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailureReason::WrongPassword => "wrong password",
            LoginFailureReason::AccountDeactivated => "account deactivated",
        }
    }
}

impl fmt::Display for LoginFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UserEvent {
    /// A short sentence for audit views, e.g. "registered as alice (user)".
    /// Never includes the email address or password hash, so it is safe to
    /// show to anyone allowed to see the event stream.
    pub fn describe(&self) -> String {
        match self {
            UserEvent::Registered { username, role, .. } => {
                format!("registered as {username} ({role})")
            }
            UserEvent::LoggedIn { .. } => "logged in".to_owned(),
            UserEvent::LoginFailed { reason, .. } => format!("failed to log in: {reason}"),
            UserEvent::RoleChanged { from, to } => format!("role changed from {from} to {to}"),
            UserEvent::Deactivated => "deactivated".to_owned(),
            UserEvent::Activated => "activated".to_owned(),
            UserEvent::ProfileUpdated { changes } => {
                format!("updated profile: {}", changes.field_names().join(", "))
            }
            UserEvent::AvatarChanged { width, height, .. } => {
                format!("changed profile picture ({width}×{height})")
            }
            UserEvent::AvatarRemoved => "removed profile picture".to_owned(),
            UserEvent::PasswordChanged { .. } => "changed password".to_owned(),
            UserEvent::PasswordResetRequested { .. } => "requested a password reset".to_owned(),
            UserEvent::PasswordReset { .. } => "reset password with an emailed link".to_owned(),
            UserEvent::Erased => "erased the account and its personal data".to_owned(),
        }
    }
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        let name = match self {
            UserEvent::Registered { .. } => "UserRegistered",
            UserEvent::LoggedIn { .. } => "UserLoggedIn",
            UserEvent::LoginFailed { .. } => "UserLoginFailed",
            UserEvent::RoleChanged { .. } => "UserRoleChanged",
            UserEvent::Deactivated => "UserDeactivated",
            UserEvent::Activated => "UserActivated",
            UserEvent::ProfileUpdated { .. } => "UserProfileUpdated",
            UserEvent::AvatarChanged { .. } => "UserAvatarChanged",
            UserEvent::AvatarRemoved => "UserAvatarRemoved",
            UserEvent::PasswordChanged { .. } => "UserPasswordChanged",
            UserEvent::PasswordResetRequested { .. } => "UserPasswordResetRequested",
            UserEvent::PasswordReset { .. } => "UserPasswordReset",
            UserEvent::Erased => "UserErased",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn registered() -> UserEvent {
        UserEvent::Registered {
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: PasswordHash::new("$argon2id$v=19$abc".to_owned()),
            role: Role::User,
            registered_at: datetime!(2024-05-01 12:00 UTC),
        }
    }

    /// Serialises `event`, checks it against the literal stored JSON, and
    /// checks that the literal deserialises back to the same event.
    fn assert_round_trip(event: &UserEvent, json: &str) {
        assert_eq!(serde_json::to_string(event).unwrap(), json);
        assert_eq!(&serde_json::from_str::<UserEvent>(json).unwrap(), event);
    }

    #[test]
    fn registered_has_a_stable_json_shape() {
        assert_round_trip(
            &registered(),
            r#"{"Registered":{"username":"alice","email":"alice@example.com","password_hash":"$argon2id$v=19$abc","role":"user","registered_at":"2024-05-01T12:00:00Z"}}"#,
        );
    }

    #[test]
    fn logged_in_has_a_stable_json_shape() {
        assert_round_trip(
            &UserEvent::LoggedIn {
                at: datetime!(2024-05-01 12:30:15 UTC),
            },
            r#"{"LoggedIn":{"at":"2024-05-01T12:30:15Z"}}"#,
        );
    }

    #[test]
    fn login_failed_has_a_stable_json_shape() {
        assert_round_trip(
            &UserEvent::LoginFailed {
                reason: LoginFailureReason::WrongPassword,
                at: datetime!(2024-05-01 12:30 UTC),
            },
            r#"{"LoginFailed":{"reason":"wrong_password","at":"2024-05-01T12:30:00Z"}}"#,
        );
        assert_round_trip(
            &UserEvent::LoginFailed {
                reason: LoginFailureReason::AccountDeactivated,
                at: datetime!(2024-05-01 12:30 UTC),
            },
            r#"{"LoginFailed":{"reason":"account_deactivated","at":"2024-05-01T12:30:00Z"}}"#,
        );
    }

    #[test]
    fn role_changed_has_a_stable_json_shape() {
        assert_round_trip(
            &UserEvent::RoleChanged {
                from: Role::User,
                to: Role::Superuser,
            },
            r#"{"RoleChanged":{"from":"user","to":"superuser"}}"#,
        );
    }

    #[test]
    fn deactivated_has_a_stable_json_shape() {
        assert_round_trip(&UserEvent::Deactivated, r#""Deactivated""#);
    }

    #[test]
    fn activated_has_a_stable_json_shape() {
        assert_round_trip(&UserEvent::Activated, r#""Activated""#);
    }

    #[test]
    fn fractional_seconds_survive_a_round_trip() {
        assert_round_trip(
            &UserEvent::LoggedIn {
                at: datetime!(2024-05-01 12:30:15.123456789 UTC),
            },
            r#"{"LoggedIn":{"at":"2024-05-01T12:30:15.123456789Z"}}"#,
        );
    }

    #[test]
    fn event_types_are_stable_names() {
        let at = datetime!(2024-05-01 12:00 UTC);
        let types: Vec<String> = [
            registered(),
            UserEvent::LoggedIn { at },
            UserEvent::LoginFailed {
                reason: LoginFailureReason::WrongPassword,
                at,
            },
            UserEvent::RoleChanged {
                from: Role::User,
                to: Role::Superuser,
            },
            UserEvent::Deactivated,
            UserEvent::Activated,
        ]
        .iter()
        .map(DomainEvent::event_type)
        .collect();
        assert_eq!(
            types,
            [
                "UserRegistered",
                "UserLoggedIn",
                "UserLoginFailed",
                "UserRoleChanged",
                "UserDeactivated",
                "UserActivated"
            ]
        );
    }

    #[test]
    fn every_event_is_version_one() {
        assert_eq!(UserEvent::Activated.event_version(), "1.0");
        assert_eq!(registered().event_version(), "1.0");
    }

    #[test]
    fn registered_is_described_by_username_and_role() {
        assert_eq!(registered().describe(), "registered as alice (user)");
    }

    #[test]
    fn registered_description_omits_email_and_hash() {
        let description = registered().describe();
        assert!(!description.contains("example.com"));
        assert!(!description.contains("argon2"));
    }

    #[test]
    fn logged_in_is_described() {
        let event = UserEvent::LoggedIn {
            at: datetime!(2024-05-01 12:00 UTC),
        };
        assert_eq!(event.describe(), "logged in");
    }

    #[test]
    fn a_failed_login_is_described_with_its_reason() {
        let at = datetime!(2024-05-01 12:00 UTC);
        let wrong = UserEvent::LoginFailed {
            reason: LoginFailureReason::WrongPassword,
            at,
        };
        let deactivated = UserEvent::LoginFailed {
            reason: LoginFailureReason::AccountDeactivated,
            at,
        };
        assert_eq!(wrong.describe(), "failed to log in: wrong password");
        assert_eq!(
            deactivated.describe(),
            "failed to log in: account deactivated"
        );
    }

    #[test]
    fn a_role_change_is_described_with_both_roles() {
        let event = UserEvent::RoleChanged {
            from: Role::User,
            to: Role::Superuser,
        };
        assert_eq!(event.describe(), "role changed from user to superuser");
    }

    #[test]
    fn activation_changes_are_described() {
        assert_eq!(UserEvent::Deactivated.describe(), "deactivated");
        assert_eq!(UserEvent::Activated.describe(), "activated");
    }

    #[test]
    fn a_profile_update_stores_only_the_changed_fields() {
        let event = UserEvent::ProfileUpdated {
            changes: ProfileChanges {
                headline: Some("Engineer".into()),
                phone: Some(String::new()),
                ..ProfileChanges::default()
            },
        };
        assert_round_trip(
            &event,
            r#"{"ProfileUpdated":{"changes":{"headline":"Engineer","phone":""}}}"#,
        );
    }

    #[test]
    fn an_avatar_change_stores_hash_and_size() {
        let event = UserEvent::AvatarChanged {
            content_hash: "ab".repeat(32),
            width: 512,
            height: 384,
        };
        let json = format!(
            r#"{{"AvatarChanged":{{"content_hash":"{}","width":512,"height":384}}}}"#,
            "ab".repeat(32)
        );
        assert_round_trip(&event, &json);
        assert_round_trip(&UserEvent::AvatarRemoved, r#""AvatarRemoved""#);
    }

    #[test]
    fn password_events_keep_their_shape() {
        assert_round_trip(
            &UserEvent::PasswordChanged {
                password_hash: PasswordHash::new("h".into()),
            },
            r#"{"PasswordChanged":{"password_hash":"h"}}"#,
        );
        assert_round_trip(
            &UserEvent::PasswordResetRequested {
                token_hash: "t".into(),
                expires_at: datetime!(2024-05-01 13:00 UTC),
            },
            r#"{"PasswordResetRequested":{"token_hash":"t","expires_at":"2024-05-01T13:00:00Z"}}"#,
        );
        assert_round_trip(
            &UserEvent::PasswordReset {
                password_hash: PasswordHash::new("h".into()),
                token_hash: "t".into(),
            },
            r#"{"PasswordReset":{"password_hash":"h","token_hash":"t"}}"#,
        );
    }

    #[test]
    fn erased_has_a_stable_json_shape_and_type() {
        assert_round_trip(&UserEvent::Erased, r#""Erased""#);
        assert_eq!(UserEvent::Erased.event_type(), "UserErased");
    }

    #[test]
    fn descriptions_of_password_events_reveal_no_secret() {
        let event = UserEvent::PasswordReset {
            password_hash: PasswordHash::new("$argon2id$secret".into()),
            token_hash: "tokenhash".into(),
        };
        let text = event.describe();
        assert!(
            !text.contains("secret") && !text.contains("tokenhash"),
            "{text}"
        );
    }
}
