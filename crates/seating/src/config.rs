//! The seating service's settings.

use std::collections::BTreeMap;

use marquee_platform::{config::Secret, ratelimit::RateLimit};
use serde::{Deserialize, Serialize};

/// Settings of the seating service (`[seating]` in the config file, `MARQUEE_SEATING__*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SeatingConfig {
    /// How long a new hold lives, in milliseconds (and the default extension).
    pub hold_ttl_ms: u64,
    /// The longest a hold can ever live, however often it is extended, in milliseconds.
    pub hold_max_lifetime_ms: u64,
    /// WatchHold sends "expiring soon" this long before the deadline, in milliseconds.
    pub expiring_soon_ms: u64,
    /// How often each instance looks for holds past their deadline, in milliseconds (at most 250).
    pub sweep_interval_ms: u64,
    /// How often WatchHold checks that its hold still exists, in milliseconds (the holders of a
    /// show on an instance share one read of the show's holds per interval).
    pub hold_check_interval_ms: u64,
    /// How often one user may hold or extend (HoldSeats and ExtendHold share the bucket):
    /// hoarding by script is a business-flow attack. Counts callers on the platform's channel:
    /// not `service` callers, which act for holders, nor box office staff and partners, who sell
    /// their own allotment to many customers. Per instance. `requests_per_minute = 0` turns it
    /// off.
    pub holds_per_user: RateLimit,
    /// How many shows one user may hold seats for at once (hoarding across shows; a user has at
    /// most one hold per show anyway). Counts callers buying on the platform's channel; box
    /// office staff and partners hold only their own allotment, for many customers. 0 turns it
    /// off.
    pub active_holds_per_user: u32,
    /// How long a screen layout stays cached, in seconds.
    pub layout_cache_secs: u64,
    /// How long a show (its state, times and prices) stays cached, in seconds.
    pub show_cache_secs: u64,
    /// The catalog's gRPC address, for example `http://127.0.0.1:50051`. `marquee up` sets it to
    /// its own listener; `marquee serve seating` needs it.
    pub catalog_url: Option<String>,
    /// Theatres sold in live mode, by theatre id (`[seating.connectors."<theatre id>"]`): their
    /// own systems are asked to lock seats before they are held here, and to confirm and cancel
    /// sales (`marquee.partner.v1.TheatreConnectorService`). Every other theatre's seats are Marquee's
    /// alone, allotted to channels by the allocation.
    pub connectors: BTreeMap<String, ConnectorConfig>,
}

/// How to reach one theatre's system (a `marquee.partner.v1.TheatreConnectorService` server).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Its gRPC address, for example `https://tickets.example-theatre.com:443`: `https`, whose
    /// certificate is verified (against `ca_file`, or the web's public roots), or `http` to this
    /// machine only (a connector beside Marquee), so that the token never travels in the clear.
    pub url: String,
    /// A PEM file with the certificate authority that signed the theatre's certificate, for a
    /// theatre with its own; without it, the web's public roots (webpki-roots).
    pub ca_file: Option<String>,
    /// PEM files of Marquee's client certificate and its private key, for a theatre that asks
    /// its callers for one (mutual TLS); both or neither.
    pub cert_file: Option<String>,
    /// See `cert_file`.
    pub key_file: Option<String>,
    /// Sent as `authorization: Bearer <token>` on every call, when set.
    pub token: Option<Secret<String>>,
    /// How long one call may take, in milliseconds; a customer waits this long at most before
    /// UNAVAILABLE.
    pub timeout_ms: u64,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            token: None,
            timeout_ms: 2_000,
        }
    }
}

impl Default for SeatingConfig {
    fn default() -> Self {
        Self {
            hold_ttl_ms: 10 * 60 * 1000,
            hold_max_lifetime_ms: 30 * 60 * 1000,
            expiring_soon_ms: 60 * 1000,
            sweep_interval_ms: 200,
            hold_check_interval_ms: 1000,
            holds_per_user: RateLimit {
                requests_per_minute: 60,
                burst: 20,
            },
            active_holds_per_user: 5,
            layout_cache_secs: 600,
            show_cache_secs: 5,
            catalog_url: None,
            connectors: BTreeMap::new(),
        }
    }
}

impl SeatingConfig {
    /// Checks the values; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.hold_ttl_ms < 100 {
            return Err("seating.hold_ttl_ms: must be at least 100".into());
        }
        if self.hold_max_lifetime_ms < self.hold_ttl_ms {
            return Err("seating.hold_max_lifetime_ms: must be at least hold_ttl_ms".into());
        }
        if self.sweep_interval_ms == 0 || self.sweep_interval_ms > 250 {
            return Err("seating.sweep_interval_ms: must be 1 to 250".into());
        }
        if self.hold_check_interval_ms == 0 {
            return Err("seating.hold_check_interval_ms: must be positive".into());
        }
        for (theatre, c) in &self.connectors {
            if c.url.is_empty() {
                return Err(format!("seating.connectors.{theatre}.url: required"));
            }
            if c.timeout_ms == 0 {
                return Err(format!(
                    "seating.connectors.{theatre}.timeout_ms: must be positive"
                ));
            }
        }
        Ok(())
    }
}
