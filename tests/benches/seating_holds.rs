//! The seating benchmark (issue 4). Not a test: `cargo bench -p marquee-tests --bench
//! seating_holds` (a release build). It starts the real server in this process (127.0.0.1,
//! port 0; every service, seating on PostgreSQL + Redis) and prints, in one run:
//!
//! - hold+release throughput through the full gRPC stack at 200 concurrent calls, and hold-only
//!   throughput (each HoldSeats replaces the caller's previous hold);
//! - the raw EVALSHA throughput of the very same hold script at 200 concurrent calls through
//!   fred, on the same Redis, and the ratios;
//! - a no-op RPC (`grpc.health.v1.Health/Check`) on the same server: the transport floor;
//! - this process's CPU per call, and Redis's own CPU in the scripts (`INFO commandstats`);
//! - p50/p99 HoldSeats latency at 1, 64 and 200 concurrent clients, with the two floors under
//!   it at the same concurrency: the no-op RPC, and the hold script alone through fred;
//! - the process's RSS (VmRSS) with 10,000 active holds and with 10,000 open WatchSeats streams;
//! - the lag from a hold's deadline to each of those 10,000 watchers receiving its expiry.
//!
//! `MARQUEE_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, where it
//! creates and drops its own database) and `MARQUEE_BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`, under its own key prefix) name the servers. The load is driven by
//! tonic clients in the same process, so on a small machine they share its cores with the
//! server (and with Redis and PostgreSQL). `MARQUEE_BENCH_TELEMETRY=1` installs the tracing
//! subscriber `marquee up` runs with (without it, spans cost next to nothing).

#![allow(missing_docs, unreachable_pub)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{External, TestApp, authed, percentile, rid, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    catalog::v1 as cat,
    seating::v1::{self as pb, seating_service_client::SeatingServiceClient},
};
use marquee_seating::store::{NewHold, redis::RedisHoldStore};
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

type Client = SeatingServiceClient<Channel>;

/// How long each latency phase runs, and each throughput figure in all.
const PHASE: Duration = Duration::from_secs(4);
/// The throughput figures are measured in this many slices, taking turns (hold+release,
/// hold-only, no-op, raw EVALSHA, ...), so that a slow spell of this shared machine falls on
/// all of them alike rather than on whichever ran then: the ratios are what the benchmark is
/// for.
const SLICES: u32 = 4;
/// HTTP/2 connections the load spreads over (`MARQUEE_BENCH_CONNECTIONS` overrides).
const CONNECTIONS: usize = 8;

fn connections() -> usize {
    std::env::var("MARQUEE_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(CONNECTIONS)
}
/// Holds (and the request records of HoldSeats) live this long in the benchmark. Short, so that
/// the records a phase writes are swept within that phase, as in a steady state where as many
/// are forgotten as written (with 10 minutes, the raw EVALSHA phase's records were swept during
/// the latency phases, which paid for them).
const HOLD_TTL_MS: u64 = 3_000;
const ACTIVE_HOLDS: usize = 10_000;
const WATCHERS: usize = 10_000;
/// Streams per HTTP/2 connection for the watchers (hyper's server allows 200).
const STREAMS_PER_CONNECTION: usize = 100;
/// Holds whose expiry the watchers time.
const LAG_HOLDS: usize = 3;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds this process has used (user + system, from `/proc/self/stat`, 100 ticks/s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn ts_ms(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .expect("timestamp")
}

/// 20 rows (A..T) of 100 seats: the catalog's maximum of 2,000 seats per screen.
fn big_layout() -> cat::SeatLayout {
    let rows = (0..20u8)
        .map(|r| cat::SeatRow {
            label: char::from(b'A' + r).to_string(),
            category_code: if r < 5 { "PRIME" } else { "CLASSIC" }.into(),
            items: (1..=100).map(common::seat).collect(),
        })
        .collect();
    cat::SeatLayout {
        categories: vec![
            cat::SeatCategory {
                code: "PRIME".into(),
                name: "Prime".into(),
            },
            cat::SeatCategory {
                code: "CLASSIC".into(),
                name: "Classic".into(),
            },
        ],
        rows,
    }
}

async fn schedule(app: &TestApp, v: &common::Venue, day: i64) -> String {
    common::show_in(app, v, day * 86_400).await.id
}

async fn clients(app: &TestApp, n: usize) -> Vec<Channel> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.channel().await);
    }
    out
}

fn hold_req(show_id: &str, seat: String) -> pb::HoldSeatsRequest {
    pb::HoldSeatsRequest {
        request_id: rid(),
        show_id: show_id.to_owned(),
        selection: Some(pb::hold_seats_request::Selection::Seats(
            pb::SeatSelection {
                seat_ids: vec![seat],
            },
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// HoldSeats then ReleaseHold (both timed as calls; the hold's latency recorded).
    HoldRelease,
    /// HoldSeats only: each replaces the worker's previous hold.
    HoldOnly,
    /// grpc.health.v1.Health/Check.
    Health,
}

struct Outcome {
    calls: u64,
    holds: u64,
    elapsed: Duration,
    /// This process's CPU seconds over the phase (server and load clients together).
    cpu: f64,
    /// The timed calls' latencies: every HoldSeats (not the releases), or every Health/Check.
    latencies_ms: Vec<f64>,
}

impl Outcome {
    fn calls_per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
    fn holds_per_sec(&self) -> f64 {
        self.holds as f64 / self.elapsed.as_secs_f64()
    }
    fn cpu_us_per_call(&self) -> f64 {
        self.cpu * 1e6 / self.calls as f64
    }
    fn absorb(&mut self, other: Outcome) {
        self.calls += other.calls;
        self.holds += other.holds;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies_ms.extend(other.latencies_ms);
    }
}

/// Raw EVALSHA figures: calls, time, latencies (ms), CPU seconds of this process.
#[derive(Default)]
struct Raw {
    calls: u64,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
    cpu: f64,
}

impl Raw {
    fn per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// `concurrency` workers, worker `w` as user `bench-w` on seat `w` of the show, for `phase`.
async fn drive(
    channels: &[Channel],
    show_id: &str,
    concurrency: usize,
    load: Load,
    tag: &str,
    phase: Duration,
) -> Outcome {
    let start = Instant::now();
    let cpu = cpu_secs();
    let until = start + phase;
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let channel = channels[w % channels.len()].clone();
        let show_id = show_id.to_owned();
        let who = token(&format!("bench-{tag}-{w}"), &[Role::Customer]);
        // Hold-only leaves its holds in place: its seats are apart from the other phases'.
        let seat = if load == Load::HoldOnly { 1000 + w } else { w };
        tasks.push(tokio::spawn(async move {
            let mut seating = Client::new(channel.clone());
            let mut health = HealthClient::new(channel);
            let (mut calls, mut holds, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < until {
                match load {
                    Load::Health => {
                        let t = Instant::now();
                        health
                            .check(HealthCheckRequest {
                                service: String::new(),
                            })
                            .await
                            .expect("health");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        calls += 1;
                    }
                    Load::HoldRelease | Load::HoldOnly => {
                        let t = Instant::now();
                        let h = seating
                            .hold_seats(authed(&who, hold_req(&show_id, common::grid_seat(seat))))
                            .await
                            .expect("hold")
                            .into_inner()
                            .hold
                            .expect("hold");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        calls += 1;
                        holds += 1;
                        if load == Load::HoldRelease {
                            seating
                                .release_hold(authed(
                                    &who,
                                    pb::ReleaseHoldRequest { hold_id: h.hold_id },
                                ))
                                .await
                                .expect("release");
                            calls += 1;
                        }
                    }
                }
            }
            (calls, holds, lat)
        }));
    }
    let mut out = Outcome {
        calls: 0,
        holds: 0,
        elapsed: Duration::ZERO,
        cpu: 0.0,
        latencies_ms: Vec::new(),
    };
    for t in tasks {
        let (c, h, l) = t.await.expect("worker");
        out.calls += c;
        out.holds += h;
        out.latencies_ms.extend(l);
    }
    out.elapsed = start.elapsed();
    out.cpu = cpu_secs() - cpu;
    out.latencies_ms.sort_by(f64::total_cmp);
    out
}

/// The hold script alone through fred, `concurrency` workers (worker `w`: user `raw-w`, seat
/// index `w`; each hold replaces the worker's previous one, as in [`Load::HoldOnly`]). With
/// `as_the_service`, each call carries a fresh request id and a fingerprint, as every HoldSeats
/// does (the script then also checks and stores the idempotency record); without, the script
/// skips that.
async fn raw_evalsha(
    store: &RedisHoldStore,
    show_id: &str,
    concurrency: usize,
    as_the_service: bool,
    phase: Duration,
    into: &mut Raw,
) {
    let start = Instant::now();
    let cpu = cpu_secs();
    let until = start + phase;
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let store = store.clone();
        let show_id = show_id.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut lat = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let new = NewHold {
                    show_id: show_id.clone(),
                    hold_id: marquee_seating::domain::hold_id(&show_id),
                    user: format!("raw-{w}"),
                    seats: vec![w as u32],
                    ttl_ms: HOLD_TTL_MS,
                    max_lifetime_ms: HOLD_TTL_MS * 2,
                    request_id: as_the_service.then(rid),
                    fingerprint: if as_the_service {
                        marquee_platform::idempotency::fingerprint(&(&show_id, w))
                    } else {
                        String::new()
                    },
                };
                let v = store.raw_hold(&new).await.expect("evalsha");
                let head = v.into_array().first().and_then(|v| v.as_string());
                assert_eq!(head.as_deref(), Some("HELD"), "raw hold");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                n += 1;
            }
            (n, lat)
        }));
    }
    for t in tasks {
        let (c, l) = t.await.expect("worker");
        into.calls += c;
        into.latencies_ms.extend(l);
    }
    into.elapsed += start.elapsed();
    into.cpu += cpu_secs() - cpu;
}

async fn redis_used_mib(client: &marquee_platform::redis::Client) -> f64 {
    use fred::prelude::ClientLike;
    let info: String = client
        .custom(fred::cmd!("INFO"), vec!["memory"])
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|b| b / (1024.0 * 1024.0))
        .unwrap_or(f64::NAN)
}

/// Redis's own count of EVALSHA calls and the microseconds it spent in them (`INFO
/// commandstats`), to be taken before and after a phase. Every script on that Redis counts,
/// the sweeper's too.
async fn redis_evalsha_usec(client: &marquee_platform::redis::Client) -> (u64, u64) {
    use fred::prelude::ClientLike;
    let info: String = client
        .custom(fred::cmd!("INFO"), vec!["commandstats"])
        .await
        .unwrap_or_default();
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .unwrap_or_default();
    let field = |name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("calls="), field("usec="))
}

#[tokio::main]
async fn main() {
    // `MARQUEE_BENCH_TELEMETRY=1`: the subscriber `marquee up` installs (its default `info`
    // filter, or RUST_LOG), so that the per-call spans cost what they cost there.
    let _telemetry = std::env::var("MARQUEE_BENCH_TELEMETRY")
        .is_ok_and(|v| v == "1")
        .then(|| {
            marquee_platform::telemetry::init(
                &marquee_platform::config::TelemetryConfig::default(),
                "seating-bench",
            )
            .expect("telemetry")
        });
    let admin_url = std::env::var("MARQUEE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url = std::env::var("MARQUEE_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut ext = External::create_on(admin_url, redis_url.clone())
        .await
        .expect("PostgreSQL and Redis for the benchmark");
    ext.redis_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let prefix = ext.redis_prefix.clone();
    let server = marquee_platform::config::ServerConfig {
        request_timeout_ms: 3_600_000,
        max_concurrent_requests: 100_000,
        ..common::server_config()
    };
    let seating = marquee_seating::SeatingConfig {
        hold_ttl_ms: HOLD_TTL_MS,
        hold_max_lifetime_ms: HOLD_TTL_MS * 2,
        expiring_soon_ms: 1_000,
        // The load comes from a few hundred users holding as fast as they can.
        ..common::test_seating_config()
    };
    let app = TestApp::spawn_external(ext, server, seating, None).await;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "seating benchmark: server in-process on {}, {cores} cores visible",
        app.addr
    );
    println!("RSS at start: {:.1} MiB", rss_mib());

    let big = common::venue_with(&app, big_layout()).await;
    let small = common::venue_with(&app, common::small_layout()).await;
    let load_show = schedule(&app, &big, 1).await;
    let raw_show = schedule(&app, &big, 2).await;
    let watch_show = schedule(&app, &small, 1).await;
    let bulk_shows = [
        schedule(&app, &big, 3).await,
        schedule(&app, &big, 4).await,
        schedule(&app, &big, 5).await,
        schedule(&app, &big, 6).await,
        schedule(&app, &big, 7).await,
    ];
    let channels = clients(&app, connections()).await;
    let mut c = Client::new(channels[0].clone());
    // Warm up: the layout and show caches, the sold seats loaded into Redis, connections.
    for show in [&load_show, &raw_show, &watch_show]
        .into_iter()
        .chain(bulk_shows.iter())
    {
        c.get_seat_map(pb::GetSeatMapRequest {
            show_id: show.clone(),
        })
        .await
        .expect("seat map");
    }
    let warm = drive(&channels, &load_show, 200, Load::HoldRelease, "warm", PHASE).await;
    drop(warm);

    // ---- throughput at 200 concurrent calls, in turns ----
    let redis = marquee_platform::redis::connect(&redis_url)
        .await
        .expect("redis");
    let store = RedisHoldStore::new(redis.clone(), &prefix)
        .await
        .expect("hold store");
    let slice = PHASE / SLICES;
    let none = || Outcome {
        calls: 0,
        holds: 0,
        elapsed: Duration::ZERO,
        cpu: 0.0,
        latencies_ms: Vec::new(),
    };
    let (mut hr, mut ho, mut health) = (none(), none(), none());
    let (mut raw_all, mut bare_all) = (Raw::default(), Raw::default());
    // Redis's CPU (microseconds in EVALSHA) over the hold+release turns and the raw turns.
    let (mut redis_hr_us, mut redis_raw_us, mut redis_raw_calls) = (0u64, 0u64, 0u64);
    for _ in 0..SLICES {
        let d = |load, tag| drive(&channels, &load_show, 200, load, tag, slice);
        let (_, u0) = redis_evalsha_usec(&redis).await;
        hr.absorb(d(Load::HoldRelease, "hr").await);
        let (c1, u1) = redis_evalsha_usec(&redis).await;
        raw_evalsha(&store, &raw_show, 200, true, slice, &mut raw_all).await;
        let (c2, u2) = redis_evalsha_usec(&redis).await;
        redis_hr_us += u1.saturating_sub(u0);
        redis_raw_us += u2.saturating_sub(u1);
        redis_raw_calls += c2.saturating_sub(c1);
        ho.absorb(d(Load::HoldOnly, "ho").await);
        health.absorb(d(Load::Health, "health").await);
        raw_evalsha(&store, &raw_show, 200, false, slice, &mut bare_all).await;
    }
    raw_all.latencies_ms.sort_by(f64::total_cmp);
    let raw_lat = &raw_all.latencies_ms;
    let raw_cpu_us = raw_all.cpu * 1e6 / raw_all.calls as f64;
    let raw = raw_all.per_sec();
    let bare = bare_all.per_sec();
    println!();
    println!(
        "throughput, 200 concurrent calls, {} HTTP/2 connections, {PHASE:?} each in {SLICES} \
         turns:",
        channels.len()
    );
    println!(
        "  gRPC HoldSeats+ReleaseHold   {:>8.0} calls/s ({:.0} hold+release pairs/s)",
        hr.calls_per_sec(),
        hr.holds_per_sec()
    );
    println!(
        "  gRPC HoldSeats (replacing)   {:>8.0} holds/s",
        ho.holds_per_sec()
    );
    println!(
        "  CPU of this process (server + clients) per call: hold+release {:.1} us, \
         HoldSeats {:.1} us, Health/Check {:.1} us",
        hr.cpu_us_per_call(),
        ho.cpu_us_per_call(),
        health.cpu_us_per_call()
    );
    println!(
        "  Redis CPU (INFO commandstats, EVALSHA): {:.1} us per hold+release pair, {:.1} us per \
         raw hold.lua run",
        redis_hr_us as f64 / hr.holds as f64,
        redis_raw_us as f64 / redis_raw_calls.max(1) as f64
    );
    println!(
        "  raw EVALSHA hold.lua (fred)  {raw:>8.0} scripts/s  (HoldSeats' arguments: request id, fingerprint)"
    );
    println!(
        "  raw EVALSHA latency at 200: p50 {:.2} ms  p99 {:.2} ms; CPU {raw_cpu_us:.1} us per call",
        percentile(raw_lat, 0.5),
        percentile(raw_lat, 0.99)
    );
    println!(
        "  raw EVALSHA, no request id   {bare:>8.0} scripts/s  (the idempotency record skipped)"
    );
    println!(
        "  gRPC Health/Check (no-op)    {:>8.0} calls/s",
        health.calls_per_sec()
    );
    println!(
        "  ratio hold+release calls / raw EVALSHA  {:.2}  (target >= 0.6)",
        hr.calls_per_sec() / raw
    );
    println!(
        "  ratio HoldSeats / raw EVALSHA           {:.2}",
        ho.holds_per_sec() / raw
    );
    println!(
        "  ratio hold+release calls / raw EVALSHA without request id  {:.2}",
        hr.calls_per_sec() / bare
    );
    println!(
        "  ratio hold+release calls / no-op RPC    {:.2}",
        hr.calls_per_sec() / health.calls_per_sec()
    );
    println!(
        "  ratio HoldSeats / no-op RPC             {:.2}",
        ho.holds_per_sec() / health.calls_per_sec()
    );

    // ---- latency ----
    println!();
    println!(
        "latency: HoldSeats (each hold followed by its release) {PHASE:?} per level; beside it \
         the floors under it, {:?} each: a no-op gRPC call (Health/Check) on the same server, \
         and hold.lua alone through fred (raw EVALSHA):",
        PHASE / 2
    );
    for (n, target) in [(1usize, None), (64, Some(5.0)), (200, Some(10.0))] {
        let o = drive(
            &channels,
            &load_show,
            n,
            Load::HoldRelease,
            &format!("lat{n}"),
            PHASE,
        )
        .await;
        let floor = drive(
            &channels,
            &load_show,
            n,
            Load::Health,
            &format!("floor{n}"),
            PHASE / 2,
        )
        .await;
        let mut raw = Raw::default();
        raw_evalsha(&store, &raw_show, n, true, PHASE / 2, &mut raw).await;
        raw.latencies_ms.sort_by(f64::total_cmp);
        let l = &o.latencies_ms;
        println!(
            "  {n:>3} clients: HoldSeats p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} holds){}",
            percentile(l, 0.50),
            percentile(l, 0.99),
            l.last().copied().unwrap_or(f64::NAN),
            l.len(),
            target.map_or(String::new(), |t| format!("  (target p99 < {t} ms)"))
        );
        println!(
            "               no-op RPC p50 {:.2} ms  p99 {:.2} ms;  raw EVALSHA p50 {:.2} ms  \
             p99 {:.2} ms",
            percentile(&floor.latencies_ms, 0.50),
            percentile(&floor.latencies_ms, 0.99),
            percentile(&raw.latencies_ms, 0.50),
            percentile(&raw.latencies_ms, 0.99),
        );
    }

    // ---- RSS with 10,000 active holds ----
    println!();
    let before = rss_mib();
    let redis_before = redis_used_mib(&redis).await;
    let start = Instant::now();
    let per_show = ACTIVE_HOLDS / bulk_shows.len();
    let mut tasks = Vec::new();
    for w in 0..200usize {
        let channel = channels[w % channels.len()].clone();
        let shows = bulk_shows.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(channel);
            let mut held = Vec::new();
            let mut i = w;
            while i < ACTIVE_HOLDS {
                let show = &shows[i / per_show];
                let who = token(&format!("bulk-{i}"), &[Role::Customer]);
                let h = c
                    .hold_seats(authed(
                        &who,
                        hold_req(show, common::grid_seat(i % per_show)),
                    ))
                    .await
                    .expect("bulk hold")
                    .into_inner()
                    .hold
                    .expect("hold");
                held.push((who, h.hold_id));
                i += 200;
            }
            held
        }));
    }
    let mut bulk = Vec::new();
    for t in tasks {
        bulk.extend(t.await.expect("bulk"));
    }
    println!(
        "RSS with {} active holds: {:.1} MiB (before them {before:.1} MiB; made in {:.1} s; \
         Redis used_memory {redis_before:.1} -> {:.1} MiB)",
        bulk.len(),
        rss_mib(),
        start.elapsed().as_secs_f64(),
        redis_used_mib(&redis).await,
    );
    // They expire (by the sweeper) before the watchers come.
    tokio::time::sleep(Duration::from_millis(HOLD_TTL_MS + 1_500)).await;
    drop(bulk);

    // ---- 10,000 WatchSeats streams: RSS, then expiry lag ----
    let before = rss_mib();
    let start = Instant::now();
    let conns = WATCHERS.div_ceil(STREAMS_PER_CONNECTION);
    let watch_channels = clients(&app, conns).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<(String, i64)>>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for w in 0..WATCHERS {
        let channel = watch_channels[w / STREAMS_PER_CONNECTION].clone();
        let show_id = watch_show.clone();
        let tx = tx.clone();
        let ready = ready_tx.clone();
        tokio::spawn(async move {
            let mut c = Client::new(channel);
            let mut stream = c
                .watch_seats(pb::WatchSeatsRequest { show_id })
                .await
                .expect("watch")
                .into_inner();
            let first = stream.next().await.expect("snapshot").expect("ok");
            assert!(matches!(
                first.event,
                Some(pb::watch_seats_response::Event::Snapshot(_))
            ));
            let _ = ready.send(());
            // (seat, unix ms) of every EXPIRED change, until LAG_HOLDS of them.
            let mut seen = Vec::new();
            while seen.len() < LAG_HOLDS {
                let Some(m) = stream.next().await else { break };
                let Ok(m) = m else { break };
                if let Some(pb::watch_seats_response::Event::Change(ch)) = m.event
                    && ch.cause() == pb::SeatChangeCause::Expired
                {
                    let at = unix_ms();
                    for s in ch.seats {
                        seen.push((s.seat_id, at));
                    }
                }
            }
            let _ = tx.send(seen);
        });
    }
    drop(tx);
    drop(ready_tx);
    let mut ready = 0;
    while ready < WATCHERS && ready_rx.recv().await.is_some() {
        ready += 1;
    }
    println!(
        "RSS with {ready} open WatchSeats streams: {:.1} MiB (before them {before:.1} MiB; \
         opened in {:.1} s; client and server in one process)  (target < 512 MiB)",
        rss_mib(),
        start.elapsed().as_secs_f64()
    );

    // Holds on the watched show, a little apart; each expires with nobody calling.
    let mut deadlines = std::collections::HashMap::new();
    for (i, seat) in ["A-1", "A-3", "B-1"].iter().take(LAG_HOLDS).enumerate() {
        let who = token(&format!("lag-{i}"), &[Role::Customer]);
        let h = c
            .hold_seats(authed(&who, hold_req(&watch_show, (*seat).to_owned())))
            .await
            .expect("lag hold")
            .into_inner()
            .hold
            .expect("hold");
        deadlines.insert((*seat).to_owned(), ts_ms(&h.expire_time));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "waiting for {LAG_HOLDS} holds to expire ({} s TTL) with {ready} watchers...",
        HOLD_TTL_MS / 1000
    );
    let mut lags = Vec::new();
    let mut last_per_hold = std::collections::HashMap::<String, i64>::new();
    let mut short = 0;
    let collect = async {
        while let Some(seen) = rx.recv().await {
            if seen.len() < LAG_HOLDS {
                short += 1;
            }
            for (seat, at) in seen {
                if let Some(d) = deadlines.get(&seat) {
                    let lag = at - d;
                    lags.push(lag as f64);
                    let e = last_per_hold.entry(seat).or_insert(i64::MIN);
                    *e = (*e).max(lag);
                }
            }
        }
    };
    let timeout = Duration::from_millis(HOLD_TTL_MS) + Duration::from_secs(60);
    if tokio::time::timeout(timeout, collect).await.is_err() {
        println!("  (timed out waiting for every watcher)");
    }
    lags.sort_by(f64::total_cmp);
    let mut last: Vec<_> = last_per_hold.into_iter().collect();
    last.sort();
    println!(
        "expiry lag (deadline -> watcher receives EXPIRED), {} samples over {} holds: p50 {:.0} ms  \
         p99 {:.0} ms  max {:.0} ms  (target p99 < 1000 ms); watchers missing an expiry: {short}",
        lags.len(),
        LAG_HOLDS,
        percentile(&lags, 0.50),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN),
    );
    for (seat, lag) in last {
        println!("  hold on {seat}: last of the watchers {lag} ms after the deadline");
    }

    drop(watch_channels);
    app.stop().await;
}
