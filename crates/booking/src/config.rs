//! Booking's settings (`[booking]`, `MARQUEE_BOOKING__*`).

use marquee_platform::config::Secret;
use serde::{Deserialize, Serialize};

/// Settings of the booking service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BookingConfig {
    /// The catalog's address, for example `http://catalog:50051` (default in `marquee up`: the
    /// process's own listener).
    pub catalog_url: Option<String>,
    /// Seating's address (default in `marquee up`: the process's own listener).
    pub seating_url: Option<String>,
    /// Payments' address (default in `marquee up`: the process's own listener).
    pub payments_url: Option<String>,
    /// Booking's client id at identity (client credentials), for `marquee serve booking`.
    /// `marquee up` registers a client in-process at start-up instead.
    pub client_id: Option<String>,
    /// The client's secret.
    pub client_secret: Option<Secret<String>>,
    /// How long a customer has to pay once payment starts, in milliseconds.
    pub payment_window_ms: u64,
    /// A payment is captured only while the hold stays valid at least this long (time to
    /// confirm the seats), in milliseconds.
    pub capture_margin_ms: u64,
    /// First interval between looks at an unpaid order, in milliseconds; it grows to
    /// `poll_max_ms` the longer the payment takes.
    pub poll_min_ms: u64,
    /// Longest interval between looks at an unpaid order, in milliseconds.
    pub poll_max_ms: u64,
    /// First retry delay of a failing step, in milliseconds (doubling).
    pub retry_base_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Attempts before a failing step is parked with its reason.
    pub max_attempts: u32,
    /// How long a claimed step is reserved for its claimant, in milliseconds; a claimant that
    /// dies loses the step to another instance (or to itself after a restart) after this.
    pub lease_ms: u64,
    /// How often the saga worker looks for due steps, in milliseconds.
    pub tick_ms: u64,
    /// How often WatchBooking looks for changes, in milliseconds.
    pub watch_poll_ms: u64,
}

impl Default for BookingConfig {
    fn default() -> Self {
        Self {
            catalog_url: None,
            seating_url: None,
            payments_url: None,
            client_id: None,
            client_secret: None,
            payment_window_ms: 600_000,
            capture_margin_ms: 15_000,
            poll_min_ms: 200,
            poll_max_ms: 2_000,
            retry_base_ms: 200,
            retry_max_ms: 10_000,
            max_attempts: 8,
            lease_ms: 30_000,
            tick_ms: 100,
            watch_poll_ms: 250,
        }
    }
}

impl BookingConfig {
    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.payment_window_ms == 0 {
            return Err("booking.payment_window_ms must be positive".into());
        }
        if self.poll_min_ms == 0 || self.poll_max_ms < self.poll_min_ms {
            return Err("booking.poll_min_ms must be positive and at most poll_max_ms".into());
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err("booking.retry_base_ms must be positive and at most retry_max_ms".into());
        }
        if self.max_attempts == 0 {
            return Err("booking.max_attempts must be positive".into());
        }
        if self.lease_ms == 0 || self.tick_ms == 0 || self.watch_poll_ms == 0 {
            return Err("booking.lease_ms, tick_ms and watch_poll_ms must be positive".into());
        }
        Ok(())
    }
}
