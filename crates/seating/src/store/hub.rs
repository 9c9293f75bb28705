//! Fans a show's events out to the watchers of this instance, and tells a watcher which reads of
//! the show's seats have every event it will not be sent ([`Since`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::broadcast;

use crate::domain::SeatEvent;

/// Room for events a slow watcher may fall behind by before it is sent a fresh snapshot.
const CAPACITY: usize = 256;

static TICKS: AtomicU64 = AtomicU64::new(1);

/// A point in this process's order of deliveries and reads: a later call returns a larger number.
pub fn tick() -> u64 {
    TICKS.fetch_add(1, Ordering::SeqCst)
}

/// Which reads of a show's seat states have every event a watcher of the show on this instance
/// is not sent: those begun at or after `mark`, and any whose version is at least `last`.
///
/// `mark` is the tick of the last delivery on the show's channel, or of the first `since`
/// after the channel was made (by then it receives: the store subscribes before it answers);
/// events published before a read began are in it. Versions rise in the order events are
/// delivered, so a read at `last` or later has every event delivered so far and every event
/// published before the channel received; those after it come to the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    /// The tick a read must have begun at or after.
    pub mark: u64,
    /// The version of the last event delivered on the channel, if one was.
    pub last: Option<u64>,
}

struct Channel {
    tx: broadcast::Sender<Arc<SeatEvent>>,
    mark: Option<u64>,
    last: Option<u64>,
}

/// One broadcast channel per show with watchers.
#[derive(Clone, Default)]
pub struct Hub {
    shows: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Hub {
    fn shows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.shows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives the show's events from now on.
    pub fn subscribe(&self, show_id: &str) -> broadcast::Receiver<Arc<SeatEvent>> {
        self.shows()
            .entry(show_id.to_owned())
            .or_insert_with(|| Channel {
                tx: broadcast::channel(CAPACITY).0,
                mark: None,
                last: None,
            })
            .tx
            .subscribe()
    }

    /// Which reads of the show have every event its watchers here are not sent (call it once
    /// the show's events reach [`Self::publish`]).
    pub fn since(&self, show_id: &str) -> Since {
        match self.shows().get_mut(show_id) {
            Some(c) => Since {
                mark: *c.mark.get_or_insert_with(tick),
                last: c.last,
            },
            None => Since {
                mark: tick(),
                last: None,
            },
        }
    }

    /// Forgets the show when nobody on this instance watches it (or it was never watched);
    /// true when it is not watched.
    pub fn remove_if_unwatched(&self, show_id: &str) -> bool {
        let mut shows = self.shows();
        match shows.get(show_id) {
            Some(c) if c.tx.receiver_count() > 0 => false,
            Some(_) => {
                shows.remove(show_id);
                true
            }
            None => true,
        }
    }

    /// Delivers an event to the show's watchers on this instance.
    pub fn publish(&self, event: SeatEvent) {
        let mut shows = self.shows();
        if let Some(c) = shows.get_mut(&event.show_id) {
            if c.tx.receiver_count() == 0 {
                shows.remove(&event.show_id);
            } else {
                c.mark = Some(tick());
                c.last = Some(event.version);
                let _ = c.tx.send(Arc::new(event));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(show: &str, version: u64) -> SeatEvent {
        SeatEvent {
            version,
            kind: crate::domain::EventKind::Held,
            show_id: show.into(),
            hold_id: "h".into(),
            user: "u".into(),
            token: 1,
            expires_ms: 0,
            seats: vec![0],
        }
    }

    #[test]
    fn since_moves_with_deliveries() {
        let hub = Hub::default();
        let _rx = hub.subscribe("s");
        let first = hub.since("s");
        assert_eq!(first.last, None);
        assert_eq!(
            hub.since("s"),
            first,
            "the mark is set once until a delivery"
        );
        hub.publish(event("s", 7));
        let after = hub.since("s");
        assert_eq!(after.last, Some(7));
        assert!(after.mark > first.mark);
        let unwatched = hub.since("other");
        assert!(unwatched.mark > after.mark);
        assert_eq!(unwatched.last, None);
    }
}
