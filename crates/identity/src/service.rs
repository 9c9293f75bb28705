//! Identity's application service: what the gRPC adapter (and `marquee admin create`) calls.
//! Validation, password hashing, rate limiting and token issuing happen here; the store keeps
//! state.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use marquee_platform::{
    idempotency::IdempotencyKey,
    validation::{Violations, check_request_id},
};
use serde::Serialize;

use crate::{
    config::IdentityConfig,
    domain::{
        IdentityError,
        model::{AccessToken, Client, ConsentChoice, Role, Tokens, User},
        rules::{self, Email, FailureLimit},
    },
    secrets,
    store::{IdentityStore, NewClient, NewRefreshToken, NewUser},
    tokens::Keys,
};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A sign-up or an account an admin creates.
#[derive(Debug, Clone)]
pub struct AccountRequest {
    /// Email.
    pub email: String,
    /// Phone, empty when not given.
    pub phone: String,
    /// Password.
    pub password: String,
    /// Consent choices.
    pub consents: Vec<ConsentChoice>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Theatres.
    pub theatres: Vec<String>,
}

/// What the idempotency fingerprint of an account request covers. The password is left out on
/// purpose: an unsalted digest of it must never be stored.
#[derive(Serialize)]
struct AccountFingerprint<'a> {
    email: &'a str,
    phone: &'a str,
    consents: &'a [ConsentChoice],
    roles: &'a [Role],
    theatres: &'a [String],
}

/// A client to register.
#[derive(Debug, Clone, Serialize)]
pub struct ClientRequest {
    /// Display name.
    pub display_name: String,
    /// `Service` or `Partner`.
    pub role: Role,
    /// Theatres of a partner.
    pub theatres: Vec<String>,
}

/// Identity.
#[derive(Clone)]
pub struct Identity {
    store: IdentityStore,
    keys: Arc<Keys>,
    config: Arc<IdentityConfig>,
    /// Verified against when an account does not exist, so that unknown accounts take as long
    /// as wrong passwords.
    decoy_hash: Arc<String>,
}

impl Identity {
    /// Identity over `store`, loading (or creating) its signing key.
    pub async fn new(store: IdentityStore, config: &IdentityConfig) -> Result<Self, IdentityError> {
        let all = store.signing_keys(now()).await?;
        let active = all
            .first()
            .ok_or_else(|| IdentityError::internal(std::fmt::Error))?;
        let keys = Keys::new(active, &all)?;
        let decoy_hash = secrets::hash_password(secrets::random_token()).await?;
        Ok(Self {
            store,
            keys: Arc::new(keys),
            config: Arc::new(config.clone()),
            decoy_hash: Arc::new(decoy_hash),
        })
    }

    /// The store, for readiness checks.
    pub fn store(&self) -> &IdentityStore {
        &self.store
    }

    /// The public keys that verify access tokens.
    pub fn jwks(&self) -> JwkSet {
        self.keys.jwks()
    }

    /// Signs an access token with identity's key. Every token identity hands out is made here;
    /// it is public so that tools (and tests) can mint tokens with a chosen issue time.
    pub fn sign_access_token(
        &self,
        subject: &str,
        roles: &[Role],
        theatres: &[String],
        issued_at: i64,
        ttl_secs: i64,
    ) -> Result<AccessToken, IdentityError> {
        self.keys
            .sign(subject, roles, theatres, issued_at, ttl_secs)
    }

    async fn new_user(&self, request: AccountRequest) -> Result<NewUser, IdentityError> {
        let mut v = Violations::new();
        let email = match Email::parse("email", &request.email) {
            Ok(e) => Some(e),
            Err(e) => {
                v.extend(e);
                None
            }
        };
        rules::check_password(&mut v, "password", &request.password, &request.email);
        rules::check_phone(&mut v, "phone", &request.phone);
        rules::check_consents(&mut v, "consents", &request.consents);
        v.into_result()?;
        let email = email.ok_or_else(|| Violations::one("email", "required"))?;
        let password_hash = secrets::hash_password(request.password).await?;
        Ok(NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.address,
            email_key: email.key,
            phone: (!request.phone.is_empty()).then_some(request.phone),
            password_hash,
            roles: request.roles,
            theatres: request.theatres,
            consents: rules::sign_up_consents(&request.consents),
            created_at: now(),
        })
    }

    fn account_key(scope: &'static str, request_id: &str, r: &AccountRequest) -> IdempotencyKey {
        IdempotencyKey::new(
            scope,
            request_id,
            &AccountFingerprint {
                email: &r.email,
                phone: &r.phone,
                consents: &r.consents,
                roles: &r.roles,
                theatres: &r.theatres,
            },
        )
    }

    /// Creates a customer account.
    pub async fn sign_up(
        &self,
        request_id: &str,
        mut request: AccountRequest,
    ) -> Result<User, IdentityError> {
        check_request_id(request_id)?;
        request.roles = vec![Role::Customer];
        request.theatres = Vec::new();
        let key = Self::account_key("identity.sign_up", request_id, &request);
        let new = self.new_user(request).await?;
        self.store.create_user(Some(&key), &new).await
    }

    /// Creates an account with roles (the caller must be an admin: checked by the adapter).
    pub async fn create_user(
        &self,
        request_id: &str,
        request: AccountRequest,
    ) -> Result<User, IdentityError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_user_roles(&mut v, &request.roles, &request.theatres);
        v.into_result()?;
        let key = Self::account_key("identity.create_user", request_id, &request);
        let new = self.new_user(request).await?;
        self.store.create_user(Some(&key), &new).await
    }

    /// Creates an admin account directly (the first admin, from `marquee admin create`).
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<User, IdentityError> {
        let new = self
            .new_user(AccountRequest {
                email: email.to_owned(),
                phone: String::new(),
                password: password.to_owned(),
                consents: Vec::new(),
                roles: vec![Role::Admin],
                theatres: Vec::new(),
            })
            .await?;
        self.store.create_user(None, &new).await
    }

    async fn check_limit(
        &self,
        subject: &str,
        max_failures: u64,
        now: i64,
    ) -> Result<(), IdentityError> {
        let limit = FailureLimit {
            max_failures,
            window_secs: self.config.failure_window_secs.max(1),
        };
        let (count, oldest) = self
            .store
            .failures_since(subject, now - limit.window_secs)
            .await?;
        match limit.retry_after(count, oldest, now) {
            Some(retry_after_secs) => Err(IdentityError::RateLimited { retry_after_secs }),
            None => Ok(()),
        }
    }

    async fn issue(
        &self,
        user: &User,
        now: i64,
    ) -> Result<(Tokens, NewRefreshToken), IdentityError> {
        let access = self.sign_access_token(
            &user.id,
            &user.roles,
            &user.theatres,
            now,
            self.config.access_token_ttl_secs,
        )?;
        let refresh_token = secrets::random_token();
        let record = NewRefreshToken {
            hash: secrets::token_hash(&refresh_token),
            created_at: now,
            expires_at: now + self.config.refresh_token_ttl_secs,
        };
        Ok((
            Tokens {
                access,
                refresh_token,
                refresh_expires_at: record.expires_at,
            },
            record,
        ))
    }

    /// Signs in with email and password from `address` (the client's IP, when known).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        address: Option<&str>,
    ) -> Result<(Tokens, User), IdentityError> {
        let mut v = Violations::new();
        v.check(!email.trim().is_empty(), "email", "required");
        v.check(!password.is_empty(), "password", "required");
        v.into_result()?;
        let now = now();
        let account = format!("account:{}", rules::email_key(email));
        let address = address.map(|a| format!("address:{a}"));
        self.check_limit(&account, self.config.max_failures_per_account, now)
            .await?;
        if let Some(address) = &address {
            self.check_limit(address, self.config.max_failures_per_address, now)
                .await?;
        }
        let found = self.store.find_by_email(&rules::email_key(email)).await?;
        let hash = found
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| self.decoy_hash.as_ref().clone());
        let ok = secrets::verify_password(password.to_owned(), hash).await?;
        let user = match found {
            Some((user, _)) if ok => user,
            _ => {
                let subjects: Vec<String> = std::iter::once(account).chain(address).collect();
                self.store
                    .record_failure(&subjects, now, now - self.config.failure_window_secs.max(1))
                    .await?;
                return Err(IdentityError::BadCredentials);
            }
        };
        self.store.clear_failures(&account).await?;
        let (tokens, record) = self.issue(&user, now).await?;
        self.store.start_family(&user.id, &record).await?;
        Ok((tokens, user))
    }

    /// Rotates a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, IdentityError> {
        if refresh_token.is_empty() {
            return Err(Violations::one("refresh_token", "required").into());
        }
        let now = now();
        let next = secrets::random_token();
        let record = NewRefreshToken {
            hash: secrets::token_hash(&next),
            created_at: now,
            expires_at: now + self.config.refresh_token_ttl_secs,
        };
        let user_id = self
            .store
            .rotate(&secrets::token_hash(refresh_token), &record)
            .await?;
        let user = self.store.get_user(&user_id).await?;
        let access = self.sign_access_token(
            &user.id,
            &user.roles,
            &user.theatres,
            now,
            self.config.access_token_ttl_secs,
        )?;
        Ok(Tokens {
            access,
            refresh_token: next,
            refresh_expires_at: record.expires_at,
        })
    }

    /// Revokes the family of a refresh token.
    pub async fn sign_out(
        &self,
        request_id: &str,
        refresh_token: &str,
    ) -> Result<(), IdentityError> {
        check_request_id(request_id)?;
        if refresh_token.is_empty() {
            return Err(Violations::one("refresh_token", "required").into());
        }
        let hash = secrets::token_hash(refresh_token);
        // The token's hash, not the token, goes into the stored fingerprint.
        let key = IdempotencyKey::new("identity.sign_out", request_id, &hash);
        self.store.sign_out(&key, &hash, now()).await
    }

    /// The account of `user_id`.
    pub async fn get_user(&self, user_id: &str) -> Result<User, IdentityError> {
        self.store.get_user(user_id).await
    }

    /// Records consent choices of `user_id`.
    pub async fn update_consent(
        &self,
        request_id: &str,
        user_id: &str,
        choices: Vec<ConsentChoice>,
    ) -> Result<User, IdentityError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        v.check(!choices.is_empty(), "consents", "required");
        rules::check_consents(&mut v, "consents", &choices);
        v.into_result()?;
        let key = IdempotencyKey::new("identity.update_consent", request_id, &(user_id, &choices));
        self.store
            .record_consents(&key, user_id, &choices, now())
            .await
    }

    /// Registers a client; the secret is returned only by the call that created it.
    pub async fn create_client(
        &self,
        request_id: &str,
        request: ClientRequest,
    ) -> Result<(Client, Option<String>), IdentityError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        rules::check_client(
            &mut v,
            &request.display_name,
            request.role,
            &request.theatres,
        );
        v.into_result()?;
        let key = IdempotencyKey::new("identity.create_client", request_id, &request);
        let secret = secrets::random_token();
        let new = NewClient {
            client: Client {
                id: format!("cli_{}", uuid::Uuid::now_v7().simple()),
                display_name: request.display_name.trim().to_owned(),
                role: request.role,
                theatres: request.theatres,
                revoked: false,
                created_at: now(),
            },
            secret_hash: secrets::token_hash(&secret),
        };
        let (client, ours) = self.store.create_client(&key, &new).await?;
        Ok((client, ours.then_some(secret)))
    }

    /// Revokes a client.
    pub async fn revoke_client(
        &self,
        request_id: &str,
        client_id: &str,
    ) -> Result<Client, IdentityError> {
        check_request_id(request_id)?;
        if client_id.is_empty() {
            return Err(Violations::one("client_id", "required").into());
        }
        let key = IdempotencyKey::new("identity.revoke_client", request_id, &client_id);
        self.store.revoke_client(&key, client_id, now()).await
    }

    /// Client credentials: a short-lived access token for a client.
    pub async fn issue_client_token(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<AccessToken, IdentityError> {
        let mut v = Violations::new();
        v.check(!client_id.is_empty(), "client_id", "required");
        v.check(!client_secret.is_empty(), "client_secret", "required");
        v.into_result()?;
        let Some((client, hash)) = self.store.find_client(client_id).await? else {
            return Err(IdentityError::InvalidClient);
        };
        let presented = secrets::token_hash(client_secret);
        if client.revoked || !constant_time_eq(presented.as_bytes(), hash.as_bytes()) {
            return Err(IdentityError::InvalidClient);
        }
        self.sign_access_token(
            &client.id,
            &[client.role],
            &client.theatres,
            now(),
            self.config.client_token_ttl_secs,
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
