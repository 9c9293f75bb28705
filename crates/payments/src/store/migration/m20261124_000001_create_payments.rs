//! Payments' first tables, created from the entities as they are today; later changes are
//! explicit `ALTER`s in migrations of their own.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::store::entities::{
    attempt, ledger_entry, order, provider_order, provider_payment, refund, webhook,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager
        .create_table(schema.create_table_from_entity(entity))
        .await
}

fn index(table: &str, name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, order::Entity).await?;
        create(manager, attempt::Entity).await?;
        create(manager, refund::Entity).await?;
        create(manager, ledger_entry::Entity).await?;
        create(manager, webhook::Entity).await?;
        manager
            .create_table(marquee_platform::events::create_outbox_table(
                manager.get_database_backend(),
            ))
            .await?;
        create(manager, provider_order::Entity).await?;
        create(manager, provider_payment::Entity).await?;
        manager
            .create_table(marquee_platform::idempotency::create_table(
                manager.get_database_backend(),
            ))
            .await?;
        for idx in [
            index("payment_attempts", "ix_attempts_order", &["order_id"]),
            index("refunds", "ix_refunds_order", &["order_id"]),
            index(
                "ledger_entries",
                "ix_ledger_order",
                &["order_id", "created_at"],
            ),
            index("ledger_entries", "ix_ledger_account", &["account"]),
            index(
                "outbox",
                "ix_outbox_unpublished",
                &["published_at", "created_at"],
            ),
            index(
                "mock_provider_payments",
                "ix_provider_payments_order",
                &["order_id"],
            ),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }
}
