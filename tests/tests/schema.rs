//! Every service's migrations build the tables its entities describe, on both backends. A
//! migration's SQL is fixed once written, so an entity changed without a migration of its own
//! fails here (a new database and an old one would otherwise differ).

mod common;

use std::collections::BTreeMap;

use marquee_platform::{events, idempotency};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Schema,
    Statement, sea_query::TableCreateStatement,
};
use sea_orm_migration::MigratorTrait;

/// A service: its schema name, its migrations, and its tables as the entities are now.
struct Service {
    name: &'static str,
    migrate: fn(&DatabaseConnection) -> futures::future::BoxFuture<'_, Result<(), sea_orm::DbErr>>,
    tables: fn(DbBackend) -> Vec<TableCreateStatement>,
}

fn table<E: EntityTrait>(b: DbBackend, e: E) -> TableCreateStatement {
    Schema::new(b).create_table_from_entity(e)
}

fn services() -> Vec<Service> {
    use marquee_booking::store::entities as bk;
    use marquee_catalog::store::entities as cat;
    use marquee_identity::store::entities as id;
    use marquee_payments::store::entities as pay;
    use marquee_seating::store::db as seat;
    vec![
        Service {
            name: "booking",
            migrate: |db| Box::pin(marquee_booking::store::migration::Migrator::up(db, None)),
            tables: |b| {
                vec![
                    table(b, bk::booking::Entity),
                    table(b, bk::item::Entity),
                    table(b, bk::history::Entity),
                    table(b, bk::step::Entity),
                    table(b, bk::ticket::Entity),
                    table(b, bk::ticket_key::Entity),
                    table(b, bk::invoice::Entity),
                    table(b, bk::invoice_counter::Entity),
                    table(b, bk::outbox::Entity),
                    idempotency::create_table(b),
                ]
            },
        },
        Service {
            name: "catalog",
            migrate: |db| Box::pin(marquee_catalog::store::migration::Migrator::up(db, None)),
            tables: |b| {
                vec![
                    table(b, cat::city::Entity),
                    table(b, cat::movie::Entity),
                    table(b, cat::movie_genre::Entity),
                    table(b, cat::theatre::Entity),
                    table(b, cat::screen::Entity),
                    table(b, cat::show::Entity),
                    idempotency::create_table(b),
                ]
            },
        },
        Service {
            name: "identity",
            migrate: |db| Box::pin(marquee_identity::store::migration::Migrator::up(db, None)),
            tables: |b| {
                vec![
                    table(b, id::user::Entity),
                    table(b, id::consent::Entity),
                    table(b, id::token_family::Entity),
                    table(b, id::refresh_token::Entity),
                    table(b, id::client::Entity),
                    table(b, id::signing_key::Entity),
                    table(b, id::sign_in_failure::Entity),
                    idempotency::create_table(b),
                ]
            },
        },
        Service {
            name: "payments",
            migrate: |db| Box::pin(marquee_payments::store::migration::Migrator::up(db, None)),
            tables: |b| {
                vec![
                    table(b, pay::order::Entity),
                    table(b, pay::attempt::Entity),
                    table(b, pay::refund::Entity),
                    table(b, pay::ledger_entry::Entity),
                    table(b, pay::webhook::Entity),
                    events::create_outbox_table(b),
                    table(b, pay::provider_order::Entity),
                    table(b, pay::provider_payment::Entity),
                    idempotency::create_table(b),
                ]
            },
        },
        Service {
            name: "seating",
            migrate: |db| Box::pin(marquee_seating::store::migration::Migrator::up(db, None)),
            tables: |b| {
                vec![
                    table(b, seat::sold_seat::Entity),
                    table(b, seat::allocation::Entity),
                    idempotency::create_table(b),
                ]
            },
        },
    ]
}

/// What a schema says of its tables: per table, its columns (name, type, nullability, default)
/// in order, and its primary key and unique constraints.
type Shape = BTreeMap<String, Vec<String>>;

#[derive(FromQueryResult)]
struct Row {
    t: String,
    line: String,
}

async fn rows(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Vec<Row> {
    Row::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .all(db)
    .await
    .expect("schema query")
}

async fn shape(db: &DatabaseConnection, schema: &str) -> Shape {
    let mut out = Shape::new();
    let found = match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut r = rows(
                db,
                "SELECT table_name::text AS t, format('%s %s %s %s', column_name, data_type, \
                 is_nullable, coalesce(column_default, '-')) AS line \
                 FROM information_schema.columns WHERE table_schema = $1 \
                 AND table_name <> 'seaql_migrations' ORDER BY table_name, ordinal_position",
                vec![schema.into()],
            )
            .await;
            r.extend(
                rows(
                    db,
                    "SELECT tc.table_name::text AS t, format('%s (%s)', tc.constraint_type, \
                     string_agg(k.column_name::text, ', ' ORDER BY k.ordinal_position)) AS line \
                     FROM information_schema.table_constraints tc \
                     JOIN information_schema.key_column_usage k \
                       ON k.constraint_schema = tc.constraint_schema \
                      AND k.constraint_name = tc.constraint_name \
                     WHERE tc.table_schema = $1 AND tc.table_name <> 'seaql_migrations' \
                       AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') \
                     GROUP BY tc.table_name, tc.constraint_type, tc.constraint_name \
                     ORDER BY 1, 2",
                    vec![schema.into()],
                )
                .await,
            );
            r
        }
        _ => {
            let mut r = rows(
                db,
                "SELECT m.name AS t, c.name || ' ' || c.type || ' ' || c.\"notnull\" || ' ' || \
                 coalesce(c.dflt_value, '-') || ' pk' || c.pk AS line \
                 FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                   AND m.name <> 'seaql_migrations' ORDER BY m.name, c.cid",
                vec![],
            )
            .await;
            r.extend(
                rows(
                    db,
                    "SELECT m.name AS t, 'UNIQUE (' || (SELECT group_concat(name, ', ') FROM \
                     pragma_index_info(i.name)) || ')' AS line \
                     FROM sqlite_master m, pragma_index_list(m.name) i \
                     WHERE m.type = 'table' AND m.name <> 'seaql_migrations' AND i.origin = 'u' \
                     ORDER BY 1, 2",
                    vec![],
                )
                .await,
            );
            r
        }
    };
    for row in found {
        out.entry(row.t).or_default().push(row.line);
    }
    for lines in out.values_mut() {
        // Constraints come in no set order; columns keep theirs (the constraint lines sort
        // after nothing they are compared with but each other).
        let (cols, mut cons): (Vec<String>, Vec<String>) = lines
            .drain(..)
            .partition(|l| !l.starts_with("UNIQUE") && !l.starts_with("PRIMARY KEY"));
        cons.sort();
        lines.extend(cols);
        lines.extend(cons);
    }
    out
}

/// Migrates `migrated` and builds the entities' tables in `reference`, and compares them.
async fn compare(
    service: &Service,
    migrated: &DatabaseConnection,
    reference: &DatabaseConnection,
    schemas: (&str, &str),
) {
    (service.migrate)(migrated).await.expect("migrate");
    let backend = reference.get_database_backend();
    for t in (service.tables)(backend) {
        reference.execute(&t).await.expect("the entity's table");
    }
    let (got, want) = (
        shape(migrated, schemas.0).await,
        shape(reference, schemas.1).await,
    );
    assert!(!want.is_empty(), "{}: no tables", service.name);
    assert_eq!(
        got, want,
        "{} on {backend:?}: the migrated tables (left) differ from the entities (right); \
         a change of an entity needs a migration of its own",
        service.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_build_the_entities_tables_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    for service in services() {
        let open = |what: &str| {
            let url = marquee_platform::db::sqlite_url(
                &dir.path().join(format!("{}-{what}.db", service.name)),
            );
            async move {
                marquee_platform::db::connect(&url, "main")
                    .await
                    .expect("sqlite")
            }
        };
        let (migrated, reference) = (open("migrated").await, open("entities").await);
        compare(&service, &migrated, &reference, ("main", "main")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_build_the_entities_tables_on_postgres() {
    let ext = match common::External::create().await {
        Ok(ext) => ext,
        Err(why) => {
            let _ = common::skip("migrations_build_the_entities_tables_on_postgres", &why);
            return;
        }
    };
    for service in services() {
        let migrated = marquee_platform::db::connect(&ext.database_url, service.name)
            .await
            .expect("postgres");
        let reference_schema = format!("{}_entities", service.name);
        let reference = marquee_platform::db::connect(&ext.database_url, &reference_schema)
            .await
            .expect("postgres");
        compare(
            &service,
            &migrated,
            &reference,
            (service.name, &reference_schema),
        )
        .await;
        let _ = migrated.close().await;
        let _ = reference.close().await;
    }
    ext.drop_database().await;
}
