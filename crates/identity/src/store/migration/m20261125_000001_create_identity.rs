//! Identity's first tables: the SQL beside this file, fixed (one file per backend); later
//! changes are explicit `ALTER`s in migrations of their own.

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
            include_str!("m20261125_000001_create_identity.postgres.sql"),
            include_str!("m20261125_000001_create_identity.sqlite.sql"),
        )
        .await?;
        for idx in [
            index("users", "ux_users_email_lower", &["email_lower"], true),
            index(
                "consents",
                "ix_consents_user",
                &["user_id", "recorded_at"],
                false,
            ),
            index(
                "refresh_tokens",
                "ix_refresh_tokens_family",
                &["family_id"],
                false,
            ),
            index(
                "sign_in_failures",
                "ix_sign_in_failures_subject_at",
                &["subject", "at"],
                false,
            ),
        ] {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "idempotency_keys",
            "sign_in_failures",
            "signing_keys",
            "clients",
            "refresh_tokens",
            "token_families",
            "consents",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
