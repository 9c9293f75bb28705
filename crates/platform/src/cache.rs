//! A read-through cache for encoded responses: Redis when the service is given one (shared by every
//! instance), in the process otherwise.
//!
//! Failures of the cache never fail a request: a cache that does not answer is a miss, logged.
//! Entries expire after a TTL, and are invalidated explicitly ([`Cache::delete`]) or, for families
//! of keys too large to enumerate such as search results, by bumping a generation number that is
//! part of their keys ([`Cache::generation`], [`Cache::bump_generation`]).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use fred::prelude::{Client, Expiration, KeysInterface};

/// A cache of byte values by string key.
#[derive(Clone)]
pub struct Cache {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Memory(Arc<MemoryCache>),
    Redis { client: Client, prefix: Arc<str> },
}

struct MemoryCache {
    entries: moka::sync::Cache<String, Bytes>,
    generations: moka::sync::Cache<String, u64>,
}

impl Cache {
    /// An in-process cache of at most `max_entries`, each living at most `ttl`.
    pub fn in_memory(max_entries: u64, ttl: Duration) -> Self {
        Self {
            inner: Inner::Memory(Arc::new(MemoryCache {
                entries: moka::sync::Cache::builder()
                    .max_capacity(max_entries)
                    .time_to_live(ttl)
                    .build(),
                generations: moka::sync::Cache::builder().build(),
            })),
        }
    }

    /// A cache in Redis; every key is prefixed with `prefix`.
    pub fn redis(client: Client, prefix: &str) -> Self {
        Self {
            inner: Inner::Redis {
                client,
                prefix: Arc::from(prefix),
            },
        }
    }

    /// The value under `key`, or `None` on a miss or when the cache does not answer.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        match &self.inner {
            Inner::Memory(m) => m.entries.get(key),
            Inner::Redis { client, prefix } => {
                match client
                    .get::<Option<Bytes>, _>(format!("{prefix}{key}"))
                    .await
                {
                    Ok(v) => v,
                    Err(error) => {
                        tracing::warn!(%error, "cache read failed");
                        None
                    }
                }
            }
        }
    }

    /// Stores `value` under `key` for at most `ttl`.
    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        match &self.inner {
            Inner::Memory(m) => m.entries.insert(key.to_owned(), value),
            Inner::Redis { client, prefix } => {
                let secs = ttl.as_secs().max(1) as i64;
                if let Err(error) = client
                    .set::<(), _, _>(
                        format!("{prefix}{key}"),
                        value,
                        Some(Expiration::EX(secs)),
                        None,
                        false,
                    )
                    .await
                {
                    tracing::warn!(%error, "cache write failed");
                }
            }
        }
    }

    /// Removes `keys`. Returns false when the cache did not answer (entries may then stay until
    /// their TTL ends).
    pub async fn delete(&self, keys: &[String]) -> bool {
        if keys.is_empty() {
            return true;
        }
        match &self.inner {
            Inner::Memory(m) => {
                for k in keys {
                    m.entries.invalidate(k);
                }
                true
            }
            Inner::Redis { client, prefix } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
                match client.del::<i64, _>(keys).await {
                    Ok(_) => true,
                    Err(error) => {
                        tracing::warn!(%error, "cache invalidation failed");
                        false
                    }
                }
            }
        }
    }

    /// The current generation of a family of keys (0 until first bumped), or `None` when the
    /// cache does not answer (callers then bypass the cache).
    pub async fn generation(&self, family: &str) -> Option<u64> {
        match &self.inner {
            Inner::Memory(m) => Some(m.generations.get(family).unwrap_or(0)),
            Inner::Redis { client, prefix } => {
                match client
                    .get::<Option<u64>, _>(format!("{prefix}gen:{family}"))
                    .await
                {
                    Ok(v) => Some(v.unwrap_or(0)),
                    Err(error) => {
                        tracing::warn!(%error, "cache generation read failed");
                        None
                    }
                }
            }
        }
    }

    /// Invalidates every key of a family by moving it to a new generation.
    pub async fn bump_generation(&self, family: &str) -> bool {
        match &self.inner {
            Inner::Memory(m) => {
                m.generations
                    .entry(family.to_owned())
                    .and_upsert_with(|e| e.map(|e| e.into_value() + 1).unwrap_or(1));
                true
            }
            Inner::Redis { client, prefix } => {
                match client.incr::<u64, _>(format!("{prefix}gen:{family}")).await {
                    Ok(_) => true,
                    Err(error) => {
                        tracing::warn!(%error, "cache generation bump failed");
                        false
                    }
                }
            }
        }
    }
}
