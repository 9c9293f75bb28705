//! Payments' first tables, in the SQL beside this file, fixed (one file per backend);
//! later changes are explicit `ALTER`s in migrations of their own.

use marquee_platform::db::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        marquee_platform::db::run_sql(
            manager,
            include_str!("m20261124_000001_create_payments.postgres.sql"),
            include_str!("m20261124_000001_create_payments.sqlite.sql"),
        )
        .await?;
        for idx in [
            index(
                "payment_attempts",
                "ix_attempts_order",
                &["order_id"],
                false,
            ),
            index("refunds", "ix_refunds_order", &["order_id"], false),
            index(
                "ledger_entries",
                "ix_ledger_order",
                &["order_id", "created_at"],
                false,
            ),
            index("ledger_entries", "ix_ledger_account", &["account"], false),
            index(
                "outbox",
                "ix_outbox_unpublished",
                &["published_at", "created_at"],
                false,
            ),
            index(
                "mock_provider_payments",
                "ix_provider_payments_order",
                &["order_id"],
                false,
            ),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }
}
