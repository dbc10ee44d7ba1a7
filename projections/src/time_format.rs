//! How read models store times: UTC, fixed width (`2026-11-28T12:34:56.123456Z`), so that text
//! order is time order and SQL can compare and group them by prefix (`substr(t, 1, 10)` = day).

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// `at` in UTC as fixed-width text.
pub fn to_sql(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// Reads text written by [`to_sql`].
pub fn from_sql(text: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(text, FORMAT)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_time_survives_the_round_trip_to_text() {
        let at = datetime!(2026-11-28 12:34:56.123456 UTC);
        assert_eq!(from_sql(&to_sql(at)), Some(at));
    }

    #[test]
    fn times_in_other_offsets_are_stored_in_utc() {
        let at = datetime!(2026-11-28 13:00:00 +01:00);
        assert_eq!(to_sql(at), "2026-11-28T12:00:00.000000Z");
    }

    #[test]
    fn text_order_is_time_order() {
        let earlier = to_sql(datetime!(2026-01-02 09:00:00 UTC));
        let later = to_sql(datetime!(2026-01-10 08:00:00 UTC));
        assert!(earlier < later);
    }
}
