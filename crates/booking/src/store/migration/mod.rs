//! Booking's migrations, one per file.

use sea_orm_migration::prelude::*;

mod m20261126_000001_create_booking;
mod m20261127_000001_tickets_fees_door;

/// Runs booking's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_booking::Migration),
            Box::new(m20261127_000001_tickets_fees_door::Migration),
            Box::new(marquee_platform::idempotency::IndexCreatedAt),
            Box::new(marquee_platform::events::NotifyOnOutbox),
        ]
    }
}
