//! The seating race (issue 4): 200 concurrent clients, each a distinct user, hold random
//! overlapping sets of 1 to 4 of the same 20 seats of one show, round after round; some holds
//! are confirmed, some released, the rest kept (and replaced by the holder's next hold). After
//! every round: no seat is in two active holds, the seats the seat map shows held are exactly
//! the seats of the active holds, the seats it shows sold are exactly the seats of the confirmed
//! holds, and confirming a stale hold whose seats are now someone else's (held or sold) fails.
//! Runs on both backends (SQLite + in-process holds, PostgreSQL + Redis).

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{TestApp, authed, rid, token};
use marquee_platform::auth::Role;
use marquee_proto::{
    catalog::v1 as cat,
    seating::v1::{self as pb, seating_service_client::SeatingServiceClient},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::IndexedRandom as _};
use tonic::{Code, transport::Channel};

type Client = SeatingServiceClient<Channel>;

const CLIENTS: usize = 200;
/// 100 rounds, as the issue asks. (Earlier each round cost ~4 s in a debug build, almost all
/// of it Ed25519 checks of the same bearer tokens; since the verifier remembers verified tokens
/// a round takes well under a second.)
const ROUNDS: usize = 100;
/// Confirmations stop once this many seats are sold, so seats stay free to race for.
const MAX_SOLD: usize = 12;

/// 20 seats: A-1..A-10 (PRIME) and B-1..B-10 (CLASSIC).
fn twenty_seats() -> cat::SeatLayout {
    let row = |label: &str, cat: &str| cat::SeatRow {
        label: label.into(),
        category_code: cat.into(),
        items: (1..=10).map(common::seat).collect(),
    };
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
        rows: vec![row("A", "PRIME"), row("B", "CLASSIC")],
    }
}

fn all_seats() -> Vec<String> {
    ["A", "B"]
        .iter()
        .flat_map(|r| (1..=10).map(move |n| format!("{r}-{n}")))
        .collect()
}

/// The seats the seat map shows held (by anyone) and sold, read anonymously.
async fn states(c: &mut Client, show_id: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let map = c
        .get_seat_map(pb::GetSeatMapRequest {
            show_id: show_id.to_owned(),
        })
        .await
        .expect("seat map")
        .into_inner()
        .seat_map
        .expect("map");
    assert_eq!(map.seats.len(), 20);
    let mut held = BTreeSet::new();
    let mut sold = BTreeSet::new();
    for s in map.seats {
        match s.state() {
            pb::SeatState::Held => {
                held.insert(s.seat_id);
            }
            pb::SeatState::Sold => {
                sold.insert(s.seat_id);
            }
            pb::SeatState::Available => {}
            other => panic!("{}: unexpected state {other:?}", s.seat_id),
        }
    }
    (held, sold)
}

fn seats_of(h: &pb::Hold) -> BTreeSet<String> {
    h.seat_ids.iter().cloned().collect()
}

/// Checks that the active holds are pairwise disjoint and that their seats are exactly the
/// seats shown held; that the seats shown sold are exactly the confirmed ones.
async fn check(
    c: &mut Client,
    show_id: &str,
    round: usize,
    active: &HashMap<usize, pb::Hold>,
    confirmed: &BTreeSet<String>,
) {
    let mut union = BTreeSet::new();
    for h in active.values() {
        for s in &h.seat_ids {
            assert!(
                union.insert(s.clone()),
                "round {round}: seat {s} is in two active holds"
            );
        }
    }
    let (held, sold) = states(c, show_id).await;
    assert_eq!(held, union, "round {round}: held seats != active holds");
    assert_eq!(&sold, confirmed, "round {round}: sold seats != confirmed");
    assert!(
        held.is_disjoint(&sold),
        "round {round}: a seat held and sold"
    );
}

async fn confirm(c: &mut Client, h: &pb::Hold) -> Result<pb::ConfirmHoldResponse, tonic::Status> {
    c.confirm_hold(authed(
        &token("booking", &[Role::Service]),
        pb::ConfirmHoldRequest {
            hold_id: h.hold_id.clone(),
            fencing_token: h.fencing_token,
            booking_reference: format!("BK-{}", h.hold_id.split('.').next().unwrap_or_default()),
        },
    ))
    .await
    .map(|r| r.into_inner())
}

enum Action {
    Keep,
    Release,
    Confirm,
}

async fn race(app: TestApp) {
    let v = common::venue_with(&app, twenty_seats()).await;
    let show = common::show_in(&app, &v, 86_400).await;
    let seats = all_seats();
    // A few HTTP/2 connections shared by the 200 clients, as a real fleet of clients would
    // spread over the instance's connections.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(SeatingServiceClient::new(app.channel().await));
    }
    let mut c = channels[0].clone();
    let users: Vec<String> = (0..CLIENTS)
        .map(|i| token(&format!("racer-{i}"), &[Role::Customer]))
        .collect();
    let mut rng = StdRng::seed_from_u64(0x5eed_4a11);
    // Each client's active hold, as the client last saw it.
    let mut active: HashMap<usize, pb::Hold> = HashMap::new();
    // Holds that ended (released or replaced): their fencing tokens must never sell a seat.
    let mut stale: Vec<pb::Hold> = Vec::new();
    let mut confirmed: BTreeSet<String> = BTreeSet::new();
    let (mut holds_won, mut refused, mut confirms) = (0usize, 0usize, 0usize);

    for round in 0..ROUNDS {
        // Phase 1: every client tries to hold a random 1 to 4 of the 20 seats, all at once.
        let mut tasks = Vec::with_capacity(CLIENTS);
        for (i, who) in users.iter().enumerate() {
            let n = rng.random_range(1..=4);
            let want: Vec<String> = seats.choose_multiple(&mut rng, n).cloned().collect();
            let mut c = channels[i % channels.len()].clone();
            let who = who.clone();
            let show_id = show.id.clone();
            tasks.push(tokio::spawn(async move {
                let r = c
                    .hold_seats(authed(
                        &who,
                        pb::HoldSeatsRequest {
                            request_id: rid(),
                            show_id,
                            selection: Some(pb::hold_seats_request::Selection::Seats(
                                pb::SeatSelection { seat_ids: want },
                            )),
                        },
                    ))
                    .await;
                (i, r.map(|r| r.into_inner().hold.expect("hold")))
            }));
        }
        for t in tasks {
            let (i, r) = t.await.expect("task");
            match r {
                Ok(h) => {
                    holds_won += 1;
                    if let Some(old) = active.insert(i, h) {
                        stale.push(old);
                    }
                }
                Err(e) => {
                    // Someone else's seats (or sold ones): nothing held, the old hold stays.
                    assert_eq!(e.code(), Code::FailedPrecondition, "round {round}: {e:?}");
                    assert_eq!(common::reason(&e), "SEAT_TAKEN", "round {round}: {e:?}");
                    refused += 1;
                }
            }
        }
        check(&mut c, &show.id, round, &active, &confirmed).await;

        // Phase 2, all at once: some holders release, one may confirm (a small hold, every
        // fourth round, while few seats are sold), and stale holds whose seats are now held or
        // sold by others are confirmed too (each must fail).
        let mut plan: Vec<(usize, Action)> = Vec::new();
        let mut confirmer = None;
        if round % 4 == 3 && confirmed.len() < MAX_SOLD {
            confirmer = active
                .iter()
                .filter(|(_, h)| h.seat_ids.len() <= 2)
                .map(|(i, _)| *i)
                .min();
        }
        let mut holders: Vec<usize> = active.keys().copied().collect();
        holders.sort_unstable();
        for i in holders {
            let action = if Some(i) == confirmer {
                Action::Confirm
            } else if rng.random_bool(0.6) {
                Action::Release
            } else {
                Action::Keep
            };
            plan.push((i, action));
        }
        let taken: BTreeSet<String> = active
            .values()
            .flat_map(|h| h.seat_ids.iter().cloned())
            .chain(confirmed.iter().cloned())
            .collect();
        let doomed: Vec<pb::Hold> = stale
            .iter()
            .rev()
            .filter(|h| !seats_of(h).is_disjoint(&taken))
            .take(8)
            .cloned()
            .collect();

        let mut tasks = Vec::new();
        for (i, action) in plan {
            let mut c = channels[i % channels.len()].clone();
            let who = users[i].clone();
            let h = active[&i].clone();
            tasks.push(tokio::spawn(async move {
                match action {
                    Action::Keep => (i, "keep", Ok(h)),
                    Action::Release => {
                        let r = c
                            .release_hold(authed(
                                &who,
                                pb::ReleaseHoldRequest {
                                    hold_id: h.hold_id.clone(),
                                },
                            ))
                            .await
                            .map(|_| h);
                        (i, "release", r)
                    }
                    Action::Confirm => {
                        let r = confirm(&mut c, &h).await.map(|resp| {
                            assert_eq!(resp.show_id, h.show_id);
                            let mut sold = resp.seat_ids.clone();
                            sold.sort();
                            let mut want = h.seat_ids.clone();
                            want.sort();
                            assert_eq!(sold, want, "confirmed seats are the hold's");
                            h
                        });
                        (i, "confirm", r)
                    }
                }
            }));
        }
        let mut doomed_tasks = Vec::new();
        for h in doomed {
            let mut c = channels[0].clone();
            doomed_tasks.push(tokio::spawn(async move {
                let r = confirm(&mut c, &h).await;
                (h, r)
            }));
        }
        for t in tasks {
            let (i, what, r) = t.await.expect("task");
            let h = r.unwrap_or_else(|e| panic!("round {round}: {what} failed: {e:?}"));
            match what {
                "keep" => {}
                "release" => {
                    active.remove(&i);
                    stale.push(h);
                }
                _ => {
                    active.remove(&i);
                    confirms += 1;
                    for s in &h.seat_ids {
                        assert!(confirmed.insert(s.clone()), "seat {s} sold twice");
                    }
                }
            }
        }
        for t in doomed_tasks {
            let (h, r) = t.await.expect("task");
            let e = r.expect_err("a stale hold must never sell a seat");
            assert_eq!(e.code(), Code::FailedPrecondition, "round {round}: {e:?}");
            assert!(
                ["HOLD_NOT_FOUND", "STALE_TOKEN", "HOLD_EXPIRED"]
                    .contains(&common::reason(&e).as_str()),
                "round {round}: stale confirm of {}: {e:?}",
                h.hold_id
            );
        }
        check(&mut c, &show.id, round, &active, &confirmed).await;
        // Keep the list of stale holds short.
        if stale.len() > 64 {
            stale.drain(..stale.len() - 64);
        }
    }
    assert!(holds_won > ROUNDS, "the race produced holds ({holds_won})");
    assert!(refused > 0, "the race produced conflicts");
    assert!(confirms > 0, "the race confirmed holds");
    eprintln!(
        "race on {:?}: {ROUNDS} rounds, {holds_won} holds won, {refused} refused, {confirms} \
         confirmed ({} seats sold)",
        app.backend,
        confirmed.len()
    );
    app.stop().await;
}

on_both_backends!(race);
