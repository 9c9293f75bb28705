//! Identity's domain: types ([`model`]), rules ([`rules`]) and errors ([`error`]). Nothing here
//! knows about gRPC or storage.

pub mod error;
pub mod model;
pub mod rules;

pub use error::IdentityError;
