//! The catalog's first tables: the SQL beside this file, fixed (one file per backend); later
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
            include_str!("m20261124_000001_create_catalog.postgres.sql"),
            include_str!("m20261124_000001_create_catalog.sqlite.sql"),
        )
        .await?;
        for idx in [
            index(
                "cities",
                "ux_cities_country_name",
                &["country_code", "name"],
                true,
            ),
            index(
                "movies",
                "ux_movies_title_release",
                &["title", "release_date"],
                true,
            ),
            index("movies", "ix_movies_title_lower", &["title_lower"], false),
            index(
                "movie_genres",
                "ix_movie_genres_genre",
                &["genre", "movie_id"],
                false,
            ),
            index(
                "theatres",
                "ux_theatres_city_name",
                &["city_id", "name"],
                true,
            ),
            index(
                "screens",
                "ux_screens_theatre_name",
                &["theatre_id", "name"],
                true,
            ),
            index(
                "shows",
                "ix_shows_screen_start",
                &["screen_id", "start_at"],
                false,
            ),
            index(
                "shows",
                "ix_shows_city_start",
                &["city_id", "start_at", "id"],
                false,
            ),
            index("shows", "ix_shows_start", &["start_at", "id"], false),
            index(
                "shows",
                "ix_shows_movie_start",
                &["movie_id", "start_at"],
                false,
            ),
            index(
                "shows",
                "ix_shows_theatre_start",
                &["theatre_id", "start_at"],
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
            "shows",
            "screens",
            "theatres",
            "movie_genres",
            "movies",
            "cities",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
