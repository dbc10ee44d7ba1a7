//! The `User` aggregate: the state rebuilt from a user's events and the
//! rules deciding which events each command produces.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::commands::UserCommand;
use super::email::Email;
use super::error::UserError;
use super::events::{LoginFailureReason, UserEvent};
use super::password::PasswordHash;
use super::profile::Profile;
use super::role::Role;
use super::services::UserServices;
use super::username::Username;

/// A user account. Fields are the state rebuilt from events by `apply`; they
/// are public for reading (e.g. in snapshots) but should only change through
/// commands and events.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct User {
    /// Whether a `Registered` event has been applied.
    pub registered: bool,
    /// The username; `None` until registered.
    pub username: Option<Username>,
    /// The email address; `None` until registered.
    pub email: Option<Email>,
    /// The current password hash; `None` until registered.
    pub password_hash: Option<PasswordHash>,
    /// The current role.
    pub role: Role,
    /// Whether the user may log in.
    pub active: bool,
    /// Personal information.
    #[serde(default)]
    pub profile: Profile,
    /// Content hash of the current profile picture.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Reset links sent and not yet used: token hash and expiry.
    #[serde(default)]
    pub pending_resets: Vec<(String, OffsetDateTime)>,
    /// Whether the account was erased: it refuses every command from then on.
    #[serde(default)]
    pub erased: bool,
}

impl User {
    /// Refuses commands against an account that does not exist (yet, or any more).
    fn ensure_registered(&self) -> Result<(), UserError> {
        if self.registered && !self.erased {
            Ok(())
        } else {
            Err(UserError::NotFound)
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";

    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = UserServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            UserCommand::Register {
                username,
                email,
                password,
                role,
                at,
            } => {
                if self.registered {
                    return Err(UserError::AlreadyRegistered);
                }
                let password_hash = services
                    .passwords
                    .hash(&password)
                    .await
                    .map_err(|e| UserError::Hashing(e.0))?;
                let event = UserEvent::Registered {
                    username,
                    email,
                    password_hash,
                    role,
                    registered_at: at,
                };
                sink.write(event, self).await;
            }
            UserCommand::LogIn { password, at } => {
                self.ensure_registered()?;
                let Some(hash) = &self.password_hash else {
                    // Registered always sets a hash; a missing one means the
                    // account cannot be logged into, so treat it as absent.
                    return Err(UserError::NotFound);
                };
                // The password is checked before the account status so that
                // only someone who knows the password learns it is deactivated.
                let matches = services.passwords.verify(hash, &password).await;
                let event = match (matches, self.active) {
                    (false, _) => UserEvent::LoginFailed {
                        reason: LoginFailureReason::WrongPassword,
                        at,
                    },
                    (true, false) => UserEvent::LoginFailed {
                        reason: LoginFailureReason::AccountDeactivated,
                        at,
                    },
                    (true, true) => UserEvent::LoggedIn { at },
                };
                sink.write(event, self).await;
            }
            UserCommand::ChangeRole { role } => {
                self.ensure_registered()?;
                if self.role == role {
                    return Err(UserError::RoleUnchanged);
                }
                let event = UserEvent::RoleChanged {
                    from: self.role,
                    to: role,
                };
                sink.write(event, self).await;
            }
            UserCommand::Deactivate => {
                self.ensure_registered()?;
                if !self.active {
                    return Err(UserError::AlreadyDeactivated);
                }
                sink.write(UserEvent::Deactivated, self).await;
            }
            UserCommand::Activate => {
                self.ensure_registered()?;
                if self.active {
                    return Err(UserError::AlreadyActive);
                }
                sink.write(UserEvent::Activated, self).await;
            }
            UserCommand::UpdateProfile { profile } => {
                self.ensure_registered()?;
                let changes = self.profile.changes_to(&profile);
                // An unchanged (or empty) submission records nothing.
                if !changes.is_empty() {
                    sink.write(UserEvent::ProfileUpdated { changes }, self)
                        .await;
                }
            }
            UserCommand::ChangeAvatar {
                content_hash,
                width,
                height,
            } => {
                self.ensure_registered()?;
                if self.avatar.as_deref() != Some(content_hash.as_str()) {
                    let event = UserEvent::AvatarChanged {
                        content_hash,
                        width,
                        height,
                    };
                    sink.write(event, self).await;
                }
            }
            UserCommand::RemoveAvatar => {
                self.ensure_registered()?;
                if self.avatar.is_none() {
                    return Err(UserError::NoAvatar);
                }
                sink.write(UserEvent::AvatarRemoved, self).await;
            }
            UserCommand::ChangePassword {
                current_password,
                new_password,
            } => {
                self.ensure_registered()?;
                let Some(hash) = &self.password_hash else {
                    return Err(UserError::NotFound);
                };
                if !services.passwords.verify(hash, &current_password).await {
                    return Err(UserError::WrongPassword);
                }
                let password_hash = services
                    .passwords
                    .hash(&new_password)
                    .await
                    .map_err(|e| UserError::Hashing(e.0))?;
                sink.write(UserEvent::PasswordChanged { password_hash }, self)
                    .await;
            }
            UserCommand::RequestPasswordReset {
                token_hash,
                expires_at,
            } => {
                self.ensure_registered()?;
                if !self.active {
                    return Err(UserError::AccountDeactivated);
                }
                let event = UserEvent::PasswordResetRequested {
                    token_hash,
                    expires_at,
                };
                sink.write(event, self).await;
            }
            UserCommand::ResetPassword {
                token_hash,
                new_password,
                at,
            } => {
                self.ensure_registered()?;
                let Some((_, expires_at)) = self
                    .pending_resets
                    .iter()
                    .find(|(pending, _)| *pending == token_hash)
                else {
                    return Err(UserError::ResetTokenInvalid);
                };
                if *expires_at <= at {
                    return Err(UserError::ResetTokenExpired);
                }
                if !self.active {
                    return Err(UserError::AccountDeactivated);
                }
                let password_hash = services
                    .passwords
                    .hash(&new_password)
                    .await
                    .map_err(|e| UserError::Hashing(e.0))?;
                let event = UserEvent::PasswordReset {
                    password_hash,
                    token_hash,
                };
                sink.write(event, self).await;
            }
            UserCommand::Erase { password } => {
                self.ensure_registered()?;
                if let Some(password) = password {
                    let Some(hash) = &self.password_hash else {
                        return Err(UserError::NotFound);
                    };
                    if !services.passwords.verify(hash, &password).await {
                        return Err(UserError::WrongPassword);
                    }
                }
                sink.write(UserEvent::Erased, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::Registered {
                username,
                email,
                password_hash,
                role,
                registered_at: _,
            } => {
                self.registered = true;
                self.username = Some(username);
                self.email = Some(email);
                self.password_hash = Some(password_hash);
                self.role = role;
                self.active = true;
            }
            // Login outcomes are recorded for auditing but change no state.
            UserEvent::LoggedIn { .. } | UserEvent::LoginFailed { .. } => {}
            UserEvent::RoleChanged { from: _, to } => self.role = to,
            UserEvent::Deactivated => self.active = false,
            UserEvent::Activated => self.active = true,
            UserEvent::ProfileUpdated { changes } => self.profile.apply(&changes),
            UserEvent::AvatarChanged { content_hash, .. } => self.avatar = Some(content_hash),
            UserEvent::AvatarRemoved => self.avatar = None,
            // A new password, however it was set, makes every outstanding reset link useless.
            UserEvent::PasswordChanged { password_hash }
            | UserEvent::PasswordReset { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.pending_resets.clear();
            }
            UserEvent::PasswordResetRequested {
                token_hash,
                expires_at,
            } => self.pending_resets.push((token_hash, expires_at)),
            // Nothing personal stays in the state of an erased account.
            UserEvent::Erased => {
                *self = User {
                    registered: true,
                    erased: true,
                    ..User::default()
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cqrs_es::test::TestFramework;
    use time::macros::datetime;
    use time::OffsetDateTime;

    use super::*;
    use crate::testing::{FailingHasher, PlainTextHasher};
    use crate::user::password::Password;
    use crate::user::profile::ProfileChanges;

    type UserTest = TestFramework<User>;

    const PASSWORD: &str = "tangerine kayak forty seven";
    const AT: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

    fn services() -> UserServices {
        UserServices::new(Arc::new(PlainTextHasher))
    }

    fn username() -> Username {
        Username::parse("alice").unwrap()
    }

    fn email() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    fn register(role: Role) -> UserCommand {
        UserCommand::Register {
            username: username(),
            email: email(),
            password: Password::parse(PASSWORD, "alice", "alice@example.com").unwrap(),
            role,
            at: AT,
        }
    }

    fn registered(role: Role) -> UserEvent {
        UserEvent::Registered {
            username: username(),
            email: email(),
            password_hash: PlainTextHasher::hash_of(PASSWORD),
            role,
            registered_at: AT,
        }
    }

    fn log_in(password: &str) -> UserCommand {
        UserCommand::LogIn {
            password: password.to_owned(),
            at: AT,
        }
    }

    #[test]
    fn a_new_user_can_register() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(register(Role::User))
            .then_expect_events(vec![registered(Role::User)]);
    }

    #[test]
    fn a_new_user_can_register_as_a_superuser() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(register(Role::Superuser))
            .then_expect_events(vec![registered(Role::Superuser)]);
    }

    #[test]
    fn registering_twice_is_rejected() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(register(Role::User))
            .then_expect_error(UserError::AlreadyRegistered);
    }

    #[test]
    fn a_hashing_failure_during_registration_is_reported() {
        let hasher = FailingHasher {
            message: "out of memory".to_owned(),
        };
        UserTest::with(UserServices::new(Arc::new(hasher)))
            .given_no_previous_events()
            .when(register(Role::User))
            .then_expect_error(UserError::Hashing("out of memory".to_owned()));
    }

    #[test]
    fn logging_in_with_the_right_password_succeeds() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(log_in(PASSWORD))
            .then_expect_events(vec![UserEvent::LoggedIn { at: AT }]);
    }

    #[test]
    fn logging_in_with_a_wrong_password_fails() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(log_in("not the password"))
            .then_expect_events(vec![UserEvent::LoginFailed {
                reason: LoginFailureReason::WrongPassword,
                at: AT,
            }]);
    }

    #[test]
    fn logging_in_to_a_deactivated_account_with_the_right_password_fails_as_deactivated() {
        UserTest::with(services())
            .given(vec![registered(Role::User), UserEvent::Deactivated])
            .when(log_in(PASSWORD))
            .then_expect_events(vec![UserEvent::LoginFailed {
                reason: LoginFailureReason::AccountDeactivated,
                at: AT,
            }]);
    }

    #[test]
    fn logging_in_to_a_deactivated_account_with_a_wrong_password_fails_as_wrong_password() {
        UserTest::with(services())
            .given(vec![registered(Role::User), UserEvent::Deactivated])
            .when(log_in("not the password"))
            .then_expect_events(vec![UserEvent::LoginFailed {
                reason: LoginFailureReason::WrongPassword,
                at: AT,
            }]);
    }

    #[test]
    fn logging_in_to_a_reactivated_account_succeeds() {
        UserTest::with(services())
            .given(vec![
                registered(Role::User),
                UserEvent::Deactivated,
                UserEvent::Activated,
            ])
            .when(log_in(PASSWORD))
            .then_expect_events(vec![UserEvent::LoggedIn { at: AT }]);
    }

    #[test]
    fn logging_in_to_an_unknown_user_is_not_found() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(log_in(PASSWORD))
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn a_user_can_be_made_a_superuser() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::ChangeRole {
                role: Role::Superuser,
            })
            .then_expect_events(vec![UserEvent::RoleChanged {
                from: Role::User,
                to: Role::Superuser,
            }]);
    }

    #[test]
    fn a_superuser_can_be_made_a_user() {
        UserTest::with(services())
            .given(vec![registered(Role::Superuser)])
            .when(UserCommand::ChangeRole { role: Role::User })
            .then_expect_events(vec![UserEvent::RoleChanged {
                from: Role::Superuser,
                to: Role::User,
            }]);
    }

    #[test]
    fn a_role_change_takes_the_latest_role_into_account() {
        UserTest::with(services())
            .given(vec![
                registered(Role::User),
                UserEvent::RoleChanged {
                    from: Role::User,
                    to: Role::Superuser,
                },
            ])
            .when(UserCommand::ChangeRole {
                role: Role::Superuser,
            })
            .then_expect_error(UserError::RoleUnchanged);
    }

    #[test]
    fn changing_to_the_same_role_is_rejected() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::ChangeRole { role: Role::User })
            .then_expect_error(UserError::RoleUnchanged);
    }

    #[test]
    fn changing_the_role_of_an_unknown_user_is_not_found() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(UserCommand::ChangeRole {
                role: Role::Superuser,
            })
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn an_active_user_can_be_deactivated() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::Deactivate)
            .then_expect_events(vec![UserEvent::Deactivated]);
    }

    #[test]
    fn deactivating_a_deactivated_user_is_rejected() {
        UserTest::with(services())
            .given(vec![registered(Role::User), UserEvent::Deactivated])
            .when(UserCommand::Deactivate)
            .then_expect_error(UserError::AlreadyDeactivated);
    }

    #[test]
    fn deactivating_an_unknown_user_is_not_found() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(UserCommand::Deactivate)
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn a_deactivated_user_can_be_activated() {
        UserTest::with(services())
            .given(vec![registered(Role::User), UserEvent::Deactivated])
            .when(UserCommand::Activate)
            .then_expect_events(vec![UserEvent::Activated]);
    }

    #[test]
    fn activating_an_active_user_is_rejected() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::Activate)
            .then_expect_error(UserError::AlreadyActive);
    }

    #[test]
    fn activating_an_unknown_user_is_not_found() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(UserCommand::Activate)
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn registering_sets_the_state() {
        let mut user = User::default();
        user.apply(registered(Role::Superuser));
        assert!(user.registered);
        assert!(user.active);
        assert_eq!(user.username, Some(username()));
        assert_eq!(user.email, Some(email()));
        assert_eq!(user.password_hash, Some(PlainTextHasher::hash_of(PASSWORD)));
        assert_eq!(user.role, Role::Superuser);
    }

    #[test]
    fn a_fresh_user_is_unregistered_and_inactive() {
        let user = User::default();
        assert!(!user.registered);
        assert!(!user.active);
        assert_eq!(user.role, Role::User);
    }

    #[test]
    fn login_events_do_not_change_the_state() {
        let mut user = User::default();
        user.apply(registered(Role::User));
        user.apply(UserEvent::LoginFailed {
            reason: LoginFailureReason::WrongPassword,
            at: AT,
        });
        user.apply(UserEvent::LoggedIn { at: AT });
        assert!(user.active);
        assert_eq!(user.role, Role::User);
    }

    #[test]
    fn the_handle_future_is_send() {
        // cqrs-es requires it; this fails to compile if a non-Send value is
        // ever held across an await in `handle`.
        fn assert_send<T: Send>(_: &T) {}
        let mut user = User::default();
        let sink = EventSink::<User>::default();
        let services = services();
        let future = user.handle(UserCommand::Activate, &services, &sink);
        assert_send(&future);
    }

    const NEW_PASSWORD: &str = "marmalade bicycle orbit";
    const LATER: OffsetDateTime = datetime!(2024-05-01 13:00 UTC);

    fn new_password() -> Password {
        Password::parse(NEW_PASSWORD, "alice", "alice@example.com").unwrap()
    }

    fn profile(headline: &str) -> Profile {
        Profile {
            full_name: "Alice Doe".into(),
            headline: headline.into(),
            ..Profile::default()
        }
    }

    fn reset_requested(token: &str) -> UserEvent {
        UserEvent::PasswordResetRequested {
            token_hash: token.into(),
            expires_at: LATER,
        }
    }

    #[test]
    fn a_profile_update_records_only_the_changed_fields() {
        UserTest::with(services())
            .given(vec![
                registered(Role::User),
                UserEvent::ProfileUpdated {
                    changes: Profile::default().changes_to(&profile("Engineer")),
                },
            ])
            .when(UserCommand::UpdateProfile {
                profile: profile("Architect"),
            })
            .then_expect_events(vec![UserEvent::ProfileUpdated {
                changes: ProfileChanges {
                    headline: Some("Architect".into()),
                    ..ProfileChanges::default()
                },
            }]);
    }

    #[test]
    fn an_unchanged_profile_records_nothing() {
        UserTest::with(services())
            .given(vec![
                registered(Role::User),
                UserEvent::ProfileUpdated {
                    changes: Profile::default().changes_to(&profile("Engineer")),
                },
            ])
            .when(UserCommand::UpdateProfile {
                profile: profile("Engineer"),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_empty_profile_on_a_new_account_records_nothing() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::UpdateProfile {
                profile: Profile::default(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_new_avatar_is_recorded_by_hash_and_size() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::ChangeAvatar {
                content_hash: "ab".repeat(32),
                width: 512,
                height: 384,
            })
            .then_expect_events(vec![UserEvent::AvatarChanged {
                content_hash: "ab".repeat(32),
                width: 512,
                height: 384,
            }]);
    }

    #[test]
    fn the_same_avatar_again_records_nothing() {
        let changed = UserEvent::AvatarChanged {
            content_hash: "ab".repeat(32),
            width: 512,
            height: 384,
        };
        UserTest::with(services())
            .given(vec![registered(Role::User), changed])
            .when(UserCommand::ChangeAvatar {
                content_hash: "ab".repeat(32),
                width: 512,
                height: 384,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_avatar_can_be_removed() {
        let changed = UserEvent::AvatarChanged {
            content_hash: "ab".repeat(32),
            width: 1,
            height: 1,
        };
        UserTest::with(services())
            .given(vec![registered(Role::User), changed])
            .when(UserCommand::RemoveAvatar)
            .then_expect_events(vec![UserEvent::AvatarRemoved]);
    }

    #[test]
    fn removing_a_missing_avatar_is_rejected() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::RemoveAvatar)
            .then_expect_error(UserError::NoAvatar);
    }

    #[test]
    fn the_password_changes_with_the_right_current_password() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::ChangePassword {
                current_password: PASSWORD.into(),
                new_password: new_password(),
            })
            .then_expect_events(vec![UserEvent::PasswordChanged {
                password_hash: PlainTextHasher::hash_of(NEW_PASSWORD),
            }]);
    }

    #[test]
    fn the_password_does_not_change_with_a_wrong_current_password() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::ChangePassword {
                current_password: "not my password".into(),
                new_password: new_password(),
            })
            .then_expect_error(UserError::WrongPassword);
    }

    #[test]
    fn a_reset_can_be_requested_for_an_active_account() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::RequestPasswordReset {
                token_hash: "t1".into(),
                expires_at: LATER,
            })
            .then_expect_events(vec![reset_requested("t1")]);
    }

    #[test]
    fn a_reset_cannot_be_requested_for_a_deactivated_account() {
        UserTest::with(services())
            .given(vec![registered(Role::User), UserEvent::Deactivated])
            .when(UserCommand::RequestPasswordReset {
                token_hash: "t1".into(),
                expires_at: LATER,
            })
            .then_expect_error(UserError::AccountDeactivated);
    }

    #[test]
    fn a_valid_reset_token_sets_the_new_password() {
        UserTest::with(services())
            .given(vec![registered(Role::User), reset_requested("t1")])
            .when(UserCommand::ResetPassword {
                token_hash: "t1".into(),
                new_password: new_password(),
                at: AT,
            })
            .then_expect_events(vec![UserEvent::PasswordReset {
                password_hash: PlainTextHasher::hash_of(NEW_PASSWORD),
                token_hash: "t1".into(),
            }]);
    }

    #[test]
    fn a_reset_token_works_only_once() {
        let used = UserEvent::PasswordReset {
            password_hash: PlainTextHasher::hash_of(NEW_PASSWORD),
            token_hash: "t1".into(),
        };
        UserTest::with(services())
            .given(vec![registered(Role::User), reset_requested("t1"), used])
            .when(UserCommand::ResetPassword {
                token_hash: "t1".into(),
                new_password: new_password(),
                at: AT,
            })
            .then_expect_error(UserError::ResetTokenInvalid);
    }

    #[test]
    fn an_expired_reset_token_is_refused() {
        UserTest::with(services())
            .given(vec![registered(Role::User), reset_requested("t1")])
            .when(UserCommand::ResetPassword {
                token_hash: "t1".into(),
                new_password: new_password(),
                at: LATER,
            })
            .then_expect_error(UserError::ResetTokenExpired);
    }

    #[test]
    fn an_unknown_reset_token_is_refused() {
        UserTest::with(services())
            .given(vec![registered(Role::User), reset_requested("t1")])
            .when(UserCommand::ResetPassword {
                token_hash: "t2".into(),
                new_password: new_password(),
                at: AT,
            })
            .then_expect_error(UserError::ResetTokenInvalid);
    }

    #[test]
    fn a_password_change_voids_outstanding_reset_tokens() {
        let changed = UserEvent::PasswordChanged {
            password_hash: PlainTextHasher::hash_of(NEW_PASSWORD),
        };
        UserTest::with(services())
            .given(vec![registered(Role::User), reset_requested("t1"), changed])
            .when(UserCommand::ResetPassword {
                token_hash: "t1".into(),
                new_password: new_password(),
                at: AT,
            })
            .then_expect_error(UserError::ResetTokenInvalid);
    }

    #[test]
    fn profile_and_password_commands_on_an_unknown_user_are_not_found() {
        for command in [
            UserCommand::UpdateProfile {
                profile: profile("x"),
            },
            UserCommand::RemoveAvatar,
            UserCommand::ChangePassword {
                current_password: PASSWORD.into(),
                new_password: new_password(),
            },
        ] {
            UserTest::with(services())
                .given_no_previous_events()
                .when(command)
                .then_expect_error(UserError::NotFound);
        }
    }

    #[test]
    fn the_owner_erases_their_account_with_the_right_password() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::Erase {
                password: Some(PASSWORD.into()),
            })
            .then_expect_events(vec![UserEvent::Erased]);
    }

    #[test]
    fn erasing_with_a_wrong_password_is_refused() {
        UserTest::with(services())
            .given(vec![registered(Role::User)])
            .when(UserCommand::Erase {
                password: Some("not the password at all".into()),
            })
            .then_expect_error(UserError::WrongPassword);
    }

    #[test]
    fn an_authorised_erasure_needs_no_password() {
        UserTest::with(services())
            .given(vec![registered(Role::Superuser), UserEvent::Deactivated])
            .when(UserCommand::Erase { password: None })
            .then_expect_events(vec![UserEvent::Erased]);
    }

    #[test]
    fn an_erased_account_refuses_every_command() {
        let commands = vec![
            UserCommand::Erase { password: None },
            UserCommand::LogIn {
                password: PASSWORD.into(),
                at: AT,
            },
            UserCommand::UpdateProfile {
                profile: profile("x"),
            },
            UserCommand::Activate,
            UserCommand::ChangeRole {
                role: Role::Superuser,
            },
        ];
        for command in commands {
            UserTest::with(services())
                .given(vec![registered(Role::User), UserEvent::Erased])
                .when(command)
                .then_expect_error(UserError::NotFound);
        }
    }

    #[test]
    fn erasure_leaves_nothing_personal_in_the_state() {
        let mut user = User::default();
        user.apply(registered(Role::Superuser));
        user.apply(UserEvent::ProfileUpdated {
            changes: ProfileChanges {
                full_name: Some("Alice Liddell".into()),
                ..ProfileChanges::default()
            },
        });
        user.apply(UserEvent::Erased);
        assert!(user.erased);
        assert!(user.username.is_none() && user.email.is_none() && user.password_hash.is_none());
        assert_eq!(user.profile, Profile::default());
        assert_eq!(
            user.role,
            Role::User,
            "an erased superuser counts as no superuser"
        );
        assert!(!user.active);
    }

    #[test]
    fn an_unknown_user_cannot_be_erased() {
        UserTest::with(services())
            .given_no_previous_events()
            .when(UserCommand::Erase { password: None })
            .then_expect_error(UserError::NotFound);
    }
}
