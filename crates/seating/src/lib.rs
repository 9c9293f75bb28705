//! Seating: seat maps, seat holds that expire, sold seats, allocation to sales channels, and the
//! live streams (WatchSeats, WatchHold).
//!
//! - [`grpc`]: the adapter for `marquee.seating.v1.SeatingService` and `SeatingAdminService`,
//!   the two server streams, and the one error-to-status mapping.
//! - [`service`]: the application service (show checks, allocation, idempotency, confirm).
//! - [`domain`]: types, rules (validation, best-available selection) and errors; no tonic, no
//!   sea-orm, no fred.
//! - [`store`]: the hold store contract with its Redis and in-process implementations, and the
//!   database (sold seats, allocations).
//! - [`catalog`]: shows and layouts from the catalog over gRPC, cached.
//! - [`connector`]: the systems of theatres sold in live mode, which lock seats before they are
//!   held here (`marquee.partner.v1.TheatreConnectorService`).
//!
//! Start reading at [`open`] and [`serve`], then [`grpc`].

#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod connector;
pub mod domain;
pub mod grpc;
pub mod service;
mod shared;
pub mod store;

use std::time::Duration;

pub use config::SeatingConfig;
use marquee_platform::server::ServerBuilder;
use marquee_proto::seating::v1::{
    seating_admin_service_server::SeatingAdminServiceServer,
    seating_service_server::SeatingServiceServer,
};
pub use service::Seating;
use store::{HoldStore, db::SeatingDb, memory::MemoryHoldStore, redis::RedisHoldStore};

/// Where holds live.
pub enum HoldBackend {
    /// In the process (one instance).
    Memory,
    /// Redis, shared by every instance, keys under `prefix`.
    Redis {
        /// The client.
        client: marquee_platform::redis::Client,
        /// Key prefix.
        prefix: String,
    },
}

/// Opens seating: its database (migrated), the hold store, and the catalog client.
pub async fn open(
    database_url: &str,
    backend: HoldBackend,
    config: &SeatingConfig,
) -> anyhow::Result<Seating> {
    config.validate().map_err(anyhow::Error::msg)?;
    let url = config
        .catalog_url
        .clone()
        .ok_or_else(|| anyhow::anyhow!("seating.catalog_url is not set"))?;
    let db = SeatingDb::open(database_url).await?;
    let store = match backend {
        HoldBackend::Memory => HoldStore::Memory(MemoryHoldStore::new()),
        HoldBackend::Redis { client, prefix } => {
            HoldStore::Redis(RedisHoldStore::new(client, &prefix).await?)
        }
    };
    let catalog = catalog::CatalogSource::new(
        &url,
        Duration::from_secs(config.layout_cache_secs.max(1)),
        Duration::from_secs(config.show_cache_secs.max(1)),
    )
    .map_err(anyhow::Error::msg)?;
    let connectors = connector::Connectors::new(&config.connectors).map_err(anyhow::Error::msg)?;
    Ok(Seating::new(store, db, catalog, connectors, config.clone()))
}

/// Adds seating's two services to a listener, with readiness checks on its database and hold
/// store, and starts the sweeper and event subscription until the listener drains.
pub async fn serve(
    builder: ServerBuilder,
    seating: &Seating,
    max_message_bytes: usize,
) -> ServerBuilder {
    let drain = builder.drain_token();
    let expiring = seating.clone();
    seating
        .store()
        .start(
            Duration::from_millis(seating.config().sweep_interval_ms),
            drain.clone(),
            move |holds| expiring.release_expired(holds),
        )
        .await;
    let db = seating.db().clone();
    let store = seating.store().clone();
    builder
        .add_service(
            SeatingServiceServer::new(grpc::SeatingApi::new(seating.clone(), drain))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .add_service(
            SeatingAdminServiceServer::new(grpc::SeatingAdminApi::new(seating.clone()))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .readiness_check("seating database", move || {
            let db = db.clone();
            async move { db.ping().await }
        })
        .readiness_check("seating hold store", move || {
            let store = store.clone();
            async move { store.ping().await }
        })
}
