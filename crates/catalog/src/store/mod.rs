//! The catalog's storage: sea-orm over SQLite (embedded) or PostgreSQL (schema `catalog`).
//!
//! Every write runs in one transaction together with its idempotency record, so a change is
//! either whole or absent. Rules that need stored state (references exist, shows do not overlap,
//! a screen with shows keeps its layout) are checked inside that transaction; on PostgreSQL the
//! screen row is locked while a show is scheduled on it, so two concurrent schedules cannot both
//! pass the overlap check.

pub mod entities;
pub mod migration;

use std::collections::HashMap;

use marquee_platform::{
    idempotency::{IdempotencyError, IdempotencyKey},
    validation::Violations,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait, prelude::Expr, sea_query::Query,
};
use sea_orm_migration::MigratorTrait;
use serde::{Serialize, de::DeserializeOwned};

use self::entities::{city, movie, movie_genre, screen, show, theatre};
use crate::domain::{
    CatalogError,
    model::{
        CatalogData, City, Format, Movie, Screen, ScreenSummary, SeatLayout, Show, ShowListing,
        ShowPrice, ShowSearch, ShowState, Theatre,
    },
    rules::{
        self, MovieFields, MoviePatch, NewCity, NewScreen, NewShow, ScreenPatch, TheatreFields,
        TheatrePatch,
    },
};

/// The catalog's database.
#[derive(Clone)]
pub struct CatalogStore {
    db: DatabaseConnection,
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> CatalogError {
    CatalogError::Storage(Box::new(e))
}

fn idem(e: IdempotencyError) -> CatalogError {
    match e {
        IdempotencyError::Mismatch => CatalogError::IdempotencyMismatch,
        other => storage(other),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: DeserializeOwned>(s: &str) -> Result<T, CatalogError> {
    serde_json::from_str(s).map_err(storage)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// Maps a unique-key violation to `AlreadyExists(message)`, anything else to a storage error.
fn conflict(message: impl FnOnce() -> String) -> impl FnOnce(DbErr) -> CatalogError {
    move |e| {
        if marquee_platform::db::is_unique_violation(&e) {
            CatalogError::AlreadyExists(message())
        } else {
            storage(e)
        }
    }
}

impl CatalogStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = marquee_platform::db::connect(url, "catalog").await?;
        let store = Self { db };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        migration::Migrator::up(&self.db, None).await
    }

    /// The database connection (for the platform's idempotency-key retention).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// True while the database answers.
    pub async fn ping(&self) -> bool {
        marquee_platform::db::ping(&self.db).await
    }

    /// True when the catalog holds no city yet.
    pub async fn is_empty(&self) -> Result<bool, CatalogError> {
        Ok(city::Entity::find()
            .count(&self.db)
            .await
            .map_err(storage)?
            == 0)
    }

    // ----- reads -----------------------------------------------------------------------------

    /// Cities by name, after the cursor (`name\u{1f}id`).
    pub async fn list_cities(
        &self,
        limit: u64,
        after: Option<(String, String)>,
    ) -> Result<Vec<City>, CatalogError> {
        let mut q = city::Entity::find()
            .order_by_asc(city::Column::Name)
            .order_by_asc(city::Column::Id)
            .limit(limit);
        if let Some((name, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(city::Column::Name.gt(name.clone()))
                    .add(
                        Condition::all()
                            .add(city::Column::Name.eq(name))
                            .add(city::Column::Id.gt(id)),
                    ),
            );
        }
        Ok(q.all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(city_from)
            .collect())
    }

    /// One city.
    pub async fn get_city(&self, id: &str) -> Result<City, CatalogError> {
        city::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .map(city_from)
            .ok_or_else(|| CatalogError::not_found("city", id))
    }

    /// One movie.
    pub async fn get_movie(&self, id: &str) -> Result<Movie, CatalogError> {
        let row = movie::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or_else(|| CatalogError::not_found("movie", id))?;
        movie_from(row)
    }

    /// Movies by title, optionally only those with a scheduled show in a city starting at or
    /// after `from`.
    pub async fn list_movies(
        &self,
        city_id: Option<&str>,
        from: i64,
        limit: u64,
        after: Option<(String, String)>,
    ) -> Result<Vec<Movie>, CatalogError> {
        let mut q = movie::Entity::find()
            .order_by_asc(movie::Column::Title)
            .order_by_asc(movie::Column::Id)
            .limit(limit);
        if let Some(city_id) = city_id {
            q = q.filter(
                movie::Column::Id.in_subquery(
                    Query::select()
                        .column(show::Column::MovieId)
                        .from(show::Entity)
                        .and_where(show::Column::CityId.eq(city_id))
                        .and_where(show::Column::State.eq(ShowState::Scheduled.as_str()))
                        .and_where(show::Column::StartAt.gte(from))
                        .to_owned(),
                ),
            );
        }
        if let Some((title, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(movie::Column::Title.gt(title.clone()))
                    .add(
                        Condition::all()
                            .add(movie::Column::Title.eq(title))
                            .add(movie::Column::Id.gt(id)),
                    ),
            );
        }
        q.all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(movie_from)
            .collect()
    }

    /// One theatre.
    pub async fn get_theatre(&self, id: &str) -> Result<Theatre, CatalogError> {
        let row = theatre::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or_else(|| CatalogError::not_found("theatre", id))?;
        theatre_from(row)
    }

    /// The theatres of a city by name.
    pub async fn list_theatres(
        &self,
        city_id: &str,
        limit: u64,
        after: Option<(String, String)>,
    ) -> Result<Vec<Theatre>, CatalogError> {
        let mut q = theatre::Entity::find()
            .filter(theatre::Column::CityId.eq(city_id))
            .order_by_asc(theatre::Column::Name)
            .order_by_asc(theatre::Column::Id)
            .limit(limit);
        if let Some((name, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(theatre::Column::Name.gt(name.clone()))
                    .add(
                        Condition::all()
                            .add(theatre::Column::Name.eq(name))
                            .add(theatre::Column::Id.gt(id)),
                    ),
            );
        }
        q.all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(theatre_from)
            .collect()
    }

    /// The screens of a theatre by name, without layouts.
    pub async fn screens_of(&self, theatre_id: &str) -> Result<Vec<ScreenSummary>, CatalogError> {
        let rows: Vec<(String, String, String, i32)> = screen::Entity::find()
            .select_only()
            .column(screen::Column::Id)
            .column(screen::Column::Name)
            .column(screen::Column::Formats)
            .column(screen::Column::SeatCount)
            .filter(screen::Column::TheatreId.eq(theatre_id))
            .order_by_asc(screen::Column::Name)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|(id, name, formats, seat_count)| {
                Ok(ScreenSummary {
                    id,
                    theatre_id: theatre_id.to_owned(),
                    name,
                    formats: formats_from(&formats)?,
                    seat_count: seat_count.max(0) as u32,
                })
            })
            .collect()
    }

    /// One screen with its layout.
    pub async fn get_screen(&self, id: &str) -> Result<Screen, CatalogError> {
        let row = screen::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or_else(|| CatalogError::not_found("screen", id))?;
        screen_from(row)
    }

    /// One show.
    pub async fn get_show(&self, id: &str) -> Result<Show, CatalogError> {
        let row = show::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or_else(|| CatalogError::not_found("show", id))?;
        show_from(row)
    }

    /// Scheduled shows matching `search`, by start time then id, after the cursor.
    pub async fn search_shows(
        &self,
        search: &ShowSearch,
        limit: u64,
        after: Option<(i64, String)>,
    ) -> Result<Vec<ShowListing>, CatalogError> {
        let mut q = show::Entity::find()
            .filter(show::Column::State.eq(ShowState::Scheduled.as_str()))
            .filter(show::Column::StartAt.gte(search.from))
            .order_by_asc(show::Column::StartAt)
            .order_by_asc(show::Column::Id)
            .limit(limit);
        if let Some(before) = search.before {
            q = q.filter(show::Column::StartAt.lt(before));
        }
        if let Some(v) = &search.city_id {
            q = q.filter(show::Column::CityId.eq(v.as_str()));
        }
        if let Some(v) = &search.language {
            q = q.filter(show::Column::Language.eq(v.as_str()));
        }
        if let Some(v) = search.format {
            q = q.filter(show::Column::Format.eq(v.as_str()));
        }
        if let Some(v) = &search.movie_id {
            q = q.filter(show::Column::MovieId.eq(v.as_str()));
        }
        if let Some(v) = &search.theatre_id {
            q = q.filter(show::Column::TheatreId.eq(v.as_str()));
        }
        if let Some(genre) = &search.genre {
            q = q.filter(
                show::Column::MovieId.in_subquery(
                    Query::select()
                        .column(movie_genre::Column::MovieId)
                        .from(movie_genre::Entity)
                        .and_where(movie_genre::Column::Genre.eq(genre.as_str()))
                        .to_owned(),
                ),
            );
        }
        if let Some(text) = &search.query {
            let escaped = text
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            q = q.filter(
                show::Column::MovieId.in_subquery(
                    Query::select()
                        .column(movie::Column::Id)
                        .from(movie::Entity)
                        .and_where(sea_orm::sea_query::ExprTrait::like(
                            Expr::col(movie::Column::TitleLower),
                            sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\'),
                        ))
                        .to_owned(),
                ),
            );
        }
        if let Some((start, id)) = after {
            q = q.filter(
                Condition::any().add(show::Column::StartAt.gt(start)).add(
                    Condition::all()
                        .add(show::Column::StartAt.eq(start))
                        .add(show::Column::Id.gt(id)),
                ),
            );
        }
        let shows: Vec<Show> = q
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(show_from)
            .collect::<Result<_, _>>()?;
        if shows.is_empty() {
            return Ok(Vec::new());
        }

        let ids = |f: fn(&Show) -> &String| {
            let mut v: Vec<String> = shows.iter().map(|s| f(s).clone()).collect();
            v.sort();
            v.dedup();
            v
        };
        let titles: HashMap<String, String> = movie::Entity::find()
            .select_only()
            .column(movie::Column::Id)
            .column(movie::Column::Title)
            .filter(movie::Column::Id.is_in(ids(|s| &s.movie_id)))
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .collect();
        let theatres: HashMap<String, String> = theatre::Entity::find()
            .select_only()
            .column(theatre::Column::Id)
            .column(theatre::Column::Name)
            .filter(theatre::Column::Id.is_in(ids(|s| &s.theatre_id)))
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .collect();
        let screens: HashMap<String, String> = screen::Entity::find()
            .select_only()
            .column(screen::Column::Id)
            .column(screen::Column::Name)
            .filter(screen::Column::Id.is_in(ids(|s| &s.screen_id)))
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .collect();
        Ok(shows
            .into_iter()
            .map(|show| ShowListing {
                movie_title: titles.get(&show.movie_id).cloned().unwrap_or_default(),
                theatre_name: theatres.get(&show.theatre_id).cloned().unwrap_or_default(),
                screen_name: screens.get(&show.screen_id).cloned().unwrap_or_default(),
                show,
            })
            .collect())
    }

    // ----- writes ----------------------------------------------------------------------------

    /// Runs `work` under `key` ([`IdempotencyKey::run`]).
    async fn run<T, F, Fut>(&self, key: &IdempotencyKey, work: F) -> Result<T, CatalogError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(DatabaseTransaction) -> Fut,
        Fut: std::future::Future<Output = (DatabaseTransaction, Result<T, CatalogError>)>,
    {
        key.run(&self.db, idem, work).await
    }

    /// Adds a city.
    pub async fn create_city(
        &self,
        key: &IdempotencyKey,
        cmd: &NewCity,
    ) -> Result<City, CatalogError> {
        self.run(key, |txn| async move {
            let out = insert_city(&txn, cmd).await;
            (txn, out)
        })
        .await
    }

    /// Adds a movie.
    pub async fn create_movie(
        &self,
        key: &IdempotencyKey,
        fields: &MovieFields,
    ) -> Result<Movie, CatalogError> {
        let movie = Movie {
            id: new_id(),
            title: fields.title.clone(),
            synopsis: fields.synopsis.clone(),
            original_language: fields.original_language.clone(),
            genres: fields.genres.clone(),
            runtime_minutes: fields.runtime_minutes,
            certification: fields.certification.clone(),
            release_date: fields.release_date.clone(),
            cast: fields.cast.clone(),
            directors: fields.directors.clone(),
        };
        self.run(key, |txn| async move {
            let out = insert_movie(&txn, movie).await;
            (txn, out)
        })
        .await
    }

    /// Changes a movie.
    pub async fn update_movie(
        &self,
        key: &IdempotencyKey,
        id: &str,
        patch: &MoviePatch,
    ) -> Result<Movie, CatalogError> {
        self.run(key, |txn| async move {
            let out = update_movie(&txn, id, patch).await;
            (txn, out)
        })
        .await
    }

    /// Adds a theatre.
    pub async fn create_theatre(
        &self,
        key: &IdempotencyKey,
        city_id: &str,
        fields: &TheatreFields,
    ) -> Result<Theatre, CatalogError> {
        self.run(key, |txn| async move {
            let out = insert_theatre(&txn, city_id, fields).await;
            (txn, out)
        })
        .await
    }

    /// Changes a theatre.
    pub async fn update_theatre(
        &self,
        key: &IdempotencyKey,
        id: &str,
        patch: &TheatrePatch,
    ) -> Result<Theatre, CatalogError> {
        self.run(key, |txn| async move {
            let out = update_theatre(&txn, id, patch).await;
            (txn, out)
        })
        .await
    }

    /// Adds a screen.
    pub async fn create_screen(
        &self,
        key: &IdempotencyKey,
        cmd: &NewScreen,
    ) -> Result<Screen, CatalogError> {
        self.run(key, |txn| async move {
            let out = insert_screen(&txn, cmd).await;
            (txn, out)
        })
        .await
    }

    /// Changes a screen. Its layout and formats cannot change under shows that have not ended.
    pub async fn update_screen(
        &self,
        key: &IdempotencyKey,
        id: &str,
        patch: &ScreenPatch,
        now: i64,
    ) -> Result<Screen, CatalogError> {
        self.run(key, |txn| async move {
            let out = update_screen(&txn, id, patch, now).await;
            (txn, out)
        })
        .await
    }

    /// Schedules a show.
    pub async fn schedule_show(
        &self,
        key: &IdempotencyKey,
        cmd: &NewShow,
        now: i64,
    ) -> Result<Show, CatalogError> {
        self.run(key, |txn| async move {
            let out = schedule_show(&txn, cmd, now).await;
            (txn, out)
        })
        .await
    }

    /// Replaces the prices of a show that has not started.
    pub async fn update_show_prices(
        &self,
        key: &IdempotencyKey,
        show_id: &str,
        prices: &[ShowPrice],
        now: i64,
    ) -> Result<Show, CatalogError> {
        self.run(key, |txn| async move {
            let out = update_show_prices(&txn, show_id, prices, now).await;
            (txn, out)
        })
        .await
    }

    /// Cancels a show that has not ended.
    pub async fn cancel_show(
        &self,
        key: &IdempotencyKey,
        show_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Show, CatalogError> {
        self.run(key, |txn| async move {
            let out = cancel_show(&txn, show_id, reason, now).await;
            (txn, out)
        })
        .await
    }

    /// Loads a whole catalog in one transaction (the demo data).
    pub async fn load(&self, data: &CatalogData) -> Result<(), CatalogError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let now = now_utc();
        for c in &data.cities {
            city_row(c, now).insert(&txn).await.map_err(storage)?;
        }
        for m in &data.movies {
            insert_movie(&txn, m.clone()).await?;
        }
        for t in &data.theatres {
            theatre_row(t, now).insert(&txn).await.map_err(storage)?;
        }
        for s in &data.screens {
            screen_row(s, now).insert(&txn).await.map_err(storage)?;
        }
        for chunk in data.shows.chunks(200) {
            show::Entity::insert_many(chunk.iter().map(|s| show_row(s, now)))
                .exec(&txn)
                .await
                .map_err(storage)?;
        }
        txn.commit().await.map_err(storage)
    }
}

// ----- transaction bodies ------------------------------------------------------------------------

async fn insert_city(txn: &DatabaseTransaction, cmd: &NewCity) -> Result<City, CatalogError> {
    let city = City {
        id: new_id(),
        name: cmd.name.trim().to_owned(),
        region: cmd.region.trim().to_owned(),
        country_code: cmd.country_code.clone(),
        time_zone: cmd.time_zone.clone(),
        currency_code: cmd.currency_code.clone(),
    };
    city_row(&city, now_utc())
        .insert(txn)
        .await
        .map_err(conflict(|| {
            format!(
                "a city named {} already exists in {}",
                city.name, city.country_code
            )
        }))?;
    Ok(city)
}

async fn insert_movie(txn: &DatabaseTransaction, movie: Movie) -> Result<Movie, CatalogError> {
    let now = now_utc();
    movie::ActiveModel {
        id: Set(movie.id.clone()),
        title: Set(movie.title.clone()),
        title_lower: Set(movie.title.to_lowercase()),
        synopsis: Set(movie.synopsis.clone()),
        original_language: Set(movie.original_language.clone()),
        genres: Set(json(&movie.genres)),
        runtime_minutes: Set(movie.runtime_minutes as i32),
        certification: Set(movie.certification.clone()),
        release_date: Set(movie.release_date.clone()),
        cast_members: Set(json(&movie.cast)),
        directors: Set(json(&movie.directors)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await
    .map_err(conflict(|| {
        format!(
            "a movie titled {} released {} already exists",
            movie.title, movie.release_date
        )
    }))?;
    write_genres(txn, &movie.id, &movie.genres).await?;
    Ok(movie)
}

async fn write_genres(
    txn: &DatabaseTransaction,
    movie_id: &str,
    genres: &[String],
) -> Result<(), CatalogError> {
    movie_genre::Entity::delete_many()
        .filter(movie_genre::Column::MovieId.eq(movie_id))
        .exec(txn)
        .await
        .map_err(storage)?;
    let mut lower: Vec<String> = genres.iter().map(|g| g.trim().to_lowercase()).collect();
    lower.sort();
    lower.dedup();
    if lower.is_empty() {
        return Ok(());
    }
    movie_genre::Entity::insert_many(lower.into_iter().map(|genre| movie_genre::ActiveModel {
        movie_id: Set(movie_id.to_owned()),
        genre: Set(genre),
    }))
    .exec(txn)
    .await
    .map_err(storage)?;
    Ok(())
}

async fn update_movie(
    txn: &DatabaseTransaction,
    id: &str,
    patch: &MoviePatch,
) -> Result<Movie, CatalogError> {
    let row = movie::Entity::find_by_id(id.to_owned())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("movie", id))?;
    let current = movie_from(row.clone())?;
    let fields = patch.apply(MovieFields {
        title: current.title,
        synopsis: current.synopsis,
        original_language: current.original_language,
        genres: current.genres,
        runtime_minutes: current.runtime_minutes,
        certification: current.certification,
        release_date: current.release_date,
        cast: current.cast,
        directors: current.directors,
    });
    rules::check_movie(&fields)?;
    let mut active = row.into_active_model();
    active.title = Set(fields.title.clone());
    active.title_lower = Set(fields.title.to_lowercase());
    active.synopsis = Set(fields.synopsis.clone());
    active.original_language = Set(fields.original_language.clone());
    active.genres = Set(json(&fields.genres));
    active.runtime_minutes = Set(fields.runtime_minutes as i32);
    active.certification = Set(fields.certification.clone());
    active.release_date = Set(fields.release_date.clone());
    active.cast_members = Set(json(&fields.cast));
    active.directors = Set(json(&fields.directors));
    active.updated_at = Set(now_utc());
    let row = active.update(txn).await.map_err(conflict(|| {
        format!(
            "a movie titled {} released {} already exists",
            fields.title, fields.release_date
        )
    }))?;
    if patch.genres.is_some() {
        write_genres(txn, id, &fields.genres).await?;
    }
    movie_from(row)
}

async fn insert_theatre(
    txn: &DatabaseTransaction,
    city_id: &str,
    fields: &TheatreFields,
) -> Result<Theatre, CatalogError> {
    city::Entity::find_by_id(city_id.to_owned())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("city", city_id))?;
    let theatre = Theatre {
        id: new_id(),
        city_id: city_id.to_owned(),
        name: fields.name.trim().to_owned(),
        address: fields.address.trim().to_owned(),
        amenities: fields.amenities.clone(),
    };
    theatre_row(&theatre, now_utc())
        .insert(txn)
        .await
        .map_err(conflict(|| {
            format!(
                "a theatre named {} already exists in the city",
                theatre.name
            )
        }))?;
    Ok(theatre)
}

async fn update_theatre(
    txn: &DatabaseTransaction,
    id: &str,
    patch: &TheatrePatch,
) -> Result<Theatre, CatalogError> {
    let row = theatre::Entity::find_by_id(id.to_owned())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("theatre", id))?;
    let current = theatre_from(row.clone())?;
    let fields = patch.apply(TheatreFields {
        name: current.name,
        address: current.address,
        amenities: current.amenities,
    });
    rules::check_theatre(&fields)?;
    let mut active = row.into_active_model();
    active.name = Set(fields.name.clone());
    active.address = Set(fields.address.clone());
    active.amenities = Set(json(&fields.amenities));
    active.updated_at = Set(now_utc());
    let row = active.update(txn).await.map_err(conflict(|| {
        format!("a theatre named {} already exists in the city", fields.name)
    }))?;
    theatre_from(row)
}

async fn insert_screen(txn: &DatabaseTransaction, cmd: &NewScreen) -> Result<Screen, CatalogError> {
    theatre::Entity::find_by_id(cmd.theatre_id.clone())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("theatre", &cmd.theatre_id))?;
    let screen = Screen {
        id: new_id(),
        theatre_id: cmd.theatre_id.clone(),
        name: cmd.name.trim().to_owned(),
        formats: cmd.formats.clone(),
        layout: cmd.layout.clone(),
    };
    screen_row(&screen, now_utc())
        .insert(txn)
        .await
        .map_err(conflict(|| {
            format!(
                "a screen named {} already exists in the theatre",
                screen.name
            )
        }))?;
    Ok(screen)
}

async fn lock_screen(txn: &DatabaseTransaction, id: &str) -> Result<screen::Model, CatalogError> {
    let mut q = screen::Entity::find_by_id(id.to_owned());
    if marquee_platform::db::is_postgres(txn) {
        q = q.lock_exclusive();
    }
    q.one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("screen", id))
}

async fn update_screen(
    txn: &DatabaseTransaction,
    id: &str,
    patch: &ScreenPatch,
    now: i64,
) -> Result<Screen, CatalogError> {
    let row = lock_screen(txn, id).await?;
    let mut screen = screen_from(row.clone())?;
    if let Some(name) = &patch.name {
        screen.name = name.trim().to_owned();
    }
    let layout_changes = patch.layout.as_ref().is_some_and(|l| *l != screen.layout);
    let removed_formats: Vec<Format> = match &patch.formats {
        Some(new) => screen
            .formats
            .iter()
            .filter(|f| !new.contains(f))
            .copied()
            .collect(),
        None => Vec::new(),
    };
    if layout_changes || !removed_formats.is_empty() {
        let mut q = show::Entity::find()
            .filter(show::Column::ScreenId.eq(id))
            .filter(show::Column::State.eq(ShowState::Scheduled.as_str()))
            .filter(show::Column::EndAt.gt(now));
        if !layout_changes {
            q = q.filter(show::Column::Format.is_in(removed_formats.iter().map(|f| f.as_str())));
        }
        let pending = q.count(txn).await.map_err(storage)?;
        if pending > 0 {
            return Err(CatalogError::precondition(
                "SCREEN_HAS_SHOWS",
                format!(
                    "the screen has {pending} scheduled shows that have not ended; cancel them first"
                ),
            ));
        }
    }
    if let Some(formats) = &patch.formats {
        screen.formats = formats.clone();
    }
    if let Some(layout) = &patch.layout {
        screen.layout = layout.clone();
    }
    let mut active = row.into_active_model();
    active.name = Set(screen.name.clone());
    active.formats = Set(formats_json(&screen.formats));
    active.layout = Set(json(&screen.layout));
    active.seat_count = Set(screen.layout.seat_count() as i32);
    active.updated_at = Set(now_utc());
    active.update(txn).await.map_err(conflict(|| {
        format!(
            "a screen named {} already exists in the theatre",
            screen.name
        )
    }))?;
    Ok(screen)
}

async fn schedule_show(
    txn: &DatabaseTransaction,
    cmd: &NewShow,
    now: i64,
) -> Result<Show, CatalogError> {
    let movie = movie::Entity::find_by_id(cmd.movie_id.clone())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("movie", &cmd.movie_id))?;
    let screen = screen_from(lock_screen(txn, &cmd.screen_id).await?)?;
    let theatre = theatre::Entity::find_by_id(screen.theatre_id.clone())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("theatre", &screen.theatre_id))?;
    let city = city::Entity::find_by_id(theatre.city_id.clone())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("city", &theatre.city_id))?;

    let mut v = Violations::new();
    if let Err(e) = rules::check_show_times(
        cmd.start_at,
        cmd.end_at,
        movie.runtime_minutes.max(0) as u32,
        now,
    ) {
        v.extend(e);
    }
    if !screen.formats.contains(&cmd.format) {
        v.add(
            "format",
            format!("the screen does not show {}", cmd.format.as_str()),
        );
    }
    if let Err(e) = rules::check_prices("prices", &cmd.prices, &screen.layout, &city.currency_code)
    {
        v.extend(e);
    }
    v.into_result()?;

    let overlapping = show::Entity::find()
        .filter(show::Column::ScreenId.eq(cmd.screen_id.as_str()))
        .filter(show::Column::State.eq(ShowState::Scheduled.as_str()))
        .filter(show::Column::StartAt.lt(cmd.end_at))
        .filter(show::Column::EndAt.gt(cmd.start_at))
        .one(txn)
        .await
        .map_err(storage)?;
    if let Some(other) = overlapping {
        return Err(CatalogError::precondition(
            "SHOW_OVERLAP",
            format!(
                "the screen already has show {} from {} to {}",
                other.id,
                rfc3339(other.start_at),
                rfc3339(other.end_at)
            ),
        ));
    }

    let show = Show {
        id: new_id(),
        movie_id: cmd.movie_id.clone(),
        theatre_id: theatre.id,
        screen_id: cmd.screen_id.clone(),
        city_id: city.id,
        start_at: cmd.start_at,
        end_at: cmd.end_at,
        language: cmd.language.clone(),
        format: cmd.format,
        prices: cmd.prices.clone(),
        state: ShowState::Scheduled,
        cancel_reason: String::new(),
    };
    show_row(&show, now_utc())
        .insert(txn)
        .await
        .map_err(storage)?;
    Ok(show)
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

async fn load_show_for_update(
    txn: &DatabaseTransaction,
    id: &str,
) -> Result<show::Model, CatalogError> {
    let mut q = show::Entity::find_by_id(id.to_owned());
    if marquee_platform::db::is_postgres(txn) {
        q = q.lock_exclusive();
    }
    q.one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| CatalogError::not_found("show", id))
}

async fn update_show_prices(
    txn: &DatabaseTransaction,
    id: &str,
    prices: &[ShowPrice],
    now: i64,
) -> Result<Show, CatalogError> {
    let row = load_show_for_update(txn, id).await?;
    let mut show = show_from(row.clone())?;
    if show.state == ShowState::Cancelled {
        return Err(CatalogError::precondition(
            "SHOW_CANCELLED",
            "the show is cancelled",
        ));
    }
    if show.start_at <= now {
        return Err(CatalogError::precondition(
            "SHOW_STARTED",
            "the show has started; its prices are final",
        ));
    }
    let screen = screen_from(
        screen::Entity::find_by_id(show.screen_id.clone())
            .one(txn)
            .await
            .map_err(storage)?
            .ok_or_else(|| CatalogError::not_found("screen", &show.screen_id))?,
    )?;
    let currency = city::Entity::find_by_id(show.city_id.clone())
        .one(txn)
        .await
        .map_err(storage)?
        .map(|c| c.currency_code)
        .ok_or_else(|| CatalogError::not_found("city", &show.city_id))?;
    rules::check_prices("prices", prices, &screen.layout, &currency)?;
    show.prices = prices.to_vec();
    let mut active = row.into_active_model();
    active.prices = Set(json(&show.prices));
    active.updated_at = Set(now_utc());
    active.update(txn).await.map_err(storage)?;
    Ok(show)
}

async fn cancel_show(
    txn: &DatabaseTransaction,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<Show, CatalogError> {
    let row = load_show_for_update(txn, id).await?;
    let mut show = show_from(row.clone())?;
    if show.state == ShowState::Cancelled {
        return Err(CatalogError::precondition(
            "SHOW_CANCELLED",
            "the show is already cancelled",
        ));
    }
    if show.end_at <= now {
        return Err(CatalogError::precondition(
            "SHOW_ENDED",
            "the show has already ended",
        ));
    }
    show.state = ShowState::Cancelled;
    show.cancel_reason = reason.trim().to_owned();
    let mut active = row.into_active_model();
    active.state = Set(show.state.as_str().to_owned());
    active.cancel_reason = Set(show.cancel_reason.clone());
    active.updated_at = Set(now_utc());
    active.update(txn).await.map_err(storage)?;
    Ok(show)
}

// ----- rows <-> domain ---------------------------------------------------------------------------

fn city_row(c: &City, now: chrono::DateTime<chrono::Utc>) -> city::ActiveModel {
    city::ActiveModel {
        id: Set(c.id.clone()),
        name: Set(c.name.clone()),
        region: Set(c.region.clone()),
        country_code: Set(c.country_code.clone()),
        time_zone: Set(c.time_zone.clone()),
        currency_code: Set(c.currency_code.clone()),
        created_at: Set(now),
    }
}

fn city_from(r: city::Model) -> City {
    City {
        id: r.id,
        name: r.name,
        region: r.region,
        country_code: r.country_code,
        time_zone: r.time_zone,
        currency_code: r.currency_code,
    }
}

fn movie_from(r: movie::Model) -> Result<Movie, CatalogError> {
    Ok(Movie {
        id: r.id,
        title: r.title,
        synopsis: r.synopsis,
        original_language: r.original_language,
        genres: parse(&r.genres)?,
        runtime_minutes: r.runtime_minutes.max(0) as u32,
        certification: r.certification,
        release_date: r.release_date,
        cast: parse(&r.cast_members)?,
        directors: parse(&r.directors)?,
    })
}

fn theatre_row(t: &Theatre, now: chrono::DateTime<chrono::Utc>) -> theatre::ActiveModel {
    theatre::ActiveModel {
        id: Set(t.id.clone()),
        city_id: Set(t.city_id.clone()),
        name: Set(t.name.clone()),
        address: Set(t.address.clone()),
        amenities: Set(json(&t.amenities)),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn theatre_from(r: theatre::Model) -> Result<Theatre, CatalogError> {
    Ok(Theatre {
        id: r.id,
        city_id: r.city_id,
        name: r.name,
        address: r.address,
        amenities: parse(&r.amenities)?,
    })
}

fn formats_json(formats: &[Format]) -> String {
    json(&formats.iter().map(|f| f.as_str()).collect::<Vec<_>>())
}

fn formats_from(s: &str) -> Result<Vec<Format>, CatalogError> {
    let names: Vec<String> = parse(s)?;
    Ok(names.iter().filter_map(|n| Format::parse(n)).collect())
}

fn screen_row(s: &Screen, now: chrono::DateTime<chrono::Utc>) -> screen::ActiveModel {
    screen::ActiveModel {
        id: Set(s.id.clone()),
        theatre_id: Set(s.theatre_id.clone()),
        name: Set(s.name.clone()),
        formats: Set(formats_json(&s.formats)),
        layout: Set(json(&s.layout)),
        seat_count: Set(s.layout.seat_count() as i32),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn screen_from(r: screen::Model) -> Result<Screen, CatalogError> {
    Ok(Screen {
        id: r.id,
        theatre_id: r.theatre_id,
        name: r.name,
        formats: formats_from(&r.formats)?,
        layout: parse::<SeatLayout>(&r.layout)?,
    })
}

fn show_row(s: &Show, now: chrono::DateTime<chrono::Utc>) -> show::ActiveModel {
    show::ActiveModel {
        id: Set(s.id.clone()),
        movie_id: Set(s.movie_id.clone()),
        theatre_id: Set(s.theatre_id.clone()),
        screen_id: Set(s.screen_id.clone()),
        city_id: Set(s.city_id.clone()),
        start_at: Set(s.start_at),
        end_at: Set(s.end_at),
        language: Set(s.language.clone()),
        format: Set(s.format.as_str().to_owned()),
        prices: Set(json(&s.prices)),
        state: Set(s.state.as_str().to_owned()),
        cancel_reason: Set(s.cancel_reason.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn show_from(r: show::Model) -> Result<Show, CatalogError> {
    Ok(Show {
        format: Format::parse(&r.format)
            .ok_or_else(|| storage(std::io::Error::other(format!("bad format {}", r.format))))?,
        state: ShowState::parse(&r.state)
            .ok_or_else(|| storage(std::io::Error::other(format!("bad state {}", r.state))))?,
        prices: parse(&r.prices)?,
        id: r.id,
        movie_id: r.movie_id,
        theatre_id: r.theatre_id,
        screen_id: r.screen_id,
        city_id: r.city_id,
        start_at: r.start_at,
        end_at: r.end_at,
        language: r.language,
        cancel_reason: r.cancel_reason,
    })
}
