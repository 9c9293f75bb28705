//! Payments: orders, a Razorpay-style mock provider with manual capture, signed webhooks,
//! refunds, and a double-entry ledger from which theatre settlement is computed.
//!
//! - [`grpc`]: `marquee.payments.v1.PaymentService` (service callers) and `MockCheckoutService`.
//! - [`service`]: orchestration; [`provider`]: the mock provider and its webhook deliveries.
//! - [`domain`]: states, ledger postings, signatures; [`store`]: sea-orm (schema `payments`).
//! - The webhook endpoint is `POST /webhooks/payments` on the same listener.
//!
//! Start reading at [`serve`], then [`service`].

#![forbid(unsafe_code)]

pub mod domain;
pub mod grpc;
pub mod provider;
pub mod service;
pub mod store;

use axum::{body::Bytes, http::HeaderMap, response::IntoResponse};
use marquee_platform::{config::Secret, server::ServerBuilder};
use marquee_proto::payments::v1::{
    mock_checkout_service_server::MockCheckoutServiceServer,
    payment_service_server::PaymentServiceServer,
};
use serde::{Deserialize, Serialize};
pub use service::Payments;

/// The path provider webhooks are POSTed to.
pub const WEBHOOK_PATH: &str = "/webhooks/payments";

/// Settings of payments (`[payments]`, `MARQUEE_PAYMENTS__*`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The secret webhooks are signed with. Without one, a random secret is made at start-up
    /// (the mock provider runs in the same process, so both sides know it).
    pub webhook_secret: Option<Secret<String>>,
    /// Where the mock provider POSTs webhooks, for example
    /// `http://payments.internal:50051/webhooks/payments`. Defaults to this listener.
    pub webhook_url: Option<String>,
    /// The provider's public key id shown to checkouts.
    pub key_id: Option<String>,
}

/// Opens payments' database and its mock provider. `default_webhook_url` is this listener's
/// webhook endpoint, used unless the configuration names another.
pub async fn open(
    database_url: &str,
    config: &PaymentsConfig,
    default_webhook_url: Option<String>,
) -> Result<Payments, sea_orm::DbErr> {
    let store = store::PaymentsStore::open(database_url).await?;
    let secret = match &config.webhook_secret {
        Some(s) => s.expose().as_bytes().to_vec(),
        None => uuid::Uuid::new_v4().as_bytes().to_vec(),
    };
    let provider = provider::MockProvider::new(
        store.db().clone(),
        secret.clone(),
        config.webhook_url.clone().or(default_webhook_url),
    );
    Ok(Payments::new(
        store,
        provider,
        secret,
        config
            .key_id
            .clone()
            .unwrap_or_else(|| "rzp_test_marquee".to_owned()),
    ))
}

/// Adds payments' services and webhook endpoint to a listener.
pub fn serve(
    builder: ServerBuilder,
    payments: &Payments,
    max_message_bytes: usize,
) -> ServerBuilder {
    let store = payments.store().clone();
    let hook = payments.clone();
    builder
        .add_service(
            PaymentServiceServer::new(grpc::PaymentApi::new(payments.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            MockCheckoutServiceServer::new(grpc::MockCheckoutApi::new(payments.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_http_route(
            WEBHOOK_PATH,
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let hook = hook.clone();
                async move {
                    let signature = headers
                        .get("x-razorpay-signature")
                        .and_then(|v| v.to_str().ok());
                    let (code, text) = hook.webhook(signature, &body).await;
                    let code = axum::http::StatusCode::from_u16(code)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    (code, text).into_response()
                }
            }),
        )
        .readiness_check("payments database", move || {
            let store = store.clone();
            async move { store.ping().await }
        })
}
