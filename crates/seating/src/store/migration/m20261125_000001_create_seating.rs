//! Seating's first tables: sold seats (primary key (show, seat): the final guard against a
//! double sale), allocations, idempotency keys.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::store::db::{allocation, sold_seat};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager
        .create_table(schema.create_table_from_entity(entity))
        .await
}

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, sold_seat::Entity).await?;
        create(manager, allocation::Entity).await?;
        manager
            .create_table(marquee_platform::idempotency::create_table(
                manager.get_database_backend(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sold_seats_hold")
                    .table(Alias::new("sold_seats"))
                    .col(Alias::new("hold_id"))
                    .to_owned(),
            )
            .await
    }
}
