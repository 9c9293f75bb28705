//! Idempotency keys (AIP-155): every mutating request carries a `request_id`; the first result
//! is stored with a fingerprint of the request in the same transaction as the change itself, so a
//! retry gets the first result back and a reuse of the key for another request is refused.
//!
//! Each service owns an `idempotency_keys` table in its own schema ([`create_table`] in its first
//! migration). Requests and results are serde values of the service's domain; the fingerprint is a
//! SHA-256 of the request's JSON form.
//!
//! ```text
//! let key = IdempotencyKey::new("catalog.create_theatre", &request_id, &command)?;
//! let txn = db.begin().await?;
//! if let Some(first) = key.replay(&txn).await? { return Ok(first); }
//! ... the change, on txn ...
//! key.commit(db, txn, result).await
//! ```

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    Schema, Set, TransactionTrait, sea_query::TableCreateStatement,
};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// Why an idempotent operation could not run or replay.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was used before for a request with other parameters.
    #[error("request_id was already used for a different request")]
    Mismatch,
    /// The database failed.
    #[error("database error")]
    Db(#[from] DbErr),
    /// A stored result could not be decoded (the code that stored it was different).
    #[error("stored result is unreadable")]
    Corrupt(#[from] serde_json::Error),
}

/// The stored first results.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One used idempotency key.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        /// The operation, for example `catalog.create_theatre`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        /// The client's request id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        /// SHA-256 (hex) of the request's JSON form.
        pub fingerprint: String,
        /// The first result, as JSON.
        #[sea_orm(column_type = "Text")]
        pub result: String,
        /// When the key was first used.
        pub created_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `CREATE TABLE` of `idempotency_keys` as the entity is now: what the schema tests hold a
/// service's migrated table to (its first migration writes the SQL out, fixed).
pub fn create_table(backend: sea_orm::DbBackend) -> TableCreateStatement {
    Schema::new(backend)
        .create_table_from_entity(entity::Entity)
        .if_not_exists()
        .to_owned()
}

/// Forgets the keys first used before `cutoff` (a retry under one of them afterwards runs as a
/// new request); returns how many went.
pub async fn purge_before(
    conn: &impl ConnectionTrait,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let deleted = entity::Entity::delete_many()
        .filter(entity::Column::CreatedAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

/// The migration every service with idempotency keys runs after its first: an index on when
/// each key was first used, which [`purge_before`] reads by.
pub struct IndexCreatedAt;

impl sea_orm_migration::MigrationName for IndexCreatedAt {
    fn name(&self) -> &str {
        "m20261128_000001_idempotency_keys_created_at"
    }
}

#[sea_orm_migration::async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl sea_orm_migration::MigrationTrait for IndexCreatedAt {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                sea_orm::sea_query::Index::create()
                    .if_not_exists()
                    .name("ix_idempotency_keys_created_at")
                    .table(entity::Entity)
                    .col(entity::Column::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}

/// Keeps `service`'s keys for `retention` (none are forgotten when it is zero): purges the
/// older ones at start and then every tenth of `retention` (at least every second, at most
/// every hour), until `stop`.
pub fn spawn_retention(
    db: DatabaseConnection,
    service: &'static str,
    retention: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    if retention.is_zero() {
        return;
    }
    let every = (retention / 10).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3_600),
    );
    tokio::spawn(async move {
        loop {
            let cutoff = chrono::Utc::now()
                - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            match purge_before(&db, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(service, purged = n, "idempotency keys past retention"),
                Err(error) => tracing::warn!(service, %error, "idempotency key retention"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// One request's idempotency key and fingerprint.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    scope: &'static str,
    request_id: String,
    fingerprint: String,
}

/// SHA-256 (hex) of a value's JSON form.
pub fn fingerprint(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Lower-case hex, by table (this runs on every hold; `write!` per byte showed in profiles).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

impl IdempotencyKey {
    /// The key of `request` under `request_id` for the operation `scope`.
    pub fn new(scope: &'static str, request_id: &str, request: &impl Serialize) -> Self {
        Self {
            scope,
            request_id: request_id.to_owned(),
            fingerprint: fingerprint(request),
        }
    }

    /// The first result if this key was used before with the same request; `Mismatch` if it was
    /// used with another.
    pub async fn replay<R: DeserializeOwned>(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<R>, IdempotencyError> {
        let found = entity::Entity::find_by_id((self.scope.to_owned(), self.request_id.clone()))
            .one(conn)
            .await?;
        match found {
            None => Ok(None),
            Some(row) if row.fingerprint != self.fingerprint => Err(IdempotencyError::Mismatch),
            Some(row) => Ok(Some(serde_json::from_str(&row.result)?)),
        }
    }

    /// Records `result` in `txn` and commits. If a concurrent request with the same key committed
    /// first, this one's transaction is rolled back and the other's result is returned.
    pub async fn commit<R: Serialize + DeserializeOwned>(
        &self,
        db: &DatabaseConnection,
        txn: DatabaseTransaction,
        result: R,
    ) -> Result<R, IdempotencyError> {
        let row = entity::ActiveModel {
            scope: Set(self.scope.to_owned()),
            request_id: Set(self.request_id.clone()),
            fingerprint: Set(self.fingerprint.clone()),
            result: Set(serde_json::to_string(&result)?),
            created_at: Set(chrono::Utc::now()),
        };
        match row.insert(&txn).await {
            Ok(_) => {
                txn.commit().await?;
                Ok(result)
            }
            Err(e) if crate::db::is_unique_violation(&e) => {
                txn.rollback().await?;
                self.replay(db).await?.ok_or(IdempotencyError::Db(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `work` in a transaction that also records this key: a retry of a request already
    /// done returns its first result without running `work`. The transaction is handed to
    /// `work` and back, so that `work` may borrow whatever it needs. When `work` fails, a
    /// concurrent retry of the same request may have won (and made this attempt fail, on a
    /// unique key say): its result is then the answer. `map` turns this module's errors into
    /// the caller's.
    pub async fn run<T, E, F, Fut>(
        &self,
        db: &DatabaseConnection,
        map: impl Fn(IdempotencyError) -> E,
        work: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(DatabaseTransaction) -> Fut,
        Fut: std::future::Future<Output = (DatabaseTransaction, Result<T, E>)>,
    {
        let txn = match self.begin(db).await.map_err(&map)? {
            Ok(txn) => txn,
            Err(first) => return Ok(first),
        };
        let (txn, outcome) = work(txn).await;
        match outcome {
            Ok(value) => self.commit(db, txn, value).await.map_err(map),
            Err(error) => {
                if let Err(e) = txn.rollback().await {
                    tracing::warn!(error = %e, "rollback failed");
                }
                match self.replay(db).await {
                    Ok(Some(first)) => Ok(first),
                    _ => Err(error),
                }
            }
        }
    }

    /// Begins a transaction and replays in it: `Ok(Err(first))` when the key was seen before.
    pub async fn begin<R: DeserializeOwned>(
        &self,
        db: &DatabaseConnection,
    ) -> Result<Result<DatabaseTransaction, R>, IdempotencyError> {
        let txn = db.begin().await?;
        match self.replay(&txn).await? {
            Some(first) => {
                txn.rollback().await?;
                Ok(Err(first))
            }
            None => Ok(Ok(txn)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_sha256_hex_of_the_json() {
        assert_eq!(
            fingerprint(&"abc"),
            "6cc43f858fbb763301637b5af970e2a46b46f461f27e5a0f41e009c59b827b25"
        );
    }

    #[test]
    fn fingerprints_differ_by_content() {
        assert_eq!(fingerprint(&("a", 1)), fingerprint(&("a", 1)));
        assert_ne!(fingerprint(&("a", 1)), fingerprint(&("a", 2)));
        assert_eq!(fingerprint(&"x").len(), 64);
    }
}
