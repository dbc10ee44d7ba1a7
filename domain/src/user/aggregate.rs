//! The `User` aggregate: the state rebuilt from a user's events and the
//! rules deciding which events each command produces.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::UserCommand;
use super::email::Email;
use super::error::UserError;
use super::events::{LoginFailureReason, UserEvent};
use super::password::PasswordHash;
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
}

impl User {
    /// Refuses commands against an account that does not exist yet.
    fn ensure_registered(&self) -> Result<(), UserError> {
        if self.registered {
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
}
