//! Pure types and rules of bookings: no gRPC, no database.
//!
//! - [`status`]: the lifecycle and its one transition function.
//! - [`code`]: booking codes (Crockford base32, read aloud without confusion).
//! - [`saga`]: the saga's steps, the payment decision, backoff, derived request ids.
//! - [`policy`]: convenience fees and tax, the cancellation policy, who has a ticket.
//! - [`error`]: the error type, [`BookingError`].

pub mod code;
pub mod error;
pub mod policy;
pub mod saga;
pub mod status;

pub use code::BookingCode;
pub use error::BookingError;
pub use status::{BookingEvent, BookingStatus, transition};

use serde::{Deserialize, Serialize};

/// An amount of money in integer minor units of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// ISO 4217 code, for example `INR`.
    pub currency: String,
    /// Minor units (paise for INR).
    pub amount_minor: i64,
}
