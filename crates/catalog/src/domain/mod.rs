//! The catalog's domain: types ([`model`]), commands and their rules ([`rules`]) and errors
//! ([`error`]). Nothing here knows about gRPC or storage.

pub mod error;
pub mod model;
pub mod rules;

pub use error::CatalogError;

use chrono::{NaiveDate, TimeZone};

/// The start of `date` (`YYYY-MM-DD`) and of the next day in the IANA zone `tz`, as Unix seconds.
pub fn day_window(date: &str, tz: &str) -> Option<(i64, i64)> {
    let tz: chrono_tz::Tz = tz.parse().ok()?;
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|t| t.timestamp())
    };
    Some((start(day)?, start(day.succ_opt()?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_in_kolkata() {
        let (from, to) = day_window("2026-11-24", "Asia/Kolkata").expect("window");
        // Midnight IST is 18:30 UTC the day before.
        assert_eq!(from, 1_763_922_600 + 365 * 86_400);
        assert_eq!(to - from, 86_400);
        assert!(day_window("2026-13-01", "Asia/Kolkata").is_none());
        assert!(day_window("2026-11-24", "Nowhere/Else").is_none());
    }
}
