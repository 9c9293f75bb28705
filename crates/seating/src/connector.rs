//! Theatres sold in live mode: their own systems, called over gRPC
//! (`marquee.partner.v1.TheatreConnectorService`), lock seats before seating holds them, and confirm and
//! cancel sales. The service sees only [`Connector`]'s answers: a refusal is data, a theatre
//! that does not answer is [`SeatingError::Unavailable`].

use std::{collections::HashMap, sync::Arc, time::Duration};

use marquee_proto::partner::v1::{
    self as pb, theatre_connector_service_client::TheatreConnectorServiceClient,
};
use tonic::{
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use crate::{config::ConnectorConfig, domain::SeatingError};

/// How much longer than a hold a theatre keeps its lock: clocks differ, and a lock that lapsed
/// a moment before its hold would have the theatre refuse a paid booking. A seat stays locked
/// at most this long after its hold ended without a release.
pub const LOCK_MARGIN_MS: i64 = 30_000;

/// One theatre's system.
#[derive(Clone)]
pub struct Connector {
    theatre_id: Arc<str>,
    client: TheatreConnectorServiceClient<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
}

/// What a theatre answered to a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// Every seat is locked.
    Locked,
    /// These seats are not free there; nothing changed.
    Refused(Vec<String>),
}

/// A lock request.
pub struct LockRequest<'a> {
    /// The lock: the hold's id.
    pub lock_id: &'a str,
    /// The show.
    pub show_id: &'a str,
    /// The seats.
    pub seat_ids: &'a [String],
    /// When the hold ends, Unix ms (the lock lasts [`LOCK_MARGIN_MS`] longer).
    pub until_ms: i64,
    /// The lock of the hold this one replaces.
    pub replaces: Option<&'a str>,
}

/// The theatre's system did not answer as the contract says.
#[derive(Debug, thiserror::Error)]
#[error("theatre {theatre}'s system: {status}")]
struct ConnectorError {
    theatre: Arc<str>,
    status: tonic::Status,
}

/// True for a host on this machine.
fn is_loopback(host: Option<&str>) -> bool {
    match host {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

impl Connector {
    fn new(theatre_id: &str, config: &ConnectorConfig) -> Result<Self, String> {
        let field = |f: &str| format!("seating.connectors.{theatre_id}.{f}");
        let mut endpoint = Endpoint::from_shared(config.url.clone())
            .map_err(|e| format!("{}: {e}", field("url")))?
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .tcp_nodelay(true);
        let read = |file: &String, setting: &str| {
            std::fs::read(file).map_err(|e| format!("{}: {file}: {e}", field(setting)))
        };
        let tls_files = [
            ("ca_file", &config.ca_file),
            ("cert_file", &config.cert_file),
            ("key_file", &config.key_file),
        ];
        match endpoint.uri().scheme_str() {
            Some("https") => {
                let mut tls = match &config.ca_file {
                    Some(file) => ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(read(file, "ca_file")?)),
                    None => ClientTlsConfig::new().with_webpki_roots(),
                };
                match (&config.cert_file, &config.key_file) {
                    (Some(cert), Some(key)) => {
                        tls = tls.identity(Identity::from_pem(
                            read(cert, "cert_file")?,
                            read(key, "key_file")?,
                        ));
                    }
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(format!("{}: required with cert_file", field("key_file")));
                    }
                    (None, Some(_)) => {
                        return Err(format!("{}: required with key_file", field("cert_file")));
                    }
                }
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| format!("{}: {e}", field("url")))?;
            }
            Some("http")
                if let Some((setting, _)) = tls_files.iter().find(|(_, f)| f.is_some()) =>
            {
                return Err(format!("{}: only for an https url", field(setting)));
            }
            Some("http") if is_loopback(endpoint.uri().host()) => {}
            _ => {
                return Err(format!(
                    "{}: must be https (http only to this machine: the token would travel in \
                     the clear)",
                    field("url")
                ));
            }
        }
        let channel = endpoint.connect_lazy();
        let token = match &config.token {
            Some(t) => Some(
                format!("Bearer {}", t.expose())
                    .parse()
                    .map_err(|_| format!("{}: not a valid header value", field("token")))?,
            ),
            None => None,
        };
        Ok(Self {
            theatre_id: theatre_id.into(),
            client: TheatreConnectorServiceClient::new(channel),
            token,
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.timeout);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        r
    }

    fn failed(&self, status: tonic::Status) -> SeatingError {
        tracing::warn!(theatre = %self.theatre_id, %status, "the theatre's system did not answer");
        SeatingError::Unavailable(Box::new(ConnectorError {
            theatre: self.theatre_id.clone(),
            status,
        }))
    }

    /// Locks seats (see the contract: all or nothing, replacing `replaces`).
    #[tracing::instrument(name = "theatre LockSeats", skip_all, fields(theatre = %self.theatre_id))]
    pub async fn lock(&self, r: LockRequest<'_>) -> Result<Lock, SeatingError> {
        let answer = self
            .client
            .clone()
            .lock_seats(self.request(pb::LockSeatsRequest {
                lock_id: r.lock_id.to_owned(),
                show_id: r.show_id.to_owned(),
                seat_ids: r.seat_ids.to_vec(),
                expires_at: Some(timestamp(r.until_ms + LOCK_MARGIN_MS)),
                replaces_lock_id: r.replaces.unwrap_or_default().to_owned(),
            }))
            .await
            .map_err(|s| self.failed(s))?
            .into_inner();
        Ok(match answer.locked {
            true => Lock::Locked,
            false => Lock::Refused(answer.unavailable_seat_ids),
        })
    }

    /// Releases a lock.
    #[tracing::instrument(name = "theatre ReleaseSeats", skip_all, fields(theatre = %self.theatre_id))]
    pub async fn release(&self, show_id: &str, lock_id: &str) -> Result<(), SeatingError> {
        self.client
            .clone()
            .release_seats(self.request(pb::ReleaseSeatsRequest {
                lock_id: lock_id.to_owned(),
                show_id: show_id.to_owned(),
            }))
            .await
            .map_err(|s| self.failed(s))?;
        Ok(())
    }

    /// Sells a lock's seats to a booking: false when the theatre no longer holds them for it.
    #[tracing::instrument(name = "theatre ConfirmSeats", skip_all, fields(theatre = %self.theatre_id))]
    pub async fn confirm(
        &self,
        show_id: &str,
        lock_id: &str,
        booking_reference: &str,
    ) -> Result<bool, SeatingError> {
        Ok(self
            .client
            .clone()
            .confirm_seats(self.request(pb::ConfirmSeatsRequest {
                lock_id: lock_id.to_owned(),
                show_id: show_id.to_owned(),
                booking_reference: booking_reference.to_owned(),
            }))
            .await
            .map_err(|s| self.failed(s))?
            .into_inner()
            .confirmed)
    }

    /// Puts a booking's seats back on sale there.
    #[tracing::instrument(name = "theatre CancelSale", skip_all, fields(theatre = %self.theatre_id))]
    pub async fn cancel_sale(
        &self,
        show_id: &str,
        booking_reference: &str,
    ) -> Result<(), SeatingError> {
        self.client
            .clone()
            .cancel_sale(self.request(pb::CancelSaleRequest {
                show_id: show_id.to_owned(),
                booking_reference: booking_reference.to_owned(),
            }))
            .await
            .map_err(|s| self.failed(s))?;
        Ok(())
    }
}

/// The connectors of the theatres sold in live mode, by theatre id.
#[derive(Clone, Default)]
pub struct Connectors(Arc<HashMap<String, Connector>>);

impl Connectors {
    /// Clients for `configs` (connected lazily, on first use).
    pub fn new<'a>(
        configs: impl IntoIterator<Item = (&'a String, &'a ConnectorConfig)>,
    ) -> Result<Self, String> {
        let map = configs
            .into_iter()
            .map(|(theatre, c)| Connector::new(theatre, c).map(|c| (theatre.clone(), c)))
            .collect::<Result<_, _>>()?;
        Ok(Self(Arc::new(map)))
    }

    /// True when no theatre is sold in live mode.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The theatre's connector, when it is sold in live mode.
    pub fn of(&self, theatre_id: &str) -> Option<&Connector> {
        self.0.get(theatre_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, ca_file: Option<&str>) -> ConnectorConfig {
        ConnectorConfig {
            url: url.to_owned(),
            ca_file: ca_file.map(str::to_owned),
            ..ConnectorConfig::default()
        }
    }

    #[tokio::test]
    async fn a_client_certificate_needs_its_key_and_https() {
        let theatre = "t1".to_owned();
        let with = |url: &str, cert: Option<&str>, key: Option<&str>| {
            let c = ConnectorConfig {
                cert_file: cert.map(str::to_owned),
                key_file: key.map(str::to_owned),
                ..config(url, None)
            };
            Connectors::new([(&theatre, &c)]).map(|_| ())
        };
        let https = "https://tickets.example:443";
        let error = with(https, Some("c.pem"), None).expect_err("no key");
        assert_eq!(
            error,
            "seating.connectors.t1.key_file: required with cert_file"
        );
        let error = with(https, None, Some("k.pem")).expect_err("no cert");
        assert_eq!(
            error,
            "seating.connectors.t1.cert_file: required with key_file"
        );
        let error = with(https, Some("/no/c.pem"), Some("/no/k.pem")).expect_err("no file");
        assert!(
            error.starts_with("seating.connectors.t1.cert_file: /no/c.pem"),
            "{error}"
        );
        let error = with("http://127.0.0.1:1", None, Some("k.pem")).expect_err("plain http");
        assert_eq!(
            error,
            "seating.connectors.t1.key_file: only for an https url"
        );
    }

    fn check(url: &str, ca_file: Option<&str>) -> Result<(), String> {
        let theatre = "t1".to_owned();
        Connectors::new([(&theatre, &config(url, ca_file))]).map(|_| ())
    }

    #[tokio::test]
    async fn the_token_never_travels_in_the_clear() {
        for ok in [
            "https://tickets.example-theatre.com:443",
            "http://127.0.0.1:7000",
            "http://[::1]:7000",
            "http://localhost:7000",
        ] {
            check(ok, None).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for plain in ["http://tickets.example-theatre.com", "http://10.0.0.5:7000"] {
            let error = check(plain, None).expect_err(plain);
            assert!(
                error.starts_with("seating.connectors.t1.url: must be https"),
                "{error}"
            );
        }
        let error = check("http://127.0.0.1:7000", Some("ca.pem")).expect_err("ca over http");
        assert!(
            error.starts_with("seating.connectors.t1.ca_file"),
            "{error}"
        );
        let error =
            check("https://tickets.example:443", Some("/no/such/ca.pem")).expect_err("no file");
        assert!(
            error.starts_with("seating.connectors.t1.ca_file: /no/such/ca.pem"),
            "{error}"
        );
    }
}
