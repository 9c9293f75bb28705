//! Connecting a service to its database: PostgreSQL in production, SQLite for the embedded
//! default.
//!
//! On PostgreSQL every service owns one schema (`catalog`, `seating`, ...): [`connect`] creates it
//! and sets it as the connection's search path, so the service's tables and its migration table
//! live there and nothing lands in `public`. SQLite has no schemas; the embedded default gives each
//! service its own file instead.

use std::{path::Path, time::Duration};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Opens a pool to `url` for the service that owns `schema`.
pub async fn connect(url: &str, schema: &str) -> Result<DatabaseConnection, DbErr> {
    if !schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    {
        return Err(DbErr::Custom(format!("invalid schema name {schema:?}")));
    }
    if url.starts_with("sqlite:") {
        let mut opts = ConnectOptions::new(url.to_owned());
        // One connection: SQLite allows one writer at a time, and a single connection turns what
        // would be SQLITE_BUSY errors between our own transactions into an orderly queue.
        opts.max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            // A local file: nothing between us and it to drop the connection.
            .test_before_acquire(false)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        return Database::connect(opts).await;
    }
    {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(2).sqlx_logging(false);
        let admin = Database::connect(opts).await?;
        admin
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await?;
        admin.close().await?;
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a second round trip before
        // every statement (measured: the one-INSERT seat confirmation ran at half of pgbench's
        // rate). Only a connection idle long enough to have been dropped is pinged.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false)
        .set_schema_search_path(schema.to_owned());
    Database::connect(opts).await
}

/// The `sqlite:` URL of a database file, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// True when the database answers.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

/// True when `db` is PostgreSQL (row locks are taken there; SQLite serialises writers itself).
pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// True when `err` is a unique-key violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Runs a migration's SQL, written out once for each backend: statements separated by `;` at
/// the end of a line.
///
/// A migration builds what its code says when it was written. Tables built from the entities
/// (`create_table_from_entity`) would follow every later change to an entity, so a new
/// database and an old one migrated to the same version would differ; the first migration of
/// every service is therefore its SQL as it was, fixed.
pub async fn run_sql(
    manager: &sea_orm_migration::SchemaManager<'_>,
    postgres: &str,
    sqlite: &str,
) -> Result<(), DbErr> {
    let sql = match manager.get_database_backend() {
        DbBackend::Postgres => postgres,
        DbBackend::Sqlite => sqlite,
        other => return Err(DbErr::Custom(format!("no migration SQL for {other:?}"))),
    };
    let conn = manager.get_connection();
    for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        conn.execute_unprepared(statement).await?;
    }
    Ok(())
}

/// An index of a migration: `name` on `table`'s `cols`, unique or not.
pub fn index(
    table: &str,
    name: &str,
    cols: &[&str],
    unique: bool,
) -> sea_orm::sea_query::IndexCreateStatement {
    use sea_orm::sea_query::{Alias, Index};
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
