//! [`BookingError`]: everything a booking operation can fail with. The gRPC adapter maps it to a
//! status in one place.

use marquee_platform::validation::Violations;

use super::{BookingEvent, BookingStatus};

/// Why a booking operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// The request is malformed; names the fields.
    #[error("invalid request: {0}")]
    Invalid(#[from] Violations),
    /// No such thing (or it is someone else's).
    #[error("{kind} {id} not found")]
    NotFound {
        /// `booking`, `hold`, ...
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request cannot be done in the current state; `reason` is stable.
    #[error("{message}")]
    Precondition {
        /// Machine-readable reason, for example `HOLD_EXPIRED`.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The caller may not do this (for example door staff of another theatre).
    #[error("{message}")]
    Forbidden {
        /// Machine-readable reason, for example `OTHER_THEATRE`.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The lifecycle does not allow this.
    #[error("a booking in {from:?} cannot take {event:?}")]
    IllegalTransition {
        /// The current status.
        from: BookingStatus,
        /// What was attempted.
        event: BookingEvent,
    },
    /// The request id was used for another request.
    #[error("request_id was already used for a different request")]
    IdempotencyMismatch,
    /// Another service did not answer or failed; safe to retry.
    #[error("{service} is unavailable: {message}")]
    Dependency {
        /// Which service.
        service: &'static str,
        /// What happened (logged, not sent).
        message: String,
    },
    /// Storage failed.
    #[error("storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BookingError {
    /// A precondition failure.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
        }
    }

    /// NOT_FOUND for a booking.
    pub fn booking_not_found(id: &str) -> Self {
        Self::NotFound {
            kind: "booking",
            id: id.to_owned(),
        }
    }

    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Dependency { .. } | Self::Storage(_))
    }
}
