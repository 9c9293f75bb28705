//! Identity's first tables. Created from the entities as they are today; later changes are
//! explicit `ALTER`s in migrations of their own.

use sea_orm::{EntityTrait, Schema};
use sea_orm_migration::prelude::*;

use crate::store::entities::{
    client, consent, refresh_token, sign_in_failure, signing_key, token_family, user,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

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
        create(manager, user::Entity).await?;
        create(manager, consent::Entity).await?;
        create(manager, token_family::Entity).await?;
        create(manager, refresh_token::Entity).await?;
        create(manager, client::Entity).await?;
        create(manager, signing_key::Entity).await?;
        create(manager, sign_in_failure::Entity).await?;
        manager
            .create_table(marquee_platform::idempotency::create_table(
                manager.get_database_backend(),
            ))
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
