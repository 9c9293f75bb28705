//! Fees and tax per seat, what tickets and invoices show (movie, theatre, screen, show times),
//! the door (admission), refunds, and the ticket-signing keys.
//!
//! The first migration's SQL was fixed after these columns were in it, so on a new database
//! they exist already; they are added only where missing (a database made before this
//! migration).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

fn text(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .string()
        .not_null()
        .default("")
        .to_owned()
}

fn time(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn money(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ("bookings", "movie_title", text("movie_title")),
            ("bookings", "theatre_name", text("theatre_name")),
            ("bookings", "screen_name", text("screen_name")),
            ("bookings", "show_starts_at", time("show_starts_at")),
            ("bookings", "show_ends_at", time("show_ends_at")),
            (
                "bookings",
                "tax_bps",
                ColumnDef::new(Alias::new("tax_bps"))
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
            ("bookings", "admitted_at", time("admitted_at")),
            (
                "bookings",
                "admitted_by",
                ColumnDef::new(Alias::new("admitted_by"))
                    .string()
                    .null()
                    .to_owned(),
            ),
            (
                "bookings",
                "refund_minor",
                ColumnDef::new(Alias::new("refund_minor"))
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            ("booking_items", "fee_minor", money("fee_minor")),
            ("booking_items", "tax_minor", money("tax_minor")),
        ];
        for (table, name, mut def) in columns {
            if !manager.has_column(table, name).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(&mut def)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        marquee_platform::db::run_sql(
            manager,
            r#"CREATE TABLE IF NOT EXISTS "ticket_keys" ( "kid" varchar NOT NULL PRIMARY KEY, "private_pkcs8" text NOT NULL, "public_key" varchar NOT NULL, "created_at" bigint NOT NULL )"#,
            r#"CREATE TABLE IF NOT EXISTS "ticket_keys" ( "kid" varchar NOT NULL PRIMARY KEY, "private_pkcs8" text NOT NULL, "public_key" varchar NOT NULL, "created_at" integer NOT NULL )"#,
        )
        .await?;
        Ok(())
    }
}
