//! The Redis hold store.
//!
//! Every key of a show lives under `<prefix>seat:{<show>}:` (one hash tag, so each script touches
//! one slot and runs unchanged on Redis Cluster):
//!
//! | key | what |
//! | --- | --- |
//! | `loaded` | marker: the show's sold seats were loaded from the database |
//! | `held`, `sold` | bitmaps by seat index |
//! | `fence` | the fencing counter, incremented by every hold |
//! | `exp` | sorted set of hold id by deadline (Unix ms from Redis `TIME`): what the sweeper expires by, and what WatchHold streams check their holds by (one `ZRANGE` per show and check interval, shared by an instance's holders) |
//! | `h:<hold>` | the hold: user, seats, token, deadline, created, max deadline |
//! | `u:<user>` | the user's active hold on the show |
//! | `rid`, `ridx` | idempotency records of HoldSeats (hash: `<request id> <user>` -> fingerprint and result), and their index by the time they may be forgotten (a hold's TTL after the request) |
//! | `ver` | the show's event version: every event a script publishes takes the next one (the shared `version` function, `lua/version.lua`); a load starts the run at the load time in microseconds, so a show reloaded after Redis lost its data continues above every version handed out before |
//! | `ev` | the pub/sub channel of the show's events, each `version|kind|hold|token|deadline|seats|user` |
//!
//! A user's shows with a hold live under the user's own hash tag, in
//! `<prefix>seat:user:{<user>}:shows` (sorted set: show -> when its hold was claimed): the cap on
//! one user's active holds across shows, which the hold script cannot count (another slot).
//! `claim.lua` runs before the hold script; the claims of holds that ended are let go lazily,
//! when the user is at the cap (see [`crate::Seating::hold`]), and the key expires once its
//! newest claim can have no hold left: one key per recently active user, the only keys with a
//! Redis TTL.
//!
//! Outside the hash tags, `<prefix>seat:due` indexes shows by their earliest deadline (of a hold
//! or a request record); every instance's sweeper reads it and runs the per-show expire script,
//! whose atomicity makes exactly one instance expire (and announce) each hold. No key of a show
//! is given a Redis TTL: with many keys expiring, Redis's own active expiry blocks it for up to
//! 25 ms at a time (measured: the benchmark's p99 followed those stalls), while the expire script
//! works in batches of bounded size. Scripts are loaded once and run with EVALSHA, reloaded on
//! NOSCRIPT.
//!
//! An instance subscribes to a show's `ev` channel while it has watchers of that show (the
//! first watcher's SUBSCRIBE completes before its snapshot is read, so no change falls between
//! them), and unsubscribes once the last one has gone: a busy show's events reach only the
//! instances whose viewers watch it. The seat map script reads the version with the bitmaps, so
//! a watcher knows which events its snapshot already has (those published before it was read
//! may still be on their way through this process) and which it missed
//! ([`crate::domain::Cursor`]). Watchers read the map when they open and again when they
//! missed events, sharing one read with the show's other watchers while it has every event they
//! are not sent ([`crate::Seating::watch_states`]), and their viewer's own hold alone
//! (`hold_of.lua`).

use std::{
    collections::HashSet,
    sync::{Arc, OnceLock},
    time::Duration,
};

use fred::{
    clients::SubscriberClient,
    prelude::{Client, ClientLike, EventInterface, PubsubInterface},
    types::{Builder, Value, scripts::Script},
};
use tokio::sync::{Mutex, broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{
    Claim, Deadlines, ExpiredHold, Hold, HoldOutcome, Hub, NewHold, Refusal, StoreError, parse_hold,
};
use crate::domain::{SeatEvent, SeatStates, parse_seats};

struct Scripts {
    hold: Script,
    extend: Script,
    release: Script,
    get: Script,
    check: Script,
    finalize: Script,
    unsell: Script,
    map: Script,
    hold_of: Script,
    load: Script,
    expire: Script,
    next: Script,
    due: Script,
    claim: Script,
    unclaim: Script,
}

/// A script after the functions it uses (`version.lua`: the next event version, for the scripts
/// that publish a show's events; `mine.lua`: a user's hold, for the scripts that read it).
macro_rules! script {
    ($($file:literal),+) => {
        Script::from_lua(concat!($(include_str!($file)),+))
    };
}

impl Scripts {
    fn new() -> Self {
        Self {
            hold: script!("lua/version.lua", "lua/hold.lua"),
            extend: script!("lua/version.lua", "lua/extend.lua"),
            release: script!("lua/version.lua", "lua/release.lua"),
            get: Script::from_lua(include_str!("lua/get.lua")),
            check: Script::from_lua(include_str!("lua/check.lua")),
            finalize: script!("lua/version.lua", "lua/finalize.lua"),
            unsell: script!("lua/version.lua", "lua/unsell.lua"),
            map: script!("lua/mine.lua", "lua/map.lua"),
            hold_of: script!("lua/mine.lua", "lua/hold_of.lua"),
            load: Script::from_lua(include_str!("lua/load.lua")),
            expire: script!("lua/version.lua", "lua/expire.lua"),
            next: Script::from_lua(include_str!("lua/next.lua")),
            due: Script::from_lua(include_str!("lua/due.lua")),
            claim: Script::from_lua(include_str!("lua/claim.lua")),
            unclaim: Script::from_lua(include_str!("lua/unclaim.lua")),
        }
    }

    fn all(&self) -> [&Script; 15] {
        [
            &self.hold,
            &self.extend,
            &self.release,
            &self.get,
            &self.check,
            &self.finalize,
            &self.unsell,
            &self.map,
            &self.hold_of,
            &self.load,
            &self.expire,
            &self.next,
            &self.due,
            &self.claim,
            &self.unclaim,
        ]
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct RedisHoldStore {
    client: Client,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
    hub: Hub,
    reconnections: Arc<watch::Sender<u64>>,
    /// The pub/sub connection, once [`Self::start_subscriber`] has made it.
    subscriber: Arc<OnceLock<SubscriberClient>>,
    /// The shows whose channel this instance is subscribed to.
    subscribed: Arc<Mutex<HashSet<String>>>,
}

/// Holds (and request records) one run of the expire script handles at most.
const EXPIRE_BATCH: usize = 500;
/// Runs of the expire script per show and sweep, at most (a backlog is worked off over sweeps).
const EXPIRE_RUNS: usize = 20;

/// How often shows nobody watches any more are unsubscribed from.
const UNSUBSCRIBE_EVERY: Duration = Duration::from_secs(10);

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

fn text(v: &Value) -> String {
    v.as_str().map(|s| s.into_owned()).unwrap_or_default()
}

fn reply(v: Value) -> (String, Vec<Value>) {
    let mut items = v.into_array().into_iter();
    let head = items.next().map(|v| text(&v)).unwrap_or_default();
    (head, items.collect())
}

impl RedisHoldStore {
    /// A store on `client` whose keys start with `prefix`; loads the scripts.
    pub async fn new(client: Client, prefix: &str) -> Result<Self, StoreError> {
        let scripts = Scripts::new();
        for s in scripts.all() {
            s.load(&client).await.map_err(unavailable)?;
        }
        Ok(Self {
            client,
            prefix: prefix.into(),
            scripts: Arc::new(scripts),
            hub: Hub::default(),
            reconnections: Arc::new(watch::channel(0).0),
            subscriber: Arc::new(OnceLock::new()),
            subscribed: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The Redis client (benchmarks run the scripts directly).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn base(&self, show: &str) -> String {
        format!("{}seat:{{{show}}}:", self.prefix)
    }

    /// The user's shows with a hold (their own hash tag).
    fn claims_key(&self, user: &str) -> String {
        format!("{}seat:user:{{{user}}}:shows", self.prefix)
    }

    fn due_key(&self) -> String {
        format!("{}seat:due", self.prefix)
    }

    fn channel(&self, show: &str) -> String {
        format!("{}ev", self.base(show))
    }

    /// The show's events from now on: subscribes this instance to the show's channel first if
    /// it is not yet (and waits until Redis has confirmed it).
    pub(crate) async fn subscribe(
        &self,
        show_id: &str,
    ) -> Result<broadcast::Receiver<Arc<SeatEvent>>, StoreError> {
        let rx = self.hub.subscribe(show_id);
        if let Some(subscriber) = self.subscriber.get() {
            let mut subscribed = self.subscribed.lock().await;
            if !subscribed.contains(show_id) {
                subscriber
                    .subscribe(self.channel(show_id))
                    .await
                    .map_err(unavailable)?;
                subscribed.insert(show_id.to_owned());
            }
        }
        Ok(rx)
    }

    /// Subscribes again to the channels of the shows this instance is subscribed to (after the
    /// pub/sub connection reconnected). It holds the list while it does, as [`Self::subscribe`]
    /// and [`Self::unsubscribe_unwatched`] do, so that it never subscribes to a show they have
    /// just unsubscribed from (fred's own `resubscribe_all` would, from its copy of the list).
    async fn resubscribe(&self) {
        let Some(subscriber) = self.subscriber.get() else {
            return;
        };
        let subscribed = self.subscribed.lock().await;
        let channels: Vec<String> = subscribed.iter().map(|s| self.channel(s)).collect();
        if channels.is_empty() {
            return;
        }
        if let Err(error) = subscriber.subscribe(channels).await {
            tracing::warn!(%error, "cannot subscribe to the shows' events again");
        }
    }

    /// Unsubscribes from the shows this instance no longer has watchers of.
    pub(crate) async fn unsubscribe_unwatched(&self) {
        let Some(subscriber) = self.subscriber.get() else {
            return;
        };
        let mut subscribed = self.subscribed.lock().await;
        let gone: Vec<String> = subscribed
            .iter()
            .filter(|show| self.hub.remove_if_unwatched(show))
            .cloned()
            .collect();
        for show in gone {
            if let Err(error) = subscriber.unsubscribe(self.channel(&show)).await {
                tracing::warn!(%error, show, "cannot unsubscribe from a show's events");
                continue;
            }
            subscribed.remove(&show);
        }
    }

    pub(crate) fn reconnections(&self) -> watch::Receiver<u64> {
        self.reconnections.subscribe()
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) async fn ping(&self) -> bool {
        marquee_platform::redis::ping(&self.client).await
    }

    /// Runs `script` with the keys and arguments `call` builds; loads the script again and
    /// rebuilds them after NOSCRIPT (a flushed or restarted Redis). fred's own
    /// `evalsha_with_reload` keeps a copy of every key and argument of every call for that case.
    async fn run(
        &self,
        script: &Script,
        call: impl Fn() -> (Vec<String>, Vec<String>),
    ) -> Result<Value, StoreError> {
        use fred::prelude::LuaInterface as _;
        let (keys, args) = call();
        match self
            .client
            .evalsha::<Value, _, _, _>(script.sha1().clone(), keys, args)
            .await
        {
            Err(error) if error.details().starts_with("NOSCRIPT") => {
                script.load(&self.client).await.map_err(unavailable)?;
                let (keys, args) = call();
                self.client
                    .evalsha(script.sha1().clone(), keys, args)
                    .await
                    .map_err(unavailable)
            }
            result => result.map_err(unavailable),
        }
    }

    /// The arguments of the hold script for `new` (public for the benchmark's raw EVALSHA loop).
    pub fn hold_call(&self, new: &NewHold) -> (Vec<String>, Vec<String>) {
        let b = self.base(&new.show_id);
        let rid = new.request_id.clone().unwrap_or_default();
        let keys = vec![
            format!("{b}loaded"),
            format!("{b}held"),
            format!("{b}sold"),
            format!("{b}exp"),
            format!("{b}fence"),
            format!("{b}u:{}", new.user),
            format!("{b}rid"),
            format!("{b}ridx"),
        ];
        let mut args = vec![
            b,
            new.hold_id.clone(),
            new.user.clone(),
            new.ttl_ms.to_string(),
            new.max_lifetime_ms.to_string(),
            rid,
            new.fingerprint.clone(),
        ];
        args.extend(new.seats.iter().map(u32::to_string));
        (keys, args)
    }

    /// Runs the hold script alone, with nothing around it (the benchmark's raw EVALSHA figure).
    pub async fn raw_hold(&self, new: &NewHold) -> Result<Value, StoreError> {
        self.run(&self.scripts.hold, || self.hold_call(new)).await
    }

    pub(crate) async fn load_sold(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        let b = self.base(show_id);
        self.run(&self.scripts.load, || {
            (
                vec![format!("{b}loaded"), format!("{b}sold"), format!("{b}ver")],
                seats.iter().map(u32::to_string).collect(),
            )
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn hold(&self, new: &NewHold) -> Result<HoldOutcome, StoreError> {
        let (head, rest) = reply(self.run(&self.scripts.hold, || self.hold_call(new)).await?);
        let arg = rest.first().map(text).unwrap_or_default();
        Ok(match head.as_str() {
            "NOT_LOADED" => HoldOutcome::NotLoaded,
            "MISMATCH" => HoldOutcome::Mismatch,
            "TAKEN" => HoldOutcome::Taken(
                parse_seats(&arg).ok_or_else(|| StoreError::Corrupt(arg.clone()))?,
            ),
            "REPLAY" => HoldOutcome::Replayed(parse_hold(&new.show_id, &new.user, &arg)?),
            "HELD" => {
                let hold = parse_hold(&new.show_id, &new.user, &arg)?;
                // The due index only ever needs lowering when this hold is the show's earliest
                // deadline; otherwise an earlier hold keeps it at or below this one (and the
                // sweeper re-reads the earliest deadline after every update of it).
                let earliest = rest.get(1).map(text).is_none_or(|f| f != "0");
                if earliest {
                    self.run(&self.scripts.due, || {
                        (
                            vec![self.due_key()],
                            vec![
                                "lower".into(),
                                new.show_id.clone(),
                                hold.expires_ms.to_string(),
                            ],
                        )
                    })
                    .await?;
                }
                let replaced = rest.get(2).map(text).filter(|r| !r.is_empty());
                HoldOutcome::Held { hold, replaced }
            }
            other => return Err(StoreError::Corrupt(other.to_owned())),
        })
    }

    pub(crate) async fn recorded(
        &self,
        show_id: &str,
        user: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        use fred::prelude::HashesInterface as _;
        // The field the hold script writes (`<request id> <user>`).
        self.client
            .hexists(
                format!("{}rid", self.base(show_id)),
                format!("{request_id} {user}"),
            )
            .await
            .map_err(unavailable)
    }

    fn hold_reply(
        &self,
        show_id: &str,
        user: Option<&str>,
        v: Value,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let (head, rest) = reply(v);
        if let Some(r) = Refusal::parse(&head) {
            return Ok(Err(r));
        }
        if head != "OK" {
            return Err(StoreError::Corrupt(head));
        }
        let body = rest.first().map(text).unwrap_or_default();
        let owner = user
            .map(str::to_owned)
            .unwrap_or_else(|| rest.get(1).map(text).unwrap_or_default());
        Ok(Ok(parse_hold(show_id, &owner, &body)?))
    }

    pub(crate) async fn extend(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
        extension_ms: u64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.extend, || {
                (
                    vec![format!("{b}exp"), format!("{b}h:{hold_id}")],
                    vec![
                        b.clone(),
                        hold_id.to_owned(),
                        user.to_owned(),
                        extension_ms.to_string(),
                    ],
                )
            })
            .await?;
        self.hold_reply(show_id, Some(user), v)
    }

    pub(crate) async fn release(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.release, || {
                (
                    vec![
                        format!("{b}held"),
                        format!("{b}exp"),
                        format!("{b}u:{user}"),
                        format!("{b}h:{hold_id}"),
                    ],
                    vec![b.clone(), hold_id.to_owned(), user.to_owned()],
                )
            })
            .await?;
        self.hold_reply(show_id, Some(user), v)
    }

    pub(crate) async fn get(
        &self,
        show_id: &str,
        hold_id: &str,
    ) -> Result<Option<Hold>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.get, || {
                (vec![format!("{b}h:{hold_id}")], vec![hold_id.to_owned()])
            })
            .await?;
        Ok(self.hold_reply(show_id, None, v)?.ok())
    }

    pub(crate) async fn deadlines(&self, show_id: &str) -> Result<Deadlines, StoreError> {
        use fred::prelude::SortedSetsInterface as _;
        let held: Vec<(String, f64)> = self
            .client
            .zrange(
                format!("{}exp", self.base(show_id)),
                0,
                -1,
                None,
                false,
                None,
                true,
            )
            .await
            .map_err(unavailable)?;
        Ok(held.into_iter().map(|(id, d)| (id, d as i64)).collect())
    }

    pub(crate) async fn hold_of(
        &self,
        show_id: &str,
        user: &str,
    ) -> Result<Option<Hold>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.hold_of, || {
                (vec![format!("{b}u:{user}")], vec![b.clone()])
            })
            .await?;
        let mine = text(&v);
        if mine.is_empty() {
            return Ok(None);
        }
        parse_hold(show_id, user, &mine).map(Some)
    }

    pub(crate) async fn claim(
        &self,
        user: &str,
        show_id: &str,
        cap: u32,
        keep_ms: u64,
    ) -> Result<Claim, StoreError> {
        let (head, rest) = reply(
            self.run(&self.scripts.claim, || {
                (
                    vec![self.claims_key(user)],
                    vec![show_id.to_owned(), cap.to_string(), keep_ms.to_string()],
                )
            })
            .await?,
        );
        let bad = || StoreError::Corrupt(format!("claim {head} {rest:?}"));
        let ms = |v: &Value| {
            let t = text(v);
            t.parse::<i64>()
                .or_else(|_| t.parse::<f64>().map(|f| f as i64))
                .ok()
        };
        match head.as_str() {
            "OK" => Ok(Claim::Granted {
                claimed: rest.first().and_then(ms).ok_or_else(bad)?,
                new: rest.get(1).map(text).ok_or_else(bad)? == "1",
            }),
            "FULL" => rest
                .chunks(2)
                .map(|p| match p {
                    [show, at] => Ok((text(show), ms(at).ok_or_else(bad)?)),
                    _ => Err(bad()),
                })
                .collect::<Result<_, _>>()
                .map(Claim::Full),
            _ => Err(bad()),
        }
    }

    pub(crate) async fn unclaim(
        &self,
        user: &str,
        show_id: &str,
        claimed: i64,
        min_age_ms: u64,
    ) -> Result<bool, StoreError> {
        let v = self
            .run(&self.scripts.unclaim, || {
                (
                    vec![self.claims_key(user)],
                    vec![
                        show_id.to_owned(),
                        claimed.to_string(),
                        min_age_ms.to_string(),
                    ],
                )
            })
            .await?;
        Ok(v.as_i64() == Some(1))
    }

    pub(crate) async fn check_confirm(
        &self,
        show_id: &str,
        hold_id: &str,
        token: i64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.check, || {
                (
                    vec![format!("{b}h:{hold_id}")],
                    vec![hold_id.to_owned(), token.to_string()],
                )
            })
            .await?;
        self.hold_reply(show_id, None, v)
    }

    pub(crate) async fn finalize(
        &self,
        show_id: &str,
        hold_id: &str,
        seats: &[u32],
    ) -> Result<(), StoreError> {
        let b = self.base(show_id);
        self.run(&self.scripts.finalize, || {
            let mut args = vec![b.clone(), hold_id.to_owned()];
            args.extend(seats.iter().map(u32::to_string));
            (
                vec![
                    format!("{b}held"),
                    format!("{b}sold"),
                    format!("{b}exp"),
                    format!("{b}h:{hold_id}"),
                ],
                args,
            )
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn unsell(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        let b = self.base(show_id);
        self.run(&self.scripts.unsell, || {
            let mut args = vec![b.clone()];
            args.extend(seats.iter().map(u32::to_string));
            (vec![format!("{b}sold")], args)
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn seat_states(
        &self,
        show_id: &str,
        user: Option<&str>,
    ) -> Result<Option<SeatStates>, StoreError> {
        let b = self.base(show_id);
        let v = self
            .run(&self.scripts.map, || {
                (
                    vec![
                        format!("{b}loaded"),
                        format!("{b}held"),
                        format!("{b}sold"),
                        format!("{b}u:{}", user.unwrap_or("")),
                        format!("{b}ver"),
                    ],
                    vec![b.clone()],
                )
            })
            .await?;
        let (head, rest) = reply(v);
        if head == "NOT_LOADED" {
            return Ok(None);
        }
        let bytes = |i: usize| {
            rest.get(i)
                .and_then(|v| v.as_bytes().map(<[u8]>::to_vec))
                .unwrap_or_default()
        };
        let mine = rest.get(2).map(text).unwrap_or_default();
        let mine = match (mine.is_empty(), user) {
            (false, Some(u)) => Some(parse_hold(show_id, u, &mine)?),
            _ => None,
        };
        let version = rest.get(3).map(text).unwrap_or_default();
        let version = version
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("show version {version:?}")))?;
        Ok(Some(SeatStates {
            version,
            held: bytes(0),
            sold: bytes(1),
            mine,
        }))
    }

    pub(crate) async fn sweep(&self) -> Result<Vec<ExpiredHold>, StoreError> {
        let due = self
            .run(&self.scripts.due, || {
                (vec![self.due_key()], vec!["scan".into(), "100".into()])
            })
            .await?;
        let mut expired = Vec::new();
        for show in due.into_array().iter().map(text) {
            let b = self.base(&show);
            // Each run handles at most EXPIRE_BATCH holds and as many request records (a short
            // stop of Redis); a show with more due runs again at once, up to a bound per sweep.
            let mut next = -1;
            for _ in 0..EXPIRE_RUNS {
                let v = self
                    .run(&self.scripts.expire, || {
                        (
                            vec![
                                format!("{b}held"),
                                format!("{b}exp"),
                                format!("{b}rid"),
                                format!("{b}ridx"),
                            ],
                            vec![b.clone(), EXPIRE_BATCH.to_string()],
                        )
                    })
                    .await?
                    .into_array();
                if let Some(Value::Array(ids)) = v.first() {
                    expired.extend(ids.iter().map(|id| ExpiredHold {
                        show_id: show.clone(),
                        hold_id: text(id),
                    }));
                }
                next = v
                    .get(1)
                    .map(text)
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(-1.0) as i64;
                if v.get(2).and_then(Value::as_i64) != Some(1) {
                    break;
                }
            }
            self.run(&self.scripts.due, || {
                (
                    vec![self.due_key()],
                    vec!["set".into(), show.clone(), next.to_string()],
                )
            })
            .await?;
            // A hold made between the expire script and the line above may have had its
            // deadline overwritten: read the show's earliest deadline again and lower to it.
            let now_next = self
                .run(&self.scripts.next, || {
                    (vec![format!("{b}exp"), format!("{b}ridx")], vec![])
                })
                .await?;
            let now_next = text(&now_next).parse::<f64>().unwrap_or(-1.0) as i64;
            if now_next >= 0 {
                self.run(&self.scripts.due, || {
                    (
                        vec![self.due_key()],
                        vec!["lower".into(), show.clone(), now_next.to_string()],
                    )
                })
                .await?;
            }
        }
        Ok(expired)
    }

    /// Makes the pub/sub connection that [`Self::subscribe`] subscribes on, and fans the events
    /// it receives out to this instance's watchers; bumps [`Self::reconnections`] on every
    /// reconnection of the command connection, and of the pub/sub connection once it has
    /// subscribed to the same channels again.
    pub(crate) async fn start_subscriber(&self, stop: CancellationToken) {
        let subscriber: SubscriberClient = match Builder::from_config(self.client.client_config())
            .set_policy(fred::prelude::ReconnectPolicy::new_exponential(
                0, 100, 2_000, 2,
            ))
            .build_subscriber_client()
        {
            Ok(s) => s,
            Err(error) => {
                tracing::error!(%error, "cannot build the redis subscriber");
                return;
            }
        };
        let head = format!("{}seat:{{", self.prefix);
        let hub = self.hub.clone();
        let mut messages = subscriber.message_rx();
        let mut reconnects = self.client.reconnect_rx();
        let mut sub_reconnects = subscriber.reconnect_rx();
        let counter = self.reconnections.clone();
        if let Err(error) = subscriber.init().await {
            tracing::error!(%error, "cannot connect the seat event subscriber");
        }
        if self.subscriber.set(subscriber.clone()).is_err() {
            tracing::error!("the seat event subscriber was started twice");
            let _ = subscriber.quit().await;
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(UNSUBSCRIBE_EVERY);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = sweep.tick() => store.unsubscribe_unwatched().await,
                    m = messages.recv() => match m {
                        Ok(m) => {
                            let channel: &str = &m.channel;
                            let Some(show) = channel
                                .strip_prefix(head.as_str())
                                .and_then(|c| c.strip_suffix("}:ev"))
                            else { continue };
                            if let Some(ev) = SeatEvent::decode(show, &text(&m.value)) {
                                hub.publish(ev);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "seat event subscriber fell behind");
                            counter.send_modify(|c| *c += 1);
                        }
                        Err(_) => break,
                    },
                    r = reconnects.recv() => if r.is_ok() { counter.send_modify(|c| *c += 1) },
                    r = sub_reconnects.recv() => if r.is_ok() {
                        // Subscribe to the shows' channels again, then tell the watchers: a
                        // read they begin after that has every event they will not be sent.
                        let (store, counter) = (store.clone(), counter.clone());
                        tokio::spawn(async move {
                            store.resubscribe().await;
                            counter.send_modify(|c| *c += 1);
                        });
                    },
                }
            }
            let _ = subscriber.quit().await;
        });
    }
}
