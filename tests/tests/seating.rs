//! Seating end to end: real servers, generated clients, SQLite + in-process holds and
//! PostgreSQL + Redis.

mod common;

use std::time::Duration;

// A show of a venue `offset_secs` from now (negative: in the past).
use common::{Backend, TestApp, authed, customer, explicit, rid, show_in as show, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    catalog::v1 as cat,
    seating::v1::{
        self as pb, seating_admin_service_client::SeatingAdminServiceClient,
        seating_service_client::SeatingServiceClient,
    },
};
use tokio_stream::StreamExt as _;
use tonic::{Code, transport::Channel};

type Client = SeatingServiceClient<Channel>;

async fn client(app: &TestApp) -> Client {
    SeatingServiceClient::new(app.channel().await)
}

async fn hold(
    c: &mut Client,
    who: &str,
    show_id: &str,
    seats: &[&str],
) -> Result<pb::Hold, tonic::Status> {
    c.hold_seats(authed(who, explicit(show_id, seats)))
        .await
        .map(|r| r.into_inner().hold.expect("hold"))
}

/// The seat map of a show, for a viewer (or nobody signed in).
async fn full_map(c: &mut Client, who: Option<&str>, show_id: &str) -> pb::SeatMap {
    let req = pb::GetSeatMapRequest {
        show_id: show_id.to_owned(),
    };
    let resp = match who {
        Some(t) => c.get_seat_map(authed(t, req)).await,
        None => c.get_seat_map(req).await,
    };
    resp.expect("seat map").into_inner().seat_map.expect("map")
}

async fn seat_map(
    c: &mut Client,
    who: Option<&str>,
    show_id: &str,
) -> Vec<(String, pb::SeatState)> {
    full_map(c, who, show_id)
        .await
        .seats
        .into_iter()
        .map(|s| (s.seat_id.clone(), s.state()))
        .collect()
}

fn state_of(map: &[(String, pb::SeatState)], seat: &str) -> pb::SeatState {
    map.iter()
        .find(|(s, _)| s == seat)
        .map(|(_, st)| *st)
        .expect("seat")
}

async fn confirm(
    c: &mut Client,
    h: &pb::Hold,
    token_value: i64,
    booking: &str,
) -> Result<pb::ConfirmHoldResponse, tonic::Status> {
    c.confirm_hold(authed(
        &token("booking", &[Role::Service]),
        pb::ConfirmHoldRequest {
            hold_id: h.hold_id.clone(),
            fencing_token: token_value,
            booking_reference: booking.to_owned(),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

async fn holds_seat_maps_and_confirms(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let (alice, bob) = (customer("alice"), customer("bob"));

    let map = seat_map(&mut c, None, &s.id).await;
    assert_eq!(map.len(), 10);
    assert!(map.iter().all(|(_, st)| *st == pb::SeatState::Available));

    let a = hold(&mut c, &alice, &s.id, &["A-1", "A-2"])
        .await
        .expect("alice holds");
    assert_eq!(a.seat_ids, vec!["A-1", "A-2"]);
    assert!(a.fencing_token > 0);
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&alice), &s.id).await, "A-1"),
        pb::SeatState::HeldByYou
    );
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&bob), &s.id).await, "A-1"),
        pb::SeatState::Held
    );

    // Prices and categories travel with the seats.
    let full = full_map(&mut c, None, &s.id).await;
    let a1 = full.seats.iter().find(|x| x.seat_id == "A-1").expect("A-1");
    assert_eq!(a1.category_code, "PRIME");
    assert_eq!(a1.price.as_ref().map(|m| m.amount_minor), Some(35_000));

    // Taken seats: all or nothing.
    let err = hold(&mut c, &bob, &s.id, &["A-2", "A-3"])
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(common::reason(&err), "SEAT_TAKEN");
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&bob), &s.id).await, "A-3"),
        pb::SeatState::Available
    );

    // Best available: adjacent seats of the category.
    let best = c
        .hold_seats(authed(
            &bob,
            pb::HoldSeatsRequest {
                request_id: rid(),
                show_id: s.id.clone(),
                selection: Some(pb::hold_seats_request::Selection::BestAvailable(
                    pb::BestAvailable {
                        count: 2,
                        category_code: "CLASSIC".into(),
                    },
                )),
            },
        ))
        .await
        .expect("best")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(best.seat_ids.len(), 2);
    assert!(
        best.seat_ids
            .iter()
            .all(|s| s.starts_with('B') || s.starts_with('C'))
    );

    // Idempotent under request_id.
    let req = explicit(&s.id, &["A-3"]);
    let carol = customer("carol");
    let first = c
        .hold_seats(authed(&carol, req.clone()))
        .await
        .expect("first")
        .into_inner();
    let again = c
        .hold_seats(authed(&carol, req.clone()))
        .await
        .expect("again")
        .into_inner();
    assert_eq!(first, again);
    let mut other = req.clone();
    other.selection = explicit(&s.id, &["A-4"]).selection;
    let err = c
        .hold_seats(authed(&carol, other))
        .await
        .expect_err("mismatch");
    assert_eq!(common::bad_fields(&err), vec!["request_id"]);

    // Nobody else can extend, release, or watch a hold.
    let err = c
        .extend_hold(authed(
            &bob,
            pb::ExtendHoldRequest {
                hold_id: a.hold_id.clone(),
                extension: None,
            },
        ))
        .await
        .expect_err("not bob's");
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .release_hold(authed(
            &bob,
            pb::ReleaseHoldRequest {
                hold_id: a.hold_id.clone(),
            },
        ))
        .await
        .expect_err("not bob's");
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .watch_hold(authed(
            &bob,
            pb::WatchHoldRequest {
                hold_id: a.hold_id.clone(),
            },
        ))
        .await
        .expect_err("not bob's");
    assert_eq!(err.code(), Code::NotFound);
    let ext = common::extend_hold(&mut c, &alice, &a.hold_id, 1200)
        .await
        .expect("extend");
    assert!(
        ext.expire_time.as_ref().map(|t| t.seconds) > a.expire_time.as_ref().map(|t| t.seconds)
    );

    // Confirm: service role only, token checked, retry succeeds, seats sold.
    let err = c
        .confirm_hold(authed(
            &alice,
            pb::ConfirmHoldRequest {
                hold_id: a.hold_id.clone(),
                fencing_token: a.fencing_token,
                booking_reference: "BK1".into(),
            },
        ))
        .await
        .expect_err("customers cannot confirm");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = confirm(&mut c, &a, a.fencing_token + 100, "BK1")
        .await
        .expect_err("stale");
    assert_eq!(common::reason(&err), "STALE_TOKEN");
    let done = confirm(&mut c, &a, a.fencing_token, "BK1")
        .await
        .expect("confirm");
    assert_eq!(done.seat_ids, vec!["A-1", "A-2"]);
    let retry = confirm(&mut c, &a, a.fencing_token, "BK1")
        .await
        .expect("retry");
    assert_eq!(retry.seat_ids, done.seat_ids);
    let err = confirm(&mut c, &a, a.fencing_token, "BK2")
        .await
        .expect_err("other booking");
    assert_eq!(common::reason(&err), "HOLD_NOT_FOUND");
    let map = seat_map(&mut c, Some(&bob), &s.id).await;
    assert_eq!(state_of(&map, "A-1"), pb::SeatState::Sold);
    let err = hold(&mut c, &bob, &s.id, &["A-1"]).await.expect_err("sold");
    assert_eq!(common::reason(&err), "SEAT_TAKEN");

    // Release frees the seats.
    c.release_hold(authed(
        &bob,
        pb::ReleaseHoldRequest {
            hold_id: best.hold_id.clone(),
        },
    ))
    .await
    .expect("release");
    let map = seat_map(&mut c, None, &s.id).await;
    assert!(
        best.seat_ids
            .iter()
            .all(|x| state_of(&map, x) == pb::SeatState::Available)
    );
    app.stop().await;
}

async fn refuses_bad_input(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let u = customer("dave");

    let err = c
        .hold_seats(explicit(&s.id, &["A-1"]))
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = hold(&mut c, &u, &s.id, &["Z-9"])
        .await
        .expect_err("unknown seat");
    assert_eq!(common::bad_fields(&err), vec!["seats.seat_ids[0]"]);
    let err = hold(&mut c, &u, &s.id, &["A-1", "A-1"])
        .await
        .expect_err("duplicate");
    assert_eq!(common::bad_fields(&err), vec!["seats.seat_ids[1]"]);
    let err = hold(&mut c, &u, &s.id, &[]).await.expect_err("empty");
    assert_eq!(common::bad_fields(&err), vec!["seats.seat_ids"]);
    let eleven = [
        "A-1", "A-2", "A-3", "A-4", "B-1", "B-2", "B-3", "B-4", "C-1", "C-2", "A-1",
    ];
    let err = hold(&mut c, &u, &s.id, &eleven).await.expect_err("eleven");
    assert!(common::bad_fields(&err).contains(&"seats.seat_ids".to_owned()));
    let err = hold(&mut c, &u, "no-such-show", &["A-1"])
        .await
        .expect_err("unknown show");
    assert_eq!(err.code(), Code::NotFound);
    let err = hold(&mut c, &u, "bad id!", &["A-1"])
        .await
        .expect_err("bad show id");
    assert_eq!(err.code(), Code::NotFound);
    let mut no_rid = explicit(&s.id, &["A-1"]);
    no_rid.request_id.clear();
    let err = c
        .hold_seats(authed(&u, no_rid))
        .await
        .expect_err("request id");
    assert_eq!(common::bad_fields(&err), vec!["request_id"]);
    let mut none = explicit(&s.id, &["A-1"]);
    none.selection = None;
    let err = c.hold_seats(authed(&u, none)).await.expect_err("selection");
    assert_eq!(common::bad_fields(&err), vec!["selection"]);
    let best = |count, cat: &str| pb::HoldSeatsRequest {
        request_id: rid(),
        show_id: s.id.clone(),
        selection: Some(pb::hold_seats_request::Selection::BestAvailable(
            pb::BestAvailable {
                count,
                category_code: cat.into(),
            },
        )),
    };
    let err = c
        .hold_seats(authed(&u, best(11, "PRIME")))
        .await
        .expect_err("count");
    assert_eq!(common::bad_fields(&err), vec!["best_available.count"]);
    let err = c
        .hold_seats(authed(&u, best(2, "GOLD")))
        .await
        .expect_err("category");
    assert_eq!(
        common::bad_fields(&err),
        vec!["best_available.category_code"]
    );
    let err = c
        .hold_seats(authed(&u, best(5, "PRIME")))
        .await
        .expect_err("not enough");
    assert_eq!(common::reason(&err), "NOT_ENOUGH_SEATS");
    for bad in ["", "nope", "0123.x"] {
        let err = c
            .release_hold(authed(
                &u,
                pb::ReleaseHoldRequest {
                    hold_id: bad.into(),
                },
            ))
            .await
            .expect_err("bad hold id");
        assert_eq!(err.code(), Code::NotFound, "{bad}");
    }

    // A cancelled show and a show in the past cannot be held.
    let cancelled = show(&app, &v, 3 * 86_400).await;
    app.admin()
        .await
        .cancel_show(cat::CancelShowRequest {
            request_id: rid(),
            show_id: cancelled.id.clone(),
            reason: "projector".into(),
        })
        .await
        .expect("cancel");
    // The show cache lives a few seconds: a fresh instance of the flow asks the catalog again.
    let mut cancelled_refused = false;
    for _ in 0..40 {
        match hold(&mut c, &u, &cancelled.id, &["A-1"]).await {
            Err(e) if common::reason(&e) == "SHOW_CANCELLED" => {
                cancelled_refused = true;
                break;
            }
            Ok(h) => {
                c.release_hold(authed(&u, pb::ReleaseHoldRequest { hold_id: h.hold_id }))
                    .await
                    .expect("release");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(cancelled_refused);
    // A show that has started: the catalog schedules only future shows, so that rule is covered
    // by the unit tests of `domain::rules`.
    app.stop().await;
}

/// The allocation request that allots `seats` of a show to the box office.
fn box_office_allocation(show_id: &str, seats: &[&str]) -> pb::SetAllocationRequest {
    pb::SetAllocationRequest {
        request_id: rid(),
        show_id: show_id.to_owned(),
        allocations: vec![pb::ChannelSeats {
            channel: pb::SalesChannel::BoxOffice as i32,
            partner_id: String::new(),
            seat_ids: seats.iter().map(|s| (*s).to_owned()).collect(),
        }],
    }
}

/// Allots `seats` of a show to the box office (as an admin).
async fn allot_to_box_office(app: &TestApp, show_id: &str, seats: &[&str]) {
    SeatingAdminServiceClient::new(app.channel().await)
        .set_allocation(authed(
            &token("root", &[Role::Admin]),
            box_office_allocation(show_id, seats),
        ))
        .await
        .expect("allot");
}

/// `who`'s WatchHold stream of a hold.
async fn hold_stream(
    c: &mut Client,
    who: &str,
    hold_id: &str,
) -> tonic::Streaming<pb::WatchHoldResponse> {
    c.watch_hold(authed(
        who,
        pb::WatchHoldRequest {
            hold_id: hold_id.to_owned(),
        },
    ))
    .await
    .expect("watch hold")
    .into_inner()
}

async fn allocation_limits_channels(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let mut admin = SeatingAdminServiceClient::new(app.channel().await);
    let set = box_office_allocation(&s.id, &["C-1", "C-2"]);
    let err = admin
        .set_allocation(authed(&customer("eve"), set.clone()))
        .await
        .expect_err("admin only");
    assert_eq!(err.code(), Code::PermissionDenied);
    admin
        .set_allocation(authed(&token("root", &[Role::Admin]), set))
        .await
        .expect("set");
    let got = admin
        .get_allocation(authed(
            &token("root", &[Role::Admin]),
            pb::GetAllocationRequest {
                show_id: s.id.clone(),
            },
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.allocations.len(), 1);
    assert_eq!(got.allocations[0].seat_ids, vec!["C-1", "C-2"]);

    let eve = customer("eve");
    let map = seat_map(&mut c, Some(&eve), &s.id).await;
    assert_eq!(state_of(&map, "C-1"), pb::SeatState::NotForSale);
    let err = hold(&mut c, &eve, &s.id, &["C-1"])
        .await
        .expect_err("box office seat");
    assert_eq!(common::reason(&err), "SEAT_NOT_FOR_SALE");
    let staff = token("frank", &[Role::Staff]);
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&staff), &s.id).await, "C-1"),
        pb::SeatState::Available
    );
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&staff), &s.id).await, "A-1"),
        pb::SeatState::NotForSale
    );
    hold(&mut c, &staff, &s.id, &["C-1", "C-2"])
        .await
        .expect("staff holds box office seats");
    app.stop().await;
}

async fn streams_tell_watchers(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let (alice, bob) = (customer("alice"), customer("bob"));
    let mut seats = watch(&mut c, &bob, &s.id).await;
    let first = seats.next().await.expect("snapshot").expect("ok");
    assert!(matches!(
        first.event,
        Some(pb::watch_seats_response::Event::Snapshot(_))
    ));

    let a = hold(&mut c, &alice, &s.id, &["B-1"]).await.expect("hold");
    let mut watch = hold_stream(&mut c, &alice, &a.hold_id).await;
    let kind = |m: pb::WatchHoldResponse| m.kind();
    assert_eq!(
        kind(watch.next().await.expect("msg").expect("ok")),
        pb::HoldEventKind::Active
    );
    c.extend_hold(authed(
        &alice,
        pb::ExtendHoldRequest {
            hold_id: a.hold_id.clone(),
            extension: None,
        },
    ))
    .await
    .expect("extend");
    c.release_hold(authed(
        &alice,
        pb::ReleaseHoldRequest {
            hold_id: a.hold_id.clone(),
        },
    ))
    .await
    .expect("release");
    let mut kinds = Vec::new();
    while let Some(m) = watch.next().await {
        kinds.push(kind(m.expect("ok")));
    }
    // The extension may not move the deadline (it is already now + TTL): then there is no event.
    assert_eq!(kinds.last(), Some(&pb::HoldEventKind::Released));

    let change = |m: pb::WatchSeatsResponse| match m.event {
        Some(pb::watch_seats_response::Event::Change(c)) => c,
        other => panic!("expected a change, got {other:?}"),
    };
    let held = change(seats.next().await.expect("held").expect("ok"));
    assert_eq!(held.cause(), pb::SeatChangeCause::Held);
    assert_eq!(held.seats[0].seat_id, "B-1");
    assert_eq!(held.seats[0].state(), pb::SeatState::Held);
    let released = change(seats.next().await.expect("released").expect("ok"));
    assert_eq!(released.cause(), pb::SeatChangeCause::Released);
    assert_eq!(released.seats[0].state(), pb::SeatState::Available);
    // Versions: the snapshot's, then one per change (the extension, which moves no seat, is not
    // sent but has its version).
    let at = match first.event {
        Some(pb::watch_seats_response::Event::Snapshot(m)) => m.version,
        _ => unreachable!("checked above"),
    };
    assert_eq!(held.version, at + 1);
    assert!(released.version == at + 2 || released.version == at + 3);
    let map = full_map(&mut c, Some(&bob), &s.id).await;
    assert_eq!(map.version, released.version);
    app.stop().await;
}

async fn expiry_reaches_watchers(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let alice = customer("alice");
    let mut seats = c
        .watch_seats(pb::WatchSeatsRequest {
            show_id: s.id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    seats.next().await.expect("snapshot").expect("ok");
    let a = hold(&mut c, &alice, &s.id, &["A-4"]).await.expect("hold");
    let mut watch = hold_stream(&mut c, &alice, &a.hold_id).await;
    let mut kinds = Vec::new();
    while let Some(m) = watch.next().await {
        kinds.push(m.expect("ok").kind());
    }
    assert_eq!(
        kinds,
        vec![
            pb::HoldEventKind::Active,
            pb::HoldEventKind::ExpiringSoon,
            pb::HoldEventKind::Expired
        ]
    );
    let mut causes = Vec::new();
    while causes.last() != Some(&pb::SeatChangeCause::Expired) {
        if let Some(pb::watch_seats_response::Event::Change(ch)) =
            seats.next().await.expect("msg").expect("ok").event
        {
            causes.push(ch.cause());
        }
    }
    assert_eq!(
        causes,
        vec![pb::SeatChangeCause::Held, pb::SeatChangeCause::Expired]
    );
    let err = confirm(&mut c, &a, a.fencing_token, "LATE")
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        state_of(&seat_map(&mut c, None, &s.id).await, "A-4"),
        pb::SeatState::Available
    );
    app.stop().await;
}

/// A cancellation whose sale rows were deleted but whose hold-store update never happened (the
/// process died in between) left its seats marked sold; the retry, which deletes nothing, puts
/// them back on sale.
async fn cancel_sale_retry_clears_marks_left_behind(app: TestApp) {
    use sea_orm::ConnectionTrait as _;
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let service = token("booking", &[Role::Service]);
    let alice = customer("alice");
    let h = hold(&mut c, &alice, &s.id, &["C-1", "C-2"])
        .await
        .expect("hold");
    confirm(&mut c, &h, h.fencing_token, "BOOKING-9")
        .await
        .expect("confirm");
    // The first try's delete, and nothing after it.
    let db = sea_orm::Database::connect(app.database_url("seating"))
        .await
        .expect("seating database");
    // Seating's tables live in schema `seating` on PostgreSQL.
    let table = match app.backend {
        Backend::Sqlite => "sold_seats",
        Backend::Postgres => "seating.sold_seats",
    };
    let deleted = db
        .execute_unprepared(&format!(
            "DELETE FROM {table} WHERE booking_reference = 'BOOKING-9'"
        ))
        .await
        .expect("delete");
    assert_eq!(deleted.rows_affected(), 2);
    db.close().await.expect("close");
    assert_eq!(
        state_of(&seat_map(&mut c, None, &s.id).await, "C-1"),
        pb::SeatState::Sold,
        "the store still marks the seat sold"
    );
    assert!(
        cancel_sale(&mut c, &service, &s.id, "BOOKING-9")
            .await
            .expect("retry")
            .is_empty()
    );
    let map = seat_map(&mut c, None, &s.id).await;
    assert_eq!(state_of(&map, "C-1"), pb::SeatState::Available);
    assert_eq!(state_of(&map, "C-2"), pb::SeatState::Available);
    let again = hold(&mut c, &customer("bob"), &s.id, &["C-1"])
        .await
        .expect("on sale again");
    confirm(&mut c, &again, again.fencing_token, "BOOKING-10")
        .await
        .expect("sold again");
    app.stop().await;
}

fn short_holds() -> marquee_seating::SeatingConfig {
    marquee_seating::SeatingConfig {
        hold_ttl_ms: 1_500,
        hold_max_lifetime_ms: 3_000,
        expiring_soon_ms: 700,
        hold_check_interval_ms: 200,
        ..marquee_seating::SeatingConfig::default()
    }
}

async fn watch(
    c: &mut Client,
    who: &str,
    show_id: &str,
) -> tonic::Streaming<pb::WatchSeatsResponse> {
    c.watch_seats(authed(
        who,
        pb::WatchSeatsRequest {
            show_id: show_id.to_owned(),
        },
    ))
    .await
    .expect("watch")
    .into_inner()
}

async fn cancel_sale(
    c: &mut Client,
    who: &str,
    show_id: &str,
    booking: &str,
) -> Result<Vec<String>, tonic::Status> {
    c.cancel_sale(authed(
        who,
        pb::CancelSaleRequest {
            show_id: show_id.to_owned(),
            booking_reference: booking.to_owned(),
        },
    ))
    .await
    .map(|r| {
        let mut seats = r.into_inner().seat_ids;
        seats.sort();
        seats
    })
}

/// A cancelled booking's seats go back on sale: the map, the watchers, and a new sale.
async fn cancelled_sales_reopen_seats(app: TestApp) {
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let service = token("booking", &[Role::Service]);
    let (alice, bob) = (customer("alice"), customer("bob"));
    let h = hold(&mut c, &alice, &s.id, &["A-1", "A-2"])
        .await
        .expect("hold");
    confirm(&mut c, &h, h.fencing_token, "BOOKING-1")
        .await
        .expect("confirm");
    let mut seats = watch(&mut c, &bob, &s.id).await;
    seats.next().await.expect("snapshot").expect("ok");

    // Only booking (a service) cancels sales; bad input names its field.
    let e = cancel_sale(&mut c, &alice, &s.id, "BOOKING-1")
        .await
        .expect_err("customer");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = cancel_sale(&mut c, &service, &s.id, "")
        .await
        .expect_err("no reference");
    assert_eq!(common::bad_fields(&e), vec!["booking_reference".to_owned()]);
    let e = cancel_sale(&mut c, &service, "", "BOOKING-1")
        .await
        .expect_err("no show");
    assert_eq!(common::bad_fields(&e), vec!["show_id".to_owned()]);
    // Another booking's reference cancels nothing.
    assert!(
        cancel_sale(&mut c, &service, &s.id, "BOOKING-2")
            .await
            .expect("other")
            .is_empty()
    );
    assert_eq!(
        state_of(&seat_map(&mut c, None, &s.id).await, "A-1"),
        pb::SeatState::Sold
    );

    assert_eq!(
        cancel_sale(&mut c, &service, &s.id, "BOOKING-1")
            .await
            .expect("cancel"),
        vec!["A-1".to_owned(), "A-2".to_owned()]
    );
    let map = seat_map(&mut c, None, &s.id).await;
    assert_eq!(state_of(&map, "A-1"), pb::SeatState::Available);
    assert_eq!(state_of(&map, "A-2"), pb::SeatState::Available);
    // Watchers see the seats come back.
    let change = loop {
        match seats.next().await.expect("change").expect("ok").event {
            Some(pb::watch_seats_response::Event::Change(ch))
                if ch.cause() == pb::SeatChangeCause::SaleCancelled =>
            {
                break ch;
            }
            _ => {}
        }
    };
    let mut back: Vec<_> = change
        .seats
        .iter()
        .map(|s| (s.seat_id.clone(), s.state()))
        .collect();
    back.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        back,
        vec![
            ("A-1".to_owned(), pb::SeatState::Available),
            ("A-2".to_owned(), pb::SeatState::Available)
        ]
    );
    // A retry finds nothing left to cancel.
    assert!(
        cancel_sale(&mut c, &service, &s.id, "BOOKING-1")
            .await
            .expect("retry")
            .is_empty()
    );

    // Many cancellations of one sale at once: exactly one of them gets the seats.
    let h = hold(&mut c, &alice, &s.id, &["B-1", "B-2", "B-3"])
        .await
        .expect("hold");
    confirm(&mut c, &h, h.fencing_token, "BOOKING-4")
        .await
        .expect("confirm");
    let calls = (0..16).map(|_| {
        let mut c = c.clone();
        let (service, show) = (service.clone(), s.id.clone());
        async move { cancel_sale(&mut c, &service, &show, "BOOKING-4").await }
    });
    let answers: Vec<Vec<String>> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("cancel"))
        .filter(|seats| !seats.is_empty())
        .collect();
    assert_eq!(
        answers,
        vec![vec!["B-1".to_owned(), "B-2".to_owned(), "B-3".to_owned()]]
    );
    let map = seat_map(&mut c, None, &s.id).await;
    for seat in ["B-1", "B-2", "B-3"] {
        assert_eq!(state_of(&map, seat), pb::SeatState::Available, "{seat}");
    }

    // And the seats sell again, once.
    let again = hold(&mut c, &bob, &s.id, &["A-1"])
        .await
        .expect("hold again");
    confirm(&mut c, &again, again.fencing_token, "BOOKING-3")
        .await
        .expect("sold again");
    assert_eq!(
        state_of(&seat_map(&mut c, None, &s.id).await, "A-1"),
        pb::SeatState::Sold
    );
    app.stop().await;
}

/// A watcher's view of the seat map: the last snapshot with the changes after it applied.
#[derive(Default)]
struct View {
    version: u64,
    seats: std::collections::HashMap<String, pb::SeatState>,
    snapshots: usize,
}

impl View {
    fn apply(&mut self, m: pb::WatchSeatsResponse) {
        match m.event {
            Some(pb::watch_seats_response::Event::Snapshot(map)) => {
                self.snapshots += 1;
                self.version = map.version;
                self.seats = map
                    .seats
                    .iter()
                    .map(|x| (x.seat_id.clone(), x.state()))
                    .collect();
            }
            Some(pb::watch_seats_response::Event::Change(c)) => {
                assert_eq!(
                    c.version,
                    self.version + 1,
                    "changes come in order, none missed"
                );
                self.version = c.version;
                for x in &c.seats {
                    self.seats.insert(x.seat_id.clone(), x.state());
                }
            }
            None => panic!("an empty message"),
        }
    }
}

/// A watcher that reads its stream slowly falls behind the show's events (with a small HTTP/2
/// window, the server's buffers for it fill up); it is sent a fresh snapshot, and its view
/// then matches the seat map.
async fn a_slow_watcher_catches_up(app: TestApp) {
    const CYCLES: usize = 700;
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let slow = tonic::transport::Endpoint::from_shared(app.url())
        .expect("url")
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .expect("connect");
    let mut seats = SeatingServiceClient::new(slow)
        .watch_seats(pb::WatchSeatsRequest {
            show_id: s.id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut view = View::default();
    view.apply(next_of(&mut seats).await);
    let bob = customer("bob");
    for _ in 0..CYCLES {
        let h = hold(&mut c, &bob, &s.id, &["B-1"]).await.expect("hold");
        c.release_hold(authed(&bob, pb::ReleaseHoldRequest { hold_id: h.hold_id }))
            .await
            .expect("release");
    }
    hold(&mut c, &bob, &s.id, &["B-2"]).await.expect("hold");
    let map = full_map(&mut c, None, &s.id).await;
    while view.version < map.version {
        view.apply(next_of(&mut seats).await);
    }
    assert_eq!(view.version, map.version);
    for x in &map.seats {
        assert_eq!(
            view.seats.get(&x.seat_id),
            Some(&x.state()),
            "{}",
            x.seat_id
        );
    }
    assert_eq!(view.seats.get("B-2"), Some(&pb::SeatState::Held));
    assert!(
        view.snapshots > 1,
        "the watcher fell behind {} events and was sent a fresh snapshot",
        2 * CYCLES
    );
    app.stop().await;
}

/// A user holds seats for at most `active_holds_per_user` shows at once (hoarding across
/// shows): one show more is refused with RESOURCE_EXHAUSTED and holds nothing. Changing a
/// hold's seats is not one more; other users and box office staff (who hold for many
/// customers) are not held back; a hold that failed never counts, and a released one stops
/// counting. Holding on many shows at once gets exactly the cap.
async fn active_holds_are_capped_per_user(app: TestApp) {
    let cap = common::test_seating_config().active_holds_per_user as usize;
    assert!(cap >= 2, "the default cap is in force: {cap}");
    let v = common::venue(&app).await;
    let mut shows = Vec::new();
    for day in 1..=2 * cap {
        shows.push(show(&app, &v, day as i64 * 86_400).await.id);
    }
    let last = shows[cap].clone();
    let mut c = client(&app).await;
    let (alice, bob) = (customer("alice"), customer("bob"));
    // A hold that fails counts for nothing (else the last of the holds below would be refused).
    hold(&mut c, &bob, &last, &["A-1"]).await.expect("bob");
    let err = hold(&mut c, &alice, &last, &["A-1"])
        .await
        .expect_err("taken");
    assert_eq!(common::reason(&err), "SEAT_TAKEN");
    let mut holds = Vec::new();
    for s in &shows[..cap] {
        holds.push(
            hold(&mut c, &alice, s, &["A-1"])
                .await
                .expect("within the cap"),
        );
    }
    // One show more: refused, nothing held; its retry is refused alike.
    let over = explicit(&last, &["A-2"]);
    for _ in 0..2 {
        let err = c
            .hold_seats(authed(&alice, over.clone()))
            .await
            .expect_err("over the cap");
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert_eq!(common::reason(&err), "TOO_MANY_HOLDS");
    }
    assert_eq!(
        state_of(&seat_map(&mut c, Some(&alice), &last).await, "A-2"),
        pb::SeatState::Available
    );
    // Changing a hold's seats, on a show already counted.
    hold(&mut c, &alice, &shows[0], &["A-2"])
        .await
        .expect("a hold's seats change");
    hold(&mut c, &customer("carol"), &last, &["A-2"])
        .await
        .expect("another user");
    // Box office staff hold their allotment for walk-in customers, on as many shows as they sell.
    let staff = token("frank", &[Role::Staff]);
    for s in &shows {
        allot_to_box_office(&app, s, &["C-1"]).await;
        hold(&mut c, &staff, s, &["C-1"])
            .await
            .expect("box office holds are not capped");
    }
    // A released hold stops counting once its claim is past the grace for holds on their way
    // to the store (5 s).
    c.release_hold(authed(
        &alice,
        pb::ReleaseHoldRequest {
            hold_id: holds[1].hold_id.clone(),
        },
    ))
    .await
    .expect("release");
    // Meanwhile, dave holds on every show at once.
    hold_on_every_show_at_once(&[c.clone()], &customer("dave"), &shows, cap).await;
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    hold(&mut c, &alice, &last, &["A-3"])
        .await
        .expect("the released hold's show no longer counts");
    app.stop().await;
}

async fn spawn_short(name: &str, backend: Backend) -> Option<TestApp> {
    TestApp::spawn_seating(name, backend, false, common::server_config(), short_holds()).await
}

on_both_backends!(
    holds_seat_maps_and_confirms,
    refuses_bad_input,
    allocation_limits_channels,
    streams_tell_watchers,
    a_slow_watcher_catches_up,
    cancelled_sales_reopen_seats,
    cancel_sale_retry_clears_marks_left_behind,
    active_holds_are_capped_per_user,
);

mod expiry {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(app) = spawn_short("expiry::sqlite", Backend::Sqlite).await {
            expiry_reaches_watchers(app).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = spawn_short("expiry::postgres", Backend::Postgres).await {
            expiry_reaches_watchers(app).await;
        }
    }
}

/// `who` holds B-1 on every show at once, through `clients` in turn: exactly `cap` holds are
/// made and the others refused as TOO_MANY_HOLDS. Returns the index of a refused show.
async fn hold_on_every_show_at_once(
    clients: &[Client],
    who: &str,
    shows: &[String],
    cap: usize,
) -> usize {
    let at_once = futures::future::join_all(shows.iter().enumerate().map(|(i, s)| {
        let mut c = clients[i % clients.len()].clone();
        async move { hold(&mut c, who, s, &["B-1"]).await }
    }))
    .await;
    let refused: Vec<_> = at_once.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(at_once.len() - refused.len(), cap, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|e| common::reason(e) == "TOO_MANY_HOLDS")
    );
    at_once
        .iter()
        .position(Result::is_err)
        .expect("a refused show")
}

/// Two instances on one Redis count one user's holds together: holding on every show at once,
/// half through each instance, gets exactly the cap, and one show more is refused on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_cap_on_active_holds() {
    let Some(app) = spawn_short("two_instances_cap::postgres", Backend::Postgres).await else {
        return;
    };
    let cap = common::test_seating_config().active_holds_per_user as usize;
    let v = common::venue(&app).await;
    let mut shows = Vec::new();
    for day in 1..=2 * cap {
        shows.push(show(&app, &v, day as i64 * 86_400).await.id);
    }
    let other = app.sibling().await;
    let clients = [client(&app).await, client(&other).await];
    let dave = customer("dave");
    let free = hold_on_every_show_at_once(&clients, &dave, &shows, cap).await;
    for mut c in clients {
        let err = hold(&mut c, &dave, &shows[free], &["B-2"])
            .await
            .expect_err("over the cap on either instance");
        assert_eq!(common::reason(&err), "TOO_MANY_HOLDS");
    }
    other.stop().await;
    app.stop().await;
}

/// Two instances on one Redis: exactly one expires each hold, and watchers on both see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_expire_each_hold_once() {
    let Some(app) = spawn_short("two_instances::postgres", Backend::Postgres).await else {
        return;
    };
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    // Once the first instance has migrated the database, a second one joins.
    let other = app.sibling().await;
    let mut c1 = client(&app).await;
    let mut c2 = client(&other).await;
    let alice = customer("alice");
    let mut w1 = c1
        .watch_seats(pb::WatchSeatsRequest {
            show_id: s.id.clone(),
        })
        .await
        .expect("w1")
        .into_inner();
    let mut w2 = c2
        .watch_seats(pb::WatchSeatsRequest {
            show_id: s.id.clone(),
        })
        .await
        .expect("w2")
        .into_inner();
    w1.next().await.expect("snap").expect("ok");
    w2.next().await.expect("snap").expect("ok");
    let mut holds = Vec::new();
    for (i, seat) in ["A-1", "A-2", "A-3"].iter().enumerate() {
        let who = customer(&format!("user{i}"));
        holds.push(
            hold(
                if i % 2 == 0 { &mut c1 } else { &mut c2 },
                &who,
                &s.id,
                &[seat],
            )
            .await
            .expect("hold"),
        );
    }
    // Wait until every one of the three holds has expired (each holder's WatchHold ends with
    // EXPIRED), so that the marker below comes after all three expiries.
    for (i, h) in holds.iter().enumerate() {
        let watched = c2
            .watch_hold(authed(
                &customer(&format!("user{i}")),
                pb::WatchHoldRequest {
                    hold_id: h.hold_id.clone(),
                },
            ))
            .await;
        let mut hw = match watched {
            Ok(stream) => stream.into_inner(),
            // Already expired and gone before we started watching.
            Err(status) if status.code() == tonic::Code::NotFound => continue,
            Err(status) => panic!("watch hold {i}: {status:?}"),
        };
        let mut last = None;
        while let Some(m) = hw.next().await {
            last = Some(m.expect("ok").kind());
        }
        assert_eq!(last, Some(pb::HoldEventKind::Expired), "hold {i}");
    }
    // After the three expiries, a marker hold: each watcher must see exactly three EXPIRED
    // changes before the marker's HELD (one per hold: a second expiry would show up here).
    let marker = hold(&mut c1, &alice, &s.id, &["B-4"])
        .await
        .expect("marker");
    for w in [&mut w1, &mut w2] {
        let mut expired = 0;
        loop {
            let Some(pb::watch_seats_response::Event::Change(ch)) =
                w.next().await.expect("msg").expect("ok").event
            else {
                continue;
            };
            match ch.cause() {
                pb::SeatChangeCause::Expired => expired += 1,
                pb::SeatChangeCause::Held if ch.seats[0].seat_id == "B-4" => break,
                _ => {}
            }
        }
        assert_eq!(expired, 3);
    }
    let _ = marker;
    other.stop().await;
    app.stop().await;
}

/// Seating settings under which a holder's stream checks its hold every 0.2 s (it finds a lost
/// hold, or a missed extension, that soon).
fn checked_often() -> marquee_seating::SeatingConfig {
    marquee_seating::SeatingConfig {
        hold_check_interval_ms: 200,
        ..marquee_seating::SeatingConfig::default()
    }
}

/// Every service on PostgreSQL + Redis, with [`checked_often`] seating.
async fn spawn_checked_often(name: &str) -> Option<TestApp> {
    TestApp::spawn_seating(
        name,
        Backend::Postgres,
        false,
        common::server_config(),
        checked_often(),
    )
    .await
}

/// A show with two seats sold (bob's) and two held (alice's B-1 and B-2), with the
/// holder's WatchHold and a seat map watcher open: where the Redis loss tests start.
struct LossScene {
    c: Client,
    show_id: String,
    lost: pb::Hold,
    holder: tonic::Streaming<pb::WatchHoldResponse>,
    seats: tonic::Streaming<pb::WatchSeatsResponse>,
    before: pb::SeatMap,
}

async fn loss_scene(app: &TestApp) -> LossScene {
    let v = common::venue(app).await;
    let s = show(app, &v, 86_400).await;
    let mut c = client(app).await;
    let (alice, bob) = (customer("alice"), customer("bob"));
    let sold = hold(&mut c, &bob, &s.id, &["A-1", "A-2"])
        .await
        .expect("bob");
    confirm(&mut c, &sold, sold.fencing_token, "BK-SOLD")
        .await
        .expect("sold");
    let lost = hold(&mut c, &alice, &s.id, &["B-1", "B-2"])
        .await
        .expect("alice");
    let mut holder = hold_stream(&mut c, &alice, &lost.hold_id).await;
    assert_eq!(next_hold(&mut holder).await.0, pb::HoldEventKind::Active);
    let mut seats = watch(&mut c, &customer("dave"), &s.id).await;
    let before = snapshot_of(next_of(&mut seats).await);
    assert_eq!(state_in(&before, "B-2"), pb::SeatState::Held);
    LossScene {
        c,
        show_id: s.id,
        lost,
        holder,
        seats,
        before,
    }
}

/// After the loss: the sold seats stay sold, the lost hold cannot be confirmed, and its seats
/// can be held again (carol's new hold of B-1).
async fn sold_stay_sold_and_lost_seats_are_free(sc: &mut LossScene) -> pb::Hold {
    let carol = customer("carol");
    let map = seat_map(&mut sc.c, None, &sc.show_id).await;
    assert_eq!(state_of(&map, "A-1"), pb::SeatState::Sold);
    assert_eq!(state_of(&map, "B-1"), pb::SeatState::Available);
    let err = hold(&mut sc.c, &carol, &sc.show_id, &["A-2"])
        .await
        .expect_err("still sold");
    assert_eq!(common::reason(&err), "SEAT_TAKEN");
    let err = confirm(&mut sc.c, &sc.lost, sc.lost.fencing_token, "BK-LOST")
        .await
        .expect_err("lost hold");
    assert_eq!(common::reason(&err), "HOLD_NOT_FOUND");
    hold(&mut sc.c, &carol, &sc.show_id, &["B-1"])
        .await
        .expect("the lost hold's seat is free")
}

/// Redis loses this deployment's data mid-test: holds are lost (LOST on WatchHold), sold seats
/// come back from the database, nothing is sold twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_data_loss_keeps_sold_seats() {
    let Some(app) = spawn_checked_often("data_loss::postgres").await else {
        return;
    };
    let mut sc = loss_scene(&app).await;

    // Every key of this deployment goes (what FLUSHALL does to it, without disturbing the other
    // tests that share this Redis).
    let ext = app.external.as_ref().expect("external");
    let redis = marquee_platform::redis::connect(&ext.redis_url)
        .await
        .expect("redis");
    common::delete_redis_prefix(&redis, &ext.redis_prefix)
        .await
        .expect("delete the deployment's keys");
    assert_eq!(next_hold(&mut sc.holder).await.0, pb::HoldEventKind::Lost);
    sold_stay_sold_and_lost_seats_are_free(&mut sc).await;
    // The store's versions started a new run: the watcher is sent the whole map again (a change
    // alone would leave B-2 held in its view, as nothing announced the lost hold).
    let after = snapshot_of(next_of(&mut sc.seats).await);
    assert!(after.version > sc.before.version);
    assert_eq!(state_in(&after, "B-1"), pb::SeatState::Held);
    assert_eq!(state_in(&after, "B-2"), pb::SeatState::Available);
    assert_eq!(state_in(&after, "A-1"), pb::SeatState::Sold);
    app.stop().await;
}

/// The holder's stream's next message, within 10 s: its kind and the hold's deadline (Unix ms).
async fn next_hold(
    holder: &mut tonic::Streaming<pb::WatchHoldResponse>,
) -> (pb::HoldEventKind, i64) {
    let m = tokio::time::timeout(Duration::from_secs(10), holder.next())
        .await
        .expect("a message within 10 s")
        .expect("the stream goes on")
        .expect("ok");
    let t = m
        .hold
        .as_ref()
        .and_then(|h| h.expire_time)
        .expect("deadline");
    (m.kind(), t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// The stream's next message, within 10 s.
async fn next_of(seats: &mut tonic::Streaming<pb::WatchSeatsResponse>) -> pb::WatchSeatsResponse {
    tokio::time::timeout(Duration::from_secs(10), seats.next())
        .await
        .expect("a message within 10 s")
        .expect("the stream goes on")
        .expect("ok")
}

fn snapshot_of(m: pb::WatchSeatsResponse) -> pb::SeatMap {
    match m.event {
        Some(pb::watch_seats_response::Event::Snapshot(m)) => m,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn state_in(m: &pb::SeatMap, seat: &str) -> pb::SeatState {
    m.seats
        .iter()
        .find(|x| x.seat_id == seat)
        .map(pb::SeatStatus::state)
        .expect("seat")
}

fn change_of(m: pb::WatchSeatsResponse) -> pb::SeatChange {
    match m.event {
        Some(pb::watch_seats_response::Event::Change(c)) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// Events reach an instance over Redis pub/sub, and some reach a watcher after its snapshot
/// was read although they are already in it, while a dropped connection loses some. The
/// watcher's stream skips the first by version, and sends a fresh snapshot on a gap. (The
/// test publishes old events on the show's channel itself, as Redis would deliver them, and
/// makes a gap by moving the show's version on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_skip_events_they_have_and_resync_on_gaps() {
    let Some(app) = spawn_checked_often("stale_and_gaps::postgres").await else {
        return;
    };
    use fred::prelude::{
        HashesInterface as _, KeysInterface as _, PubsubInterface as _, SortedSetsInterface as _,
    };
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let alice = customer("alice");
    let mut seats = watch(&mut c, &customer("bob"), &s.id).await;
    let first = snapshot_of(next_of(&mut seats).await);
    let at = first.version;
    let ext = app.external.as_ref().expect("external");
    let redis = marquee_platform::redis::connect(&ext.redis_url)
        .await
        .expect("redis");
    let channel = format!("{}seat:{{{}}}:ev", ext.redis_prefix, s.id);
    let publish = |text: String| {
        let (redis, channel) = (redis.clone(), channel.clone());
        async move {
            let n: i64 = redis.publish(channel, text).await.expect("publish");
            assert_eq!(n, 1, "the seating instance listens on the show's channel");
        }
    };
    // Events the snapshot already has: a hold of seat 0 and its release.
    publish(format!("{}|H|old|1|0|0|someone", at - 1)).await;
    publish(format!("{at}|R|old|1|0|0|someone")).await;
    let a = hold(&mut c, &alice, &s.id, &["B-1"]).await.expect("hold");
    let held = change_of(next_of(&mut seats).await);
    assert_eq!(held.cause(), pb::SeatChangeCause::Held);
    assert_eq!(held.version, at + 1);
    assert_eq!(held.seats.len(), 1);
    assert_eq!(held.seats[0].seat_id, "B-1");

    // The holder's stream: an extension older than the hold it read is skipped, and one whose
    // event never came is found by its check and told.
    let mut holder = hold_stream(&mut c, &alice, &a.hold_id).await;
    let (kind, deadline) = next_hold(&mut holder).await;
    assert_eq!(kind, pb::HoldEventKind::Active);
    // (Its version is old for the seat map watcher too, which skips it.)
    publish(format!(
        "{at}|E|{}|{}|{}|0|{alice}",
        a.hold_id,
        a.fencing_token,
        deadline - 5_000
    ))
    .await;
    // An extension whose event was lost: the deadline moves in the store alone (in the hold
    // and in the show's index of deadlines, as the extend script moves it).
    let later = deadline + 60_000;
    let _: i64 = redis
        .hset(
            format!("{}seat:{{{}}}:h:{}", ext.redis_prefix, s.id, a.hold_id),
            ("d", later.to_string()),
        )
        .await
        .expect("hset");
    let _: i64 = redis
        .zadd(
            format!("{}seat:{{{}}}:exp", ext.redis_prefix, s.id),
            None,
            None,
            false,
            false,
            (later as f64, a.hold_id.clone()),
        )
        .await
        .expect("zadd");
    assert_eq!(
        next_hold(&mut holder).await,
        (pb::HoldEventKind::Extended, later)
    );

    // The watcher's own hold, which the map sent after the gap must show as the watcher's.
    hold(&mut c, &customer("bob"), &s.id, &["B-4"])
        .await
        .expect("bob");
    assert_eq!(change_of(next_of(&mut seats).await).version, at + 2);

    // A gap: the events of versions at + 3 ..= at + 5 never arrive (as when the pub/sub
    // connection drops while they go out). The watcher gets the map as it is.
    let bumped: u64 = redis
        .incr_by(format!("{}seat:{{{}}}:ver", ext.redis_prefix, s.id), 3)
        .await
        .expect("incrby");
    assert_eq!(bumped, at + 5);
    hold(&mut c, &customer("carol"), &s.id, &["B-3"])
        .await
        .expect("carol");
    let again = snapshot_of(next_of(&mut seats).await);
    assert_eq!(again.version, at + 6);
    assert_eq!(state_in(&again, "B-1"), pb::SeatState::Held);
    assert_eq!(state_in(&again, "B-3"), pb::SeatState::Held);
    assert_eq!(state_in(&again, "B-4"), pb::SeatState::HeldByYou);
    assert_eq!(state_in(&again, "A-1"), pb::SeatState::Available);

    // And goes on from there.
    c.release_hold(authed(
        &alice,
        pb::ReleaseHoldRequest {
            hold_id: a.hold_id.clone(),
        },
    ))
    .await
    .expect("release");
    let released = change_of(next_of(&mut seats).await);
    assert_eq!(released.cause(), pb::SeatChangeCause::Released);
    assert_eq!(released.version, at + 7);
    assert_eq!(next_hold(&mut holder).await.0, pb::HoldEventKind::Released);
    app.stop().await;
}

/// Redis itself restarts (killed, started again empty) under a running instance: the holder's
/// stream says LOST, a seat map watcher is sent the map as it now is (without waiting for a new
/// change), sold seats stay sold, and holding works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_holds_keeps_sales() {
    const TEST: &str = "redis_restart_loses_holds_keeps_sales";
    let Some(mut redis) = common::PrivateRedis::start(TEST).await else {
        return;
    };
    let Ok(admin) = std::env::var("MARQUEE_TEST_DATABASE_URL") else {
        let _ = common::skip(TEST, "MARQUEE_TEST_DATABASE_URL is not set");
        return;
    };
    let ext = common::External::create_on(admin, redis.url())
        .await
        .expect("database");
    let app = TestApp::spawn_external(ext, common::server_config(), checked_often(), None).await;
    let mut sc = loss_scene(&app).await;

    redis.restart().await;

    assert_eq!(next_hold(&mut sc.holder).await.0, pb::HoldEventKind::Lost);
    // Sent at the reconnection, before anything else changes.
    let after = snapshot_of(next_of(&mut sc.seats).await);
    assert!(after.version > sc.before.version);
    assert_eq!(state_in(&after, "B-1"), pb::SeatState::Available);
    assert_eq!(state_in(&after, "B-2"), pb::SeatState::Available);
    assert_eq!(state_in(&after, "A-1"), pb::SeatState::Sold);
    assert_eq!(state_in(&after, "A-2"), pb::SeatState::Sold);
    let again = sold_stay_sold_and_lost_seats_are_free(&mut sc).await;
    let held = change_of(next_of(&mut sc.seats).await);
    assert_eq!(held.cause(), pb::SeatChangeCause::Held);
    assert_eq!(held.version, after.version + 1);
    confirm(&mut sc.c, &again, again.fencing_token, "BK-AGAIN")
        .await
        .expect("sold after the restart");
    app.stop().await;
}

/// How many times Redis ran `command` since it started (`INFO commandstats`).
async fn redis_calls(redis: &fred::prelude::Client, command: &str) -> u64 {
    use fred::prelude::ClientLike as _;
    let info: String = redis
        .custom(fred::cmd!("INFO"), vec!["commandstats"])
        .await
        .expect("info");
    let head = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(head.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A server on a Redis of the test's own (so that the Redis's command counts are the test's),
/// with a show whose seat A-1 is sold.
struct CountedScene {
    redis: common::PrivateRedis,
    counter: fred::prelude::Client,
    app: TestApp,
    show: cat::Show,
    c: Client,
}

async fn counted_scene(test: &str) -> Option<CountedScene> {
    let redis = common::PrivateRedis::start(test).await?;
    let Ok(admin) = std::env::var("MARQUEE_TEST_DATABASE_URL") else {
        let _ = common::skip(test, "MARQUEE_TEST_DATABASE_URL is not set");
        return None;
    };
    let ext = common::External::create_on(admin, redis.url())
        .await
        .expect("database");
    let app = TestApp::spawn_external(ext, common::server_config(), checked_often(), None).await;
    let v = common::venue(&app).await;
    let show = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let sold = hold(&mut c, &customer("bob"), &show.id, &["A-1"])
        .await
        .expect("bob");
    confirm(&mut c, &sold, sold.fencing_token, "BK-SOLD")
        .await
        .expect("sold");
    let counter = marquee_platform::redis::connect(&redis.url())
        .await
        .expect("redis");
    Some(CountedScene {
        redis,
        counter,
        app,
        show,
        c,
    })
}

/// Watcher `i` of a show: the first `anonymous` are not signed in, the others are.
async fn open_watcher(
    mut c: Client,
    show_id: &str,
    i: usize,
    anonymous: usize,
) -> (tonic::Streaming<pb::WatchSeatsResponse>, pb::SeatMap) {
    let request = pb::WatchSeatsRequest {
        show_id: show_id.to_owned(),
    };
    let request = if i < anonymous {
        tonic::Request::new(request)
    } else {
        authed(&customer(&format!("viewer{i}")), request)
    };
    let mut seats = c.watch_seats(request).await.expect("watch").into_inner();
    let first = snapshot_of(next_of(&mut seats).await);
    assert_eq!(state_in(&first, "A-1"), pb::SeatState::Sold);
    (seats, first)
}

/// After a Redis restart every watcher of a show is sent the map again, from one shared read
/// of the show: the seat map script (four GETs) runs a few times, not once per watcher, and a
/// signed-in viewer's own hold costs one GET of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_resync_from_one_shared_read() {
    const TEST: &str = "watchers_resync_from_one_shared_read";
    const ANONYMOUS: usize = 40;
    const SIGNED_IN: usize = 4;
    let Some(mut sc) = counted_scene(TEST).await else {
        return;
    };
    let mut watchers = Vec::new();
    for i in 0..ANONYMOUS + SIGNED_IN {
        let (seats, first) = open_watcher(sc.c.clone(), &sc.show.id, i, ANONYMOUS).await;
        watchers.push((seats, first.version));
    }

    sc.redis.restart().await;

    for (seats, before) in &mut watchers {
        let after = snapshot_of(next_of(seats).await);
        assert!(after.version > *before);
        assert_eq!(state_in(&after, "A-1"), pb::SeatState::Sold);
    }
    let counter = marquee_platform::redis::connect(&sc.redis.url())
        .await
        .expect("redis");
    let (gets, scripts) = (
        redis_calls(&counter, "get").await,
        redis_calls(&counter, "evalsha").await,
    );
    eprintln!(
        "{TEST}: {} watchers resynced with {gets} GETs and {scripts} EVALSHAs",
        watchers.len()
    );
    // One watcher's read alone is four GETs. Read per watcher, it was 352 (each watcher read
    // twice: the command connection and the pub/sub connection each reconnected).
    assert!(
        gets <= 4 * 4 + SIGNED_IN as u64,
        "{gets} GETs for {} watchers",
        watchers.len()
    );
    sc.app.stop().await;
}

/// Watchers that open a show's seat map together (a sale opens) share one read of it, and so
/// do those that open while nothing has changed since; one that opens after a change is never
/// sent a map without it, in its snapshot or in the change after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_open_from_one_shared_read() {
    const TEST: &str = "watchers_open_from_one_shared_read";
    const ANONYMOUS: usize = 60;
    const SIGNED_IN: usize = 4;
    const LATER: usize = 10;
    let Some(mut sc) = counted_scene(TEST).await else {
        return;
    };
    let reset = async |counter: &fred::prelude::Client| {
        use fred::prelude::ClientLike as _;
        let _: String = counter
            .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
            .await
            .expect("reset");
    };
    reset(&sc.counter).await;
    let opens =
        (0..ANONYMOUS + SIGNED_IN).map(|i| open_watcher(sc.c.clone(), &sc.show.id, i, ANONYMOUS));
    let mut watchers: Vec<_> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|(seats, _)| seats)
        .collect();
    let together = redis_calls(&sc.counter, "get").await;

    reset(&sc.counter).await;
    let carol = hold(&mut sc.c, &customer("carol"), &sc.show.id, &["B-2"])
        .await
        .expect("carol");
    let held_reads = redis_calls(&sc.counter, "get").await;
    for _ in 0..LATER {
        let (mut seats, first) = open_watcher(sc.c.clone(), &sc.show.id, 0, 1).await;
        if state_in(&first, "B-2") != pb::SeatState::Held {
            // The snapshot was read before the hold's event reached this instance: the event
            // comes next.
            let ch = change_of(next_of(&mut seats).await);
            assert_eq!(ch.version, first.version + 1);
            assert_eq!(ch.seats[0].seat_id, "B-2");
            assert_eq!(ch.seats[0].state(), pb::SeatState::Held);
        }
        watchers.push(seats);
    }
    let later = redis_calls(&sc.counter, "get").await - held_reads;
    eprintln!(
        "{TEST}: {} watchers opening together read with {together} GETs; {LATER} opening one \
         after the other after a change, {later}",
        ANONYMOUS + SIGNED_IN
    );
    // One watcher's read alone is four GETs: read per watcher, opening together took
    // 4 x 64 = 256, and the later ones 40.
    assert!(
        together <= 4 * 4 + SIGNED_IN as u64,
        "{together} GETs for {} watchers",
        ANONYMOUS + SIGNED_IN
    );
    assert!(later <= 4 * 2, "{later} GETs for {LATER} watchers");
    // Every watcher hears the next change.
    sc.c.release_hold(authed(
        &customer("carol"),
        pb::ReleaseHoldRequest {
            hold_id: carol.hold_id,
        },
    ))
    .await
    .expect("release");
    for seats in &mut watchers {
        let mut m = next_of(seats).await;
        if let Some(pb::watch_seats_response::Event::Change(ch)) = &m.event
            && ch.cause() == pb::SeatChangeCause::Held
        {
            m = next_of(seats).await;
        }
        let ch = change_of(m);
        assert_eq!(ch.cause(), pb::SeatChangeCause::Released);
    }
    sc.app.stop().await;
}

/// The holders' WatchHold streams check that their holds still exist (the store may lose them
/// without a reconnection: a flush, a failover) from one read of the show's holds per check
/// interval, not one read each; a hold made after such a read is not taken for lost, and a
/// loss reaches every holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_checks_share_one_read_per_show() {
    const TEST: &str = "hold_checks_share_one_read_per_show";
    const SEATS: [&str; 8] = ["A-2", "A-3", "A-4", "B-1", "B-2", "B-3", "B-4", "C-2"];
    const WINDOW_MS: u64 = 2_000;
    let Some(mut sc) = counted_scene(TEST).await else {
        return;
    };
    let interval = checked_often().hold_check_interval_ms;
    let open = async |c: &mut Client, who: &str, h: &pb::Hold| {
        let mut s = hold_stream(c, who, &h.hold_id).await;
        assert_eq!(next_hold(&mut s).await.0, pb::HoldEventKind::Active);
        s
    };
    let mut holders = Vec::new();
    for (i, seat) in SEATS.iter().enumerate() {
        let who = customer(&format!("holder{i}"));
        let h = hold(&mut sc.c, &who, &sc.show.id, &[seat])
            .await
            .expect("hold");
        let stream = open(&mut sc.c, &who, &h).await;
        holders.push((who, h, stream));
    }
    use fred::prelude::ClientLike as _;
    let _: String = sc
        .counter
        .custom(fred::cmd!("CONFIG"), vec!["RESETSTAT"])
        .await
        .expect("reset");
    tokio::time::sleep(Duration::from_millis(WINDOW_MS)).await;
    let (reads, hold_reads) = (
        redis_calls(&sc.counter, "zrange").await,
        redis_calls(&sc.counter, "hmget").await,
    );
    let checks = WINDOW_MS / interval;
    eprintln!(
        "{TEST}: {} holders, {checks} check intervals: {reads} reads of the show's holds, \
         {hold_reads} reads of single holds",
        SEATS.len()
    );
    // Read per holder, it was one read of a single hold per holder and interval (80 here).
    assert!(reads <= 2 * checks + 2, "{reads} reads");
    assert!(hold_reads <= 2, "{hold_reads} reads of single holds");

    // A hold made after the last read is not lost.
    let (who, h, mut stream) = holders.pop().expect("a holder");
    sc.c.release_hold(authed(
        &who,
        pb::ReleaseHoldRequest {
            hold_id: h.hold_id.clone(),
        },
    ))
    .await
    .expect("release");
    assert_eq!(next_hold(&mut stream).await.0, pb::HoldEventKind::Released);
    let late = customer("late");
    let h = hold(&mut sc.c, &late, &sc.show.id, &[SEATS[SEATS.len() - 1]])
        .await
        .expect("late hold");
    let mut stream = open(&mut sc.c, &late, &h).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(5 * interval), stream.next())
            .await
            .is_err(),
        "a live hold's stream stays quiet"
    );
    holders.push((late, h, stream));

    // The store loses every hold: each holder hears it.
    let _: String = sc
        .counter
        .custom(fred::cmd!("FLUSHALL"), Vec::<String>::new())
        .await
        .expect("flush");
    for (_, _, stream) in &mut holders {
        assert_eq!(next_hold(stream).await.0, pb::HoldEventKind::Lost);
    }
    sc.app.stop().await;
}

/// A user may hold and extend only so often (hoarding by script); the refusal says when to try
/// again and changes nothing; other users, service callers acting for the holder, and box office
/// staff are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_extensions_are_rate_limited_per_user() {
    use tonic_types::StatusExt as _;
    let config = marquee_seating::SeatingConfig {
        holds_per_user: marquee_platform::ratelimit::RateLimit {
            requests_per_minute: 1,
            burst: 3,
        },
        ..common::test_seating_config()
    };
    let app = TestApp::spawn_seating(
        "holds_rate_limited::sqlite",
        Backend::Sqlite,
        false,
        common::server_config(),
        config,
    )
    .await
    .expect("sqlite always runs");
    let v = common::venue(&app).await;
    let s = show(&app, &v, 86_400).await;
    let mut c = client(&app).await;
    let (alice, bob) = (customer("alice"), customer("bob"));
    hold(&mut c, &alice, &s.id, &["A-1"]).await.expect("1st");
    hold(&mut c, &alice, &s.id, &["A-2"]).await.expect("2nd");
    let third = hold(&mut c, &alice, &s.id, &["A-3"]).await.expect("3rd");

    let refused = hold(&mut c, &alice, &s.id, &["A-4"])
        .await
        .expect_err("a 4th within the minute");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let wait = refused
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    let extender = c.clone();
    let extend = |who: String| {
        let (mut c, hold_id) = (extender.clone(), third.hold_id.clone());
        async move {
            c.extend_hold(authed(
                &who,
                pb::ExtendHoldRequest {
                    hold_id,
                    extension: None,
                },
            ))
            .await
        }
    };
    assert_eq!(
        extend(alice.clone()).await.expect_err("same bucket").code(),
        Code::ResourceExhausted
    );
    // Nothing changed: the third hold stands, A-4 is free.
    let map = seat_map(&mut c, Some(&alice), &s.id).await;
    assert_eq!(state_of(&map, "A-3"), pb::SeatState::HeldByYou);
    assert_eq!(state_of(&map, "A-4"), pb::SeatState::Available);

    hold(&mut c, &bob, &s.id, &["A-4"])
        .await
        .expect("another user's bucket is full");
    extend(token("booking", &[Role::Service]))
        .await
        .expect("a service caller extends for the holder");
    // Box office staff sell their allotment to one walk-in customer after another.
    allot_to_box_office(&app, &s.id, &["C-1", "C-2"]).await;
    let staff = token("frank", &[Role::Staff]);
    for i in 0..6 {
        hold(&mut c, &staff, &s.id, &[["C-1", "C-2"][i % 2]])
            .await
            .expect("box office holds are not rate-limited");
    }
    app.stop().await;
}
