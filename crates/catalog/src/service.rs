//! The catalog's application service: what the gRPC adapter calls. It resolves page tokens and
//! search windows, reads through the cache, and invalidates it after every change.
//!
//! Cached values are grouped in families (`search`, `show`, `layout`) whose generation number is
//! part of every key. A change bumps the family's generation after it commits, so a reader that
//! raced with the change can only have written under the old generation, which nobody reads again.

use std::time::Duration;

use bytes::Bytes;
use marquee_platform::{
    cache::Cache,
    idempotency::IdempotencyKey,
    paging,
    validation::{Violations, check_request_id},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    config::CatalogConfig,
    domain::{
        CatalogError, day_window,
        model::{
            City, Movie, Page, Screen, ScreenSummary, Show, ShowListing, ShowPrice, ShowSearch,
            Theatre,
        },
        rules::{
            self, MovieFields, MoviePatch, NewCity, NewScreen, NewShow, ScreenPatch, TheatreFields,
            TheatrePatch,
        },
    },
    store::CatalogStore,
};

const SEARCH: &str = "catalog:search";
const SHOW: &str = "catalog:show";
const LAYOUT: &str = "catalog:layout";
/// Searches without a window start "now", rounded down to this many seconds so that they can be
/// cached.
const NOW_GRANULARITY_SECS: i64 = 30;
const SEP: char = '\u{1f}';

/// A search as the client asked for it, before the time window is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchRequest {
    /// Filters other than time.
    pub filters: ShowSearch,
    /// `YYYY-MM-DD` in the city's zone.
    pub date: Option<String>,
    /// Start at or after (Unix seconds).
    pub from: Option<i64>,
    /// Start before (Unix seconds).
    pub before: Option<i64>,
}

/// The catalog.
#[derive(Clone)]
pub struct Catalog {
    store: CatalogStore,
    cache: Cache,
    ttl: Duration,
    search_ttl: Duration,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn cursor_pair(cursor: Option<String>) -> Result<Option<(String, String)>, CatalogError> {
    match cursor {
        None => Ok(None),
        Some(c) => c
            .split_once(SEP)
            .map(|(a, b)| Some((a.to_owned(), b.to_owned())))
            .ok_or_else(|| Violations::one("page_token", "is not a token of this query").into()),
    }
}

fn page<T>(
    mut items: Vec<T>,
    size: u64,
    filters: &impl Serialize,
    cursor: impl Fn(&T) -> String,
) -> Page<T> {
    let next_page_token = if items.len() as u64 > size {
        items.truncate(size as usize);
        items
            .last()
            .map(|last| paging::encode_token(filters, &cursor(last)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Page {
        items,
        next_page_token,
    }
}

impl Catalog {
    /// The catalog over `store`, caching in `cache`.
    pub fn new(store: CatalogStore, cache: Cache, config: &CatalogConfig) -> Self {
        Self {
            store,
            cache,
            ttl: Duration::from_secs(config.cache_ttl_secs.max(1)),
            search_ttl: Duration::from_secs(config.search_cache_ttl_secs.max(1)),
        }
    }

    /// The store, for readiness checks and seeding.
    pub fn store(&self) -> &CatalogStore {
        &self.store
    }

    async fn cached<T, F>(
        &self,
        family: &str,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<T, CatalogError>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<T, CatalogError>>,
    {
        let Some(generation) = self.cache.generation(family).await else {
            return load.await;
        };
        let key = format!("{family}:{generation}:{key}");
        if let Some(hit) = self.cache.get(&key).await
            && let Ok(value) = serde_json::from_slice(&hit)
        {
            return Ok(value);
        }
        let value = load.await?;
        if let Ok(bytes) = serde_json::to_vec(&value) {
            self.cache.set(&key, Bytes::from(bytes), ttl).await;
        }
        Ok(value)
    }

    async fn invalidate(&self, families: &[&str]) {
        for family in families {
            if !self.cache.bump_generation(family).await {
                tracing::warn!(
                    family,
                    "cache not invalidated; entries expire with their TTL"
                );
            }
        }
    }

    // ----- reads -----------------------------------------------------------------------------

    /// Cities by name.
    pub async fn list_cities(
        &self,
        page_size: i32,
        token: &str,
    ) -> Result<Page<City>, CatalogError> {
        let size = paging::page_size(page_size)?;
        let filters = "cities";
        let after = cursor_pair(paging::decode_token(token, &filters)?)?;
        let items = self.store.list_cities(size + 1, after).await?;
        Ok(page(items, size, &filters, |c| {
            format!("{}{SEP}{}", c.name, c.id)
        }))
    }

    /// Scheduled shows matching a search, by start time.
    pub async fn search_shows(
        &self,
        request: &SearchRequest,
        page_size: i32,
        token: &str,
    ) -> Result<Page<ShowListing>, CatalogError> {
        let size = paging::page_size(page_size)?;
        let cursor = paging::decode_token(token, request)?;
        let after = match cursor {
            None => None,
            Some(c) => {
                let (start, id) = c
                    .split_once(SEP)
                    .and_then(|(s, id)| Some((s.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(|| Violations::one("page_token", "is not a token of this query"))?;
                Some((start, id))
            }
        };
        let mut search = request.filters.clone();
        let mut v = Violations::new();
        if let Some(id) = &search.city_id {
            rules::check_id(&mut v, "city_id", id);
        }
        if let Some(id) = &search.movie_id {
            rules::check_id(&mut v, "movie_id", id);
        }
        if let Some(id) = &search.theatre_id {
            rules::check_id(&mut v, "theatre_id", id);
        }
        if let Some(lang) = &search.language {
            rules::check_language(&mut v, "language", lang);
        }
        if let (Some(from), Some(before)) = (request.from, request.before)
            && before <= from
        {
            v.add("start_time_before", "must be after start_time_from");
        }
        if request.date.is_some() {
            if search.city_id.is_none() {
                v.add(
                    "date",
                    "requires city_id (the date is read in the city's time zone)",
                );
            }
            if request.from.is_some() || request.before.is_some() {
                v.add(
                    "date",
                    "cannot be combined with start_time_from or start_time_before",
                );
            }
        }
        v.into_result()?;

        if let Some(date) = &request.date {
            let city_id = search.city_id.as_deref().unwrap_or_default();
            let city = self.store.get_city(city_id).await?;
            let (from, before) = day_window(date, &city.time_zone)
                .ok_or_else(|| Violations::one("date", "must be a date, YYYY-MM-DD"))?;
            search.from = from;
            search.before = Some(before);
        } else {
            search.from = request
                .from
                .unwrap_or_else(|| now().div_euclid(NOW_GRANULARITY_SECS) * NOW_GRANULARITY_SECS);
            search.before = request.before;
        }

        let key = format!(
            "{}:{size}:{}",
            marquee_platform::idempotency::fingerprint(&search),
            after
                .as_ref()
                .map(|(s, id)| format!("{s}.{id}"))
                .unwrap_or_default()
        );
        let items = self
            .cached(
                SEARCH,
                &key,
                self.search_ttl,
                self.store.search_shows(&search, size + 1, after),
            )
            .await?;
        Ok(page(items, size, request, |l| {
            format!("{}{SEP}{}", l.show.start_at, l.show.id)
        }))
    }

    /// Movies by title, optionally only those showing in a city.
    pub async fn list_movies(
        &self,
        city_id: Option<String>,
        page_size: i32,
        token: &str,
    ) -> Result<Page<Movie>, CatalogError> {
        let size = paging::page_size(page_size)?;
        if let Some(id) = &city_id {
            rules::id("city_id", id)?;
        }
        let filters = ("movies", &city_id);
        let after = cursor_pair(paging::decode_token(token, &filters)?)?;
        let items = self
            .store
            .list_movies(city_id.as_deref(), now(), size + 1, after)
            .await?;
        Ok(page(items, size, &filters, |m| {
            format!("{}{SEP}{}", m.title, m.id)
        }))
    }

    /// One movie.
    pub async fn get_movie(&self, id: &str) -> Result<Movie, CatalogError> {
        rules::id("movie_id", id)?;
        self.store.get_movie(id).await
    }

    /// Theatres of a city by name.
    pub async fn list_theatres(
        &self,
        city_id: &str,
        page_size: i32,
        token: &str,
    ) -> Result<Page<Theatre>, CatalogError> {
        rules::id("city_id", city_id)?;
        let size = paging::page_size(page_size)?;
        let filters = ("theatres", city_id);
        let after = cursor_pair(paging::decode_token(token, &filters)?)?;
        self.store.get_city(city_id).await?;
        let items = self.store.list_theatres(city_id, size + 1, after).await?;
        Ok(page(items, size, &filters, |t| {
            format!("{}{SEP}{}", t.name, t.id)
        }))
    }

    /// One theatre and its screens.
    pub async fn get_theatre(
        &self,
        id: &str,
    ) -> Result<(Theatre, Vec<ScreenSummary>), CatalogError> {
        rules::id("theatre_id", id)?;
        let theatre = self.store.get_theatre(id).await?;
        let screens = self.store.screens_of(id).await?;
        Ok((theatre, screens))
    }

    /// One show, scheduled or cancelled.
    pub async fn get_show(&self, id: &str) -> Result<Show, CatalogError> {
        rules::id("show_id", id)?;
        self.cached(SHOW, id, self.ttl, self.store.get_show(id))
            .await
    }

    /// One screen with its layout.
    pub async fn get_screen(&self, id: &str) -> Result<Screen, CatalogError> {
        rules::id("screen_id", id)?;
        self.cached(LAYOUT, id, self.ttl, self.store.get_screen(id))
            .await
    }

    // ----- writes ----------------------------------------------------------------------------

    /// Adds a city.
    pub async fn create_city(&self, request_id: &str, cmd: NewCity) -> Result<City, CatalogError> {
        check_request_id(request_id)?;
        rules::check_city(&cmd)?;
        let key = IdempotencyKey::new("catalog.create_city", request_id, &cmd);
        self.store.create_city(&key, &cmd).await
    }

    /// Adds a movie.
    pub async fn create_movie(
        &self,
        request_id: &str,
        fields: MovieFields,
    ) -> Result<Movie, CatalogError> {
        check_request_id(request_id)?;
        rules::check_movie(&fields)?;
        let key = IdempotencyKey::new("catalog.create_movie", request_id, &fields);
        self.store.create_movie(&key, &fields).await
    }

    /// Changes a movie.
    pub async fn update_movie(
        &self,
        request_id: &str,
        id: &str,
        patch: MoviePatch,
    ) -> Result<Movie, CatalogError> {
        check_request_id(request_id)?;
        rules::id("movie.id", id)?;
        let key = IdempotencyKey::new("catalog.update_movie", request_id, &(id, &patch));
        let movie = self.store.update_movie(&key, id, &patch).await?;
        self.invalidate(&[SEARCH]).await;
        Ok(movie)
    }

    /// Adds a theatre.
    pub async fn create_theatre(
        &self,
        request_id: &str,
        city_id: &str,
        fields: TheatreFields,
    ) -> Result<Theatre, CatalogError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_id(&mut v, "theatre.city_id", city_id);
        if let Err(e) = rules::check_theatre(&fields) {
            v.extend(e);
        }
        v.into_result()?;
        let key = IdempotencyKey::new("catalog.create_theatre", request_id, &(city_id, &fields));
        self.store.create_theatre(&key, city_id, &fields).await
    }

    /// Changes a theatre.
    pub async fn update_theatre(
        &self,
        request_id: &str,
        id: &str,
        patch: TheatrePatch,
    ) -> Result<Theatre, CatalogError> {
        check_request_id(request_id)?;
        rules::id("theatre.id", id)?;
        let key = IdempotencyKey::new("catalog.update_theatre", request_id, &(id, &patch));
        let theatre = self.store.update_theatre(&key, id, &patch).await?;
        self.invalidate(&[SEARCH]).await;
        Ok(theatre)
    }

    /// Adds a screen.
    pub async fn create_screen(
        &self,
        request_id: &str,
        cmd: NewScreen,
    ) -> Result<Screen, CatalogError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_id(&mut v, "theatre_id", &cmd.theatre_id);
        if let Err(e) = rules::check_screen_fields(&cmd.name, &cmd.formats) {
            v.extend(e);
        }
        if let Err(e) = rules::check_layout(&cmd.layout) {
            v.extend(e);
        }
        v.into_result()?;
        let key = IdempotencyKey::new("catalog.create_screen", request_id, &cmd);
        self.store.create_screen(&key, &cmd).await
    }

    /// Changes a screen.
    pub async fn update_screen(
        &self,
        request_id: &str,
        id: &str,
        patch: ScreenPatch,
    ) -> Result<Screen, CatalogError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_id(&mut v, "screen_id", id);
        if patch.name.is_some() || patch.formats.is_some() {
            let name = patch.name.as_deref().unwrap_or("unchanged");
            let formats = patch
                .formats
                .clone()
                .unwrap_or_else(|| vec![crate::domain::model::Format::TwoD]);
            if let Err(e) = rules::check_screen_fields(name, &formats) {
                v.extend(e);
            }
        }
        if let Some(layout) = &patch.layout
            && let Err(e) = rules::check_layout(layout)
        {
            v.extend(e);
        }
        v.into_result()?;
        let key = IdempotencyKey::new("catalog.update_screen", request_id, &(id, &patch));
        let screen = self.store.update_screen(&key, id, &patch, now()).await?;
        self.invalidate(&[LAYOUT, SEARCH]).await;
        Ok(screen)
    }

    /// Schedules a show.
    pub async fn schedule_show(
        &self,
        request_id: &str,
        cmd: NewShow,
    ) -> Result<Show, CatalogError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_id(&mut v, "movie_id", &cmd.movie_id);
        rules::check_id(&mut v, "screen_id", &cmd.screen_id);
        rules::check_language(&mut v, "language", &cmd.language);
        if cmd.end_at <= cmd.start_at {
            v.add("end_time", "must be after start_time");
        }
        v.into_result()?;
        let key = IdempotencyKey::new("catalog.schedule_show", request_id, &cmd);
        let show = self.store.schedule_show(&key, &cmd, now()).await?;
        self.invalidate(&[SEARCH]).await;
        Ok(show)
    }

    /// Replaces a show's prices.
    pub async fn update_show_prices(
        &self,
        request_id: &str,
        show_id: &str,
        prices: Vec<ShowPrice>,
    ) -> Result<Show, CatalogError> {
        check_request_id(request_id)?;
        rules::id("show_id", show_id)?;
        let key = IdempotencyKey::new(
            "catalog.update_show_prices",
            request_id,
            &(show_id, &prices),
        );
        let show = self
            .store
            .update_show_prices(&key, show_id, &prices, now())
            .await?;
        self.invalidate(&[SHOW, SEARCH]).await;
        Ok(show)
    }

    /// Cancels a show.
    pub async fn cancel_show(
        &self,
        request_id: &str,
        show_id: &str,
        reason: &str,
    ) -> Result<Show, CatalogError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_id(&mut v, "show_id", show_id);
        if let Err(e) = rules::check_reason(reason) {
            v.extend(e);
        }
        v.into_result()?;
        let key = IdempotencyKey::new("catalog.cancel_show", request_id, &(show_id, reason));
        let show = self.store.cancel_show(&key, show_id, reason, now()).await?;
        self.invalidate(&[SHOW, SEARCH]).await;
        Ok(show)
    }

    /// Loads the demo catalog if the catalog is empty. Returns whether it did.
    pub async fn seed_if_empty(&self, today: chrono::NaiveDate) -> Result<bool, CatalogError> {
        if !self.store.is_empty().await? {
            return Ok(false);
        }
        self.store.load(&crate::seed::demo_catalog(today)).await?;
        self.invalidate(&[SEARCH, SHOW, LAYOUT]).await;
        Ok(true)
    }
}
