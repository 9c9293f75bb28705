//! Identity's settings.

use serde::{Deserialize, Serialize};

/// Settings of the identity service (`[identity]` in the config file, `MARQUEE_IDENTITY__*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Lifetime of a user's access token, in seconds.
    pub access_token_ttl_secs: i64,
    /// Lifetime of a refresh token, in seconds (each rotation issues a fresh one).
    pub refresh_token_ttl_secs: i64,
    /// Lifetime of a client-credentials access token, in seconds.
    pub client_token_ttl_secs: i64,
    /// Failed sign-ins tolerated per account within the window.
    pub max_failures_per_account: u64,
    /// Failed sign-ins tolerated per client address within the window.
    pub max_failures_per_address: u64,
    /// The failure-counting window, in seconds.
    pub failure_window_secs: i64,
    /// Where services that do not run identity in their own process reach it, for example
    /// `http://identity:50051` (they fetch its public keys with GetJwks).
    pub endpoint: Option<String>,
    /// How often such services fetch the public keys again, in seconds.
    pub jwks_refresh_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            client_token_ttl_secs: 15 * 60,
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            failure_window_secs: 15 * 60,
            endpoint: None,
            jwks_refresh_secs: 300,
        }
    }
}
