//! The one way errors become a `tonic::Status`: the right code, a message meant for the caller,
//! and google.rpc details (`BadRequest` naming the field, `ErrorInfo` with a stable reason,
//! `ResourceInfo` for what was not found). Internal causes are logged, never sent.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::validation::Violations;

/// The `ErrorInfo.domain` of every Marquee error.
pub const ERROR_DOMAIN: &str = "marquee.dev";

/// `INVALID_ARGUMENT` with a `BadRequest` detail listing every violated field.
pub fn invalid_argument(violations: &Violations) -> Status {
    let mut details = ErrorDetails::new();
    for v in violations.iter() {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    Status::with_error_details(Code::InvalidArgument, violations.to_string(), details)
}

/// `INVALID_ARGUMENT` for a single field.
pub fn invalid_field(field: &str, description: &str) -> Status {
    invalid_argument(&Violations::one(field, description))
}

/// `NOT_FOUND` for a resource of a kind (`show`, `movie`) with an id.
pub fn not_found(kind: &str, id: &str) -> Status {
    let details = ErrorDetails::with_resource_info(kind, id, "", format!("no {kind} with id {id}"));
    Status::with_error_details(Code::NotFound, format!("{kind} {id} not found"), details)
}

/// A status with an `ErrorInfo` detail carrying a stable, machine-readable reason such as
/// `SHOW_OVERLAP`.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        std::collections::HashMap::<String, String>::new(),
    );
    Status::with_error_details(code, message, details)
}

/// `FAILED_PRECONDITION` with a reason.
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message)
}

/// `ALREADY_EXISTS` with a reason.
pub fn already_exists(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::AlreadyExists, reason, message)
}

/// `RESOURCE_EXHAUSTED` with a `RetryInfo` detail saying when to try again.
pub fn resource_exhausted(message: impl Into<String>, retry_after: std::time::Duration) -> Status {
    let details = ErrorDetails::with_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// `INTERNAL`: logs the cause with the request's span and tells the caller nothing about it.
pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %DisplayChain(cause), "internal error");
    Status::internal("internal error")
}

/// `UNAVAILABLE`: a dependency (database, Redis, another service) did not answer; safe to retry.
pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(error = %DisplayChain(cause), "dependency unavailable");
    Status::unavailable("a dependency is unavailable; retry later")
}

/// Displays an error with its chain of sources.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_names_the_field() {
        let status = invalid_field("movie.title", "required");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request detail");
        assert_eq!(bad.field_violations[0].field, "movie.title");
    }

    #[test]
    fn retry_info_travels() {
        let status = resource_exhausted("slow down", std::time::Duration::from_secs(30));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status
            .get_error_details()
            .retry_info()
            .cloned()
            .expect("retry info");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn reasons_travel() {
        let status = failed_precondition("SHOW_OVERLAP", "overlaps");
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.reason, "SHOW_OVERLAP");
    }
}
