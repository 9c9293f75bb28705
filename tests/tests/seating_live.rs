//! Live mode: a theatre whose own system is asked (over `marquee.partner.v1.TheatreConnectorService`)
//! to lock seats before seating holds them, and to confirm and cancel its sales. The theatre
//! here is a real gRPC server on 127.0.0.1 port 0 keeping its own books, with sales of its
//! own; seating runs on both backends.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{TestApp, authed, customer, explicit, reason, rid, seat_states, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    partner::v1::{
        self as partner,
        theatre_connector_service_server::{
            TheatreConnectorService, TheatreConnectorServiceServer,
        },
    },
    seating::v1::{self as pb, seating_service_client::SeatingServiceClient},
};
use tonic::{Code, Request, Response, Status, transport::Channel};

type Client = SeatingServiceClient<Channel>;

const THEATRE_TOKEN: &str = "theatre-secret";

/// The theatre's own books.
#[derive(Default)]
struct Books {
    /// Lock id -> (seats, lapses at, Unix ms).
    locks: HashMap<String, (Vec<String>, i64)>,
    /// Seat -> the booking it is sold to (the theatre's own sales: "BOX-OFFICE").
    sold: HashMap<String, String>,
    /// Lock id -> the booking it was confirmed for.
    confirmed: HashMap<String, String>,
    /// Answers UNAVAILABLE to everything.
    down: bool,
    /// LockSeats calls received.
    lock_calls: usize,
    /// Authorization headers received.
    authorizations: Vec<String>,
}

#[derive(Clone, Default)]
struct Theatre(Arc<Mutex<Books>>);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Theatre {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.lock().expect("books")
    }

    fn enter<T>(&self, r: &Request<T>) -> Result<std::sync::MutexGuard<'_, Books>, Status> {
        let mut b = self.books();
        if let Some(a) = r.metadata().get("authorization") {
            b.authorizations
                .push(a.to_str().unwrap_or_default().to_owned());
        }
        if b.down {
            return Err(Status::unavailable("the theatre's system is down"));
        }
        let now = now_ms();
        b.locks.retain(|_, (_, until)| *until > now);
        Ok(b)
    }

    fn lock(&self, lock_id: &str) -> Option<(Vec<String>, i64)> {
        self.books().locks.get(lock_id).cloned()
    }
}

#[tonic::async_trait]
impl TheatreConnectorService for Theatre {
    async fn lock_seats(
        &self,
        r: Request<partner::LockSeatsRequest>,
    ) -> Result<Response<partner::LockSeatsResponse>, Status> {
        let mut b = self.enter(&r)?;
        let r = r.into_inner();
        b.lock_calls += 1;
        let until = r
            .expires_at
            .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000);
        let mine = |id: &str| id == r.lock_id || id == r.replaces_lock_id;
        let own = b
            .locks
            .get(&r.lock_id)
            .map(|(s, _)| s.clone())
            .unwrap_or_default();
        let unavailable: Vec<String> = r
            .seat_ids
            .iter()
            .filter(|s| {
                b.sold.contains_key(*s)
                    || (!own.contains(s)
                        && b.locks
                            .iter()
                            .any(|(id, (seats, _))| !mine(id) && seats.contains(s)))
            })
            .cloned()
            .collect();
        if !unavailable.is_empty() {
            return Ok(Response::new(partner::LockSeatsResponse {
                locked: false,
                unavailable_seat_ids: unavailable,
            }));
        }
        // The replaced lock stays until it is released.
        b.locks.insert(r.lock_id, (r.seat_ids, until));
        Ok(Response::new(partner::LockSeatsResponse {
            locked: true,
            unavailable_seat_ids: Vec::new(),
        }))
    }

    async fn release_seats(
        &self,
        r: Request<partner::ReleaseSeatsRequest>,
    ) -> Result<Response<partner::ReleaseSeatsResponse>, Status> {
        let mut b = self.enter(&r)?;
        b.locks.remove(&r.into_inner().lock_id);
        Ok(Response::new(partner::ReleaseSeatsResponse {}))
    }

    async fn confirm_seats(
        &self,
        r: Request<partner::ConfirmSeatsRequest>,
    ) -> Result<Response<partner::ConfirmSeatsResponse>, Status> {
        let mut b = self.enter(&r)?;
        let r = r.into_inner();
        let confirmed = if b.confirmed.get(&r.lock_id) == Some(&r.booking_reference) {
            true
        } else if let Some((seats, _)) = b.locks.remove(&r.lock_id) {
            for s in seats {
                b.sold.insert(s, r.booking_reference.clone());
            }
            b.confirmed.insert(r.lock_id, r.booking_reference);
            true
        } else {
            false
        };
        Ok(Response::new(partner::ConfirmSeatsResponse { confirmed }))
    }

    async fn cancel_sale(
        &self,
        r: Request<partner::CancelSaleRequest>,
    ) -> Result<Response<partner::CancelSaleResponse>, Status> {
        let mut b = self.enter(&r)?;
        let booking = r.into_inner().booking_reference;
        let mut seat_ids: Vec<String> = b
            .sold
            .iter()
            .filter(|(_, to)| **to == booking)
            .map(|(s, _)| s.clone())
            .collect();
        seat_ids.sort();
        for s in &seat_ids {
            b.sold.remove(s);
        }
        Ok(Response::new(partner::CancelSaleResponse { seat_ids }))
    }
}

/// Serves the theatre on 127.0.0.1 port 0, over TLS when `tls` is given; its URL.
async fn serve(theatre: Theatre, tls: Option<tonic::transport::ServerTlsConfig>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut server = tonic::transport::Server::builder();
    let scheme = match tls {
        Some(tls) => {
            server = server.tls_config(tls).expect("TLS");
            "https"
        }
        None => "http",
    };
    tokio::spawn(
        server
            .add_service(TheatreConnectorServiceServer::new(theatre))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    format!("{scheme}://{addr}")
}

/// How seating reaches the theatre at `url`, with the theatre's token.
fn connector(url: &str) -> marquee_seating::config::ConnectorConfig {
    marquee_seating::config::ConnectorConfig {
        url: url.to_owned(),
        token: Some(marquee_platform::config::Secret::new(THEATRE_TOKEN.into())),
        ..Default::default()
    }
}

/// Writes `pem` to `name` in `dir`; its path, as a setting takes it.
fn pem_file(dir: &tempfile::TempDir, name: &str, pem: &str) -> Option<String> {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).expect("write");
    Some(path.display().to_string())
}

async fn hold(c: &mut Client, who: &str, req: pb::HoldSeatsRequest) -> Result<pb::Hold, Status> {
    c.hold_seats(authed(who, req))
        .await
        .map(|r| r.into_inner().hold.expect("hold"))
}

fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// Asserts the theatre's lock `id` has `seats` and lapses 30 s after `deadline_ms`.
fn assert_lock(theatre: &Theatre, id: &str, seats: &[&str], deadline_ms: i64) {
    let (mut locked, until) = theatre.lock(id).expect("the theatre holds the lock");
    locked.sort();
    assert_eq!(locked, seats);
    let margin = until - deadline_ms;
    assert!(
        (29_000..=31_000).contains(&margin),
        "the lock lapses {margin} ms after the hold"
    );
}

async fn release(c: &mut Client, who: &str, hold_id: &str) {
    c.release_hold(authed(
        who,
        pb::ReleaseHoldRequest {
            hold_id: hold_id.to_owned(),
        },
    ))
    .await
    .expect("release");
}

/// Waits (up to 2 s) for the theatre's lock `id` to be released: the customer does not wait
/// for the theatre.
async fn assert_released(theatre: &Theatre, id: &str) {
    assert_released_within(theatre, id, Duration::from_secs(2)).await;
}

async fn assert_released_within(theatre: &Theatre, id: &str, within: Duration) {
    let until = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < until {
        if theatre.lock(id).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the theatre still holds the lock {id}");
}

/// The app with the venue's theatre sold live through `theatre`, and a show of it tomorrow.
async fn live(app: TestApp, theatre: &Theatre) -> (TestApp, String) {
    let v = common::venue(&app).await;
    let show = common::show_in(&app, &v, 86_400).await.id;
    let mut app = app;
    app.options.seating.connectors.insert(
        v.theatre.id.clone(),
        connector(&serve(theatre.clone(), None).await),
    );
    (app.restart().await, show)
}

async fn sells_a_live_theatre_through_its_system(app: TestApp) {
    let theatre = Theatre::default();
    let (app, show) = live(app, &theatre).await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let (alice, bob, carol) = (customer("alice"), customer("bob"), customer("carol"));
    // The theatre sold A-1 at its own box office.
    theatre
        .books()
        .sold
        .insert("A-1".into(), "BOX-OFFICE".into());

    // A seat the theatre sold is taken: nothing is held, here or there.
    let refused = hold(&mut c, &alice, explicit(&show, &["A-1", "A-2"]))
        .await
        .expect_err("A-1 is sold at the theatre");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "SEAT_TAKEN");
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-2"],
        pb::SeatState::Available
    );
    assert!(theatre.books().locks.is_empty());

    // A hold is locked at the theatre first, until its deadline (and a margin).
    let first = explicit(&show, &["A-2", "A-3"]);
    let h1 = hold(&mut c, &alice, first.clone()).await.expect("hold");
    assert_lock(&theatre, &h1.hold_id, &["A-2", "A-3"], ms(&h1.expire_time));
    assert!(
        theatre
            .books()
            .authorizations
            .iter()
            .all(|a| *a == format!("Bearer {THEATRE_TOKEN}")),
        "every call carries the theatre's token"
    );

    // Changing seats locks the new selection (the seat both share stays Alice's), then lets
    // the old lock go.
    let second = explicit(&show, &["A-3", "A-4"]);
    let h2 = hold(&mut c, &alice, second.clone()).await.expect("replace");
    assert_released(&theatre, &h1.hold_id).await;
    assert_lock(&theatre, &h2.hold_id, &["A-3", "A-4"], ms(&h2.expire_time));

    // A retry replays without asking the theatre again; so does a retry of the first hold,
    // whose seats are partly Alice's current hold's.
    let calls = theatre.books().lock_calls;
    let again = hold(&mut c, &alice, second).await.expect("replay");
    assert_eq!(again.hold_id, h2.hold_id);
    let older = hold(&mut c, &alice, first).await.expect("replay");
    assert_eq!(older.hold_id, h1.hold_id);
    assert_eq!(theatre.books().lock_calls, calls);
    assert_lock(&theatre, &h2.hold_id, &["A-3", "A-4"], ms(&h2.expire_time));

    // Someone else's seat is taken, here and there.
    let taken = hold(&mut c, &bob, explicit(&show, &["A-4"]))
        .await
        .expect_err("Alice holds A-4");
    assert_eq!(reason(&taken), "SEAT_TAKEN");

    // Best available looks past the seats the theatre sold.
    theatre
        .books()
        .sold
        .insert("B-1".into(), "BOX-OFFICE".into());
    let best = hold(
        &mut c,
        &bob,
        pb::HoldSeatsRequest {
            request_id: rid(),
            show_id: show.clone(),
            selection: Some(pb::hold_seats_request::Selection::BestAvailable(
                pb::BestAvailable {
                    count: 2,
                    category_code: "CLASSIC".into(),
                },
            )),
        },
    )
    .await
    .expect("best available");
    assert_eq!(best.seat_ids.len(), 2);
    assert!(!best.seat_ids.contains(&"B-1".to_owned()), "{best:?}");
    let seats: Vec<&str> = best.seat_ids.iter().map(String::as_str).collect();
    let mut sorted = seats.clone();
    sorted.sort_unstable();
    assert_lock(&theatre, &best.hold_id, &sorted, ms(&best.expire_time));
    release(&mut c, &bob, &best.hold_id).await;
    assert_released(&theatre, &best.hold_id).await;

    // An extension extends the lock.
    let extended = common::extend_hold(&mut c, &alice, &h2.hold_id, 20 * 60)
        .await
        .expect("extend");
    assert!(ms(&extended.expire_time) > ms(&h2.expire_time) + 9 * 60_000);
    assert_lock(
        &theatre,
        &h2.hold_id,
        &["A-3", "A-4"],
        ms(&extended.expire_time),
    );

    // A release releases the lock (soon after: the customer does not wait for the theatre).
    release(&mut c, &alice, &h2.hold_id).await;
    assert_released(&theatre, &h2.hold_id).await;

    // The theatre does not answer: UNAVAILABLE, and nothing is held.
    theatre.books().down = true;
    let down = hold(&mut c, &carol, explicit(&show, &["A-2"]))
        .await
        .expect_err("the theatre is down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-2"],
        pb::SeatState::Available
    );
    theatre.books().down = false;

    // Confirming sells at the theatre, then here.
    let service = token("booking", &[Role::Service]);
    let confirm = |h: &pb::Hold, booking: &str| pb::ConfirmHoldRequest {
        hold_id: h.hold_id.clone(),
        fencing_token: h.fencing_token,
        booking_reference: booking.to_owned(),
    };
    let sale = hold(&mut c, &carol, explicit(&show, &["C-1", "C-2"]))
        .await
        .expect("hold");
    c.confirm_hold(authed(&service, confirm(&sale, "BOOKING-1")))
        .await
        .expect("confirm");
    assert_eq!(
        theatre.books().sold.get("C-1"),
        Some(&"BOOKING-1".to_owned())
    );
    assert_eq!(
        seat_states(app.channel().await, &show).await["C-2"],
        pb::SeatState::Sold
    );

    // A hold whose lock the theatre let go is not sold: it says so, and nothing is sold.
    let lapsed = hold(&mut c, &alice, explicit(&show, &["A-2"]))
        .await
        .expect("hold");
    theatre.books().locks.remove(&lapsed.hold_id);
    let refused = c
        .confirm_hold(authed(&service, confirm(&lapsed, "BOOKING-2")))
        .await
        .expect_err("the theatre let the seat go");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "THEATRE_REFUSED");
    assert_ne!(
        seat_states(app.channel().await, &show).await["A-2"],
        pb::SeatState::Sold
    );
    assert!(!theatre.books().sold.contains_key("A-2"));

    // Cancelling a sale puts the seats back on sale there too.
    let back = c
        .cancel_sale(authed(
            &service,
            pb::CancelSaleRequest {
                show_id: show.clone(),
                booking_reference: "BOOKING-1".into(),
            },
        ))
        .await
        .expect("cancel sale")
        .into_inner();
    assert_eq!(back.seat_ids.len(), 2);
    assert!(!theatre.books().sold.contains_key("C-1"));
    assert_eq!(
        seat_states(app.channel().await, &show).await["C-1"],
        pb::SeatState::Available
    );
    app.stop().await;
}

on_both_backends!(sells_a_live_theatre_through_its_system);

/// Eight customers change their selections at once, each round a random 1-2 of the show's 10
/// seats, or let their hold go: afterwards the theatre holds exactly the locks of the holds held
/// here, with the same seats (a replaced or released hold's lock went with it; a refused hold
/// left no lock behind).
async fn theatre_locks_follow_holds_under_a_race(app: TestApp) {
    use rand::{Rng as _, SeedableRng as _, seq::IndexedRandom as _};
    let theatre = Theatre::default();
    let (app, show) = live(app, &theatre).await;
    let seats = [
        "A-1", "A-2", "A-3", "A-4", "B-1", "B-2", "B-3", "B-4", "C-1", "C-2",
    ];
    let tasks: Vec<_> = (0..8u64)
        .map(|n| {
            let channel = app.channel();
            let show = show.clone();
            async move {
                let mut c = SeatingServiceClient::new(channel.await);
                let who = customer(&format!("racer-{n}"));
                let mut rng = rand::rngs::StdRng::seed_from_u64(n);
                let mut current: Option<pb::Hold> = None;
                let mut changes = 0;
                for _ in 0..15 {
                    if rng.random_ratio(1, 4)
                        && let Some(h) = current.take()
                    {
                        release(&mut c, &who, &h.hold_id).await;
                        continue;
                    }
                    let k = rng.random_range(1..=2);
                    let pick: Vec<&str> = seats.choose_multiple(&mut rng, k).copied().collect();
                    match hold(&mut c, &who, explicit(&show, &pick)).await {
                        Ok(h) => {
                            changes += usize::from(current.is_some());
                            current = Some(h);
                        }
                        Err(s) => assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}"),
                    }
                }
                (current, changes)
            }
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let changes: usize = results.iter().map(|(_, n)| n).sum();
    assert!(changes > 0, "some customers changed their selection");
    let mut expected: Vec<(String, Vec<String>)> = results
        .into_iter()
        .filter_map(|(h, _)| h)
        .map(|h| {
            let mut s = h.seat_ids.clone();
            s.sort();
            (h.hold_id.clone(), s)
        })
        .collect();
    expected.sort();
    let locks = || {
        let mut locks: Vec<(String, Vec<String>)> = theatre
            .books()
            .locks
            .iter()
            .map(|(id, (s, _))| {
                let mut s = s.clone();
                s.sort();
                (id.clone(), s)
            })
            .collect();
        locks.sort();
        locks
    };
    // Releases reach the theatre soon after the customer's call returns.
    for _ in 0..100 {
        if locks() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(locks(), expected);
    app.stop().await;
}

on_both_backends!(theatre_locks_follow_holds_under_a_race);

/// While the theatre's system does not answer: a hold is UNAVAILABLE and holds nothing; a
/// release still frees the seats here, and reaches the theatre once it answers again (asked
/// again and again); a confirmation is
/// UNAVAILABLE and sells nothing; a cancelled sale is UNAVAILABLE (its seats are on sale here
/// already, and the theatre's refusal keeps them from being held). Retried later, both go
/// through.
async fn a_theatre_that_does_not_answer(app: TestApp) {
    let theatre = Theatre::default();
    let (app, show) = live(app, &theatre).await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let (alice, bob) = (customer("alice"), customer("bob"));
    let service = token("booking", &[Role::Service]);
    let confirm = |h: &pb::Hold| pb::ConfirmHoldRequest {
        hold_id: h.hold_id.clone(),
        fencing_token: h.fencing_token,
        booking_reference: "BOOKING-7".into(),
    };
    let cancel = || pb::CancelSaleRequest {
        show_id: show.clone(),
        booking_reference: "BOOKING-7".into(),
    };
    let a = hold(&mut c, &alice, explicit(&show, &["A-1", "A-2"]))
        .await
        .expect("hold");
    let b = hold(&mut c, &bob, explicit(&show, &["B-1"]))
        .await
        .expect("hold");

    theatre.books().down = true;
    let refused = hold(&mut c, &bob, explicit(&show, &["B-2"]))
        .await
        .expect_err("down");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let map = seat_states(app.channel().await, &show).await;
    assert_eq!(map["B-2"], pb::SeatState::Available);
    assert_eq!(map["B-1"], pb::SeatState::Held, "Bob's hold is as it was");

    release(&mut c, &bob, &b.hold_id).await;
    assert_eq!(
        seat_states(app.channel().await, &show).await["B-1"],
        pb::SeatState::Available
    );

    let down = c
        .confirm_hold(authed(&service, confirm(&a)))
        .await
        .expect_err("down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Held
    );

    assert!(
        theatre.lock(&b.hold_id).is_some(),
        "the release did not reach the theatre"
    );
    theatre.books().down = false;
    // The release is asked again until the theatre answers (tries 0.5, 1, 2, ... s apart).
    assert_released_within(&theatre, &b.hold_id, Duration::from_secs(5)).await;
    c.confirm_hold(authed(&service, confirm(&a)))
        .await
        .expect("the retry confirms");
    assert_eq!(
        theatre.books().sold.get("A-1"),
        Some(&"BOOKING-7".to_owned())
    );
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Sold
    );

    theatre.books().down = true;
    let down = c
        .cancel_sale(authed(&service, cancel()))
        .await
        .expect_err("down");
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert!(theatre.books().sold.contains_key("A-1"));
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Available
    );
    theatre.books().down = false;
    let taken = hold(&mut c, &bob, explicit(&show, &["A-1"]))
        .await
        .expect_err("still sold at the theatre");
    assert_eq!(reason(&taken), "SEAT_TAKEN");
    c.cancel_sale(authed(&service, cancel()))
        .await
        .expect("the retry cancels");
    assert!(
        !theatre.books().sold.contains_key("A-1"),
        "on sale at the theatre again"
    );
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Available
    );
    app.stop().await;
}

on_both_backends!(a_theatre_that_does_not_answer);

/// A hold nobody releases expires here, and the instance that expired it releases its lock at
/// the theatre at once, not 30 s later when the lock would lapse: another customer can hold
/// the seats there as soon as they are free here.
async fn an_expired_hold_releases_its_lock(app: TestApp) {
    let theatre = Theatre::default();
    let mut app = app;
    app.options.seating.hold_ttl_ms = 1_000;
    let (app, show) = live(app, &theatre).await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let (alice, bob) = (customer("alice"), customer("bob"));
    let h = hold(&mut c, &alice, explicit(&show, &["A-1", "A-2"]))
        .await
        .expect("hold");
    let deadline = ms(&h.expire_time);
    assert_lock(&theatre, &h.hold_id, &["A-1", "A-2"], deadline);
    let started = tokio::time::Instant::now();
    while theatre.lock(&h.hold_id).is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the theatre still holds the lock of a hold that expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = now_ms() - deadline;
    assert!(
        late < 5_000,
        "the lock was released {late} ms after the hold's deadline"
    );
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Available
    );
    let next = hold(&mut c, &bob, explicit(&show, &["A-1"]))
        .await
        .expect("the seat is free at the theatre too");
    assert_lock(&theatre, &next.hold_id, &["A-1"], ms(&next.expire_time));
    app.stop().await;
}

on_both_backends!(an_expired_hold_releases_its_lock);

/// One customer's HoldSeats calls on one show at once (a double click, two tabs): each one made
/// here replaces the one before it, and the theatre is left with the lock of the last one only
/// (a call releases the lock of the hold the store replaced, which may be one a concurrent call
/// made after this call looked up the customer's hold).
async fn one_customers_holds_at_once_leave_one_lock(app: TestApp) {
    let theatre = Theatre::default();
    let (app, show) = live(app, &theatre).await;
    let alice = customer("alice");
    let channel = app.channel().await;
    for _round in 0..5 {
        let calls = ["A-1", "A-2", "A-3", "A-4", "B-1", "B-2"].map(|seat| {
            let mut c = SeatingServiceClient::new(channel.clone());
            let (alice, show) = (alice.clone(), show.clone());
            async move { hold(&mut c, &alice, explicit(&show, &[seat])).await }
        });
        let held: Vec<pb::Hold> = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Ok(h) => Some(h),
                // The seat of the last round's hold, whose lock is on its way out.
                Err(s) => {
                    assert_eq!(reason(&s), "SEAT_TAKEN", "{s:?}");
                    None
                }
            })
            .collect();
        assert!(held.len() >= 5, "{held:?}");
        let last = held.iter().max_by_key(|h| h.fencing_token).expect("a hold");
        let expected = vec![(last.hold_id.clone(), last.seat_ids.clone())];
        let locks = || -> Vec<(String, Vec<String>)> {
            theatre
                .books()
                .locks
                .iter()
                .map(|(id, (s, _))| (id.clone(), s.clone()))
                .collect()
        };
        for _ in 0..100 {
            if locks() == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            locks(),
            expected,
            "the theatre keeps only the last hold's lock"
        );
    }
    app.stop().await;
}

on_both_backends!(one_customers_holds_at_once_leave_one_lock);

/// A certificate authority of the theatre's own, and a certificate for `name` signed by it:
/// (the authority's PEM, the certificate's PEM, its key's PEM).
fn certificate_for(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("certificate");
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// A certificate authority and a server certificate for 127.0.0.1 signed by it: (the
/// authority's PEM, the server's identity).
fn certificates() -> (String, tonic::transport::Identity) {
    let (ca, cert, key) = certificate_for("127.0.0.1");
    (ca, tonic::transport::Identity::from_pem(cert, key))
}

/// A theatre's system on 127.0.0.1 over TLS, with its own certificate authority: seating
/// verifies the theatre's certificate against the one configured, and the token travels inside
/// the encrypted connection. Configured with another authority, seating does not trust the
/// theatre: UNAVAILABLE, and nothing is held.
async fn a_theatre_over_tls(app: TestApp) {
    let theatre = Theatre::default();
    let (ca_pem, identity) = certificates();
    let (other_ca_pem, _) = certificates();
    let tls = tonic::transport::ServerTlsConfig::new().identity(identity);
    let url = serve(theatre.clone(), Some(tls)).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = pem_file(&dir, "ca.pem", &ca_pem);
    let other_ca_file = pem_file(&dir, "other.pem", &other_ca_pem);
    let v = common::venue(&app).await;
    let show = common::show_in(&app, &v, 86_400).await.id;
    let connect = |app: &mut TestApp, ca: &Option<String>| {
        app.options.seating.connectors.insert(
            v.theatre.id.clone(),
            marquee_seating::config::ConnectorConfig {
                ca_file: ca.clone(),
                ..connector(&url)
            },
        );
    };
    let mut app = app;
    connect(&mut app, &ca_file);
    let mut app = app.restart().await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let alice = customer("alice");
    let h = hold(&mut c, &alice, explicit(&show, &["A-1", "A-2"]))
        .await
        .expect("held through the theatre's TLS endpoint");
    assert_lock(&theatre, &h.hold_id, &["A-1", "A-2"], ms(&h.expire_time));
    assert_eq!(
        theatre.books().authorizations,
        vec![format!("Bearer {THEATRE_TOKEN}")]
    );
    release(&mut c, &alice, &h.hold_id).await;
    assert_released(&theatre, &h.hold_id).await;

    connect(&mut app, &other_ca_file);
    let app = app.restart().await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let refused = hold(&mut c, &alice, explicit(&show, &["A-1"]))
        .await
        .expect_err("the theatre's certificate is not trusted");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Available
    );
    assert_eq!(theatre.books().lock_calls, 1, "no call reached the theatre");
    app.stop().await;
}

on_both_backends!(a_theatre_over_tls);

/// A theatre whose system asks its callers for a certificate signed by its own authority
/// (mutual TLS): seating presents the one configured (`cert_file`, `key_file`) and holds; without
/// it the theatre does not let seating in: UNAVAILABLE, nothing held, no call reaches it.
async fn a_theatre_that_asks_for_our_certificate(app: TestApp) {
    let theatre = Theatre::default();
    let (ca_pem, identity) = certificates();
    let (client_ca_pem, client_cert, client_key) = certificate_for("marquee-seating");
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(tonic::transport::Certificate::from_pem(client_ca_pem));
    let url = serve(theatre.clone(), Some(tls)).await;
    let dir = tempfile::tempdir().expect("dir");
    let (ca_file, cert_file, key_file) = (
        pem_file(&dir, "ca.pem", &ca_pem),
        pem_file(&dir, "cert.pem", &client_cert),
        pem_file(&dir, "key.pem", &client_key),
    );
    let v = common::venue(&app).await;
    let show = common::show_in(&app, &v, 86_400).await.id;
    let connect = |app: &mut TestApp, ours: bool| {
        app.options.seating.connectors.insert(
            v.theatre.id.clone(),
            marquee_seating::config::ConnectorConfig {
                ca_file: ca_file.clone(),
                cert_file: cert_file.clone().filter(|_| ours),
                key_file: key_file.clone().filter(|_| ours),
                ..connector(&url)
            },
        );
    };
    let mut app = app;
    connect(&mut app, false);
    let mut app = app.restart().await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let alice = customer("alice");
    let refused = hold(&mut c, &alice, explicit(&show, &["A-1"]))
        .await
        .expect_err("no client certificate");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(theatre.books().lock_calls, 0, "no call reached the theatre");
    assert_eq!(
        seat_states(app.channel().await, &show).await["A-1"],
        pb::SeatState::Available
    );

    connect(&mut app, true);
    let app = app.restart().await;
    let mut c = SeatingServiceClient::new(app.channel().await);
    let h = hold(&mut c, &alice, explicit(&show, &["A-1"]))
        .await
        .expect("held with our certificate");
    assert_lock(&theatre, &h.hold_id, &["A-1"], ms(&h.expire_time));
    app.stop().await;
}

on_both_backends!(a_theatre_that_asks_for_our_certificate);
