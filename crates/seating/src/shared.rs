//! Reads of a show that its watchers on this instance share.
//!
//! Watchers come to a show in crowds (a sale opens), miss events together (a reconnection, a
//! lost pub/sub message) and check on their holds every second: reading for each of them alone
//! would make the store's work grow with the watchers. So each read of a show is kept, joined
//! while it runs and used again while it is new enough for the watcher asking: begun after
//! every store reconnection the watcher has seen and at or after the watcher's mark (a tick,
//! [`crate::store::tick`]), or with a result the watcher can check is enough.

use std::{sync::Arc, time::Duration};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};

use tokio::sync::watch;

use crate::{domain::SeatingError, store::HoldStore};

/// What a watcher needs of a shared read.
pub(crate) struct Need<'a, T> {
    /// The store's reconnections the watcher has seen: the read must have begun after them.
    pub(crate) reconnections: u64,
    /// A read begun at or after this tick serves.
    pub(crate) mark: u64,
    /// So does one whose result passes this check (then a read begun earlier is joined while it
    /// runs, and its result checked).
    pub(crate) enough: Option<&'a (dyn Fn(&T) -> bool + Sync)>,
}

/// One read per key (a show), shared.
pub(crate) struct SharedReads<T> {
    cache: moka::sync::Cache<String, Entry<T>>,
    /// The store's reconnection count, which each read records when it begins.
    reconnections: watch::Receiver<u64>,
}

struct Entry<T> {
    /// The store's reconnection count when the read began: it has every change made before.
    reconnections: u64,
    /// When it began.
    began: u64,
    read: Shared<BoxFuture<'static, Result<Arc<T>, Arc<SeatingError>>>>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            reconnections: self.reconnections,
            began: self.began,
            read: self.read.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serves {
    Yes,
    /// It runs, began before the mark, and its result may be enough.
    Perhaps,
    No,
}

impl<T> Entry<T> {
    fn serves(&self, need: &Need<'_, T>) -> Serves {
        if self.reconnections < need.reconnections {
            return Serves::No;
        }
        match self.read.peek() {
            Some(Err(_)) => Serves::No,
            _ if self.began >= need.mark => Serves::Yes,
            Some(Ok(v)) if need.enough.is_some_and(|f| f(v)) => Serves::Yes,
            None if need.enough.is_some() => Serves::Perhaps,
            _ => Serves::No,
        }
    }
}

impl<T: Send + Sync + 'static> SharedReads<T> {
    /// Keeps reads of `store` of up to `capacity` keys, each for at most `ttl`.
    pub(crate) fn new(store: &HoldStore, capacity: u64, ttl: Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            reconnections: store.reconnections(),
        }
    }

    /// A read of `key` that serves `need`: a kept one, or a new one made by `read`.
    pub(crate) async fn get(
        &self,
        key: &str,
        need: Need<'_, T>,
        read: impl Fn() -> BoxFuture<'static, Result<T, SeatingError>>,
    ) -> Result<Arc<T>, SeatingError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let entry = self
                .cache
                .entry_by_ref(key)
                .or_insert_with_if(
                    || Entry {
                        reconnections: *self.reconnections.borrow(),
                        began: crate::store::tick(),
                        read: read()
                            .map(|r| r.map(Arc::new).map_err(Arc::new))
                            .boxed()
                            .shared(),
                    },
                    |e| e.serves(&need) == Serves::No,
                )
                .into_value();
            let value = entry
                .read
                .clone()
                .await
                .map_err(SeatingError::from_shared)?;
            // A read joined while it ran may not be enough; the next one began after this call
            // did (the one found is replaced, or another replaced it since), so it serves.
            if tries > 1 || entry.serves(&need) == Serves::Yes {
                return Ok(value);
            }
        }
    }
}
