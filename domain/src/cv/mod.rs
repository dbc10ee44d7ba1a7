//! Everything about CVs: the content model (sections described by a schema, after JSON
//! Resume 1.2.1), the `Cv` aggregate, and conversion to and from JSON Resume documents.

mod aggregate;
mod commands;
mod content;
mod error;
mod events;
mod resume;

pub use aggregate::Cv;
pub use commands::{CvCommand, MoveDirection};
pub use content::check_basics;
pub use content::{
    check_entry, dates_in_order, is_partial_date, is_web_url, parse_basics, parse_entry, CvContent,
    CvTitle, CvTitleError, Entry, EntryFields, FieldErrors, FieldKind, FieldSpec, FieldValue,
    Section, UnknownSection, BASICS_FIELDS, ENTRIES_MAX, LIST_ITEMS_MAX, LOCATION_FIELDS,
    LONG_TEXT_MAX, TEXT_MAX, TITLE_MAX,
};
pub use error::CvError;
pub use events::{CvEvent, CvOrigin};
pub use resume::{from_json_resume, parse_json_resume, to_json_resume, ImportError, ImportedCv};
