//! The hold store contract, written once and run against both stores: the in-process store and
//! Redis (a fresh key prefix per test).

mod common;

use std::time::Duration;

use marquee_platform::CancellationToken;
use marquee_seating::{
    domain::{Cursor, EventKind, Step, bit, hold_id},
    store::{
        Claim, ExpiredHold, HoldOutcome, HoldStore, NewHold, Refusal, memory::MemoryHoldStore,
        redis::RedisHoldStore,
    },
};

fn new_hold(show: &str, user: &str, seats: &[u32], rid: &str, ttl_ms: u64) -> NewHold {
    NewHold {
        show_id: show.to_owned(),
        hold_id: hold_id(show),
        user: user.to_owned(),
        seats: seats.to_vec(),
        ttl_ms,
        max_lifetime_ms: ttl_ms * 3,
        request_id: Some(rid.to_owned()),
        fingerprint: format!("{seats:?}"),
    }
}

async fn held(store: &HoldStore, h: &NewHold) -> marquee_seating::domain::Hold {
    match store.hold(h).await.expect("store") {
        HoldOutcome::Held { hold, .. } => hold,
        other => panic!("expected a hold, got {other:?}"),
    }
}

/// The contract.
async fn contract(store: HoldStore) {
    let stop = CancellationToken::new();
    let (expired_tx, mut expired) = tokio::sync::mpsc::unbounded_channel();
    store
        .start(Duration::from_millis(50), stop.clone(), move |holds| {
            let _ = expired_tx.send(holds);
        })
        .await;
    let show = format!("show-{}", uuid::Uuid::new_v4().simple());
    let mut events = store.subscribe(&show).await.expect("subscribe");
    const TTL: u64 = 60_000;

    // Nothing is held before the show's sold seats are loaded.
    assert_eq!(
        store
            .hold(&new_hold(&show, "a", &[1], "r0", TTL))
            .await
            .expect("store"),
        HoldOutcome::NotLoaded
    );
    assert!(
        store
            .seat_states(&show, None)
            .await
            .expect("store")
            .is_none()
    );
    store.load_sold(&show, &[5]).await.expect("load");
    // Every change from here on gets the next version of the show.
    let loaded = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded")
        .version;

    // All or nothing.
    let a1 = match store
        .hold(&new_hold(&show, "a", &[1, 2], "r1", TTL))
        .await
        .expect("store")
    {
        HoldOutcome::Held { hold, replaced } => {
            assert_eq!(replaced, None, "a first hold replaces nothing");
            hold
        }
        other => panic!("expected a hold, got {other:?}"),
    };
    assert_eq!(a1.seats, vec![1, 2]);
    assert!(a1.expires_ms > a1.created_ms && a1.max_expires_ms >= a1.expires_ms);
    assert_eq!(
        store
            .hold(&new_hold(&show, "b", &[2, 3], "r2", TTL))
            .await
            .expect("store"),
        HoldOutcome::Taken(vec![2])
    );
    assert_eq!(
        store
            .hold(&new_hold(&show, "b", &[5], "r3", TTL))
            .await
            .expect("store"),
        HoldOutcome::Taken(vec![5])
    );
    let states = store
        .seat_states(&show, Some("b"))
        .await
        .expect("store")
        .expect("loaded");
    assert!(bit(&states.held, 1) && bit(&states.held, 2) && !bit(&states.held, 3));
    assert!(bit(&states.sold, 5) && states.mine.is_none());

    // Idempotency under the request id.
    let mut again = new_hold(&show, "a", &[1, 2], "r1", TTL);
    match store.hold(&again).await.expect("store") {
        HoldOutcome::Replayed(h) => assert_eq!(h.id, a1.id),
        other => panic!("expected a replay, got {other:?}"),
    }
    again.fingerprint = "other".into();
    assert_eq!(
        store.hold(&again).await.expect("store"),
        HoldOutcome::Mismatch
    );

    // A new hold of the same user replaces the old one atomically, and says which; tokens
    // increase.
    let a2 = match store
        .hold(&new_hold(&show, "a", &[2, 3], "r4", TTL))
        .await
        .expect("store")
    {
        HoldOutcome::Held { hold, replaced } => {
            assert_eq!(replaced, Some(a1.id.clone()));
            hold
        }
        other => panic!("expected a hold, got {other:?}"),
    };
    assert!(a2.token > a1.token);
    assert!(store.get(&show, &a1.id).await.expect("store").is_none());
    let states = store
        .seat_states(&show, Some("a"))
        .await
        .expect("store")
        .expect("loaded");
    assert!(!bit(&states.held, 1) && bit(&states.held, 2) && bit(&states.held, 3));
    assert_eq!(
        states.mine.as_ref().map(|h| h.id.clone()),
        Some(a2.id.clone())
    );
    // The user's hold alone (what a resyncing watcher reads besides the shared map).
    assert_eq!(
        store
            .hold_of(&show, "a")
            .await
            .expect("store")
            .map(|h| h.id),
        Some(a2.id.clone())
    );
    assert_eq!(store.hold_of(&show, "zed").await.expect("store"), None);
    // Every hold of the show with its deadline (what WatchHold streams check their holds by).
    let deadlines = store.deadlines(&show).await.expect("store");
    assert_eq!(deadlines.get(&a2.id), Some(&a2.expires_ms));
    assert!(!deadlines.contains_key(&a1.id));

    // Only the holder can extend or release.
    assert_eq!(
        store.extend(&show, &a2.id, "b", TTL).await.expect("store"),
        Err(Refusal::NotFound)
    );
    assert_eq!(
        store.release(&show, &a2.id, "b").await.expect("store"),
        Err(Refusal::NotFound)
    );
    let ext = store
        .extend(&show, &a2.id, "a", TTL * 2)
        .await
        .expect("store")
        .expect("extended");
    assert!(ext.expires_ms > a2.expires_ms && ext.expires_ms <= ext.max_expires_ms);
    let capped = store
        .extend(&show, &a2.id, "a", TTL * 100)
        .await
        .expect("store")
        .expect("extended");
    assert_eq!(capped.expires_ms, capped.max_expires_ms);

    // Confirmation: the token must match.
    assert_eq!(
        store
            .check_confirm(&show, &a2.id, a1.token)
            .await
            .expect("store"),
        Err(Refusal::StaleToken)
    );
    assert_eq!(
        store
            .check_confirm(&show, "nope", a2.token)
            .await
            .expect("store"),
        Err(Refusal::NotFound)
    );
    let ok = store
        .check_confirm(&show, &a2.id, a2.token)
        .await
        .expect("store")
        .expect("ok");
    assert_eq!(ok.seats, vec![2, 3]);
    store
        .finalize(&show, &a2.id, &ok.seats)
        .await
        .expect("finalize");
    let states = store
        .seat_states(&show, Some("a"))
        .await
        .expect("store")
        .expect("loaded");
    assert!(bit(&states.sold, 2) && bit(&states.sold, 3) && !bit(&states.held, 2));
    assert!(states.mine.is_none());
    assert!(store.get(&show, &a2.id).await.expect("store").is_none());
    assert_eq!(store.hold_of(&show, "a").await.expect("store"), None);
    assert!(
        !store
            .deadlines(&show)
            .await
            .expect("store")
            .contains_key(&a2.id)
    );

    // Release.
    let b1 = held(&store, &new_hold(&show, "b", &[7], "r5", TTL)).await;
    let released = store
        .release(&show, &b1.id, "b")
        .await
        .expect("store")
        .expect("released");
    assert_eq!(released.seats, vec![7]);
    let states = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded");
    assert!(!bit(&states.held, 7));

    // Expiry: by the sweeper, even when nobody calls.
    let short = held(&store, &new_hold(&show, "c", &[8, 9], "r6", 300)).await;

    // Every change was announced, in order, each with the next version.
    let mut seen = Vec::new();
    let mut versions = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|(k, id): &(EventKind, String)| *k == EventKind::Expired && *id == short.id)
    {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events keep coming")
            .expect("event");
        seen.push((ev.kind, ev.hold_id.clone()));
        versions.push(ev.version);
    }
    let expected: Vec<u64> = (1..=versions.len() as u64).map(|i| loaded + i).collect();
    assert_eq!(versions, expected);
    let kinds: Vec<EventKind> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Held,     // a1
            EventKind::Replaced, // a1 by a2
            EventKind::Held,     // a2
            EventKind::Extended,
            EventKind::Extended,
            EventKind::Sold,
            EventKind::Held, // b1
            EventKind::Released,
            EventKind::Held, // short
            EventKind::Expired,
        ]
    );
    let states = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded");
    assert!(!bit(&states.held, 8) && !bit(&states.held, 9));
    assert_eq!(Some(&states.version), versions.last());
    assert!(store.get(&show, &short.id).await.expect("store").is_none());
    // The sweeper reported it (and only it) to the service, which releases live theatres' locks.
    let reported = tokio::time::timeout(Duration::from_secs(5), expired.recv())
        .await
        .expect("the sweeper reports what it expired")
        .expect("reported");
    assert_eq!(
        reported,
        vec![ExpiredHold {
            show_id: show.clone(),
            hold_id: short.id.clone(),
        }]
    );

    // The expired hold's request record was swept with it: its request id is new again.
    let mut reused = new_hold(&show, "c", &[8], "r6", TTL);
    reused.fingerprint = "another selection".into();
    let c2 = held(&store, &reused).await;
    assert_ne!(c2.id, short.id);
    // A record lives its full time even when its hold is gone sooner.
    let released = store
        .release(&show, &c2.id, "c")
        .await
        .expect("store")
        .expect("released");
    assert_eq!(released.id, c2.id);
    match store.hold(&reused).await.expect("store") {
        HoldOutcome::Replayed(h) => assert_eq!(h.id, c2.id),
        other => panic!("expected a replay after release, got {other:?}"),
    }

    // Once nobody watches, the show is forgotten; a new watcher hears its events again. Events
    // published before its snapshot (the hold and release of c2 above) may still reach it: their
    // versions are at or below the snapshot's, so its cursor skips them.
    drop(events);
    store.forget_unwatched().await;
    let mut again = store.subscribe(&show).await.expect("subscribe again");
    let snapshot = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded")
        .version;
    assert_eq!(snapshot, versions.last().expect("versions") + 2);
    let mut cursor = Cursor::at(snapshot);
    let d1 = held(&store, &new_hold(&show, "d", &[10], "r7", TTL)).await;
    let ev = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), again.recv())
            .await
            .expect("an event after subscribing again")
            .expect("event");
        match cursor.step(ev.version) {
            Step::Skip => assert!(ev.version <= snapshot),
            Step::Apply => break ev,
            Step::Resync => panic!("a gap after {snapshot}: {ev:?}"),
        }
    };
    assert_eq!(
        (ev.kind, ev.hold_id.clone(), ev.version),
        (EventKind::Held, d1.id, snapshot + 1)
    );
    stop.cancel();
}

/// A Redis store subscribes to a show's channel only while it has watchers of the show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_subscribes_only_to_watched_shows() {
    let Some(url) = common::redis_url("redis_store_subscribes_only_to_watched_shows") else {
        return;
    };
    use fred::prelude::ClientLike as _;
    let (client, prefix, store) = redis_store(&url).await;
    let stop = CancellationToken::new();
    store
        .start(Duration::from_millis(50), stop.clone(), |_| {})
        .await;
    let show = format!("show-{}", uuid::Uuid::new_v4().simple());
    let channel = format!("{prefix}seat:{{{show}}}:ev");
    let subscribers = || async {
        let v: Vec<fred::types::Value> = client
            .custom(
                fred::cmd!("PUBSUB"),
                vec!["NUMSUB".to_owned(), channel.clone()],
            )
            .await
            .expect("PUBSUB NUMSUB");
        v.get(1).and_then(|n| n.as_i64()).expect("count")
    };
    assert_eq!(subscribers().await, 0, "nobody watches yet");
    let first = store.subscribe(&show).await.expect("subscribe");
    let second = store.subscribe(&show).await.expect("subscribe");
    assert_eq!(subscribers().await, 1, "one subscription per instance");
    drop(first);
    store.forget_unwatched().await;
    assert_eq!(subscribers().await, 1, "a watcher is left");
    drop(second);
    store.forget_unwatched().await;
    assert_eq!(subscribers().await, 0, "nobody watches any more");
    stop.cancel();
    common::delete_redis_prefix(&client, &prefix)
        .await
        .expect("clean up");
}

/// A Redis hold store under a fresh key prefix, with its client and the prefix.
/// Many holders change the same seats at once while a watcher listens: the events carry
/// consecutive versions in the order of the changes, so replaying them on the snapshot gives the
/// store's own state (the live seat map never settles on a wrong seat).
async fn events_replay_to_the_store_state(store: HoldStore) {
    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
    let show = format!("show-{}", uuid::Uuid::new_v4().simple());
    store.load_sold(&show, &[]).await.expect("load");
    let mut events = store.subscribe(&show).await.expect("subscribe");
    let snapshot = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded");
    // At most 8 x 10 x 3 events: fewer than a watcher may fall behind by (the hub's room).
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let (store, show) = (store.clone(), show.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(t);
                let user = format!("u{t}");
                for round in 0..10 {
                    let n = rng.random_range(1..=3);
                    let seats: Vec<u32> = (0..n).map(|_| rng.random_range(0..12)).collect();
                    let mut seats = seats;
                    seats.sort_unstable();
                    seats.dedup();
                    let new = new_hold(&show, &user, &seats, &format!("r{round}"), 60_000);
                    if let HoldOutcome::Held { hold: h, .. } =
                        store.hold(&new).await.expect("store")
                        && rng.random_bool(0.5)
                    {
                        let _ = store.release(&show, &h.id, &user).await.expect("store");
                    }
                }
            })
        })
        .collect();
    // The watcher keeps up while they run (as a stream's task does), and stops at the version
    // the store has once they are done.
    let done = {
        let (store, show) = (store.clone(), show.clone());
        tokio::spawn(async move {
            for t in tasks {
                t.await.expect("task");
            }
            store
                .seat_states(&show, None)
                .await
                .expect("store")
                .expect("loaded")
        })
    };
    tokio::pin!(done);
    let mut last = None;
    let mut cursor = Cursor::at(snapshot.version);
    let mut held = snapshot.held.clone();
    while last
        .as_ref()
        .is_none_or(|l: &marquee_seating::domain::SeatStates| cursor.version() < l.version)
    {
        let ev = tokio::select! {
            l = &mut done, if last.is_none() => {
                last = Some(l.expect("workers"));
                continue;
            }
            ev = tokio::time::timeout(Duration::from_secs(10), events.recv()) => ev
                .expect("every event arrives")
                .expect("no event was dropped"),
        };
        assert_eq!(cursor.step(ev.version), Step::Apply, "{ev:?}");
        let on = match ev.kind {
            EventKind::Held => true,
            EventKind::Released | EventKind::Replaced | EventKind::Expired => false,
            other => panic!("unexpected {other:?}"),
        };
        for s in &ev.seats {
            marquee_seating::domain::set_bit(&mut held, *s, on);
        }
    }
    let last = last.expect("done");
    assert!(last.version > snapshot.version, "something was held");
    for i in 0..12 {
        assert_eq!(bit(&held, i), bit(&last.held, i), "seat {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_events_replay_to_the_store_state() {
    events_replay_to_the_store_state(HoldStore::Memory(MemoryHoldStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_events_replay_to_the_store_state() {
    let Some(url) = common::redis_url("redis_events_replay_to_the_store_state") else {
        return;
    };
    let (_client, _prefix, store) = redis_store(&url).await;
    let stop = CancellationToken::new();
    store
        .start(Duration::from_millis(50), stop.clone(), |_| {})
        .await;
    events_replay_to_the_store_state(store).await;
    stop.cancel();
}

/// The contract of the per-user count of shows with a hold (the cap on active holds).
async fn claims_contract(store: &HoldStore, user: &str) {
    const KEEP: u64 = 60_000;
    let granted = |c: Claim| match c {
        Claim::Granted { claimed, new } => (claimed, new),
        other => panic!("expected a claim, got {other:?}"),
    };
    let claim = |show: &'static str, cap: u32, keep: u64| {
        let store = store.clone();
        let user = user.to_owned();
        async move { store.claim(&user, show, cap, keep).await.expect("store") }
    };
    let (a1, new) = granted(claim("show-a", 2, KEEP).await);
    assert!(new);
    let (b1, new) = granted(claim("show-b", 2, KEEP).await);
    assert!(new);
    // The same show again counts once, under a later claim.
    let (a2, new) = granted(claim("show-a", 2, KEEP).await);
    assert!(!new);
    assert!(a2 > a1, "{a2} after {a1}");
    // One show more: full, naming every show counted with its latest claim.
    match claim("show-c", 2, KEEP).await {
        Claim::Full(mut counted) => {
            counted.sort();
            assert_eq!(
                counted,
                vec![("show-a".to_owned(), a2), ("show-b".to_owned(), b1)]
            );
        }
        other => panic!("expected full, got {other:?}"),
    }
    // Other users are counted apart.
    let other = format!("{user}-other");
    granted(store.claim(&other, "show-c", 2, KEEP).await.expect("store"));
    // Only the claim seen is let go, and only once it is old enough.
    let unclaim = |claimed: i64, min_age: u64| {
        let store = store.clone();
        let user = user.to_owned();
        async move {
            store
                .unclaim(&user, "show-a", claimed, min_age)
                .await
                .expect("store")
        }
    };
    assert!(!unclaim(a1, 0).await, "a later claim stays");
    assert!(!unclaim(a2, 60_000).await, "a young claim stays");
    assert!(unclaim(a2, 0).await);
    assert!(!unclaim(a2, 0).await, "gone");
    let (_, new) = granted(claim("show-c", 2, KEEP).await);
    assert!(new);
    // Claims older than `keep` no longer count.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (_, new) = granted(claim("show-d", 2, 50).await);
    assert!(new);
    granted(claim("show-e", 2, 50).await);
    assert!(matches!(claim("show-f", 2, 50).await, Claim::Full(c) if c.len() == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_the_claims_contract() {
    claims_contract(&HoldStore::Memory(MemoryHoldStore::new()), "u").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_the_claims_contract() {
    let Some(url) = common::redis_url("redis_store_keeps_the_claims_contract") else {
        return;
    };
    use fred::prelude::KeysInterface as _;
    let (client, prefix, store) = redis_store(&url).await;
    claims_contract(&store, "u").await;
    // The user's key, under the user's own hash tag, lives no longer than its newest claim
    // counts.
    store.claim("v", "show-a", 2, 60_000).await.expect("store");
    let key = format!("{prefix}seat:user:{{v}}:shows");
    let ttl: i64 = client.pttl(&key).await.expect("PTTL");
    assert!(ttl > 0 && ttl <= 60_000, "{key}: {ttl} ms");
    common::delete_redis_prefix(&client, &prefix)
        .await
        .expect("clean up");
}

async fn redis_store(url: &str) -> (marquee_platform::redis::Client, String, HoldStore) {
    let client = marquee_platform::redis::connect(url).await.expect("redis");
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let store = RedisHoldStore::new(client.clone(), &prefix)
        .await
        .expect("scripts");
    (client, prefix, HoldStore::Redis(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_the_contract() {
    contract(HoldStore::Memory(MemoryHoldStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_the_contract() {
    let Some(url) = common::redis_url("redis_store_keeps_the_contract") else {
        return;
    };
    use fred::prelude::{ClientLike as _, KeysInterface as _};
    let (client, prefix, store) = redis_store(&url).await;
    contract(store).await;
    // No key of a show was given a Redis TTL: the sweeper forgets records in bounded batches, so Redis's
    // own active expiry never has a crowd of keys to stop for.
    let keys: Vec<String> = client
        .custom(fred::cmd!("KEYS"), vec![format!("{prefix}*")])
        .await
        .expect("KEYS");
    assert!(
        keys.iter().any(|k| k.ends_with(":rid")),
        "records kept: {keys:?}"
    );
    for key in keys {
        let ttl: i64 = client.pttl(&key).await.expect("PTTL");
        assert_eq!(ttl, -1, "{key} has a TTL");
    }
    common::delete_redis_prefix(&client, &prefix)
        .await
        .expect("clean up");
}

/// One sweep works off a backlog larger than one run of the expire script (500 holds and as
/// many request records), and leaves neither holds nor records behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sweep_works_off_a_backlog() {
    let Some(url) = common::redis_url("redis_sweep_works_off_a_backlog") else {
        return;
    };
    use fred::prelude::SortedSetsInterface as _;
    let (client, prefix, store) = redis_store(&url).await;
    let show = format!("show-{}", uuid::Uuid::new_v4().simple());
    store.load_sold(&show, &[]).await.expect("load");
    const N: u32 = 1_200;
    let mut holds = Vec::new();
    for i in 0..N {
        holds.push(
            held(
                &store,
                &new_hold(&show, &format!("u{i}"), &[i], &format!("r{i}"), 200),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut expired: Vec<String> = store
        .sweep()
        .await
        .expect("sweep")
        .into_iter()
        .map(|e| e.hold_id)
        .collect();
    expired.sort();
    let mut all: Vec<String> = holds.into_iter().map(|h| h.id).collect();
    all.sort();
    assert_eq!(
        expired, all,
        "one sweep expires (and reports) every hold due"
    );
    for key in ["exp", "ridx"] {
        let n: i64 = client
            .zcard(format!("{prefix}seat:{{{show}}}:{key}"))
            .await
            .expect("ZCARD");
        assert_eq!(n, 0, "{key} left after one sweep");
    }
    let states = store
        .seat_states(&show, None)
        .await
        .expect("store")
        .expect("loaded");
    assert!((0..N).all(|i| !bit(&states.held, i)));
    common::delete_redis_prefix(&client, &prefix)
        .await
        .expect("clean up");
}

/// After Redis forgets its scripts (SCRIPT FLUSH, a restart), the store loads them again and the
/// call goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_reloads_flushed_scripts() {
    let Some(url) = common::redis_url("redis_store_reloads_flushed_scripts") else {
        return;
    };
    use fred::prelude::ClientLike as _;
    let (client, prefix, store) = redis_store(&url).await;
    let show = format!("show-{}", uuid::Uuid::new_v4().simple());
    store.load_sold(&show, &[]).await.expect("load");
    let _: () = client
        .custom(fred::cmd!("SCRIPT"), vec!["FLUSH"])
        .await
        .expect("SCRIPT FLUSH");
    let h = held(&store, &new_hold(&show, "a", &[1], "r1", 60_000)).await;
    let _: () = client
        .custom(fred::cmd!("SCRIPT"), vec!["FLUSH"])
        .await
        .expect("SCRIPT FLUSH");
    let released = store
        .release(&show, &h.id, "a")
        .await
        .expect("store")
        .expect("released");
    assert_eq!(released.id, h.id);
    common::delete_redis_prefix(&client, &prefix)
        .await
        .expect("clean up");
}
