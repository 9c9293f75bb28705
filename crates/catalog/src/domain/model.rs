//! The catalog's types. Plain data: no tonic, no sea-orm. Ids are UUIDv7 strings.

use serde::{Deserialize, Serialize};

/// An amount in integer minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// ISO 4217 code, for example `INR`.
    pub currency: String,
    /// Minor units (paise for INR).
    pub amount_minor: i64,
}

/// Projection formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Format {
    /// Standard 2D.
    TwoD,
    /// 3D.
    ThreeD,
    /// IMAX 2D.
    Imax2d,
    /// IMAX 3D.
    Imax3d,
    /// 4DX.
    FourDx,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::TwoD,
        Format::ThreeD,
        Format::Imax2d,
        Format::Imax3d,
        Format::FourDx,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TwoD => "2D",
            Format::ThreeD => "3D",
            Format::Imax2d => "IMAX_2D",
            Format::Imax3d => "IMAX_3D",
            Format::FourDx => "4DX",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A city.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct City {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// State or region.
    pub region: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// IANA time zone.
    pub time_zone: String,
    /// ISO 4217 currency of its prices.
    pub currency_code: String,
}

/// A movie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movie {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Synopsis.
    pub synopsis: String,
    /// ISO 639-1 code.
    pub original_language: String,
    /// Genres as given.
    pub genres: Vec<String>,
    /// Running time in minutes.
    pub runtime_minutes: u32,
    /// Certification, for example `UA13+`.
    pub certification: String,
    /// Release date, `YYYY-MM-DD`.
    pub release_date: String,
    /// Cast in billing order.
    pub cast: Vec<String>,
    /// Directors.
    pub directors: Vec<String>,
}

/// A theatre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theatre {
    /// Id.
    pub id: String,
    /// Its city.
    pub city_id: String,
    /// Display name.
    pub name: String,
    /// Street address.
    pub address: String,
    /// Amenities.
    pub amenities: Vec<String>,
}

/// What kind of place a seat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatKind {
    /// An ordinary seat.
    Standard,
    /// A wheelchair space.
    Wheelchair,
    /// A companion seat beside a wheelchair space.
    Companion,
}

/// A seat category of a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatCategory {
    /// Code, for example `RECLINER`.
    pub code: String,
    /// Display name.
    pub name: String,
}

/// A place in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowItem {
    /// A seat with its printed number.
    Seat {
        /// Number within the row.
        number: u32,
        /// Kind.
        kind: SeatKind,
    },
    /// Empty space, in seat widths.
    Gap {
        /// Width.
        width: u32,
    },
}

/// A row of seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRow {
    /// Label, for example `A`.
    pub label: String,
    /// Category code of every seat in the row.
    pub category_code: String,
    /// Places from left to right.
    pub items: Vec<RowItem>,
}

/// The seats of a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLayout {
    /// Categories, most expensive first.
    pub categories: Vec<SeatCategory>,
    /// Rows, farthest from the screen first.
    pub rows: Vec<SeatRow>,
}

impl SeatLayout {
    /// Number of seats and wheelchair spaces.
    pub fn seat_count(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|r| &r.items)
            .filter(|i| matches!(i, RowItem::Seat { .. }))
            .count()
    }

    /// The id of a seat: row label, a dash, the seat number.
    pub fn seat_id(row_label: &str, number: u32) -> String {
        format!("{row_label}-{number}")
    }

    /// Every seat id with its category code, in layout order.
    pub fn seats(&self) -> impl Iterator<Item = (String, &str, SeatKind)> + '_ {
        self.rows.iter().flat_map(|r| {
            r.items.iter().filter_map(move |i| match i {
                RowItem::Seat { number, kind } => Some((
                    SeatLayout::seat_id(&r.label, *number),
                    r.category_code.as_str(),
                    *kind,
                )),
                RowItem::Gap { .. } => None,
            })
        })
    }
}

/// A screen with its layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    /// Id.
    pub id: String,
    /// Its theatre.
    pub theatre_id: String,
    /// Display name.
    pub name: String,
    /// Formats it can show.
    pub formats: Vec<Format>,
    /// Seat layout.
    pub layout: SeatLayout,
}

/// A screen without its layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenSummary {
    /// Id.
    pub id: String,
    /// Its theatre.
    pub theatre_id: String,
    /// Display name.
    pub name: String,
    /// Formats it can show.
    pub formats: Vec<Format>,
    /// Seats and wheelchair spaces.
    pub seat_count: u32,
}

/// The price of one category at one show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowPrice {
    /// Category code.
    pub category_code: String,
    /// Price per seat.
    pub price: Money,
}

/// Whether a show is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShowState {
    /// Scheduled.
    Scheduled,
    /// Cancelled.
    Cancelled,
}

impl ShowState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShowState::Scheduled => "SCHEDULED",
            ShowState::Cancelled => "CANCELLED",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ShowState> {
        match s {
            "SCHEDULED" => Some(ShowState::Scheduled),
            "CANCELLED" => Some(ShowState::Cancelled),
            _ => None,
        }
    }
}

/// A show. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show {
    /// Id.
    pub id: String,
    /// The movie.
    pub movie_id: String,
    /// The theatre.
    pub theatre_id: String,
    /// The screen.
    pub screen_id: String,
    /// The city.
    pub city_id: String,
    /// Start, Unix seconds.
    pub start_at: i64,
    /// End, Unix seconds.
    pub end_at: i64,
    /// Audio language.
    pub language: String,
    /// Format.
    pub format: Format,
    /// Prices per category.
    pub prices: Vec<ShowPrice>,
    /// State.
    pub state: ShowState,
    /// Why it was cancelled.
    pub cancel_reason: String,
}

/// A show in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowListing {
    /// The show.
    pub show: Show,
    /// Movie title.
    pub movie_title: String,
    /// Theatre name.
    pub theatre_name: String,
    /// Screen name.
    pub screen_name: String,
}

impl ShowListing {
    /// The lowest price of any category.
    pub fn lowest_price(&self) -> Option<&Money> {
        self.show
            .prices
            .iter()
            .map(|p| &p.price)
            .min_by_key(|m| m.amount_minor)
    }
}

/// A page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Opaque token for the next page; empty on the last.
    pub next_page_token: String,
}

/// Filters of a show search. Times are Unix seconds; the window is resolved before the search
/// (a date becomes a window in the city's time zone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowSearch {
    /// City id.
    pub city_id: Option<String>,
    /// Start at or after.
    pub from: i64,
    /// Start before.
    pub before: Option<i64>,
    /// Audio language.
    pub language: Option<String>,
    /// Genre, lower case.
    pub genre: Option<String>,
    /// Format.
    pub format: Option<Format>,
    /// Movie id.
    pub movie_id: Option<String>,
    /// Theatre id.
    pub theatre_id: Option<String>,
    /// Title text, lower case.
    pub query: Option<String>,
}

/// A whole catalog to load at once (the demo data): inserted in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogData {
    /// Cities.
    pub cities: Vec<City>,
    /// Movies.
    pub movies: Vec<Movie>,
    /// Theatres.
    pub theatres: Vec<Theatre>,
    /// Screens with layouts.
    pub screens: Vec<Screen>,
    /// Shows.
    pub shows: Vec<Show>,
}
