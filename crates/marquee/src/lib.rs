//! Assembles Marquee's services into listeners: the embedded default (`marquee up`: every
//! service in one process on SQLite and in-process caches) and the distributed mode
//! (`marquee serve <service>` against PostgreSQL and Redis). The binary in `main.rs` only parses
//! arguments, sets up telemetry, binds and waits for the shutdown signal; tests call [`start`]
//! directly.

#![forbid(unsafe_code)]

/// mimalloc instead of glibc's allocator, for every binary that runs Marquee (`marquee`, the
/// tests and benchmarks, which link this library): the hold path allocates per call on every worker
/// thread, and glibc's arenas made allocation about a fifth of the server's CPU; with mimalloc
/// the seating benchmark runs about 1.5x the holds per second (README, "Seating benchmark").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{future::Future, path::PathBuf, time::Duration};

use anyhow::Context as _;
use marquee_catalog::CatalogConfig;
use marquee_identity::IdentityConfig;
use marquee_payments::PaymentsConfig;
use marquee_platform::{
    auth::Verifier,
    cache::Cache,
    config::{ServerConfig, StoreConfig, TelemetryConfig},
    server::ServerBuilder,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

/// Everything `marquee` can be configured with: defaults, then the file given with `--config`,
/// then `MARQUEE_*` environment variables (`MARQUEE_SERVER__LISTEN=0.0.0.0:50051`), then
/// `DATABASE_URL` and `REDIS_URL`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarqueeConfig {
    /// The listener.
    pub server: ServerConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// Database and Redis of the distributed mode.
    pub store: StoreConfig,
    /// The catalog service.
    pub catalog: CatalogConfig,
    /// Payments and the mock provider.
    pub payments: PaymentsConfig,
    /// The identity service (and, for the other services, where to reach it).
    pub identity: IdentityConfig,
    /// The seating service.
    pub seating: marquee_seating::SeatingConfig,
    /// The booking service.
    pub booking: marquee_booking::BookingConfig,
    /// The gateway (`marquee serve gateway`).
    pub gateway: marquee_gateway::GatewayConfig,
}

impl MarqueeConfig {
    /// Loads the configuration (see the type's documentation).
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        Ok(marquee_platform::config::load(
            file,
            &[
                ("DATABASE_URL", "store.database_url"),
                ("REDIS_URL", "store.redis_url"),
            ],
        )?)
    }
}

/// The services one process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceName {
    /// `marquee.identity.v1.IdentityService`.
    Identity,
    /// `marquee.catalog.v1.CatalogService` and `CatalogAdminService`.
    Catalog,
    /// `marquee.payments.v1.PaymentService`, `MockCheckoutService` and the webhook endpoint.
    Payments,
    /// `marquee.seating.v1.SeatingService` and `SeatingAdminService`.
    Seating,
    /// `marquee.booking.v1.BookingService` and its saga worker.
    Booking,
    /// The gRPC-Web gateway in front of the other services: its own listener and
    /// configuration (`[gateway]`), no storage. See [`gateway`].
    Gateway,
}

/// Where the services keep their data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// One SQLite file per service under a directory, in-process caches.
    Embedded {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// A database URL (each service in its own schema on PostgreSQL) and, optionally, Redis.
    External {
        /// `postgres://…` (or `sqlite://…`).
        database_url: String,
        /// `redis://…`; without it caches live in the process.
        redis_url: Option<String>,
        /// Prefix of every Redis key.
        redis_key_prefix: String,
    },
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Listener settings.
    pub server: ServerConfig,
    /// Catalog settings.
    pub catalog: CatalogConfig,
    /// Payments settings.
    pub payments: PaymentsConfig,
    /// Identity settings.
    pub identity: IdentityConfig,
    /// Storage.
    pub storage: Storage,
    /// The services to serve.
    pub services: Vec<ServiceName>,
    /// Load the demo data into services that are empty.
    pub seed_demo_data: bool,
    /// Seating settings (`catalog_url` must be set when seating is served).
    pub seating: marquee_seating::SeatingConfig,
    /// Booking settings (the other services' addresses default to this listener when they run
    /// in the same process).
    pub booking: marquee_booking::BookingConfig,
    /// Verifies access tokens; without one every token is refused.
    pub verifier: Option<Verifier>,
}

/// Connections shared by the services of one process.
struct Shared {
    cache: Cache,
    redis: Option<marquee_platform::redis::Client>,
    bus: marquee_platform::events::Bus,
}

async fn shared(storage: &Storage, catalog: &CatalogConfig) -> anyhow::Result<Shared> {
    let in_memory = || {
        Cache::in_memory(
            catalog.cache_max_entries,
            Duration::from_secs(catalog.cache_ttl_secs.max(1)),
        )
    };
    match storage {
        Storage::External {
            redis_url: Some(url),
            redis_key_prefix,
            ..
        } => {
            let client = marquee_platform::redis::connect(url)
                .await
                .context("store.redis_url: cannot connect to Redis")?;
            Ok(Shared {
                cache: Cache::redis(client.clone(), redis_key_prefix),
                bus: marquee_platform::events::Bus::redis(client.clone(), redis_key_prefix),
                redis: Some(client),
            })
        }
        _ => Ok(Shared {
            cache: in_memory(),
            redis: None,
            bus: marquee_platform::events::Bus::in_process(),
        }),
    }
}

fn database_url(storage: &Storage, service: &str) -> anyhow::Result<String> {
    match storage {
        Storage::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("--data: cannot create {}", data_dir.display()))?;
            Ok(marquee_platform::db::sqlite_url(
                &data_dir.join(format!("{service}.db")),
            ))
        }
        Storage::External { database_url, .. } => Ok(database_url.clone()),
    }
}

/// Today in the demo cities' time zone: the demo data's first day.
pub fn demo_today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive()
}

/// Opens every requested service (running migrations, seeding if asked) and returns a listener
/// builder serving them; `local_addr` is the address the listener is bound to.
///
/// Identity is opened first: every listener verifies access tokens with its public keys, taken
/// in-process when identity runs here, else fetched with GetJwks from `identity.endpoint` at
/// start-up and every `identity.jwks_refresh_secs`.
pub async fn build(
    options: &Options,
    local_addr: std::net::SocketAddr,
) -> anyhow::Result<ServerBuilder> {
    let shared = shared(&options.storage, &options.catalog).await?;
    let mut builder = ServerBuilder::new(options.server.clone());
    let identity = if options.services.contains(&ServiceName::Identity) {
        let url = database_url(&options.storage, "identity")?;
        Some(
            marquee_identity::open(&url, &options.identity)
                .await
                .context("identity: cannot open its database")?,
        )
    } else {
        None
    };
    let verifier = match (&options.verifier, &identity) {
        // Tests bring a verifier of their own (it trusts their test key) and add identity's
        // keys to it.
        (Some(extra), Some(identity)) => {
            extra.add_keys(&identity.jwks());
            extra.clone()
        }
        (Some(extra), None) => extra.clone(),
        (None, Some(identity)) => marquee_identity::verifier(identity),
        (None, None) => {
            let endpoint = options.identity.endpoint.as_deref().context(
                "identity.endpoint is not set: services verify access tokens with the keys of \
                 the identity service, so they must know where it is when it does not run in \
                 this process",
            )?;
            marquee_identity::remote::remote_verifier(
                endpoint,
                Duration::from_secs(options.identity.jwks_refresh_secs),
                builder.drain_token(),
            )
            .await?
        }
    };
    builder = builder.with_verifier(verifier);
    if let Some(redis) = shared.redis.clone() {
        builder = builder.readiness_check("redis", move || {
            let redis = redis.clone();
            async move { marquee_platform::redis::ping(&redis).await }
        });
    }
    for service in &options.services {
        match service {
            ServiceName::Identity => {
                if let Some(identity) = &identity {
                    retain_keys(&builder, options, identity.store().db(), "identity");
                    builder = marquee_identity::serve(
                        builder,
                        identity,
                        options.server.max_message_bytes,
                    );
                }
            }
            ServiceName::Catalog => {
                let url = database_url(&options.storage, "catalog")?;
                let catalog = marquee_catalog::open(&url, shared.cache.clone(), &options.catalog)
                    .await
                    .context("catalog: cannot open its database")?;
                retain_keys(&builder, options, catalog.store().db(), "catalog");
                if options.seed_demo_data && catalog.seed_if_empty(demo_today()).await? {
                    tracing::info!("catalog: demo data loaded");
                }
                builder =
                    marquee_catalog::serve(builder, &catalog, options.server.max_message_bytes);
            }
            ServiceName::Payments => {
                let url = database_url(&options.storage, "payments")?;
                let webhook = format!("http://{local_addr}{}", marquee_payments::WEBHOOK_PATH);
                let payments = marquee_payments::open(&url, &options.payments, Some(webhook))
                    .await
                    .context("payments: cannot open its database")?;
                retain_keys(&builder, options, payments.store().db(), "payments");
                marquee_platform::events::spawn_relay(
                    payments.store().db().clone(),
                    shared.bus.clone(),
                    builder.drain_token(),
                );
                builder =
                    marquee_payments::serve(builder, &payments, options.server.max_message_bytes);
            }
            ServiceName::Seating => {
                let url = database_url(&options.storage, "seating")?;
                let backend = match (&options.storage, shared.redis.clone()) {
                    (
                        Storage::External {
                            redis_key_prefix, ..
                        },
                        Some(client),
                    ) => marquee_seating::HoldBackend::Redis {
                        client,
                        prefix: redis_key_prefix.clone(),
                    },
                    _ => marquee_seating::HoldBackend::Memory,
                };
                let seating = marquee_seating::open(&url, backend, &options.seating)
                    .await
                    .context("seating: cannot start")?;
                retain_keys(&builder, options, seating.db().connection(), "seating");
                builder =
                    marquee_seating::serve(builder, &seating, options.server.max_message_bytes)
                        .await;
            }
            ServiceName::Booking => {
                let bookings = open_booking(options, local_addr, identity.as_ref()).await?;
                retain_keys(&builder, options, bookings.store().db(), "booking");
                marquee_platform::events::spawn_relay(
                    bookings.store().db().clone(),
                    shared.bus.clone(),
                    builder.drain_token(),
                );
                // Other instances' changes reach this one's WatchBooking streams through the
                // shared bus. In-process, every change is this process's own and already wakes
                // its watchers as it commits.
                if let marquee_platform::events::Bus::Redis { .. } = &shared.bus {
                    bookings
                        .store()
                        .follow_changes(&shared.bus, &builder.drain_token());
                }
                builder =
                    marquee_booking::serve(builder, &bookings, options.server.max_message_bytes);
            }
            ServiceName::Gateway => {
                anyhow::bail!("the gateway runs on its own listener: `marquee serve gateway`")
            }
        }
    }
    Ok(builder)
}

/// Forgets a service's idempotency keys after `server.idempotency_retention_secs`, until the
/// listener drains.
fn retain_keys(
    builder: &ServerBuilder,
    options: &Options,
    db: &sea_orm::DatabaseConnection,
    service: &'static str,
) {
    marquee_platform::idempotency::spawn_retention(
        db.clone(),
        service,
        Duration::from_secs(options.server.idempotency_retention_secs),
        builder.drain_token(),
    );
}

/// The address of a service booking calls: the configured one, else this listener when the
/// service runs in this process.
fn booking_peer(
    options: &Options,
    local_addr: std::net::SocketAddr,
    configured: &Option<String>,
    setting: &str,
    service: ServiceName,
) -> anyhow::Result<tonic::transport::Channel> {
    let url = match configured {
        Some(url) => url.clone(),
        None if options.services.contains(&service) => format!("http://{local_addr}"),
        None => anyhow::bail!(
            "{setting} is not set: booking calls {service:?}, which does not run in this process"
        ),
    };
    marquee_booking::remote::lazy_channel(setting, &url).map_err(anyhow::Error::msg)
}

/// Booking's own service token. With identity in this process, booking registers a client at
/// start-up and takes tokens by client credentials in-process; otherwise it uses the
/// configured `booking.client_id`/`client_secret` against `identity.endpoint`.
async fn booking_tokens(
    options: &Options,
    identity: Option<&marquee_identity::Identity>,
) -> anyhow::Result<marquee_booking::TokenSource> {
    let config = &options.booking;
    if let (Some(client_id), Some(secret)) = (&config.client_id, &config.client_secret) {
        let endpoint = options.identity.endpoint.as_deref().context(
            "identity.endpoint is not set: booking takes its service token from identity",
        )?;
        let channel = marquee_booking::remote::lazy_channel("identity.endpoint", endpoint)
            .map_err(anyhow::Error::msg)?;
        return Ok(marquee_booking::TokenSource::client_credentials(
            channel,
            client_id.clone(),
            secret.expose().clone(),
        ));
    }
    let identity = identity.context(
        "booking.client_id and booking.client_secret are not set: booking needs its own \
         service credentials when identity does not run in this process",
    )?;
    // A fresh client per start: its secret is known only to this process.
    let (client, secret) = identity
        .create_client(
            &uuid::Uuid::now_v7().to_string(),
            marquee_identity::service::ClientRequest {
                display_name: "booking (in-process)".to_owned(),
                role: marquee_platform::auth::Role::Service,
                theatres: Vec::new(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("identity: cannot register booking's client: {e}"))?;
    let secret = secret.context("identity returned no client secret")?;
    let identity = identity.clone();
    Ok(marquee_booking::TokenSource::new(move || {
        let identity = identity.clone();
        let client_id = client.id.clone();
        let secret = secret.clone();
        Box::pin(async move {
            identity
                .issue_client_token(&client_id, &secret)
                .await
                .map(|t| (t.token, t.expires_at))
                .map_err(|e| format!("identity refused booking's token: {e}"))
        })
    }))
}

async fn open_booking(
    options: &Options,
    local_addr: std::net::SocketAddr,
    identity: Option<&marquee_identity::Identity>,
) -> anyhow::Result<marquee_booking::Bookings> {
    let config = &options.booking;
    config.validate().map_err(anyhow::Error::msg)?;
    let remotes = marquee_booking::Remotes::new(
        booking_peer(
            options,
            local_addr,
            &config.catalog_url,
            "booking.catalog_url",
            ServiceName::Catalog,
        )?,
        booking_peer(
            options,
            local_addr,
            &config.seating_url,
            "booking.seating_url",
            ServiceName::Seating,
        )?,
        booking_peer(
            options,
            local_addr,
            &config.payments_url,
            "booking.payments_url",
            ServiceName::Payments,
        )?,
        booking_tokens(options, identity).await?,
    );
    let url = database_url(&options.storage, "booking")?;
    marquee_booking::open(&url, remotes, config)
        .await
        .context("booking: cannot open its database")
}

/// Runs the requested services on `listener` until `shutdown` completes.
pub async fn start(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let builder = build(&options, listener.local_addr()?).await?;
    builder.serve(listener, shutdown).await
}

/// Runs the migrations of the requested services.
pub async fn migrate(storage: &Storage, services: &[ServiceName]) -> anyhow::Result<()> {
    for service in services {
        match service {
            ServiceName::Identity => {
                let url = database_url(storage, "identity")?;
                marquee_identity::IdentityStore::open(&url)
                    .await
                    .context("identity: migration failed")?;
            }
            ServiceName::Catalog => {
                let url = database_url(storage, "catalog")?;
                marquee_catalog::CatalogStore::open(&url)
                    .await
                    .context("catalog: migration failed")?;
            }
            ServiceName::Payments => {
                let url = database_url(storage, "payments")?;
                marquee_payments::store::PaymentsStore::open(&url)
                    .await
                    .context("payments: migration failed")?;
            }
            ServiceName::Seating => {
                let url = database_url(storage, "seating")?;
                marquee_seating::store::db::SeatingDb::open(&url)
                    .await
                    .context("seating: migration failed")?;
            }
            ServiceName::Booking => {
                let url = database_url(storage, "booking")?;
                marquee_booking::store::BookingStore::open(&url)
                    .await
                    .context("booking: migration failed")?;
            }
            ServiceName::Gateway => {}
        }
    }
    Ok(())
}

/// Loads the demo data into services that hold none. Returns the services that were seeded.
pub async fn seed(storage: &Storage, catalog: &CatalogConfig) -> anyhow::Result<Vec<ServiceName>> {
    let shared = shared(storage, catalog).await?;
    let url = database_url(storage, "catalog")?;
    let cat = marquee_catalog::open(&url, shared.cache, catalog).await?;
    let mut seeded = Vec::new();
    if cat.seed_if_empty(demo_today()).await? {
        seeded.push(ServiceName::Catalog);
    }
    Ok(seeded)
}

/// Creates an admin account directly in identity's store (the first admin: `marquee admin
/// create`). Refused when the email is taken or the password is weak.
pub async fn create_admin(
    storage: &Storage,
    identity: &IdentityConfig,
    email: &str,
    password: &str,
) -> anyhow::Result<marquee_identity::domain::model::User> {
    let url = database_url(storage, "identity")?;
    let service = marquee_identity::open(&url, identity)
        .await
        .context("identity: cannot open its database")?;
    service
        .create_admin(email, password)
        .await
        .map_err(|e| match e {
            marquee_identity::IdentityError::Invalid(v) => anyhow::anyhow!("{v}"),
            other => anyhow::Error::new(other),
        })
}

/// The gateway of `config.gateway`. It verifies access tokens with identity's public keys:
/// fetched with GetJwks from `identity.endpoint` (and refreshed every
/// `identity.jwks_refresh_secs` until `stop`), or read from `gateway.jwks_file`.
pub async fn gateway(
    config: &MarqueeConfig,
    stop: marquee_platform::CancellationToken,
) -> anyhow::Result<marquee_gateway::Gateway> {
    let verifier = match (&config.identity.endpoint, &config.gateway.jwks_file) {
        (Some(endpoint), _) => {
            marquee_identity::remote::remote_verifier(
                endpoint,
                Duration::from_secs(config.identity.jwks_refresh_secs),
                stop,
            )
            .await?
        }
        (None, Some(file)) => {
            let verifier = marquee_platform::auth::Verifier::new();
            let keys = verifier.set_keys(&marquee_gateway::read_jwks(file)?);
            if keys == 0 {
                anyhow::bail!(
                    "gateway.jwks_file: {} holds no Ed25519 key with a key id",
                    file.display()
                );
            }
            verifier
        }
        (None, None) => {
            tracing::warn!(
                "neither identity.endpoint nor gateway.jwks_file is set: every access token \
                 will be refused"
            );
            marquee_platform::auth::Verifier::new()
        }
    };
    marquee_gateway::Gateway::new(config.gateway.clone(), verifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_routes_load_from_a_file_keeping_service_names() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            "[gateway]\nlisten = \"127.0.0.1:8081\"\n\
             [gateway.rate_limits]\nper_user = { requests_per_minute = 5, burst = 2 }\n\
             [gateway.routes]\n\"marquee.catalog.v1.CatalogService\" = [\"http://127.0.0.1:50051\", \"http://127.0.0.1:50052\"]\n",
        )
        .expect("write");
        let config = MarqueeConfig::load(Some(&file)).expect("loads");
        assert_eq!(config.gateway.listen.port(), 8081);
        assert_eq!(config.gateway.rate_limits.per_user.burst, 2);
        assert_eq!(
            config
                .gateway
                .routes
                .get("marquee.catalog.v1.CatalogService")
                .map(Vec::len),
            Some(2)
        );
        config.gateway.validate().expect("valid");
    }

    #[test]
    fn live_theatres_load_from_a_file_keyed_by_theatre_id() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("seating.toml");
        let theatre = "0193a5b2-7c1e-7f00-8000-00000000abcd";
        std::fs::write(
            &file,
            format!(
                "[seating.connectors.\"{theatre}\"]\nurl = \"https://tickets.example:443\"\n\
                 token = \"s3cret\"\n"
            ),
        )
        .expect("write");
        let config = MarqueeConfig::load(Some(&file)).expect("loads");
        let c = config.seating.connectors.get(theatre).expect("the theatre");
        assert_eq!(c.url, "https://tickets.example:443");
        assert_eq!(
            c.token.as_ref().map(|t| t.expose().as_str()),
            Some("s3cret")
        );
        assert_eq!(c.timeout_ms, 2_000, "the default");
        config.seating.validate().expect("valid");

        std::fs::write(
            &file,
            format!("[seating.connectors.\"{theatre}\"]\ntimeout_ms = 5\n"),
        )
        .expect("write");
        let config = MarqueeConfig::load(Some(&file)).expect("loads");
        let error = config.seating.validate().expect_err("no url");
        assert!(
            error.contains(&format!("seating.connectors.{theatre}.url")),
            "{error}"
        );
    }
}
