//! Payments' migrations, one per file.

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_payments;
mod m20261127_000001_close_orders;

/// Runs payments' migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_payments::Migration),
            Box::new(m20261127_000001_close_orders::Migration),
            Box::new(marquee_platform::idempotency::IndexCreatedAt),
            Box::new(marquee_platform::events::NotifyOnOutbox),
        ]
    }
}
