//! Seating's first tables: sold seats (primary key (show, seat): the final guard against a
//! double sale), allocations, idempotency keys: the SQL beside this file, fixed (one file per
//! backend).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        marquee_platform::db::run_sql(
            manager,
            include_str!("m20261125_000001_create_seating.postgres.sql"),
            include_str!("m20261125_000001_create_seating.sqlite.sql"),
        )
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
