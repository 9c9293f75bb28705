//! The catalog's errors. [`crate::grpc`] maps them to `tonic::Status` in one place.

use marquee_platform::validation::Violations;

/// Everything a catalog operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The request is malformed; the violations name the fields.
    #[error("invalid request: {0}")]
    Invalid(#[from] Violations),
    /// A referenced or requested entity does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `city`, `movie`, `theatre`, `screen` or `show`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// An entity with the same natural key exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the catalog's state does not allow it.
    #[error("{message}")]
    Precondition {
        /// A stable reason such as `SHOW_OVERLAP`.
        reason: &'static str,
        /// For the caller.
        message: String,
    },
    /// The idempotency key was used for another request.
    #[error("request_id was already used for a different request")]
    IdempotencyMismatch,
    /// Storage failed.
    #[error("storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CatalogError {
    /// A not-found error.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        CatalogError::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// A failed precondition.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        CatalogError::Precondition {
            reason,
            message: message.into(),
        }
    }
}
