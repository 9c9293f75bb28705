//! Typed, layered configuration.
//!
//! Each binary defines one configuration type (deriving `Serialize`, `Deserialize` and
//! `Default`) and loads it with [`load`]: defaults, then an optional TOML file, then environment
//! variables prefixed `MARQUEE_` with `__` between levels (`MARQUEE_SERVER__LISTEN` sets
//! `server.listen`), then a few well-known unprefixed variables such as `DATABASE_URL`. A bad value
//! is an error that names the setting and where it came from.
//!
//! Tests build configuration values directly; nothing here is needed to run a service in a test.

use std::{fmt, net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A configuration error; its message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

/// Loads a configuration: defaults, the TOML `file` if given (it must exist), `MARQUEE_*`
/// variables, then each `(VARIABLE, key.path)` alias in `aliases`.
pub fn load<T>(file: Option<&Path>, aliases: &[(&str, &str)]) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    // MARQUEE_CONFIG names the file and MARQUEE_TEST_* configure the test harness: neither is a
    // setting.
    figment = figment.merge(
        Env::prefixed("MARQUEE_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                k != "config" && !k.starts_with("test_")
            })
            .split("__"),
    );
    for (var, key) in aliases {
        let key = (*key).to_owned();
        figment = figment.merge(Env::raw().only(&[*var]).map(move |_| key.clone().into()));
    }
    figment.extract().map_err(|errors| {
        let text = errors
            .into_iter()
            .map(|e| {
                let key = e.path.join(".").to_ascii_lowercase();
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                if key.is_empty() {
                    format!("{}{source}", e.kind)
                } else {
                    format!("setting `{key}`: {}{source}", e.kind)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError(text)
    })
}

/// A value that must never be printed: logs and `Debug` show `***`.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The value itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How a listener serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, for example `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// Deadline for a call whose client sets none, in milliseconds. A client's `grpc-timeout`
    /// shortens it, never lengthens it.
    pub request_timeout_ms: u64,
    /// Calls handled at once on the whole listener; beyond it calls are shed with
    /// `RESOURCE_EXHAUSTED`.
    pub max_concurrent_requests: usize,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// How long in-flight calls and streams may take to finish after a shutdown signal, in
    /// milliseconds.
    pub shutdown_grace_ms: u64,
    /// Browser origins allowed by CORS for gRPC-Web, for example `https://marquee.example`;
    /// `*` allows any origin.
    pub cors_allowed_origins: Vec<String>,
    /// Serve gRPC reflection (v1 and v1alpha). Keep it on internal listeners only.
    pub reflection: bool,
    /// How often the health of the service's dependencies is checked, in milliseconds.
    pub health_check_interval_ms: u64,
    /// How long a mutating request's idempotency key (its `request_id`) is kept, in seconds: a
    /// retry within it gets the first result back, a retry after it runs as a new request.
    /// Zero keeps keys for ever.
    pub idempotency_retention_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            request_timeout_ms: 30_000,
            max_concurrent_requests: 2048,
            max_message_bytes: 4 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            cors_allowed_origins: vec!["*".to_owned()],
            reflection: true,
            health_check_interval_ms: 5_000,
            idempotency_retention_secs: 7 * 24 * 60 * 60,
        }
    }
}

/// Where a service keeps its data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://…` or `sqlite://…`; also read from `DATABASE_URL`.
    pub database_url: Option<Secret<String>>,
    /// `redis://…`; also read from `REDIS_URL`. Without it caches live in the process.
    pub redis_url: Option<Secret<String>>,
    /// Prefix of every Redis key this process writes, so that deployments (and tests) can share
    /// one Redis.
    pub redis_key_prefix: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging and tracing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `marquee_catalog=debug,info`; `RUST_LOG` overrides it.
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Sample {
        server: ServerConfig,
        store: StoreConfig,
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let dir = tempfile_dir();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[server]\nlisten = \"not an address\"\n").expect("write");
        let err = load::<Sample>(Some(&file), &[]).expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("server.listen"), "{text}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = load::<Sample>(Some(Path::new("/nonexistent/marquee.toml")), &[])
            .expect_err("must fail");
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn file_values_apply_and_secrets_hide() {
        let dir = tempfile_dir();
        let file = dir.join("ok.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:6000\"\n[store]\ndatabase_url = \"postgres://u:pw@h/db\"\n",
        )
        .expect("write");
        let cfg = load::<Sample>(Some(&file), &[]).expect("loads");
        assert_eq!(cfg.server.listen.port(), 6000);
        assert!(!format!("{cfg:?}").contains("pw"));
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("marquee-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}
