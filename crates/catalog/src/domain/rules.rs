//! Commands the admin service carries out, and the rules their fields must follow. Every check
//! here is pure; checks that need stored state (overlaps, references) live in the store's
//! transactions.

use std::collections::HashSet;

use marquee_platform::validation::Violations;
use serde::{Deserialize, Serialize};

use super::model::{Format, Money, RowItem, SeatLayout, ShowPrice};

/// Most seats one screen may have.
pub const MAX_SEATS_PER_SCREEN: usize = 2_000;
/// Longest movie accepted, in minutes.
pub const MAX_RUNTIME_MINUTES: u32 = 600;
/// How much longer than its movie a show may be (trailers, interval, cleaning), in seconds.
pub const MAX_SHOW_PADDING_SECS: i64 = 2 * 3600;

/// Adds a city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCity {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// IANA zone.
    pub time_zone: String,
    /// ISO 4217.
    pub currency_code: String,
}

/// The fields of a movie, as created or after an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovieFields {
    /// Title.
    pub title: String,
    /// Synopsis.
    pub synopsis: String,
    /// ISO 639-1.
    pub original_language: String,
    /// Genres.
    pub genres: Vec<String>,
    /// Minutes.
    pub runtime_minutes: u32,
    /// Certification.
    pub certification: String,
    /// `YYYY-MM-DD`.
    pub release_date: String,
    /// Cast.
    pub cast: Vec<String>,
    /// Directors.
    pub directors: Vec<String>,
}

/// Changes to a movie: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoviePatch {
    /// Title.
    pub title: Option<String>,
    /// Synopsis.
    pub synopsis: Option<String>,
    /// ISO 639-1.
    pub original_language: Option<String>,
    /// Genres.
    pub genres: Option<Vec<String>>,
    /// Minutes.
    pub runtime_minutes: Option<u32>,
    /// Certification.
    pub certification: Option<String>,
    /// `YYYY-MM-DD`.
    pub release_date: Option<String>,
    /// Cast.
    pub cast: Option<Vec<String>>,
    /// Directors.
    pub directors: Option<Vec<String>>,
}

impl MoviePatch {
    /// `fields` with the patch applied.
    pub fn apply(&self, mut fields: MovieFields) -> MovieFields {
        macro_rules! set {
            ($($f:ident),*) => {$(if let Some(v) = &self.$f { fields.$f = v.clone(); })*};
        }
        set!(
            title,
            synopsis,
            original_language,
            genres,
            runtime_minutes,
            certification,
            release_date,
            cast,
            directors
        );
        fields
    }
}

/// The fields of a theatre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TheatreFields {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Amenities.
    pub amenities: Vec<String>,
}

/// Changes to a theatre.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TheatrePatch {
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Amenities.
    pub amenities: Option<Vec<String>>,
}

impl TheatrePatch {
    /// `fields` with the patch applied.
    pub fn apply(&self, mut fields: TheatreFields) -> TheatreFields {
        if let Some(v) = &self.name {
            fields.name = v.clone();
        }
        if let Some(v) = &self.address {
            fields.address = v.clone();
        }
        if let Some(v) = &self.amenities {
            fields.amenities = v.clone();
        }
        fields
    }
}

/// Adds a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewScreen {
    /// Theatre.
    pub theatre_id: String,
    /// Name.
    pub name: String,
    /// Formats.
    pub formats: Vec<Format>,
    /// Layout.
    pub layout: SeatLayout,
}

/// Changes to a screen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenPatch {
    /// Name.
    pub name: Option<String>,
    /// Formats.
    pub formats: Option<Vec<Format>>,
    /// Layout.
    pub layout: Option<SeatLayout>,
}

/// Schedules a show. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShow {
    /// Movie.
    pub movie_id: String,
    /// Screen.
    pub screen_id: String,
    /// Start.
    pub start_at: i64,
    /// End.
    pub end_at: i64,
    /// Audio language.
    pub language: String,
    /// Format.
    pub format: Format,
    /// Prices.
    pub prices: Vec<ShowPrice>,
}

fn text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "required");
    } else if value.chars().count() > max {
        v.add(field, format!("at most {max} characters"));
    }
}

fn optional_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        v.add(field, format!("at most {max} characters"));
    }
}

fn list(v: &mut Violations, field: &str, values: &[String], max_items: usize, max_len: usize) {
    if values.len() > max_items {
        v.add(field, format!("at most {max_items} entries"));
    }
    for (i, s) in values.iter().enumerate() {
        text(v, &format!("{field}[{i}]"), s, max_len);
    }
}

/// An ISO 639-1 language code: two lower-case letters.
pub fn check_language(v: &mut Violations, field: &str, code: &str) {
    if code.is_empty() {
        v.add(field, "required");
    } else if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        v.add(field, "must be an ISO 639-1 code such as \"hi\" or \"en\"");
    }
}

/// A UUID id.
pub fn check_id(v: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        v.add(field, "required");
    } else if uuid::Uuid::parse_str(id).is_err() {
        v.add(field, "must be a UUID");
    }
}

/// Checks an id and returns the violation, if any, as a result.
pub fn id(field: &str, id: &str) -> Result<(), Violations> {
    let mut v = Violations::new();
    check_id(&mut v, field, id);
    v.into_result()
}

/// Checks a new city.
pub fn check_city(c: &NewCity) -> Result<(), Violations> {
    let mut v = Violations::new();
    text(&mut v, "city.name", &c.name, 100);
    optional_text(&mut v, "city.region", &c.region, 100);
    if c.country_code.len() != 2 || !c.country_code.bytes().all(|b| b.is_ascii_uppercase()) {
        v.add(
            "city.country_code",
            "must be an ISO 3166-1 alpha-2 code such as \"IN\"",
        );
    }
    if c.time_zone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "city.time_zone",
            "must be an IANA time zone such as \"Asia/Kolkata\"",
        );
    }
    check_currency(&mut v, "city.currency_code", &c.currency_code);
    v.into_result()
}

fn check_currency(v: &mut Violations, field: &str, code: &str) {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        v.add(field, "must be an ISO 4217 code such as \"INR\"");
    }
}

/// Checks the fields of a movie.
pub fn check_movie(m: &MovieFields) -> Result<(), Violations> {
    let mut v = Violations::new();
    text(&mut v, "movie.title", &m.title, 200);
    optional_text(&mut v, "movie.synopsis", &m.synopsis, 5_000);
    check_language(&mut v, "movie.original_language", &m.original_language);
    if m.genres.is_empty() {
        v.add("movie.genres", "at least one genre");
    }
    list(&mut v, "movie.genres", &m.genres, 10, 40);
    if m.runtime_minutes == 0 || m.runtime_minutes > MAX_RUNTIME_MINUTES {
        v.add(
            "movie.runtime",
            format!("must be between 1 and {MAX_RUNTIME_MINUTES} minutes"),
        );
    }
    text(&mut v, "movie.certification", &m.certification, 10);
    if chrono::NaiveDate::parse_from_str(&m.release_date, "%Y-%m-%d").is_err() {
        v.add("movie.release_date", "must be a date, YYYY-MM-DD");
    }
    list(&mut v, "movie.cast", &m.cast, 50, 100);
    list(&mut v, "movie.directors", &m.directors, 10, 100);
    v.into_result()
}

/// Checks the fields of a theatre.
pub fn check_theatre(t: &TheatreFields) -> Result<(), Violations> {
    let mut v = Violations::new();
    text(&mut v, "theatre.name", &t.name, 120);
    text(&mut v, "theatre.address", &t.address, 300);
    list(&mut v, "theatre.amenities", &t.amenities, 20, 60);
    v.into_result()
}

/// Checks a screen's name and formats.
pub fn check_screen_fields(name: &str, formats: &[Format]) -> Result<(), Violations> {
    let mut v = Violations::new();
    text(&mut v, "name", name, 60);
    if formats.is_empty() {
        v.add("formats", "at least one format");
    }
    let unique: HashSet<_> = formats.iter().collect();
    if unique.len() != formats.len() {
        v.add("formats", "each format at most once");
    }
    v.into_result()
}

fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 20
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// Checks a seat layout: categories, unique row labels, seats numbered uniquely within a row,
/// every row in a declared category and every category used.
pub fn check_layout(layout: &SeatLayout) -> Result<(), Violations> {
    let mut v = Violations::new();
    if layout.categories.is_empty() || layout.categories.len() > 10 {
        v.add("layout.categories", "between 1 and 10 categories");
    }
    let mut codes = HashSet::new();
    for (i, c) in layout.categories.iter().enumerate() {
        if !is_code(&c.code) {
            v.add(
                format!("layout.categories[{i}].code"),
                "must be upper-case letters, digits or _, starting with a letter, at most 20",
            );
        } else if !codes.insert(c.code.as_str()) {
            v.add(format!("layout.categories[{i}].code"), "duplicate code");
        }
        text(&mut v, &format!("layout.categories[{i}].name"), &c.name, 40);
    }
    if layout.rows.is_empty() || layout.rows.len() > 60 {
        v.add("layout.rows", "between 1 and 60 rows");
    }
    let mut labels = HashSet::new();
    let mut used = HashSet::new();
    for (r, row) in layout.rows.iter().enumerate() {
        let field = format!("layout.rows[{r}]");
        let label_ok = !row.label.is_empty()
            && row.label.len() <= 3
            && row.label.bytes().all(|b| b.is_ascii_uppercase());
        if !label_ok {
            v.add(format!("{field}.label"), "1 to 3 upper-case letters");
        } else if !labels.insert(row.label.as_str()) {
            v.add(format!("{field}.label"), "duplicate row label");
        }
        if !codes.contains(row.category_code.as_str()) {
            v.add(
                format!("{field}.category_code"),
                "must be a code of layout.categories",
            );
        }
        used.insert(row.category_code.as_str());
        if row.items.len() > 100 {
            v.add(format!("{field}.items"), "at most 100 places");
        }
        let mut numbers = HashSet::new();
        for (i, item) in row.items.iter().enumerate() {
            match item {
                RowItem::Seat { number, .. } => {
                    if *number == 0 || *number > 999 {
                        v.add(
                            format!("{field}.items[{i}].seat.number"),
                            "between 1 and 999",
                        );
                    } else if !numbers.insert(*number) {
                        v.add(
                            format!("{field}.items[{i}].seat.number"),
                            "duplicate seat number in row",
                        );
                    }
                }
                RowItem::Gap { width } => {
                    if *width == 0 || *width > 20 {
                        v.add(format!("{field}.items[{i}].gap.width"), "between 1 and 20");
                    }
                }
            }
        }
        if numbers.is_empty() {
            v.add(format!("{field}.items"), "at least one seat");
        }
    }
    for (i, c) in layout.categories.iter().enumerate() {
        if codes.contains(c.code.as_str()) && !used.contains(c.code.as_str()) {
            v.add(
                format!("layout.categories[{i}]"),
                "no row uses this category",
            );
        }
    }
    if layout.seat_count() > MAX_SEATS_PER_SCREEN {
        v.add(
            "layout",
            format!("at most {MAX_SEATS_PER_SCREEN} seats per screen"),
        );
    }
    v.into_result()
}

/// Checks the prices of a show against its screen's layout and city currency: exactly one
/// positive price per category.
pub fn check_prices(
    field: &str,
    prices: &[ShowPrice],
    layout: &SeatLayout,
    currency: &str,
) -> Result<(), Violations> {
    let mut v = Violations::new();
    let mut seen = HashSet::new();
    for (i, p) in prices.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if !layout.categories.iter().any(|c| c.code == p.category_code) {
            v.add(format!("{f}.category_code"), "not a category of the screen");
        } else if !seen.insert(p.category_code.as_str()) {
            v.add(format!("{f}.category_code"), "priced twice");
        }
        check_money(&mut v, &format!("{f}.price"), &p.price, currency);
    }
    for c in &layout.categories {
        if !seen.contains(c.code.as_str()) && !prices.iter().any(|p| p.category_code == c.code) {
            v.add(field, format!("category {} has no price", c.code));
        }
    }
    v.into_result()
}

fn check_money(v: &mut Violations, field: &str, m: &Money, currency: &str) {
    if m.currency != currency {
        v.add(
            format!("{field}.currency_code"),
            format!("must be {currency}, the city's currency"),
        );
    }
    if m.amount_minor <= 0 || m.amount_minor > 100_000_000 {
        v.add(
            format!("{field}.amount_minor"),
            "must be positive and at most 100000000",
        );
    }
}

/// Checks a show's timing against its movie's runtime and the present.
pub fn check_show_times(
    start_at: i64,
    end_at: i64,
    runtime_minutes: u32,
    now: i64,
) -> Result<(), Violations> {
    let mut v = Violations::new();
    if start_at <= now {
        v.add("start_time", "must be in the future");
    }
    if end_at <= start_at {
        v.add("end_time", "must be after start_time");
    } else {
        let runtime = i64::from(runtime_minutes) * 60;
        if end_at - start_at < runtime {
            v.add(
                "end_time",
                format!("the show is shorter than the movie ({runtime_minutes} minutes)"),
            );
        } else if end_at - start_at > runtime + MAX_SHOW_PADDING_SECS {
            v.add(
                "end_time",
                "the show is more than two hours longer than the movie",
            );
        }
    }
    v.into_result()
}

/// Checks a cancellation reason.
pub fn check_reason(reason: &str) -> Result<(), Violations> {
    let mut v = Violations::new();
    text(&mut v, "reason", reason, 500);
    v.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{SeatCategory, SeatKind, SeatRow};

    fn layout() -> SeatLayout {
        SeatLayout {
            categories: vec![SeatCategory {
                code: "CLASSIC".into(),
                name: "Classic".into(),
            }],
            rows: vec![SeatRow {
                label: "A".into(),
                category_code: "CLASSIC".into(),
                items: vec![
                    RowItem::Seat {
                        number: 1,
                        kind: SeatKind::Standard,
                    },
                    RowItem::Gap { width: 1 },
                    RowItem::Seat {
                        number: 2,
                        kind: SeatKind::Wheelchair,
                    },
                ],
            }],
        }
    }

    #[test]
    fn a_good_layout_passes() {
        assert!(check_layout(&layout()).is_ok());
        assert_eq!(layout().seat_count(), 2);
        let ids: Vec<_> = layout().seats().map(|s| s.0).collect();
        assert_eq!(ids, ["A-1", "A-2"]);
    }

    #[test]
    fn bad_layouts_name_the_field() {
        let mut l = layout();
        l.rows[0].items.push(RowItem::Seat {
            number: 1,
            kind: SeatKind::Standard,
        });
        l.rows.push(SeatRow {
            label: "A".into(),
            category_code: "NOPE".into(),
            items: vec![],
        });
        let v = check_layout(&l).expect_err("invalid");
        let text = v.to_string();
        assert!(
            text.contains("layout.rows[0].items[3].seat.number"),
            "{text}"
        );
        assert!(text.contains("layout.rows[1].label: duplicate"), "{text}");
        assert!(text.contains("layout.rows[1].category_code"), "{text}");
        assert!(
            text.contains("layout.rows[1].items: at least one seat"),
            "{text}"
        );
    }

    #[test]
    fn prices_cover_every_category_once() {
        let p = |code: &str, amount| ShowPrice {
            category_code: code.into(),
            price: Money {
                currency: "INR".into(),
                amount_minor: amount,
            },
        };
        assert!(check_prices("prices", &[p("CLASSIC", 25_000)], &layout(), "INR").is_ok());
        assert!(check_prices("prices", &[], &layout(), "INR").is_err());
        assert!(check_prices("prices", &[p("CLASSIC", 0)], &layout(), "INR").is_err());
        assert!(
            check_prices(
                "prices",
                &[p("CLASSIC", 1), p("CLASSIC", 2)],
                &layout(),
                "INR"
            )
            .is_err()
        );
        assert!(check_prices("prices", &[p("CLASSIC", 100)], &layout(), "USD").is_err());
    }

    #[test]
    fn show_times() {
        assert!(check_show_times(1_000, 1_000 + 9_000, 150, 0).is_ok());
        let e = check_show_times(1_000, 900, 150, 0).expect_err("ends before start");
        assert!(e.to_string().contains("end_time: must be after start_time"));
        assert!(check_show_times(1_000, 1_000 + 60, 150, 0).is_err());
        assert!(check_show_times(1_000, 1_000 + 9_000, 150, 2_000).is_err());
    }

    #[test]
    fn cities() {
        let mut c = NewCity {
            name: "Mumbai".into(),
            region: "Maharashtra".into(),
            country_code: "IN".into(),
            time_zone: "Asia/Kolkata".into(),
            currency_code: "INR".into(),
        };
        assert!(check_city(&c).is_ok());
        c.time_zone = "Mars/Olympus".into();
        assert!(check_city(&c).is_err());
    }
}
