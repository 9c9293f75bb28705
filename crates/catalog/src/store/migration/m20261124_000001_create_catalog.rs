//! The catalog's first tables: the SQL beside this file, fixed (one file per backend); later
//! changes are explicit `ALTER`s in migrations of their own.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

fn unique(table: &str, name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table)).unique();
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

fn index(table: &str, name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    for c in cols {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}

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
            unique(
                "cities",
                "ux_cities_country_name",
                &["country_code", "name"],
            ),
            unique(
                "movies",
                "ux_movies_title_release",
                &["title", "release_date"],
            ),
            index("movies", "ix_movies_title_lower", &["title_lower"]),
            index(
                "movie_genres",
                "ix_movie_genres_genre",
                &["genre", "movie_id"],
            ),
            unique("theatres", "ux_theatres_city_name", &["city_id", "name"]),
            unique(
                "screens",
                "ux_screens_theatre_name",
                &["theatre_id", "name"],
            ),
            index("shows", "ix_shows_screen_start", &["screen_id", "start_at"]),
            index(
                "shows",
                "ix_shows_city_start",
                &["city_id", "start_at", "id"],
            ),
            index("shows", "ix_shows_start", &["start_at", "id"]),
            index("shows", "ix_shows_movie_start", &["movie_id", "start_at"]),
            index(
                "shows",
                "ix_shows_theatre_start",
                &["theatre_id", "start_at"],
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
