//! Seating's storage.
//!
//! - The hold store ([`HoldStore`]): ONE contract, two implementations: [`redis::RedisHoldStore`]
//!   (production: Lua scripts run by EVALSHA, every key of a show under the hash tag
//!   `seat:{<show>}:`, events on the show's channel fanned out through one pattern subscription)
//!   and [`memory::MemoryHoldStore`] (`marquee up`: the same semantics in the process). The
//!   contract test suite in `tests/tests/seating_store.rs` runs over both.
//! - [`db`]: the database (sold seats with their unique key on (show, seat), allocations).

pub mod db;
mod hub;
pub mod memory;
pub mod migration;
pub mod redis;

use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::domain::{Hold, SeatEvent, SeatStates};

pub use hub::{Hub, Since, tick};

/// The holds of a show by id, with their deadlines (Unix ms).
pub type Deadlines = std::collections::HashMap<String, i64>;

/// A hold to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHold {
    /// The show.
    pub show_id: String,
    /// The new hold's id (see [`crate::domain::hold_id`]).
    pub hold_id: String,
    /// The holder.
    pub user: String,
    /// Seat indexes, distinct.
    pub seats: Vec<u32>,
    /// Time to live, milliseconds.
    pub ttl_ms: u64,
    /// Hard maximum lifetime, milliseconds.
    pub max_lifetime_ms: u64,
    /// The client's idempotency key, if any.
    pub request_id: Option<String>,
    /// A fingerprint of the request's parameters.
    pub fingerprint: String,
}

/// What a hold attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Held.
    Held {
        /// The new hold.
        hold: Hold,
        /// The user's hold on the show it replaced (the one the store had at that moment, not
        /// necessarily the one the caller saw before).
        replaced: Option<String>,
    },
    /// The request id was seen with the same parameters: the first result.
    Replayed(Hold),
    /// Some seats are held by others or sold: nothing was held.
    Taken(Vec<u32>),
    /// The request id was seen with other parameters.
    Mismatch,
    /// The show's sold seats are not loaded into the store: load them and try again.
    NotLoaded,
}

/// What counting a show among a user's shows with a hold did ([`HoldStore::claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Counted; `claimed` (Unix ms, the store's clock) names this claim for
    /// [`HoldStore::unclaim`]; `new` when the show was not counted before.
    Granted {
        /// When, strictly after any earlier claim of the show.
        claimed: i64,
        /// The show was not counted before this claim.
        new: bool,
    },
    /// The user is at the cap: every show counted, with when it was claimed.
    Full(Vec<(String, i64)>),
}

/// Why a hold operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such hold (or not the caller's).
    NotFound,
    /// The fencing token is not the hold's.
    StaleToken,
    /// The deadline passed.
    Expired,
}

impl Refusal {
    fn parse(code: &str) -> Option<Refusal> {
        match code {
            "HOLD_NOT_FOUND" => Some(Refusal::NotFound),
            "STALE_TOKEN" => Some(Refusal::StaleToken),
            "HOLD_EXPIRED" => Some(Refusal::Expired),
            _ => None,
        }
    }
}

/// A hold store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer.
    #[error("redis unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Redis answered something unexpected.
    #[error("unexpected hold store reply: {0}")]
    Corrupt(String),
}

/// The hold store: Redis or in-process, with the same contract.
#[derive(Clone)]
pub enum HoldStore {
    /// Redis (production, several instances).
    Redis(redis::RedisHoldStore),
    /// In the process (`marquee up`, one instance).
    Memory(memory::MemoryHoldStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            HoldStore::Redis($s) => $e,
            HoldStore::Memory($s) => $e,
        }
    };
}

impl HoldStore {
    /// Marks `seats` of a show sold and the show as loaded.
    pub async fn load_sold(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        each!(self, s => s.load_sold(show_id, seats).await)
    }

    /// Holds seats (see [`HoldOutcome`]).
    pub async fn hold(&self, new: &NewHold) -> Result<HoldOutcome, StoreError> {
        each!(self, s => s.hold(new).await)
    }

    /// Whether the store keeps the record of `user`'s HoldSeats `request_id` on the show: a hold
    /// attempt under it replays (or mismatches) rather than holds.
    pub async fn recorded(
        &self,
        show_id: &str,
        user: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.recorded(show_id, user, request_id).await)
    }

    /// Extends `user`'s hold to now + `extension_ms`, capped at its maximum.
    pub async fn extend(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
        extension_ms: u64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        each!(self, s => s.extend(show_id, hold_id, user, extension_ms).await)
    }

    /// Releases `user`'s hold.
    pub async fn release(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        each!(self, s => s.release(show_id, hold_id, user).await)
    }

    /// A hold, whoever holds it.
    pub async fn get(&self, show_id: &str, hold_id: &str) -> Result<Option<Hold>, StoreError> {
        each!(self, s => s.get(show_id, hold_id).await)
    }

    /// Every hold of the show by id, with its deadline (Unix ms).
    pub async fn deadlines(&self, show_id: &str) -> Result<Deadlines, StoreError> {
        each!(self, s => s.deadlines(show_id).await)
    }

    /// The user's active hold on the show, if any.
    pub async fn hold_of(&self, show_id: &str, user: &str) -> Result<Option<Hold>, StoreError> {
        each!(self, s => s.hold_of(show_id, user).await)
    }

    /// Counts `show_id` among `user`'s shows with a hold (the cap on active holds across shows),
    /// unless it is not counted yet and `cap` shows are. Claims older than `keep_ms` no longer
    /// count. Run it before [`Self::hold`]: holds of different shows live apart (Redis: other
    /// hash slots), so the hold cannot count them itself.
    pub async fn claim(
        &self,
        user: &str,
        show_id: &str,
        cap: u32,
        keep_ms: u64,
    ) -> Result<Claim, StoreError> {
        each!(self, s => s.claim(user, show_id, cap, keep_ms).await)
    }

    /// Stops counting `show_id` for `user` if its claim is still the one made at `claimed` and
    /// is at least `min_age_ms` old. Returns whether it did.
    pub async fn unclaim(
        &self,
        user: &str,
        show_id: &str,
        claimed: i64,
        min_age_ms: u64,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.unclaim(user, show_id, claimed, min_age_ms).await)
    }

    /// Whether a hold can be confirmed with `token` now.
    pub async fn check_confirm(
        &self,
        show_id: &str,
        hold_id: &str,
        token: i64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        each!(self, s => s.check_confirm(show_id, hold_id, token).await)
    }

    /// Marks `seats` sold and ends the hold (after the database committed the sale).
    pub async fn finalize(
        &self,
        show_id: &str,
        hold_id: &str,
        seats: &[u32],
    ) -> Result<(), StoreError> {
        each!(self, s => s.finalize(show_id, hold_id, seats).await)
    }

    /// Marks `seats` on sale again (after the database deleted their sale).
    pub async fn unsell(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        each!(self, s => s.unsell(show_id, seats).await)
    }

    /// The live seat states of a show for `user`; `None` when the show is not loaded.
    pub async fn seat_states(
        &self,
        show_id: &str,
        user: Option<&str>,
    ) -> Result<Option<SeatStates>, StoreError> {
        each!(self, s => s.seat_states(show_id, user).await)
    }

    /// Expires every hold past its deadline (one sweep). Returns the holds expired here (each
    /// hold is expired by exactly one instance).
    pub async fn sweep(&self) -> Result<Vec<ExpiredHold>, StoreError> {
        each!(self, s => s.sweep().await)
    }

    /// Events of a show, as they happen (on every instance), from the moment this returns.
    pub async fn subscribe(
        &self,
        show_id: &str,
    ) -> Result<broadcast::Receiver<Arc<SeatEvent>>, StoreError> {
        match self {
            Self::Memory(s) => Ok(s.hub().subscribe(show_id)),
            Self::Redis(s) => s.subscribe(show_id).await,
        }
    }

    /// Which reads of the show's seat states have every event its watchers on this instance are
    /// not sent (call it after [`Self::subscribe`]).
    pub fn since(&self, show_id: &str) -> Since {
        each!(self, s => s.hub().since(show_id))
    }

    /// Stops receiving the events of shows nobody on this instance watches any more (Redis:
    /// unsubscribes from their channels). Runs on its own every few seconds once started.
    pub async fn forget_unwatched(&self) {
        if let Self::Redis(s) = self {
            s.unsubscribe_unwatched().await;
        }
    }

    /// Changes each time the store may have lost data (a Redis reconnection).
    pub fn reconnections(&self) -> watch::Receiver<u64> {
        each!(self, s => s.reconnections())
    }

    /// True while the store answers.
    pub async fn ping(&self) -> bool {
        each!(self, s => s.ping().await)
    }

    /// Starts the background work (sweeper; for Redis the event subscription) until `stop`.
    /// `expired` is given the holds each sweep expired here.
    pub async fn start(
        &self,
        sweep_every: std::time::Duration,
        stop: CancellationToken,
        expired: impl Fn(Vec<ExpiredHold>) + Send + 'static,
    ) {
        let store = self.clone();
        let stop2 = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop2.cancelled() => return,
                }
                match store.sweep().await {
                    Ok(holds) if !holds.is_empty() => expired(holds),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "hold sweep failed"),
                }
            }
        });
        if let HoldStore::Redis(r) = self {
            r.start_subscriber(stop).await;
        }
    }
}

/// A hold the sweeper expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredHold {
    /// Its show.
    pub show_id: String,
    /// The hold.
    pub hold_id: String,
}

/// Parses the hold form the scripts return: `id|token|deadline|created|max|seats`.
pub(crate) fn parse_hold(show_id: &str, user: &str, text: &str) -> Result<Hold, StoreError> {
    let bad = || StoreError::Corrupt(format!("hold {text:?}"));
    let mut p = text.splitn(6, '|');
    let id = p.next().ok_or_else(bad)?.to_owned();
    let num = |v: Option<&str>| -> Result<i64, StoreError> {
        let v = v.ok_or_else(bad)?;
        v.parse::<i64>()
            .or_else(|_| v.parse::<f64>().map(|f| f as i64))
            .map_err(|_| bad())
    };
    let token = num(p.next())?;
    let expires_ms = num(p.next())?;
    let created_ms = num(p.next())?;
    let max_expires_ms = num(p.next())?;
    let seats = crate::domain::parse_seats(p.next().ok_or_else(bad)?).ok_or_else(bad)?;
    Ok(Hold {
        id,
        show_id: show_id.to_owned(),
        user: user.to_owned(),
        seats,
        token,
        expires_ms,
        created_ms,
        max_expires_ms,
    })
}
