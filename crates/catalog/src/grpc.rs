//! The gRPC adapter: proto <-> domain conversion, and the one mapping of [`CatalogError`] to
//! `tonic::Status`. Incoming messages are destructured exhaustively, so a field added to the
//! contract does not compile until it is handled here.

use marquee_platform::{auth::Role, status, validation::Violations};
use marquee_proto::{catalog::v1 as pb, common::v1::Money as PbMoney};
use prost_types::{Duration as PbDuration, FieldMask, Timestamp};
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        CatalogError,
        model::{
            City, Format, Money, Movie, RowItem, Screen, ScreenSummary, SeatCategory, SeatKind,
            SeatLayout, SeatRow, Show, ShowListing, ShowPrice, ShowSearch, ShowState, Theatre,
        },
        rules::{
            MovieFields, MoviePatch, NewCity, NewScreen, NewShow, ScreenPatch, TheatreFields,
            TheatrePatch,
        },
    },
    service::{Catalog, SearchRequest},
};

/// Maps a catalog error to a status. Storage causes are logged, never sent.
pub fn to_status(error: CatalogError) -> Status {
    match error {
        CatalogError::Invalid(v) => status::invalid_argument(&v),
        CatalogError::NotFound { kind, id } => status::not_found(kind, &id),
        CatalogError::AlreadyExists(message) => status::already_exists("ALREADY_EXISTS", message),
        CatalogError::Precondition { reason, message } => {
            status::failed_precondition(reason, message)
        }
        CatalogError::IdempotencyMismatch => {
            status::invalid_field("request_id", "was already used for a different request")
        }
        CatalogError::Storage(cause) => {
            let unavailable = cause.downcast_ref::<sea_orm::DbErr>().is_some_and(|e| {
                matches!(
                    e,
                    sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
                )
            });
            if unavailable {
                status::unavailable(cause.as_ref())
            } else {
                status::internal(cause.as_ref())
            }
        }
    }
}

fn invalid(field: &str, description: &str) -> CatalogError {
    CatalogError::Invalid(Violations::one(field, description))
}

// ----- domain -> proto --------------------------------------------------------------------------

fn ts(secs: i64) -> Timestamp {
    Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

fn money_pb(m: &Money) -> PbMoney {
    PbMoney {
        currency_code: m.currency.clone(),
        amount_minor: m.amount_minor,
    }
}

fn format_pb(f: Format) -> pb::Format {
    match f {
        Format::TwoD => pb::Format::Format2d,
        Format::ThreeD => pb::Format::Format3d,
        Format::Imax2d => pb::Format::Imax2d,
        Format::Imax3d => pb::Format::Imax3d,
        Format::FourDx => pb::Format::Format4dx,
    }
}

fn city_pb(c: City) -> pb::City {
    pb::City {
        id: c.id,
        name: c.name,
        region: c.region,
        country_code: c.country_code,
        time_zone: c.time_zone,
        currency_code: c.currency_code,
    }
}

fn movie_pb(m: Movie) -> pb::Movie {
    pb::Movie {
        id: m.id,
        title: m.title,
        synopsis: m.synopsis,
        original_language: m.original_language,
        genres: m.genres,
        runtime: Some(PbDuration {
            seconds: i64::from(m.runtime_minutes) * 60,
            nanos: 0,
        }),
        certification: m.certification,
        release_date: m.release_date,
        cast: m.cast,
        directors: m.directors,
    }
}

fn theatre_pb(t: Theatre) -> pb::Theatre {
    pb::Theatre {
        id: t.id,
        city_id: t.city_id,
        name: t.name,
        address: t.address,
        amenities: t.amenities,
    }
}

fn screen_summary_pb(s: ScreenSummary) -> pb::ScreenSummary {
    pb::ScreenSummary {
        id: s.id,
        theatre_id: s.theatre_id,
        name: s.name,
        formats: s.formats.into_iter().map(|f| format_pb(f) as i32).collect(),
        seat_count: s.seat_count as i32,
    }
}

fn layout_pb(l: SeatLayout) -> pb::SeatLayout {
    pb::SeatLayout {
        categories: l
            .categories
            .into_iter()
            .map(|c| pb::SeatCategory {
                code: c.code,
                name: c.name,
            })
            .collect(),
        rows: l
            .rows
            .into_iter()
            .map(|r| pb::SeatRow {
                items: r
                    .items
                    .iter()
                    .map(|i| pb::RowItem {
                        item: Some(match i {
                            RowItem::Seat { number, kind } => pb::row_item::Item::Seat(pb::Seat {
                                id: SeatLayout::seat_id(&r.label, *number),
                                number: *number as i32,
                                kind: match kind {
                                    SeatKind::Standard => pb::SeatKind::Standard,
                                    SeatKind::Wheelchair => pb::SeatKind::Wheelchair,
                                    SeatKind::Companion => pb::SeatKind::Companion,
                                } as i32,
                            }),
                            RowItem::Gap { width } => pb::row_item::Item::Gap(pb::Gap {
                                width: *width as i32,
                            }),
                        }),
                    })
                    .collect(),
                label: r.label,
                category_code: r.category_code,
            })
            .collect(),
    }
}

fn screen_pb(s: Screen) -> pb::Screen {
    let seat_count = s.layout.seat_count() as i32;
    pb::Screen {
        screen: Some(pb::ScreenSummary {
            id: s.id,
            theatre_id: s.theatre_id,
            name: s.name,
            formats: s.formats.into_iter().map(|f| format_pb(f) as i32).collect(),
            seat_count,
        }),
        layout: Some(layout_pb(s.layout)),
    }
}

fn show_pb(s: Show) -> pb::Show {
    pb::Show {
        id: s.id,
        movie_id: s.movie_id,
        theatre_id: s.theatre_id,
        screen_id: s.screen_id,
        start_time: Some(ts(s.start_at)),
        end_time: Some(ts(s.end_at)),
        language: s.language,
        format: format_pb(s.format) as i32,
        prices: s
            .prices
            .iter()
            .map(|p| pb::ShowPrice {
                category_code: p.category_code.clone(),
                price: Some(money_pb(&p.price)),
            })
            .collect(),
        state: match s.state {
            ShowState::Scheduled => pb::ShowState::Scheduled,
            ShowState::Cancelled => pb::ShowState::Cancelled,
        } as i32,
        cancel_reason: s.cancel_reason,
        city_id: s.city_id,
    }
}

fn listing_pb(l: ShowListing) -> pb::ShowListing {
    let lowest_price = l.lowest_price().map(money_pb);
    pb::ShowListing {
        movie_title: l.movie_title,
        theatre_name: l.theatre_name,
        screen_name: l.screen_name,
        lowest_price,
        show: Some(show_pb(l.show)),
    }
}

// ----- proto -> domain --------------------------------------------------------------------------

fn format_from(field: &str, value: i32) -> Result<Format, CatalogError> {
    match pb::Format::try_from(value) {
        Ok(pb::Format::Format2d) => Ok(Format::TwoD),
        Ok(pb::Format::Format3d) => Ok(Format::ThreeD),
        Ok(pb::Format::Imax2d) => Ok(Format::Imax2d),
        Ok(pb::Format::Imax3d) => Ok(Format::Imax3d),
        Ok(pb::Format::Format4dx) => Ok(Format::FourDx),
        Ok(pb::Format::Unspecified) => Err(invalid(field, "required")),
        Err(_) => Err(invalid(field, "unknown format")),
    }
}

fn formats_from(field: &str, values: &[i32]) -> Result<Vec<Format>, CatalogError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| format_from(&format!("{field}[{i}]"), *v))
        .collect()
}

fn seconds(field: &str, t: Option<Timestamp>) -> Result<i64, CatalogError> {
    let t = t.ok_or_else(|| invalid(field, "required"))?;
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(invalid(field, "invalid timestamp"));
    }
    Ok(t.seconds)
}

fn optional_seconds(field: &str, t: Option<Timestamp>) -> Result<Option<i64>, CatalogError> {
    t.map(|t| seconds(field, Some(t))).transpose()
}

fn runtime_minutes(field: &str, d: Option<PbDuration>) -> Result<u32, CatalogError> {
    let d = d.ok_or_else(|| invalid(field, "required"))?;
    if d.seconds <= 0 || d.seconds % 60 != 0 || d.nanos != 0 {
        return Err(invalid(field, "must be a positive whole number of minutes"));
    }
    u32::try_from(d.seconds / 60).map_err(|_| invalid(field, "too long"))
}

fn layout_from(l: Option<pb::SeatLayout>) -> Result<SeatLayout, CatalogError> {
    let pb::SeatLayout { categories, rows } = l.ok_or_else(|| invalid("layout", "required"))?;
    let mut out_rows = Vec::with_capacity(rows.len());
    for (r, row) in rows.into_iter().enumerate() {
        let pb::SeatRow {
            label,
            category_code,
            items,
        } = row;
        let mut out_items = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let field = format!("layout.rows[{r}].items[{i}]");
            out_items.push(match item.item {
                Some(pb::row_item::Item::Seat(pb::Seat {
                    id: _,
                    number,
                    kind,
                })) => RowItem::Seat {
                    number: u32::try_from(number).unwrap_or(0),
                    kind: match pb::SeatKind::try_from(kind) {
                        Ok(pb::SeatKind::Standard | pb::SeatKind::Unspecified) => {
                            SeatKind::Standard
                        }
                        Ok(pb::SeatKind::Wheelchair) => SeatKind::Wheelchair,
                        Ok(pb::SeatKind::Companion) => SeatKind::Companion,
                        Err(_) => {
                            return Err(invalid(&format!("{field}.seat.kind"), "unknown kind"));
                        }
                    },
                },
                Some(pb::row_item::Item::Gap(pb::Gap { width })) => RowItem::Gap {
                    width: u32::try_from(width).unwrap_or(0),
                },
                None => return Err(invalid(&field, "must be a seat or a gap")),
            });
        }
        out_rows.push(SeatRow {
            label,
            category_code,
            items: out_items,
        });
    }
    Ok(SeatLayout {
        categories: categories
            .into_iter()
            .map(|pb::SeatCategory { code, name }| SeatCategory { code, name })
            .collect(),
        rows: out_rows,
    })
}

fn prices_from(prices: Vec<pb::ShowPrice>) -> Result<Vec<ShowPrice>, CatalogError> {
    prices
        .into_iter()
        .enumerate()
        .map(
            |(
                i,
                pb::ShowPrice {
                    category_code,
                    price,
                },
            )| {
                let PbMoney {
                    currency_code,
                    amount_minor,
                } = price.ok_or_else(|| invalid(&format!("prices[{i}].price"), "required"))?;
                Ok(ShowPrice {
                    category_code,
                    price: Money {
                        currency: currency_code,
                        amount_minor,
                    },
                })
            },
        )
        .collect()
}

fn mask_paths(mask: Option<FieldMask>, allowed: &[&str]) -> Result<Vec<String>, CatalogError> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(invalid(
            "update_mask",
            "required: name the fields to change",
        ));
    }
    for p in &paths {
        if !allowed.contains(&p.as_str()) {
            return Err(invalid(
                "update_mask",
                &format!(
                    "unknown or immutable field {p:?}; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(paths)
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_owned())
    }
}

fn movie_fields(m: pb::Movie) -> Result<MovieFields, CatalogError> {
    let pb::Movie {
        id: _,
        title,
        synopsis,
        original_language,
        genres,
        runtime,
        certification,
        release_date,
        cast,
        directors,
    } = m;
    Ok(MovieFields {
        title: title.trim().to_owned(),
        synopsis,
        original_language,
        genres,
        runtime_minutes: runtime_minutes("movie.runtime", runtime)?,
        certification,
        release_date,
        cast,
        directors,
    })
}

// ----- services ---------------------------------------------------------------------------------

/// `marquee.catalog.v1.CatalogService`.
#[derive(Clone)]
pub struct CatalogApi {
    catalog: Catalog,
}

impl CatalogApi {
    /// The public read API over `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }
}

#[tonic::async_trait]
impl pb::catalog_service_server::CatalogService for CatalogApi {
    async fn list_cities(
        &self,
        request: Request<pb::ListCitiesRequest>,
    ) -> Result<Response<pb::ListCitiesResponse>, Status> {
        let pb::ListCitiesRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .catalog
            .list_cities(page_size, &page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListCitiesResponse {
            cities: page.items.into_iter().map(city_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn search_shows(
        &self,
        request: Request<pb::SearchShowsRequest>,
    ) -> Result<Response<pb::SearchShowsResponse>, Status> {
        let pb::SearchShowsRequest {
            city_id,
            start_time_from,
            start_time_before,
            date,
            language,
            genre,
            format,
            movie_id,
            theatre_id,
            query,
            page_size,
            page_token,
        } = request.into_inner();
        let search = (|| {
            Ok::<_, CatalogError>(SearchRequest {
                filters: ShowSearch {
                    city_id: non_empty(city_id),
                    from: 0,
                    before: None,
                    language: non_empty(language),
                    genre: non_empty(genre).map(|g| g.to_lowercase()),
                    format: match format {
                        0 => None,
                        f => Some(format_from("format", f)?),
                    },
                    movie_id: non_empty(movie_id),
                    theatre_id: non_empty(theatre_id),
                    query: non_empty(query).map(|q| q.to_lowercase()),
                },
                date: non_empty(date),
                from: optional_seconds("start_time_from", start_time_from)?,
                before: optional_seconds("start_time_before", start_time_before)?,
            })
        })()
        .map_err(to_status)?;
        let page = self
            .catalog
            .search_shows(&search, page_size, &page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SearchShowsResponse {
            shows: page.items.into_iter().map(listing_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_movies(
        &self,
        request: Request<pb::ListMoviesRequest>,
    ) -> Result<Response<pb::ListMoviesResponse>, Status> {
        let pb::ListMoviesRequest {
            city_id,
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .catalog
            .list_movies(non_empty(city_id), page_size, &page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListMoviesResponse {
            movies: page.items.into_iter().map(movie_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_movie(
        &self,
        request: Request<pb::GetMovieRequest>,
    ) -> Result<Response<pb::GetMovieResponse>, Status> {
        let pb::GetMovieRequest { movie_id } = request.into_inner();
        let movie = self.catalog.get_movie(&movie_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetMovieResponse {
            movie: Some(movie_pb(movie)),
        }))
    }

    async fn list_theatres(
        &self,
        request: Request<pb::ListTheatresRequest>,
    ) -> Result<Response<pb::ListTheatresResponse>, Status> {
        let pb::ListTheatresRequest {
            city_id,
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .catalog
            .list_theatres(&city_id, page_size, &page_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListTheatresResponse {
            theatres: page.items.into_iter().map(theatre_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_theatre(
        &self,
        request: Request<pb::GetTheatreRequest>,
    ) -> Result<Response<pb::GetTheatreResponse>, Status> {
        let pb::GetTheatreRequest { theatre_id } = request.into_inner();
        let (theatre, screens) = self
            .catalog
            .get_theatre(&theatre_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetTheatreResponse {
            theatre: Some(theatre_pb(theatre)),
            screens: screens.into_iter().map(screen_summary_pb).collect(),
        }))
    }

    async fn get_show(
        &self,
        request: Request<pb::GetShowRequest>,
    ) -> Result<Response<pb::GetShowResponse>, Status> {
        let pb::GetShowRequest { show_id } = request.into_inner();
        let show = self.catalog.get_show(&show_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetShowResponse {
            show: Some(show_pb(show)),
        }))
    }

    async fn get_screen_layout(
        &self,
        request: Request<pb::GetScreenLayoutRequest>,
    ) -> Result<Response<pb::GetScreenLayoutResponse>, Status> {
        let pb::GetScreenLayoutRequest { screen_id } = request.into_inner();
        let screen = self
            .catalog
            .get_screen(&screen_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetScreenLayoutResponse {
            screen: Some(screen_pb(screen)),
        }))
    }
}

/// `marquee.catalog.v1.CatalogAdminService`.
#[derive(Clone)]
pub struct CatalogAdminApi {
    catalog: Catalog,
}

impl CatalogAdminApi {
    /// The admin API over `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }
}

#[tonic::async_trait]
impl pb::catalog_admin_service_server::CatalogAdminService for CatalogAdminApi {
    async fn create_city(
        &self,
        request: Request<pb::CreateCityRequest>,
    ) -> Result<Response<pb::CreateCityResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::CreateCityRequest { request_id, city } = request.into_inner();
        let pb::City {
            id: _,
            name,
            region,
            country_code,
            time_zone,
            currency_code,
        } = city.ok_or_else(|| status::invalid_field("city", "required"))?;
        let city = self
            .catalog
            .create_city(
                &request_id,
                NewCity {
                    name,
                    region,
                    country_code,
                    time_zone,
                    currency_code,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateCityResponse {
            city: Some(city_pb(city)),
        }))
    }

    async fn create_movie(
        &self,
        request: Request<pb::CreateMovieRequest>,
    ) -> Result<Response<pb::CreateMovieResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::CreateMovieRequest { request_id, movie } = request.into_inner();
        let fields = movie
            .ok_or_else(|| invalid("movie", "required"))
            .and_then(movie_fields)
            .map_err(to_status)?;
        let movie = self
            .catalog
            .create_movie(&request_id, fields)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateMovieResponse {
            movie: Some(movie_pb(movie)),
        }))
    }

    async fn update_movie(
        &self,
        request: Request<pb::UpdateMovieRequest>,
    ) -> Result<Response<pb::UpdateMovieResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::UpdateMovieRequest {
            request_id,
            movie,
            update_mask,
        } = request.into_inner();
        let pb::Movie {
            id,
            title,
            synopsis,
            original_language,
            genres,
            runtime,
            certification,
            release_date,
            cast,
            directors,
        } = movie.ok_or_else(|| status::invalid_field("movie", "required"))?;
        let paths = mask_paths(
            update_mask,
            &[
                "title",
                "synopsis",
                "original_language",
                "genres",
                "runtime",
                "certification",
                "release_date",
                "cast",
                "directors",
            ],
        )
        .map_err(to_status)?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let patch = MoviePatch {
            title: has("title").then(|| title.trim().to_owned()),
            synopsis: has("synopsis").then_some(synopsis),
            original_language: has("original_language").then_some(original_language),
            genres: has("genres").then_some(genres),
            runtime_minutes: if has("runtime") {
                Some(runtime_minutes("movie.runtime", runtime).map_err(to_status)?)
            } else {
                None
            },
            certification: has("certification").then_some(certification),
            release_date: has("release_date").then_some(release_date),
            cast: has("cast").then_some(cast),
            directors: has("directors").then_some(directors),
        };
        let movie = self
            .catalog
            .update_movie(&request_id, &id, patch)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateMovieResponse {
            movie: Some(movie_pb(movie)),
        }))
    }

    async fn create_theatre(
        &self,
        request: Request<pb::CreateTheatreRequest>,
    ) -> Result<Response<pb::CreateTheatreResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::CreateTheatreRequest {
            request_id,
            theatre,
        } = request.into_inner();
        let pb::Theatre {
            id: _,
            city_id,
            name,
            address,
            amenities,
        } = theatre.ok_or_else(|| status::invalid_field("theatre", "required"))?;
        let theatre = self
            .catalog
            .create_theatre(
                &request_id,
                &city_id,
                TheatreFields {
                    name,
                    address,
                    amenities,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateTheatreResponse {
            theatre: Some(theatre_pb(theatre)),
        }))
    }

    async fn update_theatre(
        &self,
        request: Request<pb::UpdateTheatreRequest>,
    ) -> Result<Response<pb::UpdateTheatreResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::UpdateTheatreRequest {
            request_id,
            theatre,
            update_mask,
        } = request.into_inner();
        let pb::Theatre {
            id,
            city_id: _,
            name,
            address,
            amenities,
        } = theatre.ok_or_else(|| status::invalid_field("theatre", "required"))?;
        let paths =
            mask_paths(update_mask, &["name", "address", "amenities"]).map_err(to_status)?;
        let has = |p: &str| paths.iter().any(|x| x == p);
        let patch = TheatrePatch {
            name: has("name").then(|| name.trim().to_owned()),
            address: has("address").then(|| address.trim().to_owned()),
            amenities: has("amenities").then_some(amenities),
        };
        let theatre = self
            .catalog
            .update_theatre(&request_id, &id, patch)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateTheatreResponse {
            theatre: Some(theatre_pb(theatre)),
        }))
    }

    async fn create_screen(
        &self,
        request: Request<pb::CreateScreenRequest>,
    ) -> Result<Response<pb::CreateScreenResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::CreateScreenRequest {
            request_id,
            theatre_id,
            name,
            formats,
            layout,
        } = request.into_inner();
        let cmd = (|| {
            Ok::<_, CatalogError>(NewScreen {
                theatre_id,
                name,
                formats: formats_from("formats", &formats)?,
                layout: layout_from(layout)?,
            })
        })()
        .map_err(to_status)?;
        let screen = self
            .catalog
            .create_screen(&request_id, cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateScreenResponse {
            screen: Some(screen_pb(screen)),
        }))
    }

    async fn update_screen(
        &self,
        request: Request<pb::UpdateScreenRequest>,
    ) -> Result<Response<pb::UpdateScreenResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::UpdateScreenRequest {
            request_id,
            screen_id,
            name,
            formats,
            layout,
            update_mask,
        } = request.into_inner();
        let patch = (|| {
            let paths = mask_paths(update_mask, &["name", "formats", "layout"])?;
            let has = |p: &str| paths.iter().any(|x| x == p);
            Ok::<_, CatalogError>(ScreenPatch {
                name: has("name").then(|| name.trim().to_owned()),
                formats: if has("formats") {
                    Some(formats_from("formats", &formats)?)
                } else {
                    None
                },
                layout: if has("layout") {
                    Some(layout_from(layout)?)
                } else {
                    None
                },
            })
        })()
        .map_err(to_status)?;
        let screen = self
            .catalog
            .update_screen(&request_id, &screen_id, patch)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateScreenResponse {
            screen: Some(screen_pb(screen)),
        }))
    }

    async fn schedule_show(
        &self,
        request: Request<pb::ScheduleShowRequest>,
    ) -> Result<Response<pb::ScheduleShowResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::ScheduleShowRequest {
            request_id,
            movie_id,
            screen_id,
            start_time,
            end_time,
            language,
            format,
            prices,
        } = request.into_inner();
        let cmd = (|| {
            Ok::<_, CatalogError>(NewShow {
                movie_id,
                screen_id,
                start_at: seconds("start_time", start_time)?,
                end_at: seconds("end_time", end_time)?,
                language,
                format: format_from("format", format)?,
                prices: prices_from(prices)?,
            })
        })()
        .map_err(to_status)?;
        let show = self
            .catalog
            .schedule_show(&request_id, cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ScheduleShowResponse {
            show: Some(show_pb(show)),
        }))
    }

    async fn update_show_prices(
        &self,
        request: Request<pb::UpdateShowPricesRequest>,
    ) -> Result<Response<pb::UpdateShowPricesResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::UpdateShowPricesRequest {
            request_id,
            show_id,
            prices,
        } = request.into_inner();
        let prices = prices_from(prices).map_err(to_status)?;
        let show = self
            .catalog
            .update_show_prices(&request_id, &show_id, prices)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateShowPricesResponse {
            show: Some(show_pb(show)),
        }))
    }

    async fn cancel_show(
        &self,
        request: Request<pb::CancelShowRequest>,
    ) -> Result<Response<pb::CancelShowResponse>, Status> {
        marquee_platform::auth::require_role(&request, Role::Admin)?;
        let pb::CancelShowRequest {
            request_id,
            show_id,
            reason,
        } = request.into_inner();
        let show = self
            .catalog
            .cancel_show(&request_id, &show_id, &reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CancelShowResponse {
            show: Some(show_pb(show)),
        }))
    }
}
