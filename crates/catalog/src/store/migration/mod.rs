//! The catalog's migrations, one per file, applied in order by [`Migrator`].

use sea_orm_migration::prelude::*;

mod m20261124_000001_create_catalog;

/// Runs the catalog's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_catalog::Migration),
            Box::new(marquee_platform::idempotency::IndexCreatedAt),
        ]
    }
}
