//! Seating's migrations, one per file.

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_seating;

/// Runs seating's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_seating::Migration),
            Box::new(marquee_platform::idempotency::IndexCreatedAt),
        ]
    }
}
