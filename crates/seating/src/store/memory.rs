//! The in-process hold store for `marquee up`: the contract of [`super::HoldStore`] with one
//! mutex over every show, the system clock for deadlines, and a [`Hub`] for events.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use super::{Claim, Deadlines, ExpiredHold, Hold, HoldOutcome, Hub, NewHold, Refusal, StoreError};
use crate::domain::{EventKind, SeatEvent, SeatStates, bit, set_bit};

#[derive(Default)]
struct Show {
    loaded: bool,
    /// The version of the show's last event.
    version: u64,
    fence: i64,
    held: Vec<u8>,
    sold: Vec<u8>,
    holds: HashMap<String, Hold>,
    users: HashMap<String, String>,
    deadlines: BTreeSet<(i64, String)>,
    /// Idempotency records by (user, request id): fingerprint, result, forget-after (ms).
    request_ids: HashMap<(String, String), (String, Hold, i64)>,
    /// The same records by the time they may be forgotten (the sweeper removes them).
    request_deadlines: BTreeSet<(i64, (String, String))>,
}

/// A user's shows counted as having their hold, by when each was claimed (Unix ms), and when
/// none of them counts any more (as the Redis key's TTL: the sweeper forgets the user then).
#[derive(Default)]
struct Claims {
    shows: HashMap<String, i64>,
    until: i64,
}

/// See the module documentation.
#[derive(Clone)]
pub struct MemoryHoldStore {
    shows: Arc<Mutex<HashMap<String, Show>>>,
    /// Per user, the shows counted as having their hold ([`Self::claim`]).
    claims: Arc<Mutex<HashMap<String, Claims>>>,
    hub: Hub,
    reconnections: watch::Sender<u64>,
}

impl Default for MemoryHoldStore {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn event(kind: EventKind, hold: &Hold, seats: &[u32]) -> SeatEvent {
    SeatEvent {
        version: 0,
        kind,
        show_id: hold.show_id.clone(),
        hold_id: hold.id.clone(),
        user: hold.user.clone(),
        token: hold.token,
        expires_ms: hold.expires_ms,
        seats: seats.to_vec(),
    }
}

impl Show {
    /// Removes a hold, freeing its seats.
    fn remove(&mut self, id: &str) -> Option<Hold> {
        let hold = self.holds.remove(id)?;
        for s in &hold.seats {
            set_bit(&mut self.held, *s, false);
        }
        self.deadlines.remove(&(hold.expires_ms, hold.id.clone()));
        if self.users.get(&hold.user) == Some(&hold.id) {
            self.users.remove(&hold.user);
        }
        Some(hold)
    }
}

impl MemoryHoldStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shows: Arc::default(),
            claims: Arc::default(),
            hub: Hub::default(),
            reconnections: watch::channel(0).0,
        }
    }

    /// Runs `f` on the show under the store's lock, then numbers the events `f` pushed and
    /// hands them to the watchers before the lock is let go: watchers get a show's events in
    /// the order of its changes, and a seat map read after a change sees its event's version.
    fn with<R>(&self, show_id: &str, f: impl FnOnce(&mut Show, &mut Vec<SeatEvent>) -> R) -> R {
        let mut shows = self.shows.lock().unwrap_or_else(|e| e.into_inner());
        let show = shows.entry(show_id.to_owned()).or_default();
        let mut events = Vec::new();
        let r = f(show, &mut events);
        self.emit(show, events);
        r
    }

    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    pub(crate) fn reconnections(&self) -> watch::Receiver<u64> {
        self.reconnections.subscribe()
    }

    pub(crate) async fn ping(&self) -> bool {
        true
    }

    fn emit(&self, show: &mut Show, events: Vec<SeatEvent>) {
        for mut e in events {
            show.version += 1;
            e.version = show.version;
            self.hub.publish(e);
        }
    }

    pub(crate) async fn load_sold(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        self.with(show_id, |s, _| {
            for i in seats {
                set_bit(&mut s.sold, *i, true);
            }
            s.loaded = true;
        });
        Ok(())
    }

    pub(crate) async fn recorded(
        &self,
        show_id: &str,
        user: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        Ok(self.with(show_id, |s, _| {
            s.request_ids
                .get(&(user.to_owned(), request_id.to_owned()))
                .is_some_and(|(_, _, until)| *until > now)
        }))
    }

    pub(crate) async fn hold(&self, new: &NewHold) -> Result<HoldOutcome, StoreError> {
        let now = now_ms();
        let outcome = self.with(&new.show_id, |s, events| {
            if !s.loaded {
                return HoldOutcome::NotLoaded;
            }
            let rid_key = new
                .request_id
                .as_ref()
                .map(|r| (new.user.clone(), r.clone()));
            if let Some(key) = &rid_key
                && let Some((fp, hold, until)) = s.request_ids.get(key)
                && *until > now
            {
                return if *fp == new.fingerprint {
                    HoldOutcome::Replayed(hold.clone())
                } else {
                    HoldOutcome::Mismatch
                };
            }
            let old = s
                .users
                .get(&new.user)
                .and_then(|id| s.holds.get(id))
                .cloned();
            let mine = |i: &u32| old.as_ref().is_some_and(|h| h.seats.contains(i));
            let taken: Vec<u32> = new
                .seats
                .iter()
                .copied()
                .filter(|i| bit(&s.sold, *i) || (bit(&s.held, *i) && !mine(i)))
                .collect();
            if !taken.is_empty() {
                return HoldOutcome::Taken(taken);
            }
            let mut replaced = None;
            if let Some(old) = old
                && let Some(mut h) = s.remove(&old.id)
            {
                h.expires_ms = now;
                events.push(event(EventKind::Replaced, &h, &h.seats));
                replaced = Some(old.id);
            }
            s.fence += 1;
            let max = now + new.max_lifetime_ms as i64;
            let hold = Hold {
                id: new.hold_id.clone(),
                show_id: new.show_id.clone(),
                user: new.user.clone(),
                seats: new.seats.clone(),
                token: s.fence,
                expires_ms: (now + new.ttl_ms as i64).min(max),
                created_ms: now,
                max_expires_ms: max,
            };
            for i in &hold.seats {
                set_bit(&mut s.held, *i, true);
            }
            s.holds.insert(hold.id.clone(), hold.clone());
            s.users.insert(hold.user.clone(), hold.id.clone());
            s.deadlines.insert((hold.expires_ms, hold.id.clone()));
            if let Some(key) = rid_key {
                let until = now + new.ttl_ms as i64;
                if let Some((_, _, before)) = s
                    .request_ids
                    .insert(key.clone(), (new.fingerprint.clone(), hold.clone(), until))
                {
                    // A record past its time, not yet swept, replaced.
                    s.request_deadlines.remove(&(before, key.clone()));
                }
                s.request_deadlines.insert((until, key));
            }
            events.push(event(EventKind::Held, &hold, &hold.seats));
            HoldOutcome::Held { hold, replaced }
        });
        Ok(outcome)
    }

    pub(crate) async fn extend(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
        extension_ms: u64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let now = now_ms();
        let result = self.with(show_id, |s, events| {
            let Some(hold) = s.holds.get(hold_id).filter(|h| h.user == user).cloned() else {
                return Err(Refusal::NotFound);
            };
            if hold.expires_ms <= now {
                return Err(Refusal::Expired);
            }
            let new_deadline = (now + extension_ms as i64).min(hold.max_expires_ms);
            if new_deadline <= hold.expires_ms {
                return Ok(hold);
            }
            s.deadlines.remove(&(hold.expires_ms, hold.id.clone()));
            s.deadlines.insert((new_deadline, hold.id.clone()));
            let mut h = hold;
            h.expires_ms = new_deadline;
            s.holds.insert(h.id.clone(), h.clone());
            events.push(event(EventKind::Extended, &h, &h.seats));
            Ok(h)
        });
        Ok(result)
    }

    pub(crate) async fn release(
        &self,
        show_id: &str,
        hold_id: &str,
        user: &str,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let result = self.with(show_id, |s, events| {
            if s.holds.get(hold_id).is_none_or(|h| h.user != user) {
                return Err(Refusal::NotFound);
            }
            let hold = s.remove(hold_id).ok_or(Refusal::NotFound)?;
            events.push(event(EventKind::Released, &hold, &hold.seats));
            Ok(hold)
        });
        Ok(result)
    }

    pub(crate) async fn get(
        &self,
        show_id: &str,
        hold_id: &str,
    ) -> Result<Option<Hold>, StoreError> {
        Ok(self.with(show_id, |s, _| s.holds.get(hold_id).cloned()))
    }

    pub(crate) async fn deadlines(&self, show_id: &str) -> Result<Deadlines, StoreError> {
        Ok(self.with(show_id, |s, _| {
            s.holds
                .iter()
                .map(|(id, h)| (id.clone(), h.expires_ms))
                .collect()
        }))
    }

    pub(crate) async fn hold_of(
        &self,
        show_id: &str,
        user: &str,
    ) -> Result<Option<Hold>, StoreError> {
        Ok(self.with(show_id, |s, _| {
            s.users.get(user).and_then(|id| s.holds.get(id)).cloned()
        }))
    }

    pub(crate) async fn claim(
        &self,
        user: &str,
        show_id: &str,
        cap: u32,
        keep_ms: u64,
    ) -> Result<Claim, StoreError> {
        let now = now_ms();
        let mut all = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let claims = all.entry(user.to_owned()).or_default();
        claims.shows.retain(|_, at| *at > now - keep_ms as i64);
        let old = claims.shows.get(show_id).copied();
        if old.is_none() && claims.shows.len() >= cap as usize {
            let mut full: Vec<(String, i64)> = claims
                .shows
                .iter()
                .map(|(s, at)| (s.clone(), *at))
                .collect();
            full.sort_by_key(|(_, at)| *at);
            return Ok(Claim::Full(full));
        }
        let claimed = old.map_or(now, |o| now.max(o + 1));
        claims.shows.insert(show_id.to_owned(), claimed);
        claims.until = now + keep_ms as i64;
        Ok(Claim::Granted {
            claimed,
            new: old.is_none(),
        })
    }

    pub(crate) async fn unclaim(
        &self,
        user: &str,
        show_id: &str,
        claimed: i64,
        min_age_ms: u64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut all = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let Some(claims) = all.get_mut(user) else {
            return Ok(false);
        };
        if claims.shows.get(show_id) != Some(&claimed)
            || (min_age_ms > 0 && now - claimed < min_age_ms as i64)
        {
            return Ok(false);
        }
        claims.shows.remove(show_id);
        if claims.shows.is_empty() {
            all.remove(user);
        }
        Ok(true)
    }

    pub(crate) async fn check_confirm(
        &self,
        show_id: &str,
        hold_id: &str,
        token: i64,
    ) -> Result<Result<Hold, Refusal>, StoreError> {
        let now = now_ms();
        Ok(self.with(show_id, |s, _| {
            let hold = s.holds.get(hold_id).ok_or(Refusal::NotFound)?;
            if hold.token != token {
                Err(Refusal::StaleToken)
            } else if hold.expires_ms <= now {
                Err(Refusal::Expired)
            } else {
                Ok(hold.clone())
            }
        }))
    }

    pub(crate) async fn finalize(
        &self,
        show_id: &str,
        hold_id: &str,
        seats: &[u32],
    ) -> Result<(), StoreError> {
        self.with(show_id, |s, events| {
            let hold = s.remove(hold_id);
            for i in seats {
                set_bit(&mut s.sold, *i, true);
            }
            events.push(SeatEvent {
                version: 0,
                kind: EventKind::Sold,
                show_id: show_id.to_owned(),
                hold_id: hold_id.to_owned(),
                user: hold.as_ref().map(|h| h.user.clone()).unwrap_or_default(),
                token: hold.as_ref().map(|h| h.token).unwrap_or_default(),
                expires_ms: hold.as_ref().map(|h| h.expires_ms).unwrap_or_default(),
                seats: seats.to_vec(),
            });
        });
        Ok(())
    }

    pub(crate) async fn unsell(&self, show_id: &str, seats: &[u32]) -> Result<(), StoreError> {
        self.with(show_id, |s, events| {
            for i in seats {
                set_bit(&mut s.sold, *i, false);
            }
            events.push(SeatEvent {
                version: 0,
                kind: EventKind::Unsold,
                show_id: show_id.to_owned(),
                hold_id: String::new(),
                user: String::new(),
                token: 0,
                expires_ms: 0,
                seats: seats.to_vec(),
            });
        });
        Ok(())
    }

    pub(crate) async fn seat_states(
        &self,
        show_id: &str,
        user: Option<&str>,
    ) -> Result<Option<SeatStates>, StoreError> {
        Ok(self.with(show_id, |s, _| {
            s.loaded.then(|| SeatStates {
                version: s.version,
                held: s.held.clone(),
                sold: s.sold.clone(),
                mine: user
                    .and_then(|u| s.users.get(u))
                    .and_then(|id| s.holds.get(id))
                    .cloned(),
            })
        }))
    }

    pub(crate) async fn sweep(&self) -> Result<Vec<ExpiredHold>, StoreError> {
        let now = now_ms();
        let mut expired = Vec::new();
        let mut shows = self.shows.lock().unwrap_or_else(|e| e.into_inner());
        for (show_id, s) in shows.iter_mut() {
            let mut events = Vec::new();
            while let Some((deadline, id)) = s.deadlines.first().cloned() {
                if deadline > now {
                    break;
                }
                s.deadlines.pop_first();
                if let Some(h) = s.remove(&id) {
                    events.push(event(EventKind::Expired, &h, &h.seats));
                }
            }
            while let Some((until, _)) = s.request_deadlines.first() {
                if *until > now {
                    break;
                }
                if let Some((_, key)) = s.request_deadlines.pop_first() {
                    s.request_ids.remove(&key);
                }
            }
            expired.extend(events.iter().map(|e| ExpiredHold {
                show_id: show_id.clone(),
                hold_id: e.hold_id.clone(),
            }));
            self.emit(s, events);
        }
        drop(shows);
        self.claims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, c| c.until > now);
        Ok(expired)
    }
}
