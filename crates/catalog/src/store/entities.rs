//! sea-orm entities of the catalog's tables. Lists and nested values (genres, layouts, prices)
//! are stored as JSON text: they are always read and written whole. Show times are Unix seconds,
//! which compare the same way on SQLite and PostgreSQL.

#![allow(missing_docs)]

pub mod city {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub region: String,
        pub country_code: String,
        pub time_zone: String,
        pub currency_code: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod movie {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "movies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub title: String,
        /// Lower-cased title, for case-insensitive search on both backends.
        pub title_lower: String,
        #[sea_orm(column_type = "Text")]
        pub synopsis: String,
        pub original_language: String,
        #[sea_orm(column_type = "Text")]
        pub genres: String,
        pub runtime_minutes: i32,
        pub certification: String,
        pub release_date: String,
        #[sea_orm(column_type = "Text")]
        pub cast_members: String,
        #[sea_orm(column_type = "Text")]
        pub directors: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod movie_genre {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "movie_genres")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub movie_id: String,
        /// Lower case.
        #[sea_orm(primary_key, auto_increment = false)]
        pub genre: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod theatre {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "theatres")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub city_id: String,
        pub name: String,
        pub address: String,
        #[sea_orm(column_type = "Text")]
        pub amenities: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod screen {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "screens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub theatre_id: String,
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub formats: String,
        #[sea_orm(column_type = "Text")]
        pub layout: String,
        pub seat_count: i32,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod show {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub movie_id: String,
        pub theatre_id: String,
        pub screen_id: String,
        pub city_id: String,
        pub start_at: i64,
        pub end_at: i64,
        pub language: String,
        pub format: String,
        #[sea_orm(column_type = "Text")]
        pub prices: String,
        pub state: String,
        pub cancel_reason: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
