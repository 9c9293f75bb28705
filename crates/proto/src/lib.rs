//! Generated Rust for every contract under `proto/` (messages, tonic clients and servers), and the
//! encoded file descriptor set that reflection serves.
//!
//! Nothing here is written by hand: `build.rs` compiles the protos with protox and
//! tonic-prost-build. Service crates depend on this crate; none generates code itself.

#![forbid(unsafe_code)]

#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    rust_2018_idioms
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
}

pub use generated::marquee::*;

/// The encoded `FileDescriptorSet` of every Marquee proto and its imports, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/marquee_descriptor.bin"));
