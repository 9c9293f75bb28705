//! sea-orm entities of identity's tables. Roles and theatre lists are stored as JSON text: they
//! are always read and written whole. Times are Unix seconds, which compare the same way on SQLite
//! and PostgreSQL.

#![allow(missing_docs)]

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// As given at sign-up.
        pub email: String,
        /// Lower-cased: the unique key, so that emails differing only in case collide.
        pub email_lower: String,
        pub phone: Option<String>,
        /// An argon2id PHC string.
        #[sea_orm(column_type = "Text")]
        pub password_hash: String,
        #[sea_orm(column_type = "Text")]
        pub roles: String,
        #[sea_orm(column_type = "Text")]
        pub theatres: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod consent {
    use sea_orm::entity::prelude::*;

    /// One recorded choice; never updated, so the history is kept.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        /// `email` or `sms`.
        pub channel: String,
        pub granted: bool,
        pub policy_version: String,
        pub recorded_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod token_family {
    use sea_orm::entity::prelude::*;

    /// The refresh tokens descending from one sign-in.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "token_families")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub created_at: i64,
        /// Set on sign-out or when a used token is presented again.
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        /// SHA-256 (hex) of the token; the token itself is never stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub family_id: String,
        pub user_id: String,
        pub created_at: i64,
        pub expires_at: i64,
        /// Set when the token was exchanged.
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod client {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub display_name: String,
        /// SHA-256 (hex) of the secret (a 256-bit random value, so a fast hash suffices).
        pub secret_hash: String,
        /// `service` or `partner`.
        pub role: String,
        #[sea_orm(column_type = "Text")]
        pub theatres: String,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The Ed25519 key pairs that sign access tokens.
pub mod signing_key {
    marquee_platform::key_table!("signing_keys");
}

pub mod sign_in_failure {
    use sea_orm::entity::prelude::*;

    /// One failed sign-in, counted against an account and an address.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sign_in_failures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `account:<email lower-cased>` or `address:<ip>`.
        pub subject: String,
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
