//! The booking benchmark (issue 5). Not a test: `cargo bench -p marquee-tests --bench
//! booking_flow` (a release build). It starts every service in this process (127.0.0.1, port
//! 0; PostgreSQL + Redis) and prints, in one run:
//!
//! - completed bookings per second from hold to INVOICED with 64 concurrent customers (each:
//!   HoldSeats, CreateBooking, StartPayment, Pay on the mock checkout, then WatchBooking until
//!   INVOICED), with p50/p99 of the whole flow;
//! - the seat-confirm write (seating's `sell`: the sold-seat rows of a 4-seat confirmation)
//!   through our code at 8 concurrent writers, against `pgbench` running the very same SQL
//!   statement at 8 clients on the same database, and the ratio.
//!
//! `MARQUEE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`; the
//! benchmark creates and drops its own database) and `MARQUEE_BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`, under its own key prefix) name the servers; `pgbench` must be on
//! the PATH (Debian: postgresql-client).

#![allow(missing_docs, unreachable_pub)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{External, TestApp, authed, percentile, rid, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    booking::v1::{self as bk, booking_service_client::BookingServiceClient},
    catalog::v1 as cat,
    payments::v1::{self as pay, mock_checkout_service_client::MockCheckoutServiceClient},
    seating::v1::{self as seat, seating_service_client::SeatingServiceClient},
};
use tokio_stream::StreamExt as _;

const CUSTOMERS: usize = 64;
const FLOW_PHASE: Duration = Duration::from_secs(20);
const WRITERS: usize = 8;
const WRITE_PHASE: Duration = Duration::from_secs(5);
const SEATS_PER_SHOW: usize = 2_000;

/// 20 rows (A..T) of 100 seats: the catalog's maximum of 2,000 seats per screen.
fn big_layout() -> cat::SeatLayout {
    common::grid_layout(20, 100)
}

fn seat_of(i: usize) -> String {
    common::grid_seat(i % SEATS_PER_SHOW)
}

/// One customer's booking from hold to INVOICED; its duration.
async fn book(
    channel: tonic::transport::Channel,
    who: &str,
    show_id: &str,
    seat_id: String,
) -> Duration {
    let started = Instant::now();
    let hold = SeatingServiceClient::new(channel.clone())
        .hold_seats(authed(
            who,
            seat::HoldSeatsRequest {
                request_id: rid(),
                show_id: show_id.to_owned(),
                selection: Some(seat::hold_seats_request::Selection::Seats(
                    seat::SeatSelection {
                        seat_ids: vec![seat_id],
                    },
                )),
            },
        ))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let mut c = BookingServiceClient::new(channel.clone());
    let b = c
        .create_booking(authed(
            who,
            bk::CreateBookingRequest {
                request_id: rid(),
                hold_id: hold.hold_id,
            },
        ))
        .await
        .expect("create")
        .into_inner()
        .booking
        .expect("booking");
    let checkout = c
        .start_payment(authed(
            who,
            bk::StartPaymentRequest {
                request_id: rid(),
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("start")
        .into_inner()
        .checkout
        .expect("checkout");
    let mut watch = c
        .watch_booking(authed(
            who,
            bk::WatchBookingRequest {
                booking_id: b.id.clone(),
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    MockCheckoutServiceClient::new(channel)
        .pay(pay::PayRequest {
            provider_order_id: checkout.provider_order_id,
            outcome: pay::Outcome::Success as i32,
        })
        .await
        .expect("pay");
    while let Some(update) = watch.next().await {
        let status = update.expect("update").booking.expect("booking").status();
        if status == bk::BookingStatus::Invoiced {
            return started.elapsed();
        }
        assert!(
            !matches!(
                status,
                bk::BookingStatus::Expired
                    | bk::BookingStatus::PaymentFailed
                    | bk::BookingStatus::Refunded
            ),
            "booking {} ended {status:?}",
            b.id
        );
    }
    panic!("the watch of booking {} ended early", b.id);
}

/// Our seat-confirm write: `sell` of 4 seats at `WRITERS` concurrent writers; sells per second.
async fn our_writes(database_url: &str) -> f64 {
    let db = marquee_seating::store::db::SeatingDb::open(database_url)
        .await
        .expect("seating database");
    let next = Arc::new(AtomicUsize::new(0));
    // Each run its own shows, so no run collides with an earlier one's rows.
    let run: Arc<str> = Arc::from(&rid()[28..]);
    let until = Instant::now() + WRITE_PHASE;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let db = db.clone();
        let next = next.clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let seats: Vec<String> = ["A-1", "A-2", "A-3", "A-4"]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                db.sell(&format!("o{run}-{w}-{n}"), "hold", "BOOKINGREF", &seats)
                    .await
                    .expect("sell");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The same INSERT through pgbench (prepared, autocommit, 8 clients); transactions per second.
fn pgbench_writes(database_url: &str) -> Result<f64, String> {
    let script = std::env::temp_dir().join(format!("marquee-confirm-{}.sql", rid()));
    std::fs::write(
        &script,
        "\\set n random(1, 9000000000000000000)\n\
         INSERT INTO seating.sold_seats (show_id, seat_id, hold_id, booking_reference, sold_at) VALUES \
         ('pg-' || :client_id || '-' || :n, 'A-1', 'hold', 'BOOKINGREF', now()), \
         ('pg-' || :client_id || '-' || :n, 'A-2', 'hold', 'BOOKINGREF', now()), \
         ('pg-' || :client_id || '-' || :n, 'A-3', 'hold', 'BOOKINGREF', now()), \
         ('pg-' || :client_id || '-' || :n, 'A-4', 'hold', 'BOOKINGREF', now());\n",
    )
    .map_err(|e| e.to_string())?;
    let output = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &WRITERS.to_string(),
            "-j",
            "2",
            "-T",
            &WRITE_PHASE.as_secs().to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .ok_or_else(|| {
            format!(
                "pgbench printed no tps: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("MARQUEE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url = std::env::var("MARQUEE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut ext = External::create_on(admin_url, redis_url)
        .await
        .expect("PostgreSQL and Redis for the benchmark");
    ext.redis_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let database_url = ext.database_url.clone();
    let server = marquee_platform::config::ServerConfig {
        request_timeout_ms: 3_600_000,
        max_concurrent_requests: 100_000,
        ..common::server_config()
    };
    let app = TestApp::spawn_external(
        ext,
        server,
        common::test_seating_config(),
        Some(marquee_booking::BookingConfig::default()),
    )
    .await;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "booking benchmark: every service in-process on {}, {cores} cores visible, PostgreSQL + Redis",
        app.addr
    );

    let venue = common::venue_with(&app, big_layout()).await;
    let mut shows = Vec::new();
    for day in 1..=5 {
        shows.push(common::show_in(&app, &venue, day * 86_400).await.id);
    }
    let shows = Arc::new(shows);
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(app.channel().await);
    }
    // Warm up: caches, connections, the ticket key.
    book(
        channels[0].clone(),
        &token("bench-warm", &[Role::Customer]),
        &shows[0],
        seat_of(0),
    )
    .await;

    // ---- bookings from hold to INVOICED, 64 customers ----
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let until = started + FLOW_PHASE;
    let mut tasks = Vec::new();
    for i in 0..CUSTOMERS {
        let channel = channels[i % channels.len()].clone();
        let who = token(&format!("bench-customer-{i}"), &[Role::Customer]);
        let (next, shows) = (next.clone(), shows.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let show = &shows[(n / SEATS_PER_SHOW) % shows.len()];
                took.push(book(channel.clone(), &who, show, seat_of(n)).await);
            }
            took
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(
            t.await
                .expect("customer")
                .into_iter()
                .map(|d| d.as_secs_f64() * 1000.0),
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    println!(
        "\nbookings hold -> INVOICED, {CUSTOMERS} concurrent customers, {:.0} s:",
        elapsed
    );
    println!(
        "  {:.1} completed bookings/s ({} bookings); flow p50 {:.0} ms, p99 {:.0} ms",
        latencies.len() as f64 / elapsed,
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );

    // ---- the seat-confirm write: our code against pgbench on the same SQL ----
    // Alternated twice (ours, pgbench, ours, pgbench), after a pause and a checkpoint, so
    // neither side gets the quieter moment after the booking phase's writes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = std::process::Command::new("psql")
        .args(["-q", "-c", "CHECKPOINT", &database_url])
        .output();
    println!(
        "\nseat-confirm write (4 seats, one INSERT), {WRITERS} concurrent writers, {}s each, alternated:",
        WRITE_PHASE.as_secs()
    );
    let (mut ours_all, mut pg_all) = (Vec::new(), Vec::new());
    for round in 1..=2 {
        let ours = our_writes(&database_url).await;
        println!("  round {round}: ours (seating SeatingDb::sell)  {ours:.0} confirms/s");
        ours_all.push(ours);
        match pgbench_writes(&database_url) {
            Ok(pg) => {
                println!("  round {round}: pgbench, same INSERT (prepared) {pg:.0} tps");
                pg_all.push(pg);
            }
            Err(why) => println!("  pgbench could not run: {why}"),
        }
    }
    if !pg_all.is_empty() {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "  ratio ours / pgbench (means)    {:.2}  (target >= 0.7)",
            mean(&ours_all) / mean(&pg_all)
        );
    }
    app.stop().await;
}
