//! Bookings: the booking lifecycle and its durable saga (extend the hold and create the payment
//! order, capture while the hold is valid, confirm the seats, issue tickets and the invoice), with
//! compensations (void, refund, release) and a background worker that resumes unfinished steps.
//!
//! - [`grpc`]: `marquee.booking.v1.BookingService` and the one error -> status mapping.
//! - [`service`]: the operations and the saga's steps; [`remote`]: calls to catalog, seating
//!   and payments with booking's own service token.
//! - [`domain`]: the lifecycle's transition function, booking codes, the saga's pure rules,
//!   fees and the cancellation policy.
//! - [`tickets`]: signed ticket tokens and their QR codes; [`invoice`]: invoices as HTML.
//! - [`store`]: sea-orm (schema `booking`): bookings, items, history, saga steps, tickets,
//!   invoices, outbox.
//!
//! Start reading at [`serve`], then [`service::Bookings`].

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod grpc;
pub mod invoice;
pub mod remote;
pub mod service;
pub mod store;
pub mod tickets;

pub use config::BookingConfig;
use marquee_platform::server::ServerBuilder;
use marquee_proto::booking::v1::{
    booking_operations_service_server::BookingOperationsServiceServer,
    booking_service_server::BookingServiceServer,
};
pub use remote::{Remotes, TokenSource};
pub use service::Bookings;

/// Opens booking's database (running its migrations).
pub async fn open(
    database_url: &str,
    remotes: Remotes,
    config: &BookingConfig,
) -> Result<Bookings, sea_orm::DbErr> {
    let store = store::BookingStore::open(database_url).await?;
    Ok(Bookings::new(store, remotes, config.clone()))
}

/// Adds the booking service to a listener and starts its saga worker, which stops when the
/// listener drains.
pub fn serve(
    builder: ServerBuilder,
    bookings: &Bookings,
    max_message_bytes: usize,
) -> ServerBuilder {
    let drain = builder.drain_token();
    tokio::spawn(bookings.clone().run_worker(drain.clone()));
    let store = bookings.store().clone();
    builder
        .add_service(
            BookingServiceServer::new(grpc::BookingApi::new(bookings.clone(), drain))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            BookingOperationsServiceServer::new(grpc::BookingOperationsApi::new(bookings.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .readiness_check("booking database", move || {
            let store = store.clone();
            async move { store.ping().await }
        })
}
