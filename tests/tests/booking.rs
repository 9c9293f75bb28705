//! Booking end to end through gRPC, on SQLite (what `marquee up` runs) and PostgreSQL + Redis:
//! a customer holds seats at seating, books them, pays on the mock checkout, and the saga takes
//! the booking to INVOICED; declines, abandoned payments, races and other customers' attempts.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{Backend, TestApp, authed, bad_fields, reason, rid, token, token_for};
use marquee_platform::auth::Role;
use marquee_proto::{
    booking::v1::{
        self as pb, booking_operations_service_client::BookingOperationsServiceClient,
        booking_service_client::BookingServiceClient,
    },
    catalog::v1 as cat,
    payments::v1::{
        self as pay, mock_checkout_service_client::MockCheckoutServiceClient,
        payment_service_client::PaymentServiceClient,
    },
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
    world_with(app, common::small_layout(), 86_400).await
}

/// A venue with `layout` and a show starting `starts_in` seconds from now.
async fn world_with(app: TestApp, layout: cat::SeatLayout, starts_in: i64) -> World {
    let v = common::venue_with(&app, layout).await;
    let show = common::show_in(&app, &v, starts_in).await;
    World { app, show }
}

/// What payments says about an order (asked with a service token, as booking asks).
async fn order(app: &TestApp, order_id: &str) -> pay::Order {
    PaymentServiceClient::new(app.channel().await)
        .get_payment(authed(
            &token("booking-tests", &[Role::Service]),
            pay::GetPaymentRequest {
                order_id: order_id.to_owned(),
            },
        ))
        .await
        .expect("get payment")
        .into_inner()
        .order
        .expect("order")
}

fn minor(m: &Option<marquee_proto::common::v1::Money>) -> i64 {
    m.as_ref().map(|m| m.amount_minor).expect("money")
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

async fn seat_states(w: &World) -> HashMap<String, seat::SeatState> {
    common::seat_states(w.app.channel().await, &w.show.id).await
}

fn state(map: &HashMap<String, seat::SeatState>, seat: &str) -> seat::SeatState {
    *map.get(seat).expect("seat")
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
    // The default fee policy: 5% convenience fee per seat, 18% tax on the fee.
    assert!(b.items.iter().all(|i| i.category_code == "PRIME"
        && minor(&i.price) == 35_000
        && minor(&i.convenience_fee) == 1_750
        && minor(&i.tax) == 315));
    assert_eq!(minor(&b.total), 2 * (35_000 + 1_750 + 315));
    assert!(b.movie_title.starts_with("The Test Movie"), "{b:?}");
    assert_eq!(b.theatre_name, "Galaxy Cinemas");
    assert_eq!(b.screen_name, "Audi 1");
    assert_eq!(b.show_start_time, w.show.start_time);
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
    assert_eq!(minor(&checkout.amount), 74_130);
    // Marquee's share of the order is the fees and their tax; the theatre is owed the prices.
    let o = order(&w.app, &booking.payment.as_ref().expect("payment").order_id).await;
    assert_eq!(minor(&o.platform_fee), 2 * (1_750 + 315));
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
    // The bank answers after all, late: the order is closed, so payments voids the payment
    // at once and nothing is captured.
    pay(&w.app, &order, pay::Outcome::Success).await;
    let late = until_order(
        &w.app,
        &expired.payment.as_ref().expect("payment").order_id,
        |o| {
            o.attempts
                .iter()
                .any(|a| a.status() == pay::AttemptStatus::Voided)
        },
    )
    .await;
    assert_eq!(minor(&late.captured), 0, "{late:?}");
    assert_eq!(
        get(&mut c, &me, &b.id).await.expect("get").status(),
        pb::BookingStatus::Expired
    );

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

/// Books `seats` for `who` and pays: the booking reaches INVOICED.
async fn book_and_pay(w: &World, who: &str, seats: &[&str]) -> pb::Booking {
    let mut c = bookings(&w.app).await;
    let h = hold(w, who, seats).await;
    let b = create(&mut c, who, &h.hold_id).await.expect("create");
    let checkout = start(&mut c, who, &b.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout");
    pay(&w.app, &checkout.provider_order_id, pay::Outcome::Success).await;
    until(&mut c, who, &b.id, pb::BookingStatus::Invoiced).await
}

async fn admit(
    c: &mut Bookings,
    who: &str,
    request_id: &str,
    ticket: pb::admit_ticket_request::Ticket,
) -> Result<pb::AdmitTicketResponse, tonic::Status> {
    c.admit_ticket(authed(
        who,
        pb::AdmitTicketRequest {
            request_id: request_id.to_owned(),
            ticket: Some(ticket),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

async fn cancel(
    c: &mut Bookings,
    who: &str,
    request_id: &str,
    booking_id: &str,
) -> Result<pb::CancelBookingResponse, tonic::Status> {
    c.cancel_booking(authed(
        who,
        pb::CancelBookingRequest {
            request_id: request_id.to_owned(),
            booking_id: booking_id.to_owned(),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

async fn invoices_tickets_and_the_door(app: TestApp) {
    use pb::admit_ticket_request::Ticket;
    let w = world(app).await;
    let me = customer(&w.app).await;
    let them = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let b = book_and_pay(&w, &me, &["A-3", "B-4"]).await;

    // The invoice: one line per seat with price, fee and tax, totals, a gapless number.
    let inv = c
        .get_invoice(authed(
            &me,
            pb::GetInvoiceRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("invoice")
        .into_inner();
    let invoice = inv.invoice.expect("invoice");
    assert!(invoice.number.starts_with("INV-"), "{}", invoice.number);
    assert!(invoice.number.ends_with("-000001"), "{}", invoice.number);
    assert_eq!(invoice.booking_code, b.code);
    assert_eq!(invoice.lines.len(), 2);
    let a3 = invoice
        .lines
        .iter()
        .find(|l| l.seat_id == "A-3")
        .expect("A-3");
    assert_eq!(
        (
            minor(&a3.price),
            minor(&a3.convenience_fee),
            minor(&a3.tax),
            minor(&a3.total)
        ),
        (35_000, 1_750, 315, 37_065)
    );
    let b4 = invoice
        .lines
        .iter()
        .find(|l| l.seat_id == "B-4")
        .expect("B-4");
    assert_eq!(
        (minor(&b4.price), minor(&b4.convenience_fee), minor(&b4.tax)),
        (20_000, 1_000, 180)
    );
    assert_eq!(minor(&invoice.subtotal), 55_000);
    assert_eq!(minor(&invoice.convenience_fees), 2_750);
    assert_eq!(minor(&invoice.tax), 495);
    assert_eq!(minor(&invoice.total), 58_245);
    assert_eq!(minor(&invoice.total), minor(&b.total));
    assert_eq!(invoice.tax_basis_points, 1_800);
    assert!(inv.html.starts_with("<!DOCTYPE html>"));
    // The show's time as people at the venue read it: the city's zone (Asia/Kolkata, +05:30).
    let start = b.show_start_time.expect("show start");
    let local = chrono::DateTime::from_timestamp(start.seconds, 0)
        .expect("start")
        .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("offset"))
        .format("Show: %Y-%m-%d %H:%M IST")
        .to_string();
    for needle in [
        invoice.number.as_str(),
        "A-3",
        "INR 370.65",
        "INR 582.45",
        "Galaxy Cinemas",
        local.as_str(),
    ] {
        assert!(
            inv.html.contains(needle),
            "{needle} missing from the invoice"
        );
    }
    // Nobody else's.
    let e = c
        .get_invoice(authed(
            &them,
            pb::GetInvoiceRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect_err("theirs");
    assert_eq!(e.code(), Code::NotFound);

    // The ticket: code, seats, a signed token and its QR code.
    let ticket = c
        .get_ticket(authed(
            &me,
            pb::GetTicketRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("ticket")
        .into_inner()
        .ticket
        .expect("ticket");
    assert_eq!(ticket.booking_code, b.code);
    let mut seats = ticket.seat_ids.clone();
    seats.sort();
    assert_eq!(seats, vec!["A-3".to_owned(), "B-4".to_owned()]);
    assert!(ticket.qr_svg.contains("<svg"), "not an SVG");
    assert_eq!(ticket.token.split('.').count(), 3, "a JWT");
    // A scanner checks it offline with the published keys.
    let jwks = c
        .get_ticket_keys(pb::GetTicketKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
        .jwks_json;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks).expect("jwks");
    let header = jsonwebtoken::decode_header(&ticket.token).expect("header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("key published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["marquee-door"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &ticket.token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("the ticket verifies offline")
    .claims;
    assert_eq!(claims["code"], b.code.as_str());
    assert_eq!(claims["theatre"], w.show.theatre_id.as_str());

    // The door: customers and staff of another theatre cannot admit.
    let staff = token_for("door-1", &[Role::Staff], &[w.show.theatre_id.as_str()]);
    let elsewhere = token_for("door-9", &[Role::Staff], &["another-theatre"]);
    let e = admit(&mut c, &me, &rid(), Ticket::BookingCode(b.code.clone()))
        .await
        .expect_err("customer");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = admit(
        &mut c,
        &elsewhere,
        &rid(),
        Ticket::TicketToken(ticket.token.clone()),
    )
    .await
    .expect_err("other theatre");
    assert_eq!(e.code(), Code::PermissionDenied);
    // A forged or damaged token is refused.
    let mut forged = ticket.token.clone();
    forged.pop();
    forged.push(if ticket.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let e = admit(&mut c, &staff, &rid(), Ticket::TicketToken(forged))
        .await
        .expect_err("forged");
    assert_eq!(bad_fields(&e), vec!["ticket_token".to_owned()]);
    let e = admit(&mut c, &staff, &rid(), Ticket::BookingCode("nope".into()))
        .await
        .expect_err("bad code");
    assert_eq!(bad_fields(&e), vec!["booking_code".to_owned()]);
    let e = admit(
        &mut c,
        &staff,
        &rid(),
        Ticket::BookingCode("0000000000".into()),
    )
    .await
    .expect_err("unknown code");
    assert_eq!(e.code(), Code::NotFound);

    // Staff of the theatre admit once, by the QR token.
    let scan = rid();
    let first = admit(
        &mut c,
        &staff,
        &scan,
        Ticket::TicketToken(ticket.token.clone()),
    )
    .await
    .expect("admit");
    assert_eq!(first.admission(), pb::Admission::Admitted);
    assert_eq!(first.booking_code, b.code);
    assert_eq!(first.seat_ids.len(), 2);
    // The same scan retried (a flaky network) gets the first answer.
    let retried = admit(
        &mut c,
        &staff,
        &scan,
        Ticket::TicketToken(ticket.token.clone()),
    )
    .await
    .expect("retry");
    assert_eq!(retried.admission(), pb::Admission::Admitted);
    // A second scan, by the code read aloud in lower case with a dash: already admitted.
    let spoken = format!("{}-{}", &b.code[..5], &b.code[5..]).to_lowercase();
    let second = admit(&mut c, &staff, &rid(), Ticket::BookingCode(spoken))
        .await
        .expect("second scan");
    assert_eq!(second.admission(), pb::Admission::AlreadyAdmitted);
    assert_eq!(second.admit_time, first.admit_time);
    let after = get(&mut c, &me, &b.id).await.expect("get");
    assert_eq!(after.admit_time, first.admit_time);
    // Admitted bookings are not cancelled.
    let e = cancel(&mut c, &me, &rid(), &b.id)
        .await
        .expect_err("admitted");
    assert_eq!(reason(&e), "ALREADY_ADMITTED");

    // Settlement is an internal step: services only.
    let mut ops = BookingOperationsServiceClient::new(w.app.channel().await);
    let settle = pb::RecordSettlementRequest {
        request_id: rid(),
        booking_id: b.id.clone(),
        settlement_reference: "payout-1".into(),
    };
    let e = ops
        .record_settlement(authed(&me, settle.clone()))
        .await
        .expect_err("customer");
    assert_eq!(e.code(), Code::PermissionDenied);
    let settled = ops
        .record_settlement(authed(
            &token("settlement", &[Role::Service]),
            settle.clone(),
        ))
        .await
        .expect("settle")
        .into_inner()
        .booking
        .expect("booking");
    assert_eq!(settled.status(), pb::BookingStatus::SettlementDone);
    assert_eq!(
        statuses(&settled).last(),
        Some(&pb::BookingStatus::SettlementDone)
    );
    w.app.stop().await;
}

async fn cancellation_and_refund(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let them = customer(&w.app).await;
    let mut c = bookings(&w.app).await;

    // Completed, a day before the show: cancelled, refunded in full, seats back on sale.
    let b = book_and_pay(&w, &me, &["A-1", "A-2"]).await;
    let e = cancel(&mut c, &them, &rid(), &b.id)
        .await
        .expect_err("not theirs");
    assert_eq!(e.code(), Code::NotFound);
    let key = rid();
    let cancelled = cancel(&mut c, &me, &key, &b.id).await.expect("cancel");
    assert_eq!(minor(&cancelled.refund), minor(&b.total));
    assert!(matches!(
        cancelled.booking.as_ref().expect("booking").status(),
        pb::BookingStatus::Cancelled | pb::BookingStatus::Refunded
    ));
    let refunded = until(&mut c, &me, &b.id, pb::BookingStatus::Refunded).await;
    assert_eq!(minor(&refunded.refund), minor(&b.total));
    assert_eq!(
        statuses(&refunded)[4..],
        [
            pb::BookingStatus::Invoiced,
            pb::BookingStatus::Cancelled,
            pb::BookingStatus::Refunded
        ]
    );
    // A retry of the cancellation answers the same; the money went back once.
    let again = cancel(&mut c, &me, &key, &b.id).await.expect("retry");
    assert_eq!(minor(&again.refund), minor(&b.total));
    let o = order(
        &w.app,
        &refunded.payment.as_ref().expect("payment").order_id,
    )
    .await;
    assert_eq!(o.status(), pay::OrderStatus::Refunded);
    assert_eq!(minor(&o.refunded), minor(&b.total));
    assert_eq!(o.refunds.len(), 1);
    let map = seat_states(&w).await;
    assert_eq!(state(&map, "A-1"), seat::SeatState::Available);
    assert_eq!(state(&map, "A-2"), seat::SeatState::Available);
    // No ticket any more.
    let e = c
        .get_ticket(authed(
            &me,
            pb::GetTicketRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect_err("no ticket");
    assert_eq!(reason(&e), "NO_TICKET");
    // And the seats sell again.
    book_and_pay(&w, &them, &["A-1"]).await;

    // Before payment: cancelled, the hold released, nothing to refund.
    let h = hold(&w, &me, &["B-1"]).await;
    let pre = create(&mut c, &me, &h.hold_id).await.expect("create");
    let done = cancel(&mut c, &me, &rid(), &pre.id).await.expect("cancel");
    assert_eq!(minor(&done.refund), 0);
    assert_eq!(
        done.booking.expect("booking").status(),
        pb::BookingStatus::Cancelled
    );
    until_seat(&w, "B-1", seat::SeatState::Available).await;

    // While paying: cancelled; a payment made afterwards is voided, never captured.
    let h = hold(&w, &me, &["B-2"]).await;
    let paying = create(&mut c, &me, &h.hold_id).await.expect("create");
    let checkout = start(&mut c, &me, &paying.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout");
    cancel(&mut c, &me, &rid(), &paying.id)
        .await
        .expect("cancel while paying");
    pay(&w.app, &checkout.provider_order_id, pay::Outcome::Success).await;
    let order_id = get(&mut c, &me, &paying.id)
        .await
        .expect("get")
        .payment
        .expect("payment")
        .order_id;
    let voided = until_order(&w.app, &order_id, |o| {
        o.attempts
            .iter()
            .any(|a| a.status() == pay::AttemptStatus::Voided)
    })
    .await;
    assert_eq!(minor(&voided.captured), 0, "{voided:?}");
    assert_eq!(
        get(&mut c, &me, &paying.id).await.expect("get").status(),
        pb::BookingStatus::Cancelled
    );
    until_seat(&w, "B-2", seat::SeatState::Available).await;
    w.app.stop().await;
}

/// Inside the cut-off (the show starts in an hour; the cut-off is two hours): refused, and
/// nothing changes.
async fn no_cancellation_near_the_show(app: TestApp) {
    let w = world_with(app, common::small_layout(), 3_600).await;
    let me = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let late = book_and_pay(&w, &me, &["C-1"]).await;
    let e = cancel(&mut c, &me, &rid(), &late.id)
        .await
        .expect_err("too late");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "CANCELLATION_CLOSED");
    assert_eq!(
        get(&mut c, &me, &late.id).await.expect("get").status(),
        pb::BookingStatus::Invoiced
    );
    w.app.stop().await;
}

async fn until_seat(w: &World, seat_id: &str, want: seat::SeatState) {
    for _ in 0..200 {
        if state(&seat_states(w).await, seat_id) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("seat {seat_id} never became {want:?}");
}

async fn until_order(
    app: &TestApp,
    order_id: &str,
    done: impl Fn(&pay::Order) -> bool,
) -> pay::Order {
    let mut last = None;
    for _ in 0..200 {
        let o = order(app, order_id).await;
        if done(&o) {
            return o;
        }
        last = Some(o);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order never got there: {last:#?}");
}

async fn hold_lost_during_payment(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let h = hold(&w, &me, &["A-4"]).await;
    let b = create(&mut c, &me, &h.hold_id).await.expect("create");
    let checkout = start(&mut c, &me, &b.id)
        .await
        .expect("start")
        .checkout
        .expect("checkout");
    // The hold goes (released at seating) while the customer is on the payment page.
    SeatingServiceClient::new(w.app.channel().await)
        .release_hold(authed(
            &me,
            seat::ReleaseHoldRequest {
                hold_id: h.hold_id.clone(),
            },
        ))
        .await
        .expect("release");
    pay(&w.app, &checkout.provider_order_id, pay::Outcome::Success).await;
    let expired = until(&mut c, &me, &b.id, pb::BookingStatus::Expired).await;
    let cause = &expired.history.last().expect("history").cause;
    assert!(
        cause.contains("hold expired before the payment could be captured"),
        "{cause}"
    );
    assert!(expired.tickets.is_empty());
    // The authorised payment was voided, never captured.
    let o = until_order(&w.app, &expired.payment.expect("payment").order_id, |o| {
        o.attempts
            .iter()
            .any(|a| a.status() == pay::AttemptStatus::Voided)
    })
    .await;
    assert_eq!(minor(&o.captured), 0);
    assert_eq!(
        state(&seat_states(&w).await, "A-4"),
        seat::SeatState::Available
    );
    w.app.stop().await;
}

/// 100 customers book distinct seats at once: every booking completes, each seat once.
async fn a_hundred_bookings_at_once(app: TestApp) {
    const CUSTOMERS: usize = 100;
    let w = world_with(app, common::grid_layout(11, 10), 86_400).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CUSTOMERS {
        let seat = format!("{}-{}", char::from(b'A' + (i / 10) as u8), i % 10 + 1);
        let who = token(&format!("customer-{i}"), &[Role::Customer]);
        let channel = w.app.channel().await;
        let show_id = w.show.id.clone();
        let app_channel = channel.clone();
        tasks.spawn(async move {
            let h = SeatingServiceClient::new(channel.clone())
                .hold_seats(authed(
                    &who,
                    seat::HoldSeatsRequest {
                        request_id: rid(),
                        show_id,
                        selection: Some(seat::hold_seats_request::Selection::Seats(
                            seat::SeatSelection {
                                seat_ids: vec![seat.clone()],
                            },
                        )),
                    },
                ))
                .await
                .expect("hold")
                .into_inner()
                .hold
                .expect("hold");
            let mut c = BookingServiceClient::new(channel);
            let b = create(&mut c, &who, &h.hold_id).await.expect("create");
            let checkout = start(&mut c, &who, &b.id)
                .await
                .expect("start")
                .checkout
                .expect("checkout");
            MockCheckoutServiceClient::new(app_channel)
                .pay(pay::PayRequest {
                    provider_order_id: checkout.provider_order_id,
                    outcome: pay::Outcome::Success as i32,
                })
                .await
                .expect("pay");
            let done = until(&mut c, &who, &b.id, pb::BookingStatus::Invoiced).await;
            let number = c
                .get_invoice(authed(
                    &who,
                    pb::GetInvoiceRequest {
                        booking_id: b.id.clone(),
                    },
                ))
                .await
                .expect("invoice")
                .into_inner()
                .invoice
                .expect("invoice")
                .number;
            (seat, done, number)
        });
    }
    let mut seats = Vec::new();
    let mut numbers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (seat, b, number) = done.expect("task");
        assert_eq!(b.tickets.len(), 1);
        assert_eq!(b.tickets[0].seat_id, seat);
        seats.push(seat);
        numbers.push(number);
    }
    assert_eq!(seats.len(), CUSTOMERS);
    // One theatre, one year: invoice numbers 1..=100 without a gap or a repeat.
    let mut sequences: Vec<u32> = numbers
        .iter()
        .map(|n| {
            n.rsplit('-')
                .next()
                .expect("sequence")
                .parse()
                .expect("number")
        })
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=CUSTOMERS as u32).collect::<Vec<_>>());
    let map = seat_states(&w).await;
    let sold = map
        .iter()
        .filter(|(_, s)| **s == seat::SeatState::Sold)
        .count();
    assert_eq!(sold, CUSTOMERS);
    w.app.stop().await;
}

/// Booking settings under which a watcher's own polling would take ten minutes: whatever a
/// watcher hears sooner was pushed to it.
fn slow_watch_poll() -> marquee_booking::BookingConfig {
    marquee_booking::BookingConfig {
        watch_poll_ms: 600_000,
        ..marquee_booking::BookingConfig::default()
    }
}

/// The next status a WatchBooking stream reports (within a minute: far below the poll).
async fn next_status(
    watch: &mut tonic::Streaming<pb::WatchBookingResponse>,
) -> Option<pb::BookingStatus> {
    let booking = tokio::time::timeout(Duration::from_secs(60), watch.next())
        .await
        .expect("a change pushed long before the poll")?
        .expect("ok")
        .booking
        .expect("booking");
    // One snapshot: the status is the last change of the history sent with it.
    assert_eq!(
        booking.history.last().map(|h| h.to_status()),
        Some(booking.status()),
        "{booking:?}"
    );
    Some(booking.status())
}

async fn watchers_hear_changes_at_once(app: TestApp) {
    let w = world(app).await;
    let me = customer(&w.app).await;
    let them = customer(&w.app).await;
    let mut c = bookings(&w.app).await;
    let mine = create(&mut c, &me, &hold(&w, &me, &["A-3"]).await.hold_id)
        .await
        .expect("create");
    let theirs = create(&mut c, &them, &hold(&w, &them, &["B-4"]).await.hold_id)
        .await
        .expect("create theirs");
    let watch = |who: String, id: String| {
        let mut c = c.clone();
        async move {
            c.watch_booking(authed(&who, pb::WatchBookingRequest { booking_id: id }))
                .await
                .expect("watch")
                .into_inner()
        }
    };
    let mut watch_mine = watch(me.clone(), mine.id.clone()).await;
    let mut watch_theirs = watch(them.clone(), theirs.id.clone()).await;
    assert_eq!(
        next_status(&mut watch_mine).await,
        Some(pb::BookingStatus::PreBooking)
    );
    assert_eq!(
        next_status(&mut watch_theirs).await,
        Some(pb::BookingStatus::PreBooking)
    );

    // The customer's own call, then the saga worker's steps after the payment: every change
    // reaches the watcher as it is committed.
    let started = start(&mut c, &me, &mine.id).await.expect("start payment");
    assert_eq!(
        next_status(&mut watch_mine).await,
        Some(pb::BookingStatus::PaymentInitiated)
    );
    let order = started.checkout.expect("checkout").provider_order_id;
    pay(&w.app, &order, pay::Outcome::Success).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&pb::BookingStatus::Invoiced) {
        seen.push(
            next_status(&mut watch_mine)
                .await
                .expect("open until invoiced"),
        );
    }
    // Each message is a new state, in lifecycle order. Changes committed faster than the
    // watcher reads fold into one message, which carries the whole history.
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // The other booking did not change, and its watcher was told nothing.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch_theirs.next())
            .await
            .is_err(),
        "a watcher heard of another booking's change"
    );
    w.app.stop().await;
}

/// Two instances on one database and Redis: a watcher on one hears the changes committed on
/// the other at once. Its own poll would take ten minutes; the Redis event bus carries them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_hear_other_instances_changes() {
    let Some(app) = TestApp::spawn_booking(
        "watchers_hear_other_instances_changes",
        Backend::Postgres,
        slow_watch_poll(),
    )
    .await
    else {
        return;
    };
    let w = world(app).await;
    let me = customer(&w.app).await;
    // Started once the first instance has migrated the database.
    let other = w.app.sibling().await;
    let mut here = bookings(&w.app).await;
    let mut there = bookings(&other).await;
    let mine = create(&mut there, &me, &hold(&w, &me, &["A-3"]).await.hold_id)
        .await
        .expect("create");
    let mut watch = here
        .watch_booking(authed(
            &me,
            pb::WatchBookingRequest {
                booking_id: mine.id.clone(),
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(
        next_status(&mut watch).await,
        Some(pb::BookingStatus::PreBooking)
    );
    start(&mut there, &me, &mine.id)
        .await
        .expect("start payment");
    assert_eq!(
        next_status(&mut watch).await,
        Some(pb::BookingStatus::PaymentInitiated)
    );
    cancel(&mut there, &me, &rid(), &mine.id)
        .await
        .expect("cancel");
    assert_eq!(
        next_status(&mut watch).await,
        Some(pb::BookingStatus::Cancelled)
    );
    // Both instances relay the one outbox, and each event went out once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ext = w.app.external.as_ref().expect("external servers");
    let redis = marquee_platform::redis::connect(&ext.redis_url)
        .await
        .expect("redis");
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = {
        use fred::prelude::StreamsInterface as _;
        redis
            .xrange(
                format!("{}events:booking.status_changed", ext.redis_prefix),
                "-",
                "+",
                None,
            )
            .await
            .expect("xrange")
    };
    let mut ids: Vec<&str> = entries.iter().map(|(_, f)| f["id"].as_str()).collect();
    let published = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert!(published >= 3, "{entries:?}");
    assert_eq!(
        ids.len(),
        published,
        "an event published twice: {entries:?}"
    );
    other.stop().await;
    w.app.stop().await;
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
    invoices_tickets_and_the_door => marquee_booking::BookingConfig::default(),
    cancellation_and_refund => marquee_booking::BookingConfig::default(),
    no_cancellation_near_the_show => marquee_booking::BookingConfig::default(),
    hold_lost_during_payment => marquee_booking::BookingConfig::default(),
    a_hundred_bookings_at_once => marquee_booking::BookingConfig::default(),
    watchers_hear_changes_at_once => slow_watch_poll(),
);
