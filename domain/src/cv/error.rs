//! `CvError`: why a command against a `Cv` was refused.

use super::content::{FieldErrors, ENTRIES_MAX};

/// Why a command against a `Cv` was refused. Messages are shown to people, so they are
/// written as sentences.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvError {
    /// `Create` was sent to a CV that already exists.
    #[error("This CV already exists.")]
    AlreadyCreated,
    /// Any command other than `Create` was sent to a CV that does not exist.
    #[error("No such CV.")]
    NotFound,
    /// The actor does not own the CV.
    #[error("Only the owner of this CV can change it.")]
    NotOwner,
    /// The command was based on an older version than the current one.
    #[error("This CV was changed since you opened it (it is now at version {current}).")]
    Stale { current: u64 },
    /// The CV is archived and so read-only.
    #[error("This CV is archived; unarchive it to edit.")]
    Archived,
    /// `Archive` was sent to an archived CV.
    #[error("This CV is already archived.")]
    AlreadyArchived,
    /// `Unarchive` was sent to a CV that is not archived.
    #[error("This CV is not archived.")]
    NotArchived,
    /// `AddEntry` or `UpdateEntry` with every field empty.
    #[error("Fill in at least one field.")]
    EmptyEntry,
    /// `AddEntry` with an id the section already has.
    #[error("This entry already exists.")]
    DuplicateEntry,
    /// `AddEntry` to a section that has the most entries allowed.
    #[error("This section already has {max} entries, the most allowed.", max = ENTRIES_MAX)]
    SectionFull,
    /// The entry is not (or no longer) in the section.
    #[error("That entry no longer exists; it may have been removed.")]
    EntryNotFound,
    /// Some fields are invalid; the messages are by field name (for `Create`, by
    /// `basics.name`, `section` or `section[index].name`).
    #[error("Some fields are not valid: {}.", field_names(.0))]
    InvalidEntry(FieldErrors),
    /// `RestoreVersion` of version 0, the current version or a later one.
    #[error("There is no such earlier version to restore.")]
    InvalidVersion,
}

fn field_names(errors: &FieldErrors) -> String {
    errors
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sentences() {
        assert_eq!(
            CvError::Stale { current: 7 }.to_string(),
            "This CV was changed since you opened it (it is now at version 7)."
        );
        assert_eq!(
            CvError::SectionFull.to_string(),
            "This section already has 100 entries, the most allowed."
        );
        let errors = FieldErrors::from([
            ("endDate".to_owned(), "Bad.".to_owned()),
            ("url".to_owned(), "Bad.".to_owned()),
        ]);
        assert_eq!(
            CvError::InvalidEntry(errors).to_string(),
            "Some fields are not valid: endDate, url."
        );
    }
}
