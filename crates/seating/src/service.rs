//! The application service: validates against the show (from the catalog), the allocation and
//! the rules, drives the hold store and the database, and never names tonic.

use std::{sync::Arc, time::Duration};

use futures::{FutureExt as _, StreamExt as _};
use marquee_platform::{idempotency::IdempotencyKey, validation::Violations};
use tokio::sync::broadcast;

use crate::{
    SeatingConfig,
    catalog::CatalogSource,
    connector::{Connector, Connectors, Lock, LockRequest},
    domain::{
        Allocation, BOOKING_REFERENCE_RULE, Channel, Hold, SeatEvent, SeatStates, SeatingError,
        ShowContext, Viewer, bit, hold_id, rules, show_of_hold, valid_booking_reference, valid_id,
    },
    shared::{Need, SharedReads},
    store::{
        Claim, Deadlines, ExpiredHold, HoldOutcome, HoldStore, NewHold, Refusal, StoreError,
        db::{Sale, SeatingDb},
    },
};

/// How long after its claim a hold may still be on its way to the store: a claim this young is
/// not let go for want of a hold. The claims of ended holds outlive their holds by at least this.
const CLAIM_GRACE_MS: u64 = 5_000;
/// A hold attempt claims its show again when its claim is older than this (well inside
/// [`CLAIM_GRACE_MS`], so a hold reaches the store while its claim is young); a claim that
/// led to a hold serves the user's next holds of the show on this instance this long.
const CLAIM_FRESH: Duration = Duration::from_secs(2);

/// A claim of a show for a HoldSeats call.
#[derive(Clone, Copy)]
struct Claimed {
    /// Taken before the claim was sent: its age here is at least its age in the store.
    at: std::time::Instant,
    claimed: i64,
    /// This call's first claim began to count the show.
    new: bool,
    /// Taken from [`Seating::recent_claims`], not made by this call.
    cached: bool,
}

/// How many locks of expired holds one sweep's batch releases at once.
const RELEASES_AT_ONCE: usize = 16;

/// The longest wait between two tries of a release a theatre did not answer: tries follow
/// after 0.5, 1, 2, ... 32 s, about a minute in all.
const RELEASE_RETRY_MAX: Duration = Duration::from_secs(32);

/// Releases a lock at a live theatre, asking again while the theatre does not answer (a lock
/// never released lapses at its hold's deadline plus the margin, keeping the theatre from
/// selling seats nobody holds until then).
async fn release_until_answered(c: &Connector, show_id: &str, lock_id: &str) {
    let mut wait = Duration::from_millis(500);
    while let Err(error) = c.release(show_id, lock_id).await {
        if wait > RELEASE_RETRY_MAX {
            tracing::warn!(%error, lock_id, "gave up releasing a lock at the theatre: it lapses");
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// What a live theatre's system said to locking a hold's seats ([`Seating::lock_at_theatre`]).
enum Live {
    /// The request was answered already: the store replays it, nothing is locked.
    Replay,
    /// Locked, replacing the lock of the user's previous hold on the show (if any), which
    /// stays until it is released.
    Locked,
    /// These seats are not free at the theatre.
    Refused(Vec<String>),
}

/// Which seats a hold request names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Selection {
    /// Explicit seat ids.
    Seats(Vec<String>),
    /// Best available `count` of a category.
    BestAvailable {
        /// How many.
        count: i32,
        /// The category code.
        category: String,
    },
}

/// A HoldSeats request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldCommand {
    /// Idempotency key.
    pub request_id: String,
    /// The show.
    pub show_id: String,
    /// Which seats.
    pub selection: Selection,
}

/// A confirmed sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The show.
    pub show_id: String,
    /// Seat ids.
    pub seat_ids: Vec<String>,
    /// When.
    pub sold_at: chrono::DateTime<chrono::Utc>,
}

/// The seating service.
#[derive(Clone)]
pub struct Seating {
    store: HoldStore,
    db: SeatingDb,
    catalog: CatalogSource,
    /// The systems of theatres sold in live mode.
    connectors: Connectors,
    config: Arc<SeatingConfig>,
    allocations: moka::future::Cache<String, Arc<Allocation>>,
    /// Per show, the last read of its seat states (no viewer's own hold), which its watchers
    /// share.
    maps: Arc<SharedReads<SeatStates>>,
    /// Per show, the last read of its holds' deadlines, which its holders' WatchHold streams
    /// share.
    deadlines: Arc<SharedReads<Deadlines>>,
    /// Per (user, show), the claim of this instance's last hold, for [`CLAIM_FRESH`]: a user
    /// changing the seats of a hold (each click on a seat map) is counted already.
    recent_claims: moka::sync::Cache<(String, String), (std::time::Instant, i64)>,
}

fn store_err(e: StoreError) -> SeatingError {
    match e {
        StoreError::Unavailable(c) => SeatingError::Unavailable(c),
        other => SeatingError::storage(other),
    }
}

fn hold_not_found(hold_id: &str) -> SeatingError {
    SeatingError::not_found("hold", hold_id)
}

/// The show named by a hold id, or NOT_FOUND.
fn hold_show(hold_id: &str) -> Result<&str, SeatingError> {
    show_of_hold(hold_id).ok_or_else(|| hold_not_found(hold_id))
}

fn check_show_id(show_id: &str) -> Result<(), SeatingError> {
    if show_id.is_empty() {
        return Err(Violations::one("show_id", "required").into());
    }
    if !valid_id(show_id) {
        return Err(SeatingError::not_found("show", show_id));
    }
    Ok(())
}

impl Seating {
    /// The service over its parts.
    pub fn new(
        store: HoldStore,
        db: SeatingDb,
        catalog: CatalogSource,
        connectors: Connectors,
        config: SeatingConfig,
    ) -> Self {
        let maps = Arc::new(SharedReads::new(&store, 10_000, Duration::from_secs(30)));
        let deadlines = Arc::new(SharedReads::new(&store, 10_000, Duration::from_secs(30)));
        Self {
            store,
            db,
            catalog,
            connectors,
            config: Arc::new(config),
            allocations: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(2))
                .build(),
            maps,
            deadlines,
            recent_claims: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CLAIM_FRESH)
                .build(),
        }
    }

    /// The hold store.
    pub fn store(&self) -> &HoldStore {
        &self.store
    }

    /// The database.
    pub fn db(&self) -> &SeatingDb {
        &self.db
    }

    /// The settings.
    pub fn config(&self) -> &SeatingConfig {
        &self.config
    }

    /// The show and its layout.
    pub async fn show(&self, show_id: &str) -> Result<ShowContext, SeatingError> {
        check_show_id(show_id)?;
        self.catalog.show(show_id).await
    }

    /// A show's allocation (cached for two seconds). Concurrent misses of one show share one
    /// database read: ten thousand viewers opening a seat map at once make one query, not a
    /// queue for the connection pool.
    pub async fn allocation(&self, ctx: &ShowContext) -> Result<Arc<Allocation>, SeatingError> {
        self.allocations
            .try_get_with_by_ref(&ctx.show.id, async {
                let rows = self.db.allocation(&ctx.show.id).await?;
                let a: Allocation = rows
                    .into_iter()
                    .filter_map(|(seat, ch)| ctx.layout.index.get(&seat).map(|i| (*i, ch)))
                    .collect();
                Ok::<_, SeatingError>(Arc::new(a))
            })
            .await
            .map_err(SeatingError::from_shared)
    }

    /// Loads a show's sold seats from the database into the hold store (after the store lost
    /// them, or on first use).
    async fn load(&self, ctx: &ShowContext) -> Result<(), SeatingError> {
        let sold = self.db.sold_seats(&ctx.show.id).await?;
        let seats: Vec<u32> = sold
            .iter()
            .filter_map(|s| ctx.layout.index.get(&s.seat_id).copied())
            .collect();
        tracing::info!(show = %ctx.show.id, sold = seats.len(), "loading sold seats into the hold store");
        self.store
            .load_sold(&ctx.show.id, &seats)
            .await
            .map_err(store_err)
    }

    /// The live seat states of a show for `user`.
    pub async fn states(
        &self,
        ctx: &ShowContext,
        user: Option<&str>,
    ) -> Result<SeatStates, SeatingError> {
        for _ in 0..3 {
            match self
                .store
                .seat_states(&ctx.show.id, user)
                .await
                .map_err(store_err)?
            {
                Some(s) => return Ok(s),
                None => self.load(ctx).await?,
            }
        }
        Err(SeatingError::storage(StoreError::Corrupt(
            "show does not stay loaded".into(),
        )))
    }

    /// The seat states of a show for its watchers on this instance: when a watcher opens, and
    /// again when it has missed events (a gap in versions, a lag, a store reconnection; it has
    /// seen the store's count reach `reconnections`). Call it after [`Self::subscribe`].
    ///
    /// Watchers come to a show in crowds (a sale opens) and miss events together (a
    /// reconnection, a lost pub/sub message), so they share the show-wide part: one read, joined
    /// while it runs and used again while it has every event the watcher is not sent (it began
    /// after every reconnection the watcher has seen and after the last event delivered here,
    /// or it has that event's version; see [`crate::store::Since`]). A read that ends older
    /// than that is made again. Only a signed-in viewer's own hold is read for them alone,
    /// after the shared part, so it is never older than the map; the events after the map's
    /// version bring the two together.
    pub async fn watch_states(
        &self,
        ctx: &ShowContext,
        user: Option<&str>,
        reconnections: u64,
    ) -> Result<SeatStates, SeatingError> {
        let since = self.store.since(&ctx.show.id);
        let has_last = |s: &SeatStates| since.last.is_some_and(|v| s.version >= v);
        let show = self
            .maps
            .get(
                &ctx.show.id,
                Need {
                    reconnections,
                    mark: since.mark,
                    enough: since.last.is_some().then_some(&has_last as _),
                },
                || {
                    let (this, ctx) = (self.clone(), ctx.clone());
                    async move { this.states(&ctx, None).await }.boxed()
                },
            )
            .await?;
        let mine = match user {
            Some(u) => self
                .store
                .hold_of(&ctx.show.id, u)
                .await
                .map_err(store_err)?,
            None => None,
        };
        Ok(SeatStates {
            version: show.version,
            held: show.held.clone(),
            sold: show.sold.clone(),
            mine,
        })
    }

    /// The seat map of a show for a viewer.
    pub async fn seat_map(
        &self,
        show_id: &str,
        viewer: &Viewer,
    ) -> Result<(ShowContext, Arc<Allocation>, SeatStates), SeatingError> {
        let ctx = self.show(show_id).await?;
        let allocation = self.allocation(&ctx).await?;
        let states = self.states(&ctx, viewer.user.as_deref()).await?;
        Ok((ctx, allocation, states))
    }

    /// Holds seats for `user` on `channel`. On the platform's channel, the show is first counted
    /// among the user's shows with a hold, up to `active_holds_per_user` ([`Self::claim`]); a
    /// call that made no hold lets go of a count it began.
    pub async fn hold(
        &self,
        user: &str,
        channel: &Channel,
        cmd: HoldCommand,
    ) -> Result<(ShowContext, Hold), SeatingError> {
        marquee_platform::validation::check_request_id(&cmd.request_id)?;
        let ctx = self.show(&cmd.show_id).await?;
        rules::check_show_open(&ctx, chrono::Utc::now().timestamp())?;
        let allocation = self.allocation(&ctx).await?;
        let fingerprint =
            marquee_platform::idempotency::fingerprint(&(&cmd.show_id, &cmd.selection));
        let explicit = match &cmd.selection {
            Selection::Seats(ids) => {
                let seats = rules::explicit_seats(&ctx.layout, ids)?;
                rules::check_channel(&ctx.layout, &allocation, channel, &seats)?;
                Some(seats)
            }
            Selection::BestAvailable { count, category } => {
                rules::check_best_available(&ctx.layout, *count, category)?;
                None
            }
        };
        let counted = *channel == Channel::Platform && self.config.active_holds_per_user > 0;
        // A claim younger than CLAIM_FRESH that led to a hold is still counted in the store: a
        // claim is let go only by the call that made it (without a hold), once its show has no
        // hold and it is CLAIM_GRACE_MS old, or long after the longest hold.
        let mut claim: Option<Claimed> = match counted {
            true => self
                .recent_claims
                .get(&(user.to_owned(), ctx.show.id.clone()))
                .map(|(at, claimed)| Claimed {
                    at,
                    claimed,
                    new: false,
                    cached: true,
                }),
            false => None,
        };
        let live = self.connectors.of(&ctx.show.theatre_id);
        // Seats a live theatre refused: best available looks past them.
        let mut refused: Vec<u32> = Vec::new();
        let result = async {
            for _attempt in 0..5 {
                let seats = match &explicit {
                    Some(s) => s.clone(),
                    None => {
                        let Selection::BestAvailable { count, category } = &cmd.selection else {
                            break;
                        };
                        let states = self.states(&ctx, Some(user)).await?;
                        let mine: Vec<u32> = states
                            .mine
                            .as_ref()
                            .map(|h| h.seats.clone())
                            .unwrap_or_default();
                        rules::best_available(&ctx.layout, category, *count as usize, |i| {
                            allocation.get(&i).unwrap_or(&Channel::Platform) == channel
                                && !refused.contains(&i)
                                && !bit(&states.sold, i)
                                && (!bit(&states.held, i) || mine.contains(&i))
                        })
                        .ok_or_else(|| {
                            SeatingError::precondition(
                                "NOT_ENOUGH_SEATS",
                                "not enough seats of this category are available",
                            )
                        })?
                    }
                };
                if counted && claim.as_ref().is_none_or(|c| c.at.elapsed() > CLAIM_FRESH) {
                    let at = std::time::Instant::now();
                    let (claimed, new) = self.claim(user, &ctx.show.id).await?;
                    claim = Some(Claimed {
                        at,
                        claimed,
                        new: new || claim.is_some_and(|c| c.new),
                        cached: false,
                    });
                }
                let id = hold_id(&ctx.show.id);
                let locked = match live {
                    None => None,
                    Some(c) => match self
                        .lock_at_theatre(c, &ctx, user, &cmd.request_id, &id, &seats)
                        .await?
                    {
                        Live::Replay => None,
                        Live::Locked => Some(c),
                        Live::Refused(taken) => {
                            if explicit.is_some() {
                                return Err(SeatingError::Precondition {
                                    reason: "SEAT_TAKEN",
                                    message: "some seats are sold or held at the theatre".into(),
                                    seats: taken,
                                });
                            }
                            refused.extend(taken.iter().filter_map(|t| ctx.layout.index.get(t)));
                            continue;
                        }
                    },
                };
                let new = NewHold {
                    show_id: ctx.show.id.clone(),
                    hold_id: id,
                    user: user.to_owned(),
                    seats,
                    ttl_ms: self.config.hold_ttl_ms,
                    max_lifetime_ms: self.config.hold_max_lifetime_ms,
                    request_id: Some(cmd.request_id.clone()),
                    fingerprint: fingerprint.clone(),
                };
                let mut outcome = self.store.hold(&new).await.map_err(store_err)?;
                if outcome == HoldOutcome::NotLoaded {
                    // The show's first hold on this store: load it and hold the same seats
                    // again (under the lock taken for them, if any).
                    self.load(&ctx).await?;
                    outcome = self.store.hold(&new).await.map_err(store_err)?;
                }
                // The lock of the hold the new one replaced goes once it is replaced here (not
                // before: until then its seats are held here). That is the hold the store
                // replaced, which a concurrent HoldSeats of the same user may have made after
                // the one locked as replaced above was looked up (whose lock that call lets go).
                // The new lock goes when the hold was not made. After a store failure both
                // stay: the hold may have been made, and a lock not released lapses.
                if let Some(c) = locked {
                    match &outcome {
                        HoldOutcome::Held {
                            replaced: Some(p), ..
                        } => Self::release_at_theatre(c, &ctx.show.id, p),
                        HoldOutcome::Held { replaced: None, .. } => {}
                        // Waited for: the next attempt may want the same seats.
                        _ => {
                            if c.release(&ctx.show.id, &new.hold_id).await.is_err() {
                                Self::release_at_theatre(c, &ctx.show.id, &new.hold_id);
                            }
                        }
                    }
                }
                match outcome {
                    HoldOutcome::Held { hold: h, .. } => {
                        if let Some(c) = claim
                            && !c.cached
                        {
                            self.recent_claims
                                .insert((user.to_owned(), ctx.show.id.clone()), (c.at, c.claimed));
                        }
                        return Ok((h, true));
                    }
                    HoldOutcome::Replayed(h) => return Ok((h, false)),
                    HoldOutcome::Mismatch => return Err(SeatingError::IdempotencyMismatch),
                    HoldOutcome::NotLoaded => self.load(&ctx).await?,
                    HoldOutcome::Taken(seats) => {
                        if explicit.is_some() {
                            return Err(SeatingError::Precondition {
                                reason: "SEAT_TAKEN",
                                message: "some seats are held by someone else or sold".into(),
                                seats: ctx.layout.seat_ids(&seats),
                            });
                        }
                    }
                }
            }
            Err(SeatingError::precondition(
                "SEAT_TAKEN",
                "the seats changed while holding them; try again",
            ))
        }
        .await;
        // A show this call began to count, for which it surely made no hold (refused, or
        // replayed: not when the store failed, perhaps after holding), stops counting at once (a
        // later claim of the show, by a hold still on its way, stays). A claim left behind is let
        // go when the user reaches the cap.
        let no_hold = match &result {
            Ok((_, held)) => !held,
            Err(SeatingError::Unavailable(_) | SeatingError::Storage(_)) => false,
            Err(_) => true,
        };
        if let Some(c) = claim
            && c.new
            && no_hold
            && let Err(error) = self.store.unclaim(user, &ctx.show.id, c.claimed, 0).await
        {
            tracing::warn!(%error, "could not let go of a claim without a hold");
        }
        result.map(|(h, _)| (ctx, h))
    }

    /// Locks `seats` at a live theatre for the hold `hold_id` about to be made, replacing the
    /// lock of `user`'s current hold on the show (which the new hold replaces: its seats are
    /// the user's for the new lock too). A request the
    /// store answered already is not locked again: the store replays it.
    async fn lock_at_theatre(
        &self,
        c: &Connector,
        ctx: &ShowContext,
        user: &str,
        request_id: &str,
        hold_id: &str,
        seats: &[u32],
    ) -> Result<Live, SeatingError> {
        let show = &ctx.show.id;
        if self
            .store
            .recorded(show, user, request_id)
            .await
            .map_err(store_err)?
        {
            return Ok(Live::Replay);
        }
        let previous = self.store.hold_of(show, user).await.map_err(store_err)?;
        let seat_ids = ctx.layout.seat_ids(seats);
        let lock = c
            .lock(LockRequest {
                lock_id: hold_id,
                show_id: show,
                seat_ids: &seat_ids,
                until_ms: chrono::Utc::now().timestamp_millis() + self.config.hold_ttl_ms as i64,
                replaces: previous.as_ref().map(|h| h.id.as_str()),
            })
            .await?;
        Ok(match lock {
            Lock::Locked => Live::Locked,
            // The same request made at the same time may have been answered meanwhile.
            Lock::Refused(_)
                if self
                    .store
                    .recorded(show, user, request_id)
                    .await
                    .map_err(store_err)? =>
            {
                Live::Replay
            }
            Lock::Refused(taken) => Live::Refused(taken),
        })
    }

    /// Releases a lock at a live theatre, not waited for: its seats are free here already.
    fn release_at_theatre(c: &Connector, show_id: &str, lock_id: &str) {
        let (c, show, lock) = (c.clone(), show_id.to_owned(), lock_id.to_owned());
        tokio::spawn(async move { release_until_answered(&c, &show, &lock).await });
    }

    /// Releases at their theatres the locks of holds the sweeper expired here (exactly one
    /// instance expires each hold), not waited for: a lock not released lapses
    /// [`crate::connector::LOCK_MARGIN_MS`] after its hold's deadline.
    pub fn release_expired(&self, expired: Vec<ExpiredHold>) {
        if self.connectors.is_empty() {
            return;
        }
        let this = self.clone();
        // A few at a time: a theatre that does not answer costs each call its timeout.
        tokio::spawn(futures::stream::iter(expired).for_each_concurrent(
            RELEASES_AT_ONCE,
            move |e| {
                let this = this.clone();
                async move {
                    let theatre = match this.show(&e.show_id).await {
                        Ok(ctx) => ctx.show.theatre_id.clone(),
                        Err(error) => {
                            tracing::warn!(%error, show = e.show_id, "an expired hold's show");
                            return;
                        }
                    };
                    if let Some(c) = this.connectors.of(&theatre) {
                        release_until_answered(c, &e.show_id, &e.hold_id).await;
                    }
                }
            },
        ));
    }

    /// Counts the show among `user`'s shows with a hold, up to `active_holds_per_user`. At the
    /// cap, the claims of holds that ended (released, expired, sold: they are let go lazily,
    /// which keeps the hot path at one call) are looked up and let go, and the claim tried
    /// again. A claim younger than [`CLAIM_GRACE_MS`] stays even without a hold: its hold may
    /// be on its way. Returns the claim's time and whether the show was not counted before.
    async fn claim(&self, user: &str, show_id: &str) -> Result<(i64, bool), SeatingError> {
        let cap = self.config.active_holds_per_user;
        let keep = self.config.hold_max_lifetime_ms + CLAIM_GRACE_MS;
        for _ in 0..3 {
            let counted = match self
                .store
                .claim(user, show_id, cap, keep)
                .await
                .map_err(store_err)?
            {
                Claim::Granted { claimed, new } => return Ok((claimed, new)),
                Claim::Full(counted) => counted,
            };
            let freed =
                futures::future::try_join_all(counted.iter().map(|(show, claimed)| async move {
                    match self.store.hold_of(show, user).await? {
                        Some(_) => Ok(false),
                        None => {
                            self.store
                                .unclaim(user, show, *claimed, CLAIM_GRACE_MS)
                                .await
                        }
                    }
                }))
                .await
                .map_err(store_err)?;
            if !freed.contains(&true) {
                break;
            }
        }
        Err(SeatingError::Exhausted {
            reason: "TOO_MANY_HOLDS",
            message: format!(
                "you are holding seats for {cap} shows already; release one of those holds first"
            ),
        })
    }

    fn refusal(hold_id: &str, r: Refusal) -> SeatingError {
        match r {
            Refusal::NotFound => hold_not_found(hold_id),
            Refusal::Expired => SeatingError::precondition("HOLD_EXPIRED", "the hold has expired"),
            Refusal::StaleToken => SeatingError::precondition(
                "STALE_TOKEN",
                "the fencing token is not the hold's current token",
            ),
        }
    }

    /// Extends `user`'s hold.
    pub async fn extend(
        &self,
        user: &str,
        hold_id: &str,
        extension_ms: Option<u64>,
    ) -> Result<(ShowContext, Hold), SeatingError> {
        let show_id = hold_show(hold_id)?;
        let ext = extension_ms.unwrap_or(self.config.hold_ttl_ms);
        if ext == 0 || ext > self.config.hold_max_lifetime_ms {
            return Err(Violations::one(
                "extension",
                "must be positive and at most the hold's maximum lifetime",
            )
            .into());
        }
        let ctx = self.show(show_id).await?;
        let hold = self
            .store
            .extend(show_id, hold_id, user, ext)
            .await
            .map_err(store_err)?
            .map_err(|r| Self::refusal(hold_id, r))?;
        if let Some(c) = self.connectors.of(&ctx.show.theatre_id) {
            let lock = c
                .lock(LockRequest {
                    lock_id: hold_id,
                    show_id,
                    seat_ids: &ctx.layout.seat_ids(&hold.seats),
                    until_ms: hold.expires_ms,
                    replaces: None,
                })
                .await?;
            if let Lock::Refused(seats) = lock {
                // The theatre let the seats go (its lock lapsed): so does the hold.
                if let Err(error) = self.store.release(show_id, hold_id, user).await {
                    tracing::warn!(%error, "could not release a hold the theatre let go");
                }
                return Err(SeatingError::Precondition {
                    reason: "HOLD_LOST",
                    message: "the theatre no longer holds these seats; hold them again".into(),
                    seats,
                });
            }
        }
        Ok((ctx, hold))
    }

    /// Releases `user`'s hold.
    pub async fn release(
        &self,
        user: &str,
        hold_id: &str,
    ) -> Result<(ShowContext, Hold), SeatingError> {
        let show_id = hold_show(hold_id)?;
        let ctx = self.show(show_id).await?;
        let hold = self
            .store
            .release(show_id, hold_id, user)
            .await
            .map_err(store_err)?
            .map_err(|r| Self::refusal(hold_id, r))?;
        if let Some(c) = self.connectors.of(&ctx.show.theatre_id) {
            Self::release_at_theatre(c, show_id, hold_id);
        }
        Ok((ctx, hold))
    }

    /// `user`'s hold, or NOT_FOUND (also for other users' holds).
    pub async fn own_hold(
        &self,
        user: &str,
        hold_id: &str,
    ) -> Result<(ShowContext, Hold), SeatingError> {
        let show_id = hold_show(hold_id)?;
        let hold = self
            .store
            .get(show_id, hold_id)
            .await
            .map_err(store_err)?
            .filter(|h| h.user == user)
            .ok_or_else(|| hold_not_found(hold_id))?;
        let ctx = self.show(show_id).await?;
        Ok((ctx, hold))
    }

    /// Any hold, whoever holds it (for service callers), or NOT_FOUND.
    pub async fn any_hold(&self, hold_id: &str) -> Result<(ShowContext, Hold), SeatingError> {
        let show_id = hold_show(hold_id)?;
        let hold = self
            .store
            .get(show_id, hold_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| hold_not_found(hold_id))?;
        let ctx = self.show(show_id).await?;
        Ok((ctx, hold))
    }

    /// A hold's deadline (`None` once it is gone) as a read of its show's holds says, which
    /// the show's WatchHold streams on this instance share: one begun after every store
    /// reconnection the caller has seen and at or after `mark` (a tick).
    pub async fn current_deadline(
        &self,
        hold: &Hold,
        reconnections: u64,
        mark: u64,
    ) -> Result<Option<i64>, SeatingError> {
        let deadlines = self
            .deadlines
            .get(
                &hold.show_id,
                Need {
                    reconnections,
                    mark,
                    enough: None,
                },
                || {
                    let (store, show) = (self.store.clone(), hold.show_id.clone());
                    async move { store.deadlines(&show).await.map_err(store_err) }.boxed()
                },
            )
            .await?;
        Ok(deadlines.get(&hold.id).copied())
    }

    /// Confirms a hold: check it (token, deadline), sell its seats in the database (all or
    /// none), then mark them sold in the store.
    pub async fn confirm(
        &self,
        hold_id: &str,
        token: i64,
        booking_reference: &str,
    ) -> Result<Confirmed, SeatingError> {
        if !valid_booking_reference(booking_reference) {
            return Err(Violations::one("booking_reference", BOOKING_REFERENCE_RULE).into());
        }
        let show_id = show_of_hold(hold_id)
            .ok_or_else(|| SeatingError::precondition("HOLD_NOT_FOUND", "no such hold"))?;
        let ctx = self.show(show_id).await?;
        let hold = match self
            .store
            .check_confirm(show_id, hold_id, token)
            .await
            .map_err(store_err)?
        {
            Ok(h) => h,
            Err(refusal) => {
                // A retry of a confirmation that went through: the hold is gone, the rows stay.
                let sold = self.db.sold_by(show_id, hold_id, booking_reference).await?;
                if let Some(first) = sold.first() {
                    return Ok(Confirmed {
                        show_id: show_id.to_owned(),
                        sold_at: first.sold_at,
                        seat_ids: sold.iter().map(|s| s.seat_id.clone()).collect(),
                    });
                }
                return Err(match refusal {
                    Refusal::NotFound => {
                        SeatingError::precondition("HOLD_NOT_FOUND", "no such hold")
                    }
                    r => Self::refusal(hold_id, r),
                });
            }
        };
        let seat_ids = ctx.layout.seat_ids(&hold.seats);
        let live = self.connectors.of(&ctx.show.theatre_id);
        if let Some(c) = live
            && !c.confirm(show_id, hold_id, booking_reference).await?
        {
            return Err(SeatingError::Precondition {
                reason: "THEATRE_REFUSED",
                message: "the theatre no longer holds these seats for this hold".into(),
                seats: seat_ids,
            });
        }
        match self
            .db
            .sell(show_id, hold_id, booking_reference, &seat_ids)
            .await?
        {
            Sale::Sold(sold_at) => {
                self.store
                    .finalize(show_id, hold_id, &hold.seats)
                    .await
                    .map_err(store_err)?;
                Ok(Confirmed {
                    show_id: show_id.to_owned(),
                    seat_ids,
                    sold_at,
                })
            }
            Sale::Conflict => {
                // Sold here already (a store that lost its holds): the theatre's sale goes.
                if let Some(c) = live
                    && let Err(error) = c.cancel_sale(show_id, booking_reference).await
                {
                    tracing::warn!(%error, "could not cancel a sale at the theatre");
                }
                Err(SeatingError::Precondition {
                    reason: "SEAT_SOLD",
                    message: "some seats are already sold".into(),
                    seats: seat_ids,
                })
            }
        }
    }

    /// Puts the seats sold to `booking_reference` back on sale: the sale rows go first (the
    /// database is the final word), then the hold store's sold marks, with an event every
    /// watcher sees. Returns the seats this call put back; none on a retry, and of two
    /// cancellations at once only one gets them.
    ///
    /// The store's marks are cleared for every seat marked sold without a sale row, not only
    /// for the seats deleted now: a try whose delete committed but whose store update failed
    /// left its seats marked, and the retry (which deletes nothing) clears them. No seat can
    /// be marked sold in between by anyone else: a seat marked sold cannot be held, and a
    /// confirmation writes its row before its mark.
    pub async fn cancel_sale(
        &self,
        show_id: &str,
        booking_reference: &str,
    ) -> Result<Vec<String>, SeatingError> {
        let mut v = Violations::new();
        if let Err(SeatingError::Invalid(e)) = check_show_id(show_id) {
            v.extend(e);
        }
        if !valid_booking_reference(booking_reference) {
            v.add("booking_reference", BOOKING_REFERENCE_RULE);
        }
        v.into_result()?;
        let ctx = self.show(show_id).await?;
        let seat_ids = self.db.unsell(show_id, booking_reference).await?;
        // Marks first, rows second (see above); a show not loaded in the store is rebuilt from
        // the rows when it is.
        let marked = match self
            .store
            .seat_states(show_id, None)
            .await
            .map_err(store_err)?
        {
            Some(states) => states.sold,
            None => Vec::new(),
        };
        let rows: std::collections::HashSet<u32> = self
            .db
            .sold_seats(show_id)
            .await?
            .iter()
            .filter_map(|s| ctx.layout.index.get(&s.seat_id).copied())
            .collect();
        let stale: Vec<u32> = (0..(marked.len() * 8) as u32)
            .filter(|i| bit(&marked, *i) && !rows.contains(i))
            .collect();
        if !stale.is_empty() {
            self.store
                .unsell(show_id, &stale)
                .await
                .map_err(store_err)?;
        }
        // Every time, retries too: the theatre's call may have failed after the rows went.
        if let Some(c) = self.connectors.of(&ctx.show.theatre_id) {
            c.cancel_sale(show_id, booking_reference).await?;
        }
        Ok(seat_ids)
    }

    /// Events of a show from now on.
    pub async fn subscribe(
        &self,
        show_id: &str,
    ) -> Result<broadcast::Receiver<Arc<SeatEvent>>, SeatingError> {
        self.store.subscribe(show_id).await.map_err(store_err)
    }

    /// Replaces a show's allocation.
    pub async fn set_allocation(
        &self,
        request_id: &str,
        show_id: &str,
        seats: Vec<(String, Channel)>,
    ) -> Result<ShowContext, SeatingError> {
        marquee_platform::validation::check_request_id(request_id)?;
        let ctx = self.show(show_id).await?;
        let mut v = Violations::new();
        let mut seen = std::collections::HashSet::new();
        for (i, (seat, _)) in seats.iter().enumerate() {
            if !ctx.layout.index.contains_key(seat) {
                v.add(
                    format!("allocations.seat_ids[{i}]"),
                    "no such seat in this show",
                );
            } else if !seen.insert(seat.clone()) {
                v.add(format!("allocations.seat_ids[{i}]"), "seat allotted twice");
            }
        }
        v.into_result()?;
        let mut keyed: Vec<(String, String)> =
            seats.iter().map(|(s, c)| (s.clone(), c.key())).collect();
        keyed.sort();
        let key = IdempotencyKey::new("seating.set_allocation", request_id, &(show_id, &keyed));
        let platform: Vec<(String, Channel)> = seats
            .into_iter()
            .filter(|(_, c)| *c != Channel::Platform)
            .collect();
        self.db.set_allocation(&key, show_id, &platform).await?;
        self.allocations.invalidate(show_id).await;
        Ok(ctx)
    }

    /// A show's allocation as (seat id, channel).
    pub async fn get_allocation(
        &self,
        show_id: &str,
    ) -> Result<(ShowContext, Vec<(String, Channel)>), SeatingError> {
        let ctx = self.show(show_id).await?;
        let rows = self.db.allocation(show_id).await?;
        Ok((ctx, rows))
    }
}
