//! Who is calling: access-token verification every service does itself.
//!
//! Identity signs short-lived JWT access tokens with Ed25519 (`alg: EdDSA`) and publishes its
//! public keys as a JWKS document. A [`Verifier`] holds those keys and checks a token's
//! signature, algorithm (only EdDSA: `none`, HMAC and RSA tokens are refused), issuer, audience
//! and expiry. The [`AuthLayer`] runs it on every call that carries `authorization: Bearer …`
//! and puts the resulting [`Caller`] in the request's extensions; a call with a bad token is
//! answered `UNAUTHENTICATED` before it reaches a handler. A call without a token reaches the
//! handler anonymously: each handler decides with [`caller`] / [`require_role`] what it needs.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    task::{Context, Poll},
};

use http::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// The issuer of every Marquee access token.
pub const ISSUER: &str = "marquee-identity";
/// The audience of every Marquee access token.
pub const AUDIENCE: &str = "marquee";

/// What a caller may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A signed-in customer.
    Customer,
    /// Content administrator.
    Admin,
    /// A theatre partner, scoped to its theatres.
    Partner,
    /// Door staff, scoped to their theatres.
    Staff,
    /// Another Marquee service.
    Service,
}

impl Role {
    /// The role's name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Partner => "partner",
            Role::Staff => "staff",
            Role::Service => "service",
        }
    }
}

/// The claims of a Marquee access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: [`ISSUER`].
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// The user id, or the client id of a service or partner.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Theatres a partner or staff member may act for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub theatres: Vec<String>,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User id, or the client id of a service or partner.
    pub subject: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Theatres a partner or staff member may act for.
    pub theatres: Vec<String>,
    /// The token's id.
    pub token_id: String,
}

impl Caller {
    /// True when the caller has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// True when the caller may act for `theatre_id` (admins for every theatre).
    pub fn acts_for_theatre(&self, theatre_id: &str) -> bool {
        self.has_role(Role::Admin) || self.theatres.iter().any(|t| t == theatre_id)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not `Bearer <token>`, or not a JWT.
    #[error("malformed access token")]
    Malformed,
    /// Signed with an algorithm other than EdDSA (including `none`).
    #[error("access token algorithm not accepted")]
    Algorithm,
    /// Signed by a key this service does not know.
    #[error("access token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("access token signature is invalid")]
    BadSignature,
    /// Expired.
    #[error("access token expired")]
    Expired,
    /// Wrong issuer or audience, or claims missing.
    #[error("access token claims are invalid")]
    Claims,
}

/// Checks access tokens against identity's public keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Arc<Validation>,
    /// Tokens verified lately, with their caller and expiry (Unix seconds): an Ed25519
    /// signature check costs more than the rest of a small call, and a client sends the same
    /// token with every call until it refreshes it. Emptied when the keys are replaced.
    verified: moka::sync::Cache<Arc<str>, (Caller, i64)>,
}

/// How many verified tokens are remembered, and for how long at most.
const VERIFIED_CAPACITY: u64 = 100_000;
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .keys
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Verifier").field("kids", &kids).finish()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// A verifier with no keys yet (it refuses every token until [`Verifier::set_keys`]).
    pub fn new() -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            keys: Arc::new(RwLock::new(HashMap::new())),
            validation: Arc::new(validation),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
        }
    }

    /// Replaces the known keys with the Ed25519 keys of a JWKS document that carry a key id.
    /// Returns how many were taken.
    pub fn set_keys(&self, jwks: &JwkSet) -> usize {
        let keys: HashMap<String, DecodingKey> = ed25519_keys(jwks).collect();
        let n = keys.len();
        if let Ok(mut current) = self.keys.write() {
            *current = keys;
        }
        // A token signed by a key that is gone must not pass from memory.
        self.verified.invalidate_all();
        n
    }

    /// Adds the Ed25519 keys of a JWKS document to the known keys (a key with a known id is
    /// replaced). Returns how many were taken.
    pub fn add_keys(&self, jwks: &JwkSet) -> usize {
        let mut taken = 0;
        if let Ok(mut current) = self.keys.write() {
            for (kid, key) in ed25519_keys(jwks) {
                current.insert(kid, key);
                taken += 1;
            }
        }
        taken
    }

    /// Verifies a token and returns its caller. A token verified within the last minute is
    /// not checked again (only its expiry is).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some((caller, exp)) = self.verified.get(token) {
            let now = chrono::Utc::now().timestamp();
            if now <= exp + self.validation.leeway as i64 {
                return Ok(caller);
            }
            self.verified.invalidate(token);
            return Err(AuthError::Expired);
        }
        self.verify_signed(token)
    }

    fn verify_signed(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Algorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self
            .keys
            .read()
            .map_err(|_| AuthError::UnknownKey)?
            .get(&kid)
            .cloned()
            .ok_or(AuthError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm,
                ErrorKind::InvalidIssuer
                | ErrorKind::InvalidAudience
                | ErrorKind::MissingRequiredClaim(_) => AuthError::Claims,
                _ => AuthError::Malformed,
            }
        })?;
        let c = data.claims;
        let caller = Caller {
            subject: c.sub,
            roles: c.roles,
            theatres: c.theatres,
            token_id: c.jti,
        };
        self.verified
            .insert(Arc::from(token), (caller.clone(), c.exp));
        Ok(caller)
    }

    /// Verifies the value of an `authorization` header.
    pub fn verify_header(&self, value: &str) -> Result<Caller, AuthError> {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }
}

/// The Ed25519 keys of a JWKS document that carry a key id.
fn ed25519_keys(jwks: &JwkSet) -> impl Iterator<Item = (String, DecodingKey)> + '_ {
    jwks.keys.iter().filter_map(|jwk| {
        let kid = jwk.common.key_id.clone()?;
        if !matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)
        ) {
            return None;
        }
        DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
    })
}

/// The verified caller of a request, or `UNAUTHENTICATED`.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("sign in: this call needs an access token"))
}

/// The verified caller if it has `role`; `UNAUTHENTICATED` without a caller,
/// `PERMISSION_DENIED` without the role.
pub fn require_role<T>(request: &tonic::Request<T>, role: Role) -> Result<&Caller, Status> {
    let caller = caller(request)?;
    if caller.has_role(role) {
        Ok(caller)
    } else {
        Err(Status::permission_denied(format!(
            "this call needs the {} role",
            role.as_str()
        )))
    }
}

/// Verifies the bearer token of every call that has one (see the module documentation).
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: Verifier,
}

impl AuthLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    verifier: Verifier,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // A caller identity never comes from the client.
        req.extensions_mut().remove::<Caller>();
        if let Some(value) = req.headers().get(http::header::AUTHORIZATION) {
            let verified = value
                .to_str()
                .map_err(|_| AuthError::Malformed)
                .and_then(|v| self.verifier.verify_header(v));
            match verified {
                Ok(caller) => {
                    tracing::Span::current().record("caller", caller.subject.as_str());
                    req.extensions_mut().insert(caller);
                }
                Err(error) => {
                    let status = Status::unauthenticated(error.to_string());
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        let fut = self.inner.call(req);
        Box::pin(fut)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, Header};

    use super::*;
    use crate::keys::{KeyMaterial, jwks};

    fn sign(key: &KeyMaterial, exp_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: "user-1".to_owned(),
            iat: now,
            exp: now + exp_in,
            jti: "t1".to_owned(),
            roles: vec![Role::Customer],
            theatres: Vec::new(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding_key().expect("key")).expect("sign")
    }

    #[test]
    fn remembered_tokens_are_forgotten_with_their_key() {
        let key = KeyMaterial::generate(0).expect("key");
        let other = KeyMaterial::generate(0).expect("key");
        let verifier = Verifier::new();
        assert_eq!(
            verifier.set_keys(&jwks([(key.kid.as_str(), key.public_key.as_str())])),
            1
        );
        let token = sign(&key, 600);
        let first = verifier.verify(&token).expect("valid");
        // The second check is answered from memory, with the same caller.
        assert_eq!(verifier.verify(&token).expect("valid again"), first);
        verifier.verified.run_pending_tasks();
        assert_eq!(verifier.verified.entry_count(), 1);
        // Once the key is gone, so is the token.
        verifier.set_keys(&jwks([(other.kid.as_str(), other.public_key.as_str())]));
        assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKey));
        // A token that fails is never remembered as valid.
        let expired = sign(&other, -3_600);
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
    }
}
