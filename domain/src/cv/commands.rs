//! `CvCommand`: the requests a `Cv` aggregate can be asked to handle.
//!
//! Times, ids and the acting user are passed in rather than read from a clock, a random
//! generator or a session, so the domain stays pure and tests are deterministic.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::content::{CvContent, CvTitle, EntryFields, Section};
use super::events::CvOrigin;

/// A request to a `Cv` aggregate.
///
/// Editing commands carry the `actor` (who must own the CV) and an optional
/// `expected_version`: the version the editor was looking at, so that an edit made on a page
/// that has since gone stale is refused instead of silently overwriting someone's change.
#[derive(Debug, Clone)]
pub enum CvCommand {
    /// Create the CV. The content is validated like imported data.
    Create {
        owner: Uuid,
        title: CvTitle,
        content: CvContent,
        origin: CvOrigin,
        /// When (UTC).
        at: OffsetDateTime,
    },
    /// Change the title.
    Rename {
        actor: Uuid,
        expected_version: Option<u64>,
        title: CvTitle,
    },
    /// Replace the basics with these (absent or empty = cleared).
    UpdateBasics {
        actor: Uuid,
        expected_version: Option<u64>,
        basics: BTreeMap<String, String>,
    },
    /// Append an entry to a section.
    AddEntry {
        actor: Uuid,
        expected_version: Option<u64>,
        section: Section,
        /// A new id, chosen by the caller.
        entry_id: Uuid,
        fields: EntryFields,
    },
    /// Replace an entry's fields with these (absent or empty = cleared).
    UpdateEntry {
        actor: Uuid,
        expected_version: Option<u64>,
        section: Section,
        entry_id: Uuid,
        fields: EntryFields,
    },
    /// Remove an entry.
    RemoveEntry {
        actor: Uuid,
        expected_version: Option<u64>,
        section: Section,
        entry_id: Uuid,
    },
    /// Move an entry one place up or down within its section.
    MoveEntry {
        actor: Uuid,
        expected_version: Option<u64>,
        section: Section,
        entry_id: Uuid,
        direction: MoveDirection,
    },
    /// Archive the CV (read-only until unarchived).
    Archive {
        actor: Uuid,
        /// The caller has checked that the actor is a superuser, so the owner check is skipped.
        by_admin: bool,
    },
    /// Make an archived CV editable again.
    Unarchive { actor: Uuid },
    /// Go back to an earlier version. The application replays the log up to `version` and
    /// passes the title and content it had then.
    RestoreVersion {
        actor: Uuid,
        expected_version: Option<u64>,
        version: u64,
        title: CvTitle,
        content: CvContent,
    },
}

/// Which way `MoveEntry` moves an entry: up is towards the start of the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MoveDirection {
    Up,
    Down,
}

impl MoveDirection {
    /// `"up"` or `"down"`, as forms and URLs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveDirection::Up => "up",
            MoveDirection::Down => "down",
        }
    }
}

impl fmt::Display for MoveDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MoveDirection {
    type Err = String;

    /// Parses `"up"` or `"down"`; the error is the text that was neither.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "up" => Ok(MoveDirection::Up),
            "down" => Ok(MoveDirection::Down),
            other => Err(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_round_trip_through_their_names() {
        for direction in [MoveDirection::Up, MoveDirection::Down] {
            assert_eq!(direction.as_str().parse(), Ok(direction));
            assert_eq!(
                serde_json::to_string(&direction).unwrap(),
                format!("\"{direction}\"")
            );
        }
        assert!("sideways".parse::<MoveDirection>().is_err());
    }
}
