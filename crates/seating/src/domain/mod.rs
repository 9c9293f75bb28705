//! Seating's domain: shows and layouts as seating sees them, holds, seat events, channels, the
//! rules of a hold request and best-available selection ([`rules`]), and errors ([`error`]).
//! Nothing here knows about gRPC, databases or Redis.

pub mod error;
pub mod model;
pub mod rules;

pub use error::SeatingError;
pub use model::*;
