//! Seating's errors. [`crate::grpc`] maps them to `tonic::Status` in one place.

use marquee_platform::validation::Violations;

/// Everything a seating operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum SeatingError {
    /// The request is malformed; the violations name the fields.
    #[error("invalid request: {0}")]
    Invalid(#[from] Violations),
    /// The show, hold or other thing does not exist (or is not the caller's).
    #[error("{kind} {id} not found")]
    NotFound {
        /// `show` or `hold`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Valid, but the state does not allow it.
    #[error("{message}")]
    Precondition {
        /// A stable reason such as `SEAT_TAKEN` or `HOLD_EXPIRED`.
        reason: &'static str,
        /// For the caller.
        message: String,
        /// Seats concerned, if any.
        seats: Vec<String>,
    },
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller is at a limit of theirs (retrying soon does not help).
    #[error("{message}")]
    Exhausted {
        /// A stable reason such as `TOO_MANY_HOLDS`.
        reason: &'static str,
        /// For the caller.
        message: String,
    },
    /// The idempotency key was used for another request.
    #[error("request_id was already used for a different request")]
    IdempotencyMismatch,
    /// A dependency (the catalog, Redis, the database) did not answer.
    #[error("dependency unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Storage failed.
    #[error("storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SeatingError {
    /// A not-found error.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        SeatingError::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// A failed precondition without seats.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        SeatingError::Precondition {
            reason,
            message: message.into(),
            seats: Vec::new(),
        }
    }

    /// A storage failure.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SeatingError::Storage(Box::new(e))
    }

    /// The error of a cache fill shared by concurrent callers (moka hands each an `Arc`): the
    /// same kind of error for each, so a show that does not exist is NOT_FOUND for all of them.
    pub fn from_shared(e: std::sync::Arc<SeatingError>) -> Self {
        let shared = match std::sync::Arc::try_unwrap(e) {
            Ok(e) => return e,
            Err(shared) => shared,
        };
        match &*shared {
            SeatingError::Invalid(v) => SeatingError::Invalid(v.clone()),
            SeatingError::NotFound { kind, id } => SeatingError::not_found(kind, id.clone()),
            SeatingError::Precondition {
                reason,
                message,
                seats,
            } => SeatingError::Precondition {
                reason,
                message: message.clone(),
                seats: seats.clone(),
            },
            SeatingError::PermissionDenied(m) => SeatingError::PermissionDenied(m.clone()),
            SeatingError::Exhausted { reason, message } => SeatingError::Exhausted {
                reason,
                message: message.clone(),
            },
            SeatingError::IdempotencyMismatch => SeatingError::IdempotencyMismatch,
            SeatingError::Unavailable(_) => SeatingError::Unavailable(Box::new(shared)),
            SeatingError::Storage(_) => SeatingError::Storage(Box::new(shared)),
        }
    }
}
