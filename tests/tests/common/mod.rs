//! The harness every black-box test uses: start the real server on 127.0.0.1 port 0 against a
//! fresh store, call it through the generated clients, shut it down.
//!
//! Two backends: `Sqlite` (a fresh file in a temporary directory, in-process cache: what
//! `marquee up` runs) and `Postgres` (a fresh database on the server named by
//! `MARQUEE_TEST_DATABASE_URL`, and a fresh key prefix on the Redis named by
//! `MARQUEE_TEST_REDIS_URL`). When those variables are unset or the servers do not answer, the
//! PostgreSQL tests are skipped and say so on stderr — unless `MARQUEE_TEST_REQUIRE_SERVICES=1`
//! (as in CI), where a skip is a failure.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::{io::Write as _, net::SocketAddr, path::PathBuf};

use marquee::{Options, ServiceName, Storage};
use marquee_catalog::CatalogConfig;
use marquee_identity::IdentityConfig;
use marquee_platform::config::ServerConfig;
use marquee_proto::{
    catalog::v1::{
        self as pb, catalog_admin_service_client::CatalogAdminServiceClient,
        catalog_service_client::CatalogServiceClient,
    },
    identity::v1::{self as idpb, identity_service_client::IdentityServiceClient},
    seating::v1 as seatpb,
};
use sea_orm::{ConnectionTrait, Database};
use tokio::{
    net::TcpListener,
    sync::{OnceCell, oneshot},
    task::JoinHandle,
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// Sends `authorization: Bearer <token>` on every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: &str) -> Self {
        Self(Some(
            format!("Bearer {token}").parse().expect("token is ASCII"),
        ))
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client that authenticates every call with a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The password every account the harness creates gets.
pub const PASSWORD: &str = "Correct-horse-9";

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process cache.
    Sqlite,
    /// PostgreSQL + Redis.
    Postgres,
}

/// Writes straight to the process's stderr, which the test harness does not capture: a skip
/// must be seen.
pub fn loud(message: &str) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "\n*** {message}\n");
}

pub fn require_services() -> bool {
    std::env::var("MARQUEE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

pub fn skip(test: &str, why: &str) -> Option<TestApp> {
    if require_services() {
        panic!("{test}: {why} (MARQUEE_TEST_REQUIRE_SERVICES=1 forbids skipping)");
    }
    loud(&format!(
        "SKIPPED {test} on PostgreSQL+Redis: {why}. Set MARQUEE_TEST_DATABASE_URL and \
         MARQUEE_TEST_REDIS_URL to run it."
    ));
    None
}

/// The Redis the tests use, for a test that needs Redis alone; `None` (said loudly) when it is
/// not configured, a failure when CI requires it.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("MARQUEE_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if require_services() => panic!("MARQUEE_TEST_REDIS_URL is not set"),
        Err(_) => {
            loud(&format!(
                "SKIPPED {test}: MARQUEE_TEST_REDIS_URL is not set"
            ));
            None
        }
    }
}

/// External servers for one test: a fresh database and a fresh Redis key prefix.
pub struct External {
    pub admin_url: String,
    pub database: String,
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
}

impl External {
    /// Creates a fresh database, or says why not.
    pub async fn create() -> Result<External, String> {
        let admin_url = std::env::var("MARQUEE_TEST_DATABASE_URL")
            .map_err(|_| "MARQUEE_TEST_DATABASE_URL is not set".to_owned())?;
        let redis_url = std::env::var("MARQUEE_TEST_REDIS_URL")
            .map_err(|_| "MARQUEE_TEST_REDIS_URL is not set".to_owned())?;
        Self::create_on(admin_url, redis_url).await
    }

    /// As [`External::create`], on the PostgreSQL server of `admin_url` and the Redis of
    /// `redis_url`.
    pub async fn create_on(admin_url: String, redis_url: String) -> Result<External, String> {
        let database = format!("marquee_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .map_err(|e| format!("cannot connect to {admin_url}: {e}"))?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
            .await
            .map_err(|e| format!("cannot create a database: {e}"))?;
        let _ = admin.close().await;
        let redis = marquee_platform::redis::connect(&redis_url)
            .await
            .map_err(|e| format!("cannot connect to {redis_url}: {e}"))?;
        drop(redis);
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .ok_or_else(|| "MARQUEE_TEST_DATABASE_URL has no database part".to_owned())?;
        Ok(External {
            database_url: format!("{base}/{database}"),
            admin_url,
            database,
            redis_url,
            redis_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Drops the database and the Redis keys under the prefix (best effort).
    pub async fn drop_database(&self) {
        if let Ok(admin) = Database::connect(&self.admin_url).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.database
                ))
                .await;
            let _ = admin.close().await;
        }
        if let Ok(redis) = marquee_platform::redis::connect(&self.redis_url).await {
            let _ = delete_redis_prefix(&redis, &self.redis_prefix).await;
        }
    }
}

/// Deletes every Redis key that starts with `prefix` (what FLUSHALL does to one deployment,
/// without disturbing the others that share the Redis). Keys without a TTL stay until removed:
/// the seating store's request records are swept by a live instance, not expired by Redis.
pub async fn delete_redis_prefix(
    redis: &marquee_platform::redis::Client,
    prefix: &str,
) -> Result<(), fred::error::Error> {
    use fred::prelude::{ClientLike as _, KeysInterface as _};
    let mut cursor = "0".to_owned();
    loop {
        let (next, keys): (String, Vec<String>) = redis
            .custom(
                fred::cmd!("SCAN"),
                vec![
                    cursor.clone(),
                    "MATCH".into(),
                    format!("{prefix}*"),
                    "COUNT".into(),
                    "1000".into(),
                ],
            )
            .await?;
        if !keys.is_empty() {
            redis.unlink::<i64, _>(keys).await?;
        }
        if next == "0" {
            return Ok(());
        }
        cursor = next;
    }
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub backend: Backend,
    pub options: Options,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
    pub external: Option<External>,
    admin_token: OnceCell<String>,
}

/// Default settings for a test server.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        health_check_interval_ms: 200,
        shutdown_grace_ms: 2_000,
        ..ServerConfig::default()
    }
}

impl TestApp {
    /// Starts every service on `backend`, optionally with the demo data. `None` when the
    /// backend is not available here (and skipping is allowed).
    pub async fn spawn(test: &str, backend: Backend, seed: bool) -> Option<TestApp> {
        Self::spawn_with(test, backend, seed, server_config()).await
    }

    /// As [`TestApp::spawn`], with listener settings.
    pub async fn spawn_with(
        test: &str,
        backend: Backend,
        seed: bool,
        server: ServerConfig,
    ) -> Option<TestApp> {
        Self::spawn_seating(test, backend, seed, server, test_seating_config()).await
    }

    /// As [`TestApp::spawn_with`], with seating settings.
    pub async fn spawn_seating(
        test: &str,
        backend: Backend,
        seed: bool,
        server: ServerConfig,
        seating: marquee_seating::SeatingConfig,
    ) -> Option<TestApp> {
        Self::spawn_full(test, backend, seed, server, seating, None).await
    }

    /// As [`TestApp::spawn_seating`]; with booking settings, booking is served too.
    pub async fn spawn_full(
        test: &str,
        backend: Backend,
        seed: bool,
        server: ServerConfig,
        seating: marquee_seating::SeatingConfig,
        booking: Option<marquee_booking::BookingConfig>,
    ) -> Option<TestApp> {
        let (storage, dir, external) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                (
                    Storage::Embedded {
                        data_dir: dir.path().to_path_buf(),
                    },
                    Some(dir),
                    None,
                )
            }
            Backend::Postgres => match External::create().await {
                Ok(ext) => (
                    Storage::External {
                        database_url: ext.database_url.clone(),
                        redis_url: Some(ext.redis_url.clone()),
                        redis_key_prefix: ext.redis_prefix.clone(),
                    },
                    None,
                    Some(ext),
                ),
                Err(why) => return skip(test, &why),
            },
        };
        let options = Self::options(storage, server, seating, booking, seed);
        Some(Self::start(options, backend, dir, external).await)
    }

    /// Starts every service on the external servers of `ext` (PostgreSQL + Redis).
    pub async fn spawn_external(
        ext: External,
        server: ServerConfig,
        seating: marquee_seating::SeatingConfig,
        booking: Option<marquee_booking::BookingConfig>,
    ) -> TestApp {
        let storage = Storage::External {
            database_url: ext.database_url.clone(),
            redis_url: Some(ext.redis_url.clone()),
            redis_key_prefix: ext.redis_prefix.clone(),
        };
        let options = Self::options(storage, server, seating, booking, false);
        Self::start(options, Backend::Postgres, None, Some(ext)).await
    }

    fn options(
        storage: Storage,
        server: ServerConfig,
        seating: marquee_seating::SeatingConfig,
        booking: Option<marquee_booking::BookingConfig>,
        seed: bool,
    ) -> Options {
        let mut options = Options {
            server,
            catalog: CatalogConfig::default(),
            payments: marquee_payments::PaymentsConfig {
                webhook_secret: Some(marquee_platform::config::Secret::new(
                    "test-webhook-secret".to_owned(),
                )),
                ..Default::default()
            },
            identity: IdentityConfig::default(),
            storage,
            services: vec![
                ServiceName::Identity,
                ServiceName::Catalog,
                ServiceName::Seating,
                ServiceName::Payments,
            ],
            seed_demo_data: seed,
            seating,
            booking: booking.clone().unwrap_or_default(),
            verifier: Some(test_verifier()),
        };
        if booking.is_some() {
            options.services.push(ServiceName::Booking);
        }
        options
    }

    /// Every service, booking included, with booking settings.
    pub async fn spawn_booking(
        test: &str,
        backend: Backend,
        booking: marquee_booking::BookingConfig,
    ) -> Option<TestApp> {
        Self::spawn_full(
            test,
            backend,
            false,
            server_config(),
            test_seating_config(),
            Some(booking),
        )
        .await
    }

    async fn start(
        options: Options,
        backend: Backend,
        dir: Option<tempfile::TempDir>,
        external: Option<External>,
    ) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let mut options = options;
        // Seating calls the catalog on the same listener (as `marquee up` does).
        options.seating.catalog_url = Some(format!("http://{addr}"));
        let opts = options.clone();
        let handle = tokio::spawn(async move {
            marquee::start(opts, listener, async {
                let _ = rx.await;
            })
            .await
        });
        TestApp {
            addr,
            backend,
            options,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
            external,
            admin_token: OnceCell::new(),
        }
    }

    /// Stops the server and starts it again on the same data (a new port).
    pub async fn restart(mut self) -> TestApp {
        self.stop_server().await;
        let dir = self._dir.take();
        let external = self.external.take();
        let options = self.options.clone();
        Self::start(options, self.backend, dir, external).await
    }

    async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("server failed: {e:#}"),
                Err(e) => panic!("server task failed: {e}"),
            }
        }
    }

    /// A second server on the same database and Redis (PostgreSQL backend only): another
    /// instance of the same deployment. It does not own the data.
    pub async fn sibling(&self) -> TestApp {
        let options = self.options.clone();
        Self::start(options, self.backend, None, None).await
    }

    /// Stops the server and removes its data.
    pub async fn stop(mut self) {
        self.stop_server().await;
        if let Some(ext) = self.external.take() {
            ext.drop_database().await;
        }
    }

    /// The database a service of this server keeps its data in (its SQLite file, or the test's
    /// PostgreSQL database), for a test that looks behind the API.
    pub fn database_url(&self, service: &str) -> String {
        match &self.options.storage {
            Storage::Embedded { data_dir } => {
                marquee_platform::db::sqlite_url(&data_dir.join(format!("{service}.db")))
            }
            Storage::External { database_url, .. } => database_url.clone(),
        }
    }

    /// The data directory (SQLite backend).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().to_path_buf())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel().await)
    }

    /// The catalog's admin service, as an admin.
    pub async fn admin(&self) -> CatalogAdminServiceClient<Authed> {
        let token = self.admin_token().await;
        CatalogAdminServiceClient::with_interceptor(self.channel().await, Bearer::new(&token))
    }

    /// The catalog's admin service with `token` (or none).
    pub async fn admin_as(&self, token: Option<&str>) -> CatalogAdminServiceClient<Authed> {
        CatalogAdminServiceClient::with_interceptor(
            self.channel().await,
            Bearer(token.map(|t| Bearer::new(t).0).unwrap_or_default()),
        )
    }

    /// Identity, anonymously.
    pub async fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel().await)
    }

    /// Identity with an access token.
    pub async fn identity_as(&self, token: &str) -> IdentityServiceClient<Authed> {
        IdentityServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    /// An admin's access token: the first admin is created the way `marquee admin create` does
    /// it (directly in identity's store), then signs in over gRPC.
    pub async fn admin_token(&self) -> String {
        self.admin_token
            .get_or_init(|| async {
                // The server has opened (and migrated) identity's store once it answers; only
                // then does the harness open the store itself.
                self.identity()
                    .await
                    .get_jwks(idpb::GetJwksRequest {})
                    .await
                    .expect("identity answers");
                let email = format!("admin-{}@marquee.test", uuid::Uuid::new_v4().simple());
                marquee::create_admin(
                    &self.options.storage,
                    &self.options.identity,
                    &email,
                    PASSWORD,
                )
                .await
                .expect("create the first admin");
                self.sign_in(&email, PASSWORD)
                    .await
                    .expect("admin signs in")
                    .access_token
            })
            .await
            .clone()
    }

    /// Signs in over gRPC.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
    ) -> Result<idpb::Tokens, tonic::Status> {
        Ok(self
            .identity()
            .await
            .sign_in(idpb::SignInRequest {
                email: email.into(),
                password: password.into(),
            })
            .await?
            .into_inner()
            .tokens
            .expect("tokens"))
    }

    /// Signs a new customer up (with a fresh email) and in; returns the email and the tokens.
    pub async fn customer(&self) -> (String, idpb::Tokens) {
        let email = format!("customer-{}@example.com", uuid::Uuid::new_v4().simple());
        self.identity()
            .await
            .sign_up(idpb::SignUpRequest {
                request_id: rid(),
                email: email.clone(),
                phone: String::new(),
                password: PASSWORD.into(),
                consents: Vec::new(),
            })
            .await
            .expect("sign up");
        let tokens = self.sign_in(&email, PASSWORD).await.expect("sign in");
        (email, tokens)
    }
}

/// Runs a scenario `async fn(TestApp)` on both backends, as two tests named `sqlite` and
/// `postgres` in a module named after the scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let name = concat!(stringify!($scenario), "::sqlite");
                if let Some(app) = common::TestApp::spawn(name, common::Backend::Sqlite, false).await {
                    super::$scenario(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!(stringify!($scenario), "::postgres");
                if let Some(app) = common::TestApp::spawn(name, common::Backend::Postgres, false).await {
                    super::$scenario(app).await;
                }
            }
        }
    )*};
}

// ----- fixtures ------------------------------------------------------------------------------------

pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn inr(amount_minor: i64) -> marquee_proto::common::v1::Money {
    marquee_proto::common::v1::Money {
        currency_code: "INR".into(),
        amount_minor,
    }
}

pub fn seat(number: i32) -> pb::RowItem {
    pb::RowItem {
        item: Some(pb::row_item::Item::Seat(pb::Seat {
            id: String::new(),
            number,
            kind: pb::SeatKind::Standard as i32,
        })),
    }
}

pub fn gap(width: i32) -> pb::RowItem {
    pb::RowItem {
        item: Some(pb::row_item::Item::Gap(pb::Gap { width })),
    }
}

/// A small two-category layout: row A (PRIME) with an aisle, rows B and C (CLASSIC), and a
/// wheelchair space in row C.
pub fn small_layout() -> pb::SeatLayout {
    let row = |label: &str, cat: &str, items: Vec<pb::RowItem>| pb::SeatRow {
        label: label.into(),
        category_code: cat.into(),
        items,
    };
    pb::SeatLayout {
        categories: vec![
            pb::SeatCategory {
                code: "PRIME".into(),
                name: "Prime".into(),
            },
            pb::SeatCategory {
                code: "CLASSIC".into(),
                name: "Classic".into(),
            },
        ],
        rows: vec![
            row(
                "A",
                "PRIME",
                vec![seat(1), seat(2), gap(1), seat(3), seat(4)],
            ),
            row(
                "B",
                "CLASSIC",
                vec![seat(1), seat(2), gap(1), seat(3), seat(4)],
            ),
            row(
                "C",
                "CLASSIC",
                vec![
                    pb::RowItem {
                        item: Some(pb::row_item::Item::Seat(pb::Seat {
                            id: String::new(),
                            number: 1,
                            kind: pb::SeatKind::Wheelchair as i32,
                        })),
                    },
                    pb::RowItem {
                        item: Some(pb::row_item::Item::Seat(pb::Seat {
                            id: String::new(),
                            number: 2,
                            kind: pb::SeatKind::Companion as i32,
                        })),
                    },
                ],
            ),
        ],
    }
}

/// The seat id of index `i` of a layout of rows of 100 seats (A-1 .. A-100, B-1, ...).
pub fn grid_seat(i: usize) -> String {
    format!("{}-{}", char::from(b'A' + (i / 100) as u8), i % 100 + 1)
}

/// The `p` quantile (0..=1) of sorted samples; NaN for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A one-category (PRIME) layout of `rows` rows (A, B, ...) of `per_row` seats each.
pub fn grid_layout(rows: usize, per_row: i32) -> pb::SeatLayout {
    pb::SeatLayout {
        categories: vec![
            pb::SeatCategory {
                code: "PRIME".into(),
                name: "Prime".into(),
            },
            pb::SeatCategory {
                code: "CLASSIC".into(),
                name: "Classic".into(),
            },
        ],
        rows: (0..rows)
            .map(|r| pb::SeatRow {
                label: char::from(b'A' + r as u8).to_string(),
                category_code: if r == rows - 1 { "CLASSIC" } else { "PRIME" }.into(),
                items: (1..=per_row).map(seat).collect(),
            })
            .collect(),
    }
}

/// A city, a theatre with one screen, and a movie, created through the admin API.
pub struct Venue {
    pub city: pb::City,
    pub theatre: pb::Theatre,
    pub screen: pb::Screen,
    pub movie: pb::Movie,
}

pub fn movie(title: &str, language: &str, genres: &[&str], minutes: i64) -> pb::Movie {
    pb::Movie {
        id: String::new(),
        title: title.into(),
        synopsis: format!("{title}: a test movie."),
        original_language: language.into(),
        genres: genres.iter().map(|g| (*g).to_owned()).collect(),
        runtime: Some(prost_types::Duration {
            seconds: minutes * 60,
            nanos: 0,
        }),
        certification: "UA13+".into(),
        release_date: "2026-11-01".into(),
        cast: vec!["A. Actor".into()],
        directors: vec!["D. Rector".into()],
    }
}

pub async fn venue(app: &TestApp) -> Venue {
    venue_with(app, small_layout()).await
}

/// As [`venue`], with the screen's `layout` (categories PRIME and CLASSIC, as [`schedule`] prices).
pub async fn venue_with(app: &TestApp, layout: pb::SeatLayout) -> Venue {
    let mut admin = app.admin().await;
    let city = admin
        .create_city(pb::CreateCityRequest {
            request_id: rid(),
            city: Some(pb::City {
                id: String::new(),
                name: format!("Testpur {}", &rid()[24..]),
                region: "Test Pradesh".into(),
                country_code: "IN".into(),
                time_zone: "Asia/Kolkata".into(),
                currency_code: "INR".into(),
            }),
        })
        .await
        .expect("city")
        .into_inner()
        .city
        .expect("city");
    let theatre = admin
        .create_theatre(pb::CreateTheatreRequest {
            request_id: rid(),
            theatre: Some(pb::Theatre {
                id: String::new(),
                city_id: city.id.clone(),
                name: "Galaxy Cinemas".into(),
                address: "1 MG Road".into(),
                amenities: vec!["Parking".into()],
            }),
        })
        .await
        .expect("theatre")
        .into_inner()
        .theatre
        .expect("theatre");
    let screen = admin
        .create_screen(pb::CreateScreenRequest {
            request_id: rid(),
            theatre_id: theatre.id.clone(),
            name: "Audi 1".into(),
            formats: vec![pb::Format::Format2d as i32, pb::Format::Format3d as i32],
            layout: Some(layout),
        })
        .await
        .expect("screen")
        .into_inner()
        .screen
        .expect("screen");
    let movie = admin
        .create_movie(pb::CreateMovieRequest {
            request_id: rid(),
            movie: Some(movie(
                &format!("The Test Movie {}", &rid()[24..]),
                "hi",
                &["Drama", "Thriller"],
                120,
            )),
        })
        .await
        .expect("movie")
        .into_inner()
        .movie
        .expect("movie");
    Venue {
        city,
        theatre,
        screen,
        movie,
    }
}

pub fn screen_id(v: &Venue) -> String {
    v.screen.screen.as_ref().expect("summary").id.clone()
}

pub fn at(secs: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn prices(prime: i64, classic: i64) -> Vec<pb::ShowPrice> {
    vec![
        pb::ShowPrice {
            category_code: "PRIME".into(),
            price: Some(inr(prime)),
        },
        pb::ShowPrice {
            category_code: "CLASSIC".into(),
            price: Some(inr(classic)),
        },
    ]
}

/// Schedules (as admin) a show of the venue starting `in_secs` from now, as [`schedule`] makes it.
pub async fn show_in(app: &TestApp, v: &Venue, in_secs: i64) -> pb::Show {
    app.admin()
        .await
        .schedule_show(schedule(v, now() + in_secs))
        .await
        .expect("schedule")
        .into_inner()
        .show
        .expect("show")
}

/// Schedules a 2D Hindi show of the venue's movie starting at `start` for 2h30.
pub fn schedule(v: &Venue, start: i64) -> pb::ScheduleShowRequest {
    pb::ScheduleShowRequest {
        request_id: rid(),
        movie_id: v.movie.id.clone(),
        screen_id: screen_id(v),
        start_time: Some(at(start)),
        end_time: Some(at(start + 150 * 60)),
        language: "hi".into(),
        format: pb::Format::Format2d as i32,
        prices: prices(35_000, 20_000),
    }
}

/// The field named by the `BadRequest` detail of an `INVALID_ARGUMENT` status.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo` reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

// ----- access tokens -------------------------------------------------------------------------------

/// The test signing key's seed (Ed25519): tests mint their own tokens; servers trust its JWKS.
const TEST_KEY_SEED: [u8; 32] = [7; 32];
const TEST_KID: &str = "test-key";

/// Seating settings for tests: the defaults, but without the per-user rate of holds (the race
/// and load tests hold far faster than a person does; the limit has a test of its own). Tests
/// that need short holds set their own.
pub fn test_seating_config() -> marquee_seating::SeatingConfig {
    marquee_seating::SeatingConfig {
        holds_per_user: marquee_platform::ratelimit::RateLimit::OFF,
        ..marquee_seating::SeatingConfig::default()
    }
}

/// A verifier that trusts the test key.
pub fn test_verifier() -> marquee_platform::auth::Verifier {
    use base64::Engine as _;
    let public = ed25519_dalek::SigningKey::from_bytes(&TEST_KEY_SEED)
        .verifying_key()
        .to_bytes();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": TEST_KID, "alg": "EdDSA", "use": "sig"}]
    }))
    .expect("jwks");
    let verifier = marquee_platform::auth::Verifier::new();
    assert_eq!(verifier.set_keys(&jwks), 1);
    verifier
}

/// A signed-in customer's access token.
pub fn customer(name: &str) -> String {
    token(name, &[marquee_platform::auth::Role::Customer])
}

/// HoldSeats of explicit seats, under a new request id.
pub fn explicit(show_id: &str, seats: &[&str]) -> seatpb::HoldSeatsRequest {
    seatpb::HoldSeatsRequest {
        request_id: rid(),
        show_id: show_id.to_owned(),
        selection: Some(seatpb::hold_seats_request::Selection::Seats(
            seatpb::SeatSelection {
                seat_ids: seats.iter().map(|s| (*s).to_owned()).collect(),
            },
        )),
    }
}

/// ExtendHold by `seconds` as `who`: the hold extended.
pub async fn extend_hold(
    c: &mut seatpb::seating_service_client::SeatingServiceClient<Channel>,
    who: &str,
    hold_id: &str,
    seconds: i64,
) -> Result<seatpb::Hold, tonic::Status> {
    c.extend_hold(authed(
        who,
        seatpb::ExtendHoldRequest {
            hold_id: hold_id.to_owned(),
            extension: Some(prost_types::Duration { seconds, nanos: 0 }),
        },
    ))
    .await
    .map(|r| r.into_inner().hold.expect("hold"))
}

/// Each seat of a show's map with its state, as a viewer who is not signed in sees it.
pub async fn seat_states(
    channel: Channel,
    show_id: &str,
) -> std::collections::HashMap<String, seatpb::SeatState> {
    seatpb::seating_service_client::SeatingServiceClient::new(channel)
        .get_seat_map(seatpb::GetSeatMapRequest {
            show_id: show_id.to_owned(),
        })
        .await
        .expect("seat map")
        .into_inner()
        .seat_map
        .expect("map")
        .seats
        .into_iter()
        .map(|s| (s.seat_id.clone(), s.state()))
        .collect()
}

/// A signed access token for `subject` with `roles`.
pub fn token(subject: &str, roles: &[marquee_platform::auth::Role]) -> String {
    token_for(subject, roles, &[])
}

/// A signed access token for `subject` with `roles`, acting for `theatres` (partners, staff).
pub fn token_for(
    subject: &str,
    roles: &[marquee_platform::auth::Role],
    theatres: &[&str],
) -> String {
    // PKCS#8 v1 DER of an Ed25519 private key: a fixed prefix and the 32-byte seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&TEST_KEY_SEED);
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(TEST_KID.to_owned());
    let now = chrono::Utc::now().timestamp();
    let claims = marquee_platform::auth::Claims {
        iss: marquee_platform::auth::ISSUER.to_owned(),
        aud: marquee_platform::auth::AUDIENCE.to_owned(),
        sub: subject.to_owned(),
        iat: now,
        exp: now + 3600,
        jti: uuid::Uuid::new_v4().to_string(),
        roles: roles.to_vec(),
        theatres: theatres.iter().map(|t| (*t).to_owned()).collect(),
    };
    jsonwebtoken::encode(&header, &claims, &key).expect("token")
}

/// `request` with `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// A Redis server of one test's own (`redis-server` from PATH, on a free port, keeping nothing
/// on disk), which the test may kill and start again: a real restart, which the shared Redis
/// cannot have without disturbing the tests running beside it. Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one, or says why not (`None`, loudly; a failure when CI requires the servers).
    pub async fn start(test: &str) -> Option<PrivateRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = PrivateRedis { port, child: None };
        match redis.run().await {
            Ok(()) => Some(redis),
            Err(why) if require_services() => panic!("{test}: {why}"),
            Err(why) => {
                loud(&format!("SKIPPED {test}: {why}"));
                None
            }
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no goodbye to its clients, and its data is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.run().await.expect("redis-server starts again");
    }

    async fn run(&mut self) -> Result<(), String> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(format!("redis-server did not listen on {}", self.port))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
