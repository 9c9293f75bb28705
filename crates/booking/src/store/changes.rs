//! Which bookings changed, for WatchBooking. Watchers register by booking id, so a change wakes
//! only the watchers of that booking (with one channel for every change, each watcher was woken
//! by every booking's change and compared ids).
//!
//! This instance's own commits wake them at once. Other instances' commits arrive through the
//! event bus: [`Changes::follow`] tails `booking.status_changed` and `booking.step_parked`
//! (everything a WatchBooking stream shows; every instance's outbox relay publishes them) and
//! wakes the watchers of each booking they name.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use marquee_platform::{
    CancellationToken,
    events::{Bus, BusError, Tail},
};
use tokio::sync::watch;

/// The topic every status change of a booking is published on.
pub(crate) const STATUS_CHANGED: &str = "booking.status_changed";
/// The topic a saga step's parking (the booking's `parked_reason`) is published on.
pub(crate) const STEP_PARKED: &str = "booking.step_parked";

type Registry = Arc<Mutex<HashMap<String, watch::Sender<u64>>>>;

fn lock(registry: &Registry) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watched bookings of this instance, each with a change counter.
#[derive(Clone, Default)]
pub(crate) struct Changes {
    by_id: Registry,
}

impl Changes {
    /// Watches one booking's changes from now on.
    pub(crate) fn subscribe(&self, booking_id: &str) -> ChangeSubscription {
        let rx = lock(&self.by_id)
            .entry(booking_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        ChangeSubscription {
            rx,
            booking_id: booking_id.to_owned(),
            by_id: self.by_id.clone(),
        }
    }

    /// Wakes the watchers of `booking_id`, if it has any.
    pub(crate) fn changed(&self, booking_id: &str) {
        if let Some(tx) = lock(&self.by_id).get(booking_id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes the watchers of every booking whose change is published on `bus`, from now until
    /// `stop` (other instances' changes; this instance's own wake them twice, which costs a
    /// watcher one more read). A failing bus is retried every second, going on after the last
    /// event read; watchers still poll meanwhile.
    pub(crate) fn follow(&self, bus: &Bus, stop: &CancellationToken) {
        for topic in [STATUS_CHANGED, STEP_PARKED] {
            self.follow_topic(bus.clone(), topic, stop.clone());
        }
    }

    fn follow_topic(&self, bus: Bus, topic: &'static str, stop: CancellationToken) {
        let changes = self.clone();
        tokio::spawn(async move {
            let mut tail: Option<Tail> = None;
            loop {
                let step = async {
                    let t = match &mut tail {
                        Some(t) => t,
                        None => tail.insert(bus.tail(topic).await?),
                    };
                    let event = t.next().await?;
                    changes.changed(&event.aggregate_id);
                    Ok::<(), BusError>(())
                };
                let failed = tokio::select! {
                    () = stop.cancelled() => return,
                    result = step => result.err(),
                };
                match failed {
                    None => {}
                    // The events missed were changes watchers will find by polling.
                    Some(BusError::Lagged(n)) => {
                        tracing::warn!(topic, missed = n, "booking change feed lagged");
                    }
                    Some(error) => {
                        tracing::warn!(topic, %error, "booking change feed: will retry in 1 s");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
        });
    }

    /// How many bookings are watched.
    #[cfg(test)]
    fn watched(&self) -> usize {
        lock(&self.by_id).len()
    }
}

/// One watcher's registration: [`ChangeSubscription::changed`] completes at each change of its
/// booking (changes while nobody waited are folded into one). Dropping it unregisters, and the
/// booking's entry goes with its last watcher.
pub struct ChangeSubscription {
    rx: watch::Receiver<u64>,
    booking_id: String,
    by_id: Registry,
}

impl ChangeSubscription {
    /// Completes at the next change of the booking.
    pub async fn changed(&mut self) {
        // The registry keeps the sender while any subscription to it lives, so this does not
        // fail; were it to, waiting for ever beats spinning (watchers also poll on a timer).
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for ChangeSubscription {
    fn drop(&mut self) {
        let mut map = lock(&self.by_id);
        // Subscribing and dropping both hold the lock, so the count cannot change meanwhile;
        // this subscription's own receiver is still counted.
        if map
            .get(&self.booking_id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.booking_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn woken(sub: &mut ChangeSubscription) -> bool {
        tokio::time::timeout(Duration::from_millis(50), sub.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_change_wakes_only_the_watchers_of_its_booking() {
        let changes = Changes::default();
        let (mut a1, mut a2, mut b) = (
            changes.subscribe("a"),
            changes.subscribe("a"),
            changes.subscribe("b"),
        );
        changes.changed("a");
        assert!(woken(&mut a1).await && woken(&mut a2).await);
        assert!(!woken(&mut b).await, "b's watcher woken by a's change");
        // Seen changes do not wake again; changes while nobody waited fold into one.
        assert!(!woken(&mut a1).await);
        changes.changed("b");
        changes.changed("b");
        assert!(woken(&mut b).await);
        assert!(!woken(&mut b).await);
        // A change of a booking nobody watches is dropped.
        changes.changed("c");
        assert_eq!(changes.watched(), 2);
    }

    #[tokio::test]
    async fn the_last_watcher_gone_the_entry_goes() {
        let changes = Changes::default();
        let first = changes.subscribe("a");
        let second = changes.subscribe("a");
        drop(first);
        assert_eq!(changes.watched(), 1);
        drop(second);
        assert_eq!(changes.watched(), 0);
        let mut again = changes.subscribe("a");
        changes.changed("a");
        assert!(woken(&mut again).await);
    }
}
