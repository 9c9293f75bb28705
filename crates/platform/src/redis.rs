//! Connecting to Redis with fred.

pub use fred::prelude::Client;
use fred::prelude::{Builder, ClientLike, Config, Error as RedisError, ReconnectPolicy};

/// Connects a client to `url` (`redis://host:port/db`) and waits until it is ready.
pub async fn connect(url: &str) -> Result<Client, RedisError> {
    let config = Config::from_url(url)?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(5);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}

/// True when Redis answers a PING.
pub async fn ping(client: &Client) -> bool {
    client.ping::<String>(None).await.is_ok()
}
