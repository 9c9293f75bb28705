//! Booking's settings (`[booking]`, `MARQUEE_BOOKING__*`).

use std::collections::BTreeMap;

use marquee_platform::config::Secret;
use serde::{Deserialize, Serialize};

/// What a theatre charges on top of each seat's price. Amounts are in the minor units of the
/// show's currency; rates in basis points (100 = 1%), rounded half up to the minor unit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FeePolicy {
    /// A fixed convenience fee per seat, in minor units.
    pub convenience_fee_minor: i64,
    /// A convenience fee per seat as a share of the seat's price, in basis points (added to
    /// the fixed part).
    pub convenience_fee_bps: u32,
    /// Tax on the convenience fee, in basis points (seat prices are listed tax-inclusive).
    pub tax_bps: u32,
}

impl Default for FeePolicy {
    fn default() -> Self {
        Self {
            convenience_fee_minor: 0,
            convenience_fee_bps: 500,
            tax_bps: 1_800,
        }
    }
}

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
    /// How often a WatchBooking stream reads its booking again without being told of a change,
    /// in milliseconds: a safety net. Changes made by this instance reach its watchers at once,
    /// and other instances' through the Redis bus (their outbox relay's latency, about 0.1 s).
    pub watch_poll_ms: u64,
    /// A completed booking can be cancelled, with a full refund, until this long before its
    /// show starts, in milliseconds; after that, not at all.
    pub cancellation_cutoff_ms: u64,
    /// The fee policy of every theatre without one of its own.
    pub fees: FeePolicy,
    /// Fee policies by theatre id (`[booking.theatre_fees."<theatre id>"]`).
    pub theatre_fees: BTreeMap<String, FeePolicy>,
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
            watch_poll_ms: 5_000,
            cancellation_cutoff_ms: 2 * 60 * 60 * 1_000,
            fees: FeePolicy::default(),
            theatre_fees: BTreeMap::new(),
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
        for (name, policy) in std::iter::once(("booking.fees".to_owned(), &self.fees)).chain(
            self.theatre_fees
                .iter()
                .map(|(id, p)| (format!("booking.theatre_fees.{id}"), p)),
        ) {
            if policy.convenience_fee_minor < 0
                || policy.convenience_fee_bps > 10_000
                || policy.tax_bps > 10_000
            {
                return Err(format!(
                    "{name}: the fee must not be negative and the rates at most 10000 basis points"
                ));
            }
        }
        Ok(())
    }

    /// The fee policy of a theatre.
    pub fn fees_of(&self, theatre_id: &str) -> FeePolicy {
        self.theatre_fees
            .get(theatre_id)
            .copied()
            .unwrap_or(self.fees)
    }
}
