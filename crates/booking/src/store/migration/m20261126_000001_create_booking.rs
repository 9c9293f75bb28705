//! Booking's first tables, created from the entities as they are today; later changes are
//! explicit `ALTER`s in migrations of their own.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::store::entities::{
    booking, history, invoice, invoice_counter, item, outbox, step, ticket,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

async fn create<E: EntityTrait>(manager: &SchemaManager<'_>, entity: E) -> Result<(), DbErr> {
    let schema = Schema::new(manager.get_database_backend());
    manager
        .create_table(schema.create_table_from_entity(entity))
        .await
}

fn index(table: &str, name: &str, cols: &[&str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    if unique {
        idx.unique();
    }
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create(manager, booking::Entity).await?;
        create(manager, item::Entity).await?;
        create(manager, history::Entity).await?;
        create(manager, step::Entity).await?;
        create(manager, ticket::Entity).await?;
        create(manager, invoice::Entity).await?;
        create(manager, invoice_counter::Entity).await?;
        create(manager, outbox::Entity).await?;
        manager
            .create_table(marquee_platform::idempotency::create_table(
                manager.get_database_backend(),
            ))
            .await?;
        for idx in [
            index("bookings", "ix_bookings_user", &["user_id", "id"], false),
            index(
                "booking_status_history",
                "ix_history_booking",
                &["booking_id", "changed_at"],
                false,
            ),
            index(
                "saga_steps",
                "ix_steps_due",
                &["state", "next_run_at"],
                false,
            ),
            // One ticket per seat of a show, whatever happens.
            index("tickets", "ux_tickets_seat", &["show_id", "seat_id"], true),
            index("tickets", "ix_tickets_booking", &["booking_id"], false),
            // Gapless and unique per theatre and year.
            index(
                "invoices",
                "ux_invoices_sequence",
                &["theatre_id", "year", "sequence"],
                true,
            ),
            index(
                "outbox",
                "ix_outbox_unpublished",
                &["published_at", "created_at"],
                false,
            ),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }
}
