//! Booking's first tables, in the SQL beside this file, fixed (one file per backend);
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
            include_str!("m20261126_000001_create_booking.postgres.sql"),
            include_str!("m20261126_000001_create_booking.sqlite.sql"),
        )
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
