//! sea-orm entities of payments' tables, and of the mock provider's (prefixed `mock_provider_`:
//! the provider's own records, which a real deployment keeps at the provider).

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

entity!(order, "orders", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    #[sea_orm(unique)]
    provider_order_id: String,
    receipt: String,
    currency: String,
    amount_minor: i64,
    platform_fee_minor: i64,
    theatre_id: String,
    captured_minor: i64,
    refunded_minor: i64,
    status: String,
    created_at: ChronoDateTimeUtc,
    updated_at: ChronoDateTimeUtc,
    // Added by m20261127_000001.
    closed_at: Option<ChronoDateTimeUtc>,
    close_reason: Option<String>,
});

entity!(attempt, "payment_attempts", {
    #[sea_orm(primary_key, auto_increment = false)]
    provider_payment_id: String,
    order_id: String,
    status: String,
    failure_reason: String,
    updated_at: ChronoDateTimeUtc,
});

entity!(refund, "refunds", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    order_id: String,
    provider_refund_id: String,
    amount_minor: i64,
    reason: String,
    created_at: ChronoDateTimeUtc,
});

entity!(ledger_entry, "ledger_entries", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    transaction_id: String,
    order_id: String,
    account: String,
    currency: String,
    amount_minor: i64,
    kind: String,
    created_at: ChronoDateTimeUtc,
});

entity!(webhook, "webhooks_received", {
    #[sea_orm(primary_key, auto_increment = false)]
    event_id: String,
    event: String,
    signature_valid: bool,
    #[sea_orm(column_type = "Text")]
    body: String,
    outcome: String,
    received_at: ChronoDateTimeUtc,
});

entity!(provider_order, "mock_provider_orders", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    receipt: String,
    currency: String,
    amount_minor: i64,
    created_at: ChronoDateTimeUtc,
});

entity!(provider_payment, "mock_provider_payments", {
    #[sea_orm(primary_key, auto_increment = false)]
    id: String,
    order_id: String,
    currency: String,
    amount_minor: i64,
    status: String,
    error_description: String,
    refunded_minor: i64,
    updated_at: ChronoDateTimeUtc,
});
