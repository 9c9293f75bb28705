//! Field violations: how domain code says which field of a request is wrong and why, without
//! knowing about gRPC. [`crate::status`] turns them into `INVALID_ARGUMENT` with a
//! `google.rpc.BadRequest` detail.

use std::fmt;

/// One thing wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, for example `movie.title` or `layout.rows[2].label`.
    pub field: String,
    /// Why the value is refused, in lower case, for example `required` or `must be after start_time`.
    pub description: String,
}

/// Every field violation found in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.add(field, description);
        v
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Records a violation unless `ok` holds.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, description: impl Into<String>) {
        if !ok {
            self.add(field, description);
        }
    }

    /// Adds every violation of `other`.
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations recorded.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.0.iter()
    }

    /// `Ok(())` when nothing was recorded, else the violations.
    pub fn into_result(self) -> Result<(), Violations> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Checks a request id (the idempotency key): required, 1 to 128 printable ASCII characters.
pub fn check_request_id(request_id: &str) -> Result<(), Violations> {
    if request_id.is_empty() {
        return Err(Violations::one("request_id", "required"));
    }
    if request_id.len() > 128 || !request_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Violations::one(
            "request_id",
            "must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_and_formats() {
        let mut v = Violations::new();
        v.check(true, "a", "fine");
        v.check(false, "b", "required");
        v.add("c", "too long");
        assert_eq!(v.to_string(), "b: required; c: too long");
        assert!(v.into_result().is_err());
        assert!(Violations::new().into_result().is_ok());
    }

    #[test]
    fn request_ids() {
        assert!(check_request_id("").is_err());
        assert!(check_request_id("has space").is_err());
        assert!(check_request_id(&"x".repeat(129)).is_err());
        assert!(check_request_id("0193a7c2-5f1e-7000-8000-000000000001").is_ok());
    }
}
