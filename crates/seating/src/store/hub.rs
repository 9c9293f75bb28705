//! Fans a show's events out to the watchers of this instance.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;

use crate::domain::SeatEvent;

/// Room for events a slow watcher may fall behind by before it is sent a fresh snapshot.
const CAPACITY: usize = 256;

/// One broadcast channel per show with watchers.
#[derive(Clone, Default)]
pub struct Hub {
    shows: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<SeatEvent>>>>>,
}

impl Hub {
    /// Receives the show's events from now on.
    pub fn subscribe(&self, show_id: &str) -> broadcast::Receiver<Arc<SeatEvent>> {
        let mut shows = self.shows.lock().unwrap_or_else(|e| e.into_inner());
        shows
            .entry(show_id.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Forgets the show when nobody on this instance watches it (or it was never watched);
    /// true when it is not watched.
    pub fn remove_if_unwatched(&self, show_id: &str) -> bool {
        let mut shows = self.shows.lock().unwrap_or_else(|e| e.into_inner());
        match shows.get(show_id) {
            Some(tx) if tx.receiver_count() > 0 => false,
            Some(_) => {
                shows.remove(show_id);
                true
            }
            None => true,
        }
    }

    /// Delivers an event to the show's watchers on this instance.
    pub fn publish(&self, event: SeatEvent) {
        let mut shows = self.shows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = shows.get(&event.show_id) {
            if tx.receiver_count() == 0 {
                shows.remove(&event.show_id);
            } else {
                let _ = tx.send(Arc::new(event));
            }
        }
    }
}
