//! Identity's errors. [`crate::grpc`] maps them to `tonic::Status` in one place.

use marquee_platform::validation::Violations;

/// Everything an identity operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request is malformed; the violations name the fields.
    #[error("invalid request: {0}")]
    Invalid(#[from] Violations),
    /// Wrong email or password, or no such account: deliberately one error for both.
    #[error("wrong email or password")]
    BadCredentials,
    /// Too many failed sign-ins for the account or the address.
    #[error("too many failed sign-ins")]
    RateLimited {
        /// Seconds until another attempt may succeed.
        retry_after_secs: i64,
    },
    /// The refresh token is unknown, expired, used before or of a revoked family.
    #[error("refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    /// Wrong client id or secret, or the client is revoked.
    #[error("wrong client id or secret, or the client is revoked")]
    InvalidClient,
    /// An account with the email exists.
    #[error("an account with this email exists")]
    EmailTaken,
    /// A requested entity does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `user` or `client`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The idempotency key was used for another request.
    #[error("request_id was already used for a different request")]
    IdempotencyMismatch,
    /// Storage failed.
    #[error("storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Hashing, key handling or signing failed.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl IdentityError {
    /// A not-found error.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// An internal error from any cause.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        IdentityError::Internal(Box::new(cause))
    }
}
