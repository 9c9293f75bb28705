//! Identity: accounts, sign-in, access and refresh tokens, notification consent, client
//! credentials, and the public keys every service verifies access tokens with.
//!
//! - [`grpc`]: the adapter for `marquee.identity.v1.IdentityService`, the role checks, and the
//!   one error-to-status mapping.
//! - [`service`]: the application service: validation, hashing, rate limits, token issuing.
//! - [`domain`]: types, rules and errors; no tonic, no sea-orm.
//! - [`store`]: sea-orm entities, migrations and transactions (schema `identity` on PostgreSQL).
//! - [`tokens`]: Ed25519 keys, JWT signing, the JWKS document. [`secrets`]: argon2id passwords,
//!   random opaque tokens and their hashes.
//! - [`remote`]: fetching the keys from a remote identity service (distributed mode).
//!
//! Start reading at [`serve`], then [`grpc`].

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod grpc;
pub mod remote;
pub mod secrets;
pub mod service;
pub mod store;
pub mod tokens;

pub use config::IdentityConfig;
pub use domain::IdentityError;
use marquee_platform::{auth::Verifier, server::ServerBuilder};
use marquee_proto::identity::v1::identity_service_server::IdentityServiceServer;
pub use service::Identity;
pub use store::IdentityStore;

/// Opens identity's database (migrating it, creating the signing key on first start) and builds
/// the service.
pub async fn open(database_url: &str, config: &IdentityConfig) -> anyhow::Result<Identity> {
    let store = IdentityStore::open(database_url).await?;
    Ok(Identity::new(store, config).await?)
}

/// A verifier that knows identity's current public keys (for services in the same process).
pub fn verifier(identity: &Identity) -> Verifier {
    let verifier = Verifier::new();
    verifier.set_keys(&identity.jwks());
    verifier
}

/// Adds identity's service to a listener, with a readiness check on its database.
pub fn serve(
    builder: ServerBuilder,
    identity: &Identity,
    max_message_bytes: usize,
) -> ServerBuilder {
    let store = identity.store().clone();
    builder
        .add_service(
            IdentityServiceServer::new(grpc::IdentityApi::new(identity.clone()))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
        .readiness_check("identity database", move || {
            let store = store.clone();
            async move { store.ping().await }
        })
}
