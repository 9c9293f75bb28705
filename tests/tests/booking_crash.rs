//! The booking saga survives its process dying at the worst moments, on SQLite (`marquee up`)
//! and on PostgreSQL + Redis: a fail point makes the saga worker die right after a side effect
//! and before it is recorded (after the capture; after the seats were confirmed, before the
//! tickets were stored), the server is stopped with the step half done, and a new server on
//! the same data finishes the booking: exactly one capture, one set of tickets, one invoice.
//!
//! Fail points are global to a process, so this file is its own test binary and its tests run
//! one at a time.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, authed, rid, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    booking::v1::{self as pb, booking_service_client::BookingServiceClient},
    payments::v1::{
        self as pay, mock_checkout_service_client::MockCheckoutServiceClient,
        payment_service_client::PaymentServiceClient,
    },
    seating::v1::{self as seat, seating_service_client::SeatingServiceClient},
};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config() -> marquee_booking::BookingConfig {
    marquee_booking::BookingConfig {
        // A dead claimant's step is taken over quickly.
        lease_ms: 1_000,
        tick_ms: 50,
        ..marquee_booking::BookingConfig::default()
    }
}

async fn booking(app: &TestApp, who: &str, id: &str) -> pb::Booking {
    BookingServiceClient::new(app.channel().await)
        .get_booking(authed(
            who,
            pb::GetBookingRequest {
                booking_id: id.to_owned(),
            },
        ))
        .await
        .expect("get")
        .into_inner()
        .booking
        .expect("booking")
}

async fn order(app: &TestApp, order_id: &str) -> pay::Order {
    PaymentServiceClient::new(app.channel().await)
        .get_payment(authed(
            &token("crash-tests", &[Role::Service]),
            pay::GetPaymentRequest {
                order_id: order_id.to_owned(),
            },
        ))
        .await
        .expect("payment")
        .into_inner()
        .order
        .expect("order")
}

async fn sold(app: &TestApp, show_id: &str, seat_id: &str) -> bool {
    common::seat_states(app.channel().await, show_id).await[seat_id] == seat::SeatState::Sold
}

/// Polls (bounded) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

fn count(b: &pb::Booking, status: pb::BookingStatus) -> usize {
    b.history.iter().filter(|h| h.to_status() == status).count()
}

/// Books two seats and pays with `point` armed; returns once the side effect before the fail
/// point has happened, with the booking id, its order id and the app.
async fn crash_at(app: TestApp, point: &str) -> (TestApp, String, String, String, String) {
    let v = common::venue(&app).await;
    let show = common::show_in(&app, &v, 86_400).await;
    let me = app.customer().await.1.access_token;
    let held = SeatingServiceClient::new(app.channel().await)
        .hold_seats(authed(
            &me,
            seat::HoldSeatsRequest {
                request_id: rid(),
                show_id: show.id.clone(),
                selection: Some(seat::hold_seats_request::Selection::Seats(
                    seat::SeatSelection {
                        seat_ids: vec!["A-1".into(), "A-2".into()],
                    },
                )),
            },
        ))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let mut c = BookingServiceClient::new(app.channel().await);
    let b = c
        .create_booking(authed(
            &me,
            pb::CreateBookingRequest {
                request_id: rid(),
                hold_id: held.hold_id,
            },
        ))
        .await
        .expect("create")
        .into_inner()
        .booking
        .expect("booking");
    let started = c
        .start_payment(authed(
            &me,
            pb::StartPaymentRequest {
                request_id: rid(),
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("start")
        .into_inner();
    let order_id = started
        .booking
        .and_then(|b| b.payment)
        .expect("payment")
        .order_id;
    fail::cfg(point, "panic").expect("fail point");
    MockCheckoutServiceClient::new(app.channel().await)
        .pay(pay::PayRequest {
            provider_order_id: started.checkout.expect("checkout").provider_order_id,
            outcome: pay::Outcome::Success as i32,
        })
        .await
        .expect("pay");
    (app, me, b.id, order_id, show.id)
}

async fn killed_after_confirm(app: TestApp) {
    let (app, me, booking_id, order_id, show_id) = crash_at(app, "booking::after_confirm").await;
    // Captured and the seats sold, but the worker died before storing the tickets.
    eventually("the seats sold", || sold(&app, &show_id, "A-2")).await;
    let b = booking(&app, &me, &booking_id).await;
    assert_eq!(b.status(), pb::BookingStatus::PaymentCompleted, "{b:?}");
    assert!(b.tickets.is_empty());
    // Killed with the step half done; started again on the same data without the fault.
    let app = app.restart().await;
    fail::remove("booking::after_confirm");
    let mut done = booking(&app, &me, &booking_id).await;
    for _ in 0..400 {
        if done.status() == pb::BookingStatus::Invoiced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        done = booking(&app, &me, &booking_id).await;
    }
    assert_eq!(done.status(), pb::BookingStatus::Invoiced, "{done:#?}");
    // Exactly one of everything.
    assert_eq!(done.tickets.len(), 2);
    for s in [
        pb::BookingStatus::PaymentCompleted,
        pb::BookingStatus::BookingCompleted,
        pb::BookingStatus::Invoiced,
    ] {
        assert_eq!(count(&done, s), 1, "{s:?} in {:#?}", done.history);
    }
    let o = order(&app, &order_id).await;
    assert_eq!(o.status(), pay::OrderStatus::Captured);
    assert_eq!(
        o.attempts
            .iter()
            .filter(|a| a.status() == pay::AttemptStatus::Captured)
            .count(),
        1
    );
    assert_eq!(
        o.captured.as_ref().map(|m| m.amount_minor),
        done.total.as_ref().map(|m| m.amount_minor)
    );
    let invoice = BookingServiceClient::new(app.channel().await)
        .get_invoice(authed(
            &me,
            pb::GetInvoiceRequest {
                booking_id: booking_id.clone(),
            },
        ))
        .await
        .expect("one invoice")
        .into_inner()
        .invoice
        .expect("invoice");
    assert!(invoice.number.ends_with("-000001"), "{}", invoice.number);
    app.stop().await;
}

async fn killed_after_capture(app: TestApp) {
    let backend = app.backend;
    let (app, me, booking_id, order_id, _show) = crash_at(app, "booking::after_capture").await;
    // Captured at payments, not recorded by booking.
    eventually("the capture", || {
        let app = &app;
        let order_id = order_id.clone();
        async move { order(app, &order_id).await.status() == pay::OrderStatus::Captured }
    })
    .await;
    assert_eq!(
        booking(&app, &me, &booking_id).await.status(),
        pb::BookingStatus::PaymentInitiated
    );
    let app = app.restart().await;
    fail::remove("booking::after_capture");
    // On Redis the hold outlives the restart: the booking completes. The embedded store
    // keeps holds in memory, so there the hold is gone and the capture is refunded.
    let want = match backend {
        Backend::Postgres => pb::BookingStatus::Invoiced,
        Backend::Sqlite => pb::BookingStatus::Refunded,
    };
    let mut done = booking(&app, &me, &booking_id).await;
    for _ in 0..400 {
        if done.status() == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        done = booking(&app, &me, &booking_id).await;
    }
    assert_eq!(done.status(), want, "{done:#?}");
    assert_eq!(count(&done, pb::BookingStatus::PaymentCompleted), 1);
    let o = order(&app, &order_id).await;
    assert_eq!(
        o.attempts
            .iter()
            .filter(|a| matches!(
                a.status(),
                pay::AttemptStatus::Captured | pay::AttemptStatus::Voided
            ))
            .count(),
        1,
        "{o:#?}"
    );
    match want {
        pb::BookingStatus::Invoiced => {
            assert_eq!(done.tickets.len(), 2);
            assert!(o.refunds.is_empty());
        }
        _ => {
            assert!(done.tickets.is_empty());
            assert_eq!(o.refunds.len(), 1, "{o:#?}");
            assert_eq!(o.status(), pay::OrderStatus::Refunded);
        }
    }
    app.stop().await;
}

macro_rules! crash_scenarios {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let _one = ONE_AT_A_TIME.lock().await;
                // A test that failed with its fail point armed leaves it behind.
                fail::remove("booking::after_confirm");
                fail::remove("booking::after_capture");
                let name = concat!(stringify!($scenario), "::sqlite");
                if let Some(app) = TestApp::spawn_booking(name, Backend::Sqlite, config()).await {
                    super::$scenario(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let _one = ONE_AT_A_TIME.lock().await;
                // A test that failed with its fail point armed leaves it behind.
                fail::remove("booking::after_confirm");
                fail::remove("booking::after_capture");
                let name = concat!(stringify!($scenario), "::postgres");
                if let Some(app) = TestApp::spawn_booking(name, Backend::Postgres, config()).await {
                    super::$scenario(app).await;
                }
            }
        }
    )*};
}

crash_scenarios!(killed_after_confirm, killed_after_capture);
