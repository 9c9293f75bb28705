//! Booking end to end through gRPC, on SQLite (what `marquee up` runs) and PostgreSQL + Redis:
//! a customer holds seats at seating, books them, pays on the mock checkout, and the saga takes
//! the booking to INVOICED; declines, abandoned payments, races and other customers' attempts.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, authed, bad_fields, reason, rid};
use marquee_proto::{
    booking::v1::{self as pb, booking_service_client::BookingServiceClient},
    catalog::v1 as cat,
    payments::v1::{self as pay, mock_checkout_service_client::MockCheckoutServiceClient},
    seating::v1::{self as seat, seating_service_client::SeatingServiceClient},
};
use tokio_stream::StreamExt as _;
use tonic::{Code, transport::Channel};

type Bookings = BookingServiceClient<Channel>;

struct World {
    app: TestApp,
    show: cat::Show,
}

async fn world(app: TestApp) -> World {
    let v = common::venue(&app).await;
    let show = app
        .admin()
        .await
        .schedule_show(common::schedule(&v, common::now() + 86_400))
        .await
        .expect("schedule")
        .into_inner()
        .show
        .expect("show");
    World { app, show }
}

async fn customer(app: &TestApp) -> String {
    app.customer().await.1.access_token
}

async fn bookings(app: &TestApp) -> Bookings {
    BookingServiceClient::new(app.channel().await)
}

async fn hold(w: &World, who: &str, seats: &[&str]) -> seat::Hold {
    SeatingServiceClient::new(w.app.channel().await)
        .hold_seats(authed(
            who,
            seat::HoldSeatsRequest {
                request_id: rid(),
                show_id: w.show.id.clone(),
                selection: Some(seat::hold_seats_request::Selection::Seats(
                    seat::SeatSelection {
                        seat_ids: seats.iter().map(|s| (*s).to_owned()).collect(),
                    },
                )),
            },
        ))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold")
}

async fn create(c: &mut Bookings, who: &str, hold_id: &str) -> Result<pb::Booking, tonic::Status> {
    c.create_booking(authed(
        who,
        pb::CreateBookingRequest {
            request_id: rid(),
            hold_id: hold_id.to_owned(),
        },
    ))
    .await
    .map(|r| r.into_inner().booking.expect("booking"))
}

async fn start(
    c: &mut Bookings,
    who: &str,
    booking_id: &str,
) -> Result<pb::StartPaymentResponse, tonic::Status> {
    c.start_payment(authed(
        who,
        pb::StartPaymentRequest {
            request_id: rid(),
            booking_id: booking_id.to_owned(),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

async fn get(c: &mut Bookings, who: &str, booking_id: &str) -> Result<pb::Booking, tonic::Status> {
    c.get_booking(authed(
        who,
        pb::GetBookingRequest {
            booking_id: booking_id.to_owned(),
        },
    ))
    .await
    .map(|r| r.into_inner().booking.expect("booking"))
}

async fn pay(app: &TestApp, provider_order_id: &str, outcome: pay::Outcome) {
    MockCheckoutServiceClient::new(app.channel().await)
        .pay(pay::PayRequest {
            provider_order_id: provider_order_id.to_owned(),
            outcome: outcome as i32,
        })
        .await
        .expect("pay");
}

/// Waits (bounded polling, no timing assertion) until the booking reaches `want`.
async fn until(
    c: &mut Bookings,
    who: &str,
    booking_id: &str,
    want: pb::BookingStatus,
) -> pb::Booking {
    let mut last = None;
    for _ in 0..600 {
        let b = get(c, who, booking_id).await.expect("get");
        if b.status() == want {
            return b;
        }
        last = Some(b);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("booking never reached {want:?}: {last:#?}");
}

async fn seat_states(w: &World) -> Vec<(String, seat::SeatState)> {
    SeatingServiceClient::new(w.app.channel().await)
        .get_seat_map(seat::GetSeatMapRequest {
            show_id: w.show.id.clone(),
        })
        .await
        .expect("seat map")
        .into_inner()
        .seat_map
        .expect("map")
        .seats
        .into_iter()
        .map(|s| (s.seat_id.clone(), s.state()))
        .collect()
}

fn state(map: &[(String, seat::SeatState)], seat: &str) -> seat::SeatState {
    map.iter()
        .find(|(s, _)| s == seat)
        .map(|(_, st)| *st)
        .expect("seat")
}

fn statuses(b: &pb::Booking) -> Vec<pb::BookingStatus> {
    b.history.iter().map(|h| h.to_status()).collect()
}

async fn happy_path_to_invoiced(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let h = hold(&w, &me, &["A-1", "A-2"]).await;

    // Booking: priced from the show (PRIME 350.00 each), with a readable code.
    let request_id = rid();
    let request = pb::CreateBookingRequest {
        request_id: request_id.clone(),
        hold_id: h.hold_id.clone(),
    };
    let b = c
        .create_booking(authed(&me, request.clone()))
        .await
        .expect("create")
        .into_inner()
        .booking
        .expect("booking");
    assert_eq!(b.status(), pb::BookingStatus::PreBooking);
    assert_eq!(b.code.len(), 10);
    assert!(!b.code.contains(['I', 'L', 'O', 'U']));
    assert_eq!(b.items.len(), 2);
    assert!(
        b.items.iter().all(|i| i.category_code == "PRIME"
            && i.price.as_ref().map(|p| p.amount_minor) == Some(35_000))
    );
    assert_eq!(b.total.as_ref().map(|t| t.amount_minor), Some(70_000));
    // A retry returns the first result; the key with another hold is refused.
    let again = c
        .create_booking(authed(&me, request))
        .await
        .expect("retry")
        .into_inner()
        .booking
        .expect("booking");
    assert_eq!(again.id, b.id);
    let other = c
        .create_booking(authed(
            &me,
            pb::CreateBookingRequest {
                request_id,
                hold_id: format!("{}x", h.hold_id),
            },
        ))
        .await
        .expect_err("key reused");
    assert_eq!(bad_fields(&other), vec!["request_id".to_owned()]);

    // Payment starts: the hold is extended and an order made; a retry gives the same order.
    let started = start(&mut c, &me, &b.id).await.expect("start payment");
    let booking = started.booking.expect("booking");
    assert_eq!(booking.status(), pb::BookingStatus::PaymentInitiated);
    let checkout = started.checkout.expect("checkout");
    assert!(!checkout.provider_order_id.is_empty());
    assert_eq!(
        checkout.amount.as_ref().map(|a| a.amount_minor),
        Some(70_000)
    );
    let again = start(&mut c, &me, &b.id).await.expect("start again");
    assert_eq!(
        again.checkout.expect("checkout").provider_order_id,
        checkout.provider_order_id
    );

    // The checkout page watches the booking while the customer pays.
    let mut watch = c
        .watch_booking(authed(
            &me,
            pb::WatchBookingRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first").expect("ok");
    assert_eq!(
        first.booking.expect("booking").status(),
        pb::BookingStatus::PaymentInitiated
    );

    pay(&w.app, &checkout.provider_order_id, pay::Outcome::Success).await;
    let done = until(&mut c, &me, &b.id, pb::BookingStatus::Invoiced).await;
    assert_eq!(
        statuses(&done),
        vec![
            pb::BookingStatus::PreBooking,
            pb::BookingStatus::PaymentInitiated,
            pb::BookingStatus::PaymentCompleted,
            pb::BookingStatus::BookingCompleted,
            pb::BookingStatus::Invoiced,
        ]
    );
    assert!(
        done.history
            .iter()
            .all(|h| !h.cause.is_empty() && h.change_time.is_some())
    );
    let mut seats: Vec<_> = done.tickets.iter().map(|t| t.seat_id.clone()).collect();
    seats.sort();
    assert_eq!(seats, vec!["A-1".to_owned(), "A-2".to_owned()]);
    assert!(done.parked_reason.is_empty());

    // The watcher saw the booking reach INVOICED.
    let mut seen = Vec::new();
    while let Some(Ok(m)) = watch.next().await {
        let s = m.booking.expect("booking").status();
        seen.push(s);
        if s == pb::BookingStatus::Invoiced {
            break;
        }
    }
    assert_eq!(seen.last(), Some(&pb::BookingStatus::Invoiced), "{seen:?}");

    let map = seat_states(&w).await;
    assert_eq!(state(&map, "A-1"), seat::SeatState::Sold);
    assert_eq!(state(&map, "A-2"), seat::SeatState::Sold);

    // A declined attempt leaves the booking payable: a second attempt succeeds.
    let h2 = hold(&w, &me, &["B-1"]).await;
    let b2 = create(&mut c, &me, &h2.hold_id)
        .await
        .expect("second booking");
    assert_eq!(
        b2.items[0].price.as_ref().map(|p| p.amount_minor),
        Some(20_000)
    );
    let order = start(&mut c, &me, &b2.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout")
        .provider_order_id;
    pay(&w.app, &order, pay::Outcome::Decline).await;
    pay(&w.app, &order, pay::Outcome::Success).await;
    until(&mut c, &me, &b2.id, pb::BookingStatus::Invoiced).await;

    // Both bookings are listed, newest first, a page at a time.
    let page = c
        .list_my_bookings(authed(
            &me,
            pb::ListMyBookingsRequest {
                page_size: 1,
                page_token: String::new(),
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.bookings.len(), 1);
    assert_eq!(page.bookings[0].id, b2.id);
    let rest = c
        .list_my_bookings(authed(
            &me,
            pb::ListMyBookingsRequest {
                page_size: 1,
                page_token: page.next_page_token,
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(rest.bookings.len(), 1);
    assert_eq!(rest.bookings[0].id, b.id);
    w.app.stop().await;
}

/// A short payment window: abandoned and declined payments end the booking and free the seats.
fn short_window() -> marquee_booking::BookingConfig {
    marquee_booking::BookingConfig {
        payment_window_ms: 3_000,
        ..marquee_booking::BookingConfig::default()
    }
}

async fn unpaid_bookings_end(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let mut c = bookings(&w.app).await;

    // No answer from the bank: the booking expires and the hold is released.
    let h = hold(&w, &me, &["A-3"]).await;
    let b = create(&mut c, &me, &h.hold_id).await.expect("create");
    let order = start(&mut c, &me, &b.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout")
        .provider_order_id;
    pay(&w.app, &order, pay::Outcome::NoAnswer).await;
    let expired = until(&mut c, &me, &b.id, pb::BookingStatus::Expired).await;
    let last = expired.history.last().expect("history");
    assert!(last.cause.contains("no payment"), "{}", last.cause);
    assert_eq!(
        state(&seat_states(&w).await, "A-3"),
        seat::SeatState::Available
    );
    assert!(expired.tickets.is_empty());
    // An expired booking cannot be paid.
    let refused = start(&mut c, &me, &b.id).await.expect_err("expired");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    // Only declines until the window closes: the payment failed, with the reason.
    let h = hold(&w, &me, &["A-4"]).await;
    let b = create(&mut c, &me, &h.hold_id).await.expect("create");
    let order = start(&mut c, &me, &b.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout")
        .provider_order_id;
    pay(&w.app, &order, pay::Outcome::Decline).await;
    let failed = until(&mut c, &me, &b.id, pb::BookingStatus::PaymentFailed).await;
    let last = failed.history.last().expect("history");
    assert!(last.cause.contains("declined"), "{}", last.cause);
    assert_eq!(
        state(&seat_states(&w).await, "A-4"),
        seat::SeatState::Available
    );
    w.app.stop().await;
}

async fn one_hold_backs_one_booking(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let h = hold(&w, &me, &["B-2", "B-3"]).await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut c = bookings(&w.app).await;
        let me = me.clone();
        let hold_id = h.hold_id.clone();
        tasks.push(tokio::spawn(
            async move { create(&mut c, &me, &hold_id).await },
        ));
    }
    let mut won = 0;
    let mut lost = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => won += 1,
            Err(s) => lost.push(s),
        }
    }
    assert_eq!(won, 1, "{lost:?}");
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].code(), Code::FailedPrecondition, "{:?}", lost[0]);
    assert_eq!(reason(&lost[0]), "HOLD_ALREADY_BOOKED");
    w.app.stop().await;
}

async fn others_cannot_touch_a_booking(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let them = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let h = hold(&w, &me, &["C-1"]).await;

    // Another customer cannot book my hold.
    let refused = create(&mut c, &them, &h.hold_id)
        .await
        .expect_err("not theirs");
    assert_eq!(refused.code(), Code::NotFound);
    let b = create(&mut c, &me, &h.hold_id).await.expect("create");

    assert_eq!(
        get(&mut c, &them, &b.id).await.expect_err("read").code(),
        Code::NotFound
    );
    assert_eq!(
        start(&mut c, &them, &b.id).await.expect_err("pay").code(),
        Code::NotFound
    );
    let watch = c
        .watch_booking(authed(
            &them,
            pb::WatchBookingRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect_err("watch");
    assert_eq!(watch.code(), Code::NotFound);
    let listed = c
        .list_my_bookings(authed(&them, pb::ListMyBookingsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.bookings.is_empty());
    // Still mine, untouched.
    assert_eq!(
        get(&mut c, &me, &b.id).await.expect("mine").status(),
        pb::BookingStatus::PreBooking
    );
    // Without a token nothing is answered.
    let anonymous = c
        .get_booking(pb::GetBookingRequest {
            booking_id: b.id.clone(),
        })
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    w.app.stop().await;
}

async fn bad_input_names_its_field(app: TestApp) {
    let me = customer(&app).await;
    let mut c = bookings(&app).await;
    let e = c
        .create_booking(authed(&me, pb::CreateBookingRequest::default()))
        .await
        .expect_err("empty");
    assert_eq!(
        bad_fields(&e),
        vec!["request_id".to_owned(), "hold_id".to_owned()]
    );
    let e = c
        .start_payment(authed(
            &me,
            pb::StartPaymentRequest {
                request_id: "has space".into(),
                booking_id: "nope".into(),
            },
        ))
        .await
        .expect_err("bad");
    assert_eq!(
        bad_fields(&e),
        vec!["request_id".to_owned(), "booking_id".to_owned()]
    );
    let e = get(&mut c, &me, "").await.expect_err("empty id");
    assert_eq!(bad_fields(&e), vec!["booking_id".to_owned()]);
    let e = c
        .list_my_bookings(authed(
            &me,
            pb::ListMyBookingsRequest {
                page_size: -1,
                page_token: String::new(),
            },
        ))
        .await
        .expect_err("page size");
    assert_eq!(bad_fields(&e), vec!["page_size".to_owned()]);
    let e = c
        .list_my_bookings(authed(
            &me,
            pb::ListMyBookingsRequest {
                page_size: 0,
                page_token: "garbage!".into(),
            },
        ))
        .await
        .expect_err("token");
    assert_eq!(bad_fields(&e), vec!["page_token".to_owned()]);
    // An unknown hold is not found.
    let e = create(&mut c, &me, "no-such-hold").await.expect_err("hold");
    assert_eq!(e.code(), Code::NotFound);
    app.stop().await;
}

macro_rules! booking_scenarios {
    ($($scenario:ident => $config:expr),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let name = concat!(stringify!($scenario), "::sqlite");
                if let Some(app) = TestApp::spawn_booking(name, Backend::Sqlite, $config).await {
                    super::$scenario(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let name = concat!(stringify!($scenario), "::postgres");
                if let Some(app) = TestApp::spawn_booking(name, Backend::Postgres, $config).await {
                    super::$scenario(app).await;
                }
            }
        }
    )*};
}

booking_scenarios!(
    happy_path_to_invoiced => marquee_booking::BookingConfig::default(),
    unpaid_bookings_end => short_window(),
    one_hold_backs_one_booking => marquee_booking::BookingConfig::default(),
    others_cannot_touch_a_booking => marquee_booking::BookingConfig::default(),
    bad_input_names_its_field => marquee_booking::BookingConfig::default(),
);
