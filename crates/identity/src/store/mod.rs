//! Identity's storage: sea-orm over SQLite (embedded) or PostgreSQL (schema `identity`).
//!
//! Every idempotent write runs in one transaction together with its idempotency record. Refresh
//! tokens are rotated with a conditional update (`used_at IS NULL`), so two concurrent refreshes
//! with one token cannot both succeed: the loser is treated as a replay and revokes the family.

pub mod entities;
pub mod migration;

use marquee_platform::idempotency::{IdempotencyError, IdempotencyKey};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, prelude::Expr,
};
use sea_orm_migration::MigratorTrait;
use serde::{Serialize, de::DeserializeOwned};

use self::entities::{
    client, consent, refresh_token, sign_in_failure, signing_key, token_family, user,
};
use crate::{
    domain::{
        IdentityError,
        model::{Client, Consent, ConsentChannel, ConsentChoice, Role, User},
        rules::{RefreshVerdict, refresh_verdict},
    },
    tokens::KeyMaterial,
};

/// Identity's database.
#[derive(Clone)]
pub struct IdentityStore {
    db: DatabaseConnection,
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> IdentityError {
    IdentityError::Storage(Box::new(e))
}

fn idem(e: IdempotencyError) -> IdentityError {
    match e {
        IdempotencyError::Mismatch => IdentityError::IdempotencyMismatch,
        other => storage(other),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse<T: DeserializeOwned>(s: &str) -> Result<T, IdentityError> {
    serde_json::from_str(s).map_err(storage)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An account to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Id.
    pub id: String,
    /// As given.
    pub email: String,
    /// Lower-cased.
    pub email_key: String,
    /// E.164 or none.
    pub phone: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Theatres.
    pub theatres: Vec<String>,
    /// Consent choices to record.
    pub consents: Vec<ConsentChoice>,
    /// Now.
    pub created_at: i64,
}

/// A client to insert.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// The client.
    pub client: Client,
    /// SHA-256 of its secret.
    pub secret_hash: String,
}

/// A refresh token to insert.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: String,
    /// Now.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

fn client_from(m: client::Model) -> Result<Client, IdentityError> {
    let role = match m.role.as_str() {
        "service" => Role::Service,
        "partner" => Role::Partner,
        other => {
            return Err(storage(DbErr::Custom(format!(
                "unknown client role {other:?}"
            ))));
        }
    };
    Ok(Client {
        id: m.id,
        display_name: m.display_name,
        role,
        theatres: parse(&m.theatres)?,
        revoked: m.revoked_at.is_some(),
        created_at: m.created_at,
    })
}

async fn insert_consents(
    txn: &DatabaseTransaction,
    user_id: &str,
    choices: &[ConsentChoice],
    now: i64,
) -> Result<(), DbErr> {
    for c in choices {
        consent::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user_id.to_owned()),
            channel: Set(c.channel.as_str().to_owned()),
            granted: Set(c.granted),
            policy_version: Set(c.policy_version.clone()),
            recorded_at: Set(now),
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

async fn load_user(
    conn: &impl sea_orm::ConnectionTrait,
    m: user::Model,
) -> Result<User, IdentityError> {
    let history = consent::Entity::find()
        .filter(consent::Column::UserId.eq(m.id.clone()))
        .order_by_asc(consent::Column::RecordedAt)
        .order_by_asc(consent::Column::Id)
        .all(conn)
        .await
        .map_err(storage)?;
    let consent_history = history
        .into_iter()
        .filter_map(|c| {
            Some(Consent {
                channel: ConsentChannel::parse(&c.channel)?,
                granted: c.granted,
                policy_version: c.policy_version,
                recorded_at: c.recorded_at,
            })
        })
        .collect();
    Ok(User {
        id: m.id,
        email: m.email,
        phone: m.phone,
        roles: parse(&m.roles)?,
        theatres: parse(&m.theatres)?,
        consent_history,
        created_at: m.created_at,
    })
}

async fn revoke_family(
    conn: &impl sea_orm::ConnectionTrait,
    family_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    token_family::Entity::update_many()
        .col_expr(token_family::Column::RevokedAt, Expr::value(now))
        .filter(token_family::Column::Id.eq(family_id))
        .filter(token_family::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

impl IdentityStore {
    /// Connects to `url` and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = marquee_platform::db::connect(url, "identity").await?;
        let store = Self { db };
        migration::Migrator::up(&store.db, None).await?;
        Ok(store)
    }

    /// The database connection (for the platform's idempotency-key retention).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// True while the database answers.
    pub async fn ping(&self) -> bool {
        marquee_platform::db::ping(&self.db).await
    }

    // ----- keys ------------------------------------------------------------------------------

    /// Every signing key, oldest first; one is generated (and stored) when there is none. When
    /// several instances start at once each may store one; all of them pick the oldest to sign.
    pub async fn signing_keys(&self, now: i64) -> Result<Vec<KeyMaterial>, IdentityError> {
        marquee_platform::keys::load_or_create::<signing_key::Entity>(&self.db, now)
            .await
            .map_err(|e| match e {
                marquee_platform::keys::KeyStoreError::Db(e) => storage(e),
                marquee_platform::keys::KeyStoreError::Key(e) => IdentityError::internal(e),
            })
    }

    // ----- users -----------------------------------------------------------------------------

    async fn insert_user(txn: &DatabaseTransaction, u: &NewUser) -> Result<User, IdentityError> {
        let row = user::ActiveModel {
            id: Set(u.id.clone()),
            email: Set(u.email.clone()),
            email_lower: Set(u.email_key.clone()),
            phone: Set(u.phone.clone()),
            password_hash: Set(u.password_hash.clone()),
            roles: Set(json(&u.roles)),
            theatres: Set(json(&u.theatres)),
            created_at: Set(u.created_at),
        };
        let taken = user::Entity::find()
            .filter(user::Column::EmailLower.eq(u.email_key.clone()))
            .one(txn)
            .await
            .map_err(storage)?;
        if taken.is_some() {
            return Err(IdentityError::EmailTaken);
        }
        let model = row.insert(txn).await.map_err(|e| {
            if marquee_platform::db::is_unique_violation(&e) {
                IdentityError::EmailTaken
            } else {
                storage(e)
            }
        })?;
        insert_consents(txn, &u.id, &u.consents, u.created_at)
            .await
            .map_err(storage)?;
        load_user(txn, model).await
    }

    /// Creates an account, idempotently under `key` when given.
    pub async fn create_user(
        &self,
        key: Option<&IdempotencyKey>,
        new: &NewUser,
    ) -> Result<User, IdentityError> {
        match key {
            // A concurrent retry of the same request may win the race (this one then fails with
            // EMAIL_TAKEN): its user is the answer.
            Some(key) => {
                key.run(&self.db, idem, |txn| async move {
                    let out = Self::insert_user(&txn, new).await;
                    (txn, out)
                })
                .await
            }
            None => {
                let txn = self.db.begin().await.map_err(storage)?;
                let user = Self::insert_user(&txn, new).await?;
                txn.commit().await.map_err(storage)?;
                Ok(user)
            }
        }
    }

    /// The account with the lower-cased email `email_key`, with its password hash.
    pub async fn find_by_email(
        &self,
        email_key: &str,
    ) -> Result<Option<(User, String)>, IdentityError> {
        let Some(m) = user::Entity::find()
            .filter(user::Column::EmailLower.eq(email_key))
            .one(&self.db)
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let hash = m.password_hash.clone();
        Ok(Some((load_user(&self.db, m).await?, hash)))
    }

    /// One account.
    pub async fn get_user(&self, id: &str) -> Result<User, IdentityError> {
        let m = user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
            .ok_or_else(|| IdentityError::not_found("user", id))?;
        load_user(&self.db, m).await
    }

    /// Records consent choices of an account.
    pub async fn record_consents(
        &self,
        key: &IdempotencyKey,
        user_id: &str,
        choices: &[ConsentChoice],
        now: i64,
    ) -> Result<User, IdentityError> {
        key.run(&self.db, idem, |txn| async move {
            let out = async {
                let m = user::Entity::find_by_id(user_id.to_owned())
                    .one(&txn)
                    .await
                    .map_err(storage)?
                    .ok_or_else(|| IdentityError::not_found("user", user_id))?;
                insert_consents(&txn, user_id, choices, now)
                    .await
                    .map_err(storage)?;
                load_user(&txn, m).await
            }
            .await;
            (txn, out)
        })
        .await
    }

    // ----- sign-in failures ------------------------------------------------------------------

    /// How many failures `subject` had since `since`, and when the oldest of them was.
    pub async fn failures_since(
        &self,
        subject: &str,
        since: i64,
    ) -> Result<(u64, Option<i64>), IdentityError> {
        let times: Vec<i64> = sign_in_failure::Entity::find()
            .select_only()
            .column(sign_in_failure::Column::At)
            .filter(sign_in_failure::Column::Subject.eq(subject))
            .filter(sign_in_failure::Column::At.gt(since))
            .order_by_asc(sign_in_failure::Column::At)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok((times.len() as u64, times.first().copied()))
    }

    /// Records one failure against each subject, and forgets failures older than `forget_before`.
    pub async fn record_failure(
        &self,
        subjects: &[String],
        now: i64,
        forget_before: i64,
    ) -> Result<(), IdentityError> {
        for s in subjects {
            sign_in_failure::ActiveModel {
                id: Set(new_id()),
                subject: Set(s.clone()),
                at: Set(now),
            }
            .insert(&self.db)
            .await
            .map_err(storage)?;
        }
        sign_in_failure::Entity::delete_many()
            .filter(sign_in_failure::Column::At.lt(forget_before))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Forgets the failures of `subject` (after a successful sign-in).
    pub async fn clear_failures(&self, subject: &str) -> Result<(), IdentityError> {
        sign_in_failure::Entity::delete_many()
            .filter(sign_in_failure::Column::Subject.eq(subject))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(())
    }

    // ----- refresh tokens --------------------------------------------------------------------

    /// Starts a token family for `user_id` with its first refresh token.
    pub async fn start_family(
        &self,
        user_id: &str,
        token: &NewRefreshToken,
    ) -> Result<(), IdentityError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let family_id = new_id();
        token_family::ActiveModel {
            id: Set(family_id.clone()),
            user_id: Set(user_id.to_owned()),
            created_at: Set(token.created_at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(storage)?;
        insert_refresh(&txn, &family_id, user_id, token)
            .await
            .map_err(storage)?;
        txn.commit().await.map_err(storage)
    }

    /// Exchanges the refresh token hashed `old_hash` for `next` in the same family; returns the
    /// user id. A token used before revokes its family.
    pub async fn rotate(
        &self,
        old_hash: &str,
        next: &NewRefreshToken,
    ) -> Result<String, IdentityError> {
        let now = next.created_at;
        let txn = self.db.begin().await.map_err(storage)?;
        let out = async {
            let row = refresh_token::Entity::find_by_id(old_hash.to_owned())
                .one(&txn)
                .await
                .map_err(storage)?
                .ok_or(IdentityError::InvalidRefreshToken)?;
            let family = token_family::Entity::find_by_id(row.family_id.clone())
                .one(&txn)
                .await
                .map_err(storage)?
                .ok_or(IdentityError::InvalidRefreshToken)?;
            let verdict = refresh_verdict(
                row.used_at.is_some(),
                family.revoked_at.is_some(),
                row.expires_at,
                now,
            );
            match verdict {
                RefreshVerdict::Refuse => Ok(Err(IdentityError::InvalidRefreshToken)),
                RefreshVerdict::RevokeFamily => {
                    revoke_family(&txn, &row.family_id, now)
                        .await
                        .map_err(storage)?;
                    Ok(Err(IdentityError::InvalidRefreshToken))
                }
                RefreshVerdict::Rotate => {
                    let updated = refresh_token::Entity::update_many()
                        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
                        .filter(refresh_token::Column::TokenHash.eq(old_hash))
                        .filter(refresh_token::Column::UsedAt.is_null())
                        .exec(&txn)
                        .await
                        .map_err(storage)?;
                    if updated.rows_affected != 1 {
                        // A concurrent exchange of the same token won: this one is a replay.
                        revoke_family(&txn, &row.family_id, now)
                            .await
                            .map_err(storage)?;
                        return Ok(Err(IdentityError::InvalidRefreshToken));
                    }
                    insert_refresh(&txn, &row.family_id, &row.user_id, next)
                        .await
                        .map_err(storage)?;
                    Ok(Ok(row.user_id))
                }
            }
        }
        .await;
        match out {
            // Commit even when refusing: a family revoked for reuse must stay revoked.
            Ok(result) => {
                txn.commit().await.map_err(storage)?;
                result
            }
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }

    /// Revokes the family of the refresh token hashed `hash`.
    pub async fn sign_out(
        &self,
        key: &IdempotencyKey,
        hash: &str,
        now: i64,
    ) -> Result<(), IdentityError> {
        key.run(&self.db, idem, |txn| async move {
            let out = async {
                let row = refresh_token::Entity::find_by_id(hash.to_owned())
                    .one(&txn)
                    .await
                    .map_err(storage)?
                    .ok_or(IdentityError::InvalidRefreshToken)?;
                revoke_family(&txn, &row.family_id, now)
                    .await
                    .map_err(storage)
            }
            .await;
            (txn, out)
        })
        .await
    }

    // ----- clients ---------------------------------------------------------------------------

    /// Registers a client; the stored result (for retries) never holds the secret.
    pub async fn create_client(
        &self,
        key: &IdempotencyKey,
        new: &NewClient,
    ) -> Result<(Client, bool), IdentityError> {
        let c = &new.client;
        let first: Client = key
            .run(&self.db, idem, |txn| async move {
                let out = client::ActiveModel {
                    id: Set(c.id.clone()),
                    display_name: Set(c.display_name.clone()),
                    secret_hash: Set(new.secret_hash.clone()),
                    role: Set(c.role.as_str().to_owned()),
                    theatres: Set(json(&c.theatres)),
                    created_at: Set(c.created_at),
                    revoked_at: Set(None),
                }
                .insert(&txn)
                .await
                .map_err(storage)
                .and_then(client_from);
                (txn, out)
            })
            .await?;
        // When this is a retry, or a concurrent retry committed first, the first client is
        // returned without our secret.
        let ours = first.id == c.id;
        Ok((first, ours))
    }

    /// Revokes a client.
    pub async fn revoke_client(
        &self,
        key: &IdempotencyKey,
        id: &str,
        now: i64,
    ) -> Result<Client, IdentityError> {
        key.run(&self.db, idem, |txn| async move {
            let out = async {
                let m = client::Entity::find_by_id(id.to_owned())
                    .one(&txn)
                    .await
                    .map_err(storage)?
                    .ok_or_else(|| IdentityError::not_found("client", id))?;
                if m.revoked_at.is_some() {
                    return client_from(m);
                }
                let mut active: client::ActiveModel = m.into();
                active.revoked_at = Set(Some(now));
                client_from(active.update(&txn).await.map_err(storage)?)
            }
            .await;
            (txn, out)
        })
        .await
    }

    /// A client with its secret hash.
    pub async fn find_client(&self, id: &str) -> Result<Option<(Client, String)>, IdentityError> {
        let Some(m) = client::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let hash = m.secret_hash.clone();
        Ok(Some((client_from(m)?, hash)))
    }
}

async fn insert_refresh(
    txn: &DatabaseTransaction,
    family_id: &str,
    user_id: &str,
    t: &NewRefreshToken,
) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        token_hash: Set(t.hash.clone()),
        family_id: Set(family_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        created_at: Set(t.created_at),
        expires_at: Set(t.expires_at),
        used_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(())
}
