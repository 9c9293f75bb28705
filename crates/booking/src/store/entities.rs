//! sea-orm entities of booking's tables (schema `booking` on PostgreSQL).

#![allow(missing_docs)]

macro_rules! entity {
    ($module:ident, $table:literal, { $($(#[$attr:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($(#[$attr])* pub $field: $ty,)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity!(booking, "bookings", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    #[sea_orm(unique)]
    code: String,
    user_id: String,
    show_id: String,
    theatre_id: String,
    // One booking per hold: two bookings racing for a hold cannot both be stored.
    #[sea_orm(unique)]
    hold_id: String,
    fencing_token: i64,
    hold_expires_at: ChronoDateTimeUtc,
    currency: String,
    total_minor: i64,
    status: String,
    payment_order_id: Option<String>,
    provider_order_id: Option<String>,
    payment_deadline: Option<ChronoDateTimeUtc>,
    parked_reason: Option<String>,
    created_at: ChronoDateTimeUtc,
    updated_at: ChronoDateTimeUtc,
    // Added by m20261127_000001 (what the ticket and invoice show; the door; cancellation).
    movie_title: String,
    theatre_name: String,
    screen_name: String,
    show_starts_at: Option<ChronoDateTimeUtc>,
    show_ends_at: Option<ChronoDateTimeUtc>,
    tax_bps: i32,
    admitted_at: Option<ChronoDateTimeUtc>,
    admitted_by: Option<String>,
    refund_minor: Option<i64>,
});

entity!(item, "booking_items", {
    #[sea_orm(primary_key, auto_increment = false)]
    booking_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    seat_id: String,
    category_code: String,
    currency: String,
    price_minor: i64,
    // Added by m20261127_000001.
    fee_minor: i64,
    tax_minor: i64,
});

entity!(history, "booking_status_history", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    booking_id: String,
    from_status: Option<String>,
    to_status: String,
    cause: String,
    changed_at: ChronoDateTimeUtc,
});

entity!(step, "saga_steps", {
    #[sea_orm(primary_key, auto_increment = false)]
    booking_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    step: String,
    // pending | running | done | parked
    state: String,
    attempts: i32,
    next_run_at: ChronoDateTimeUtc,
    lease_id: Option<String>,
    lease_until: Option<ChronoDateTimeUtc>,
    #[sea_orm(column_type = "Text")]
    last_error: String,
    updated_at: ChronoDateTimeUtc,
});

entity!(ticket, "tickets", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    booking_id: String,
    show_id: String,
    seat_id: String,
    issued_at: ChronoDateTimeUtc,
});

entity!(invoice, "invoices", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    #[sea_orm(unique)]
    booking_id: String,
    theatre_id: String,
    year: i32,
    sequence: i64,
    number: String,
    currency: String,
    total_minor: i64,
    issued_at: ChronoDateTimeUtc,
});

entity!(invoice_counter, "invoice_counters", {
    #[sea_orm(primary_key, auto_increment = false)]
    theatre_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    year: i32,
    last: i64,
});

entity!(outbox, "outbox", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    topic: String,
    aggregate_id: String,
    #[sea_orm(column_type = "Text")]
    payload: String,
    created_at: ChronoDateTimeUtc,
    published_at: Option<ChronoDateTimeUtc>,
});

// The Ed25519 keys ticket tokens are signed with (the newest signs; all verify).
pub mod ticket_key {
    marquee_platform::key_table!("ticket_keys");
}
