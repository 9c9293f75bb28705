//! The catalog's settings.

use serde::{Deserialize, Serialize};

/// Settings of the catalog service (`[catalog]` in the config file, `MARQUEE_CATALOG__*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// How long shows and layouts stay cached, in seconds.
    pub cache_ttl_secs: u64,
    /// How long search results stay cached, in seconds.
    pub search_cache_ttl_secs: u64,
    /// Entries of the in-process cache (used when there is no Redis).
    pub cache_max_entries: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            cache_ttl_secs: 300,
            search_cache_ttl_secs: 60,
            cache_max_entries: 10_000,
        }
    }
}
