//! For services that do not run identity in their own process: fetch identity's public keys
//! with GetJwks at start-up, and again periodically so that new keys are picked up.

use std::time::Duration;

use anyhow::Context as _;
use jsonwebtoken::jwk::JwkSet;
use marquee_platform::{CancellationToken, auth::Verifier};
use marquee_proto::identity::v1::{GetJwksRequest, identity_service_client::IdentityServiceClient};

/// Fetches the JWKS document from the identity service at `endpoint` (`http://host:port`).
pub async fn fetch_jwks(endpoint: &str) -> anyhow::Result<JwkSet> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .with_context(|| format!("identity.endpoint: {endpoint:?} is not a URL"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("identity.endpoint: cannot connect to {endpoint}"))?;
    let response = IdentityServiceClient::new(channel)
        .get_jwks(GetJwksRequest {})
        .await
        .with_context(|| format!("identity at {endpoint}: GetJwks failed"))?
        .into_inner();
    serde_json::from_str(&response.jwks_json)
        .with_context(|| format!("identity at {endpoint}: GetJwks returned no valid JWKS"))
}

/// A verifier loaded from identity at `endpoint` (an error if identity cannot be reached now),
/// refreshed every `every` until `stop` is cancelled. A failed refresh keeps the keys it had.
pub async fn remote_verifier(
    endpoint: &str,
    every: Duration,
    stop: CancellationToken,
) -> anyhow::Result<Verifier> {
    let verifier = Verifier::new();
    let n = verifier.set_keys(&fetch_jwks(endpoint).await?);
    tracing::info!(endpoint, keys = n, "identity keys loaded");
    let endpoint = endpoint.to_owned();
    let refreshed = verifier.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every.max(Duration::from_secs(1))) => {}
            }
            match fetch_jwks(&endpoint).await {
                Ok(jwks) => {
                    refreshed.set_keys(&jwks);
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "identity keys not refreshed");
                }
            }
        }
    });
    Ok(verifier)
}
