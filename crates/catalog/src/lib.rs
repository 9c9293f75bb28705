//! The catalog: cities, movies, theatres, screens with their seat layouts, and scheduled shows
//! with their prices.
//!
//! - [`grpc`]: the adapter for `marquee.catalog.v1.CatalogService` (public reads) and
//!   `CatalogAdminService` (content), and the one error-to-status mapping.
//! - [`service`]: the application service: paging, search windows, caching and invalidation.
//! - [`domain`]: types, commands, rules and errors; no tonic, no sea-orm.
//! - [`store`]: sea-orm entities, migrations and transactions (schema `catalog` on PostgreSQL).
//! - [`seed`]: the demo catalog `marquee up` loads on first start.
//!
//! Start reading at [`serve`], then [`grpc`].

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod grpc;
pub mod seed;
pub mod service;
pub mod store;

pub use config::CatalogConfig;
use marquee_platform::{cache::Cache, server::ServerBuilder};
use marquee_proto::catalog::v1::{
    catalog_admin_service_server::CatalogAdminServiceServer,
    catalog_service_server::CatalogServiceServer,
};
pub use service::Catalog;
pub use store::CatalogStore;

/// Opens the catalog's database (migrating it) and builds the service over `cache`.
pub async fn open(
    database_url: &str,
    cache: Cache,
    config: &CatalogConfig,
) -> Result<Catalog, sea_orm::DbErr> {
    let store = CatalogStore::open(database_url).await?;
    Ok(Catalog::new(store, cache, config))
}

/// Adds the catalog's two services to a listener, with a readiness check on its database.
pub fn serve(builder: ServerBuilder, catalog: &Catalog, max_message_bytes: usize) -> ServerBuilder {
    let store = catalog.store().clone();
    builder
        .add_service(
            CatalogServiceServer::new(grpc::CatalogApi::new(catalog.clone()))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .add_service(
            CatalogAdminServiceServer::new(grpc::CatalogAdminApi::new(catalog.clone()))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .readiness_check("catalog database", move || {
            let store = store.clone();
            async move { store.ping().await }
        })
}
