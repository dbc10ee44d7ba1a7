//! The `Role` value type: what a user is allowed to do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role. Superusers can manage other users; everyone else is a
/// plain user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary user who manages their own CVs.
    #[default]
    User,
    /// An administrator who can also manage users.
    Superuser,
}

/// The text given was not a known role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown role \"{0}\"; expected \"user\" or \"superuser\".")]
pub struct UnknownRole(pub String);

impl Role {
    /// The stable lower-case name: `"user"` or `"superuser"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Superuser => "superuser",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts exactly `"user"` or `"superuser"`, matching the stored form,
    /// so that what is parsed is exactly what is serialised.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "superuser" => Ok(Role::Superuser),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_role_is_user() {
        assert_eq!(Role::default(), Role::User);
    }

    #[test]
    fn roles_have_lower_case_names() {
        assert_eq!(Role::User.as_str(), "user");
        assert_eq!(Role::Superuser.as_str(), "superuser");
    }

    #[test]
    fn roles_display_as_their_names() {
        assert_eq!(Role::Superuser.to_string(), "superuser");
    }

    #[test]
    fn both_role_names_parse() {
        assert_eq!("user".parse(), Ok(Role::User));
        assert_eq!("superuser".parse(), Ok(Role::Superuser));
    }

    #[test]
    fn an_unknown_role_name_is_rejected() {
        assert_eq!(
            "admin".parse::<Role>(),
            Err(UnknownRole("admin".to_owned()))
        );
    }

    #[test]
    fn role_names_are_case_sensitive() {
        assert!("User".parse::<Role>().is_err());
    }

    #[test]
    fn roles_serialize_as_lower_case_strings() {
        assert_eq!(
            serde_json::to_string(&Role::Superuser).unwrap(),
            r#""superuser""#
        );
        assert_eq!(
            serde_json::from_str::<Role>(r#""user""#).unwrap(),
            Role::User
        );
    }
}
