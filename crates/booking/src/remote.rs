//! Booking's calls to other services, always with booking's own service token (client
//! credentials), never a user's: catalog (show prices, layouts and names), seating (read,
//! extend, release and confirm holds; cancel sales) and payments (orders, capture, void, close,
//! refund).
//!
//! Answers are turned into plain values here, and failures into [`BookingError`]s: a refusal
//! that retrying cannot change is a `Precondition`/`NotFound`; anything else is a `Dependency`.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use marquee_proto::{
    catalog::v1::{self as cat, catalog_service_client::CatalogServiceClient},
    identity::v1::{IssueClientTokenRequest, identity_service_client::IdentityServiceClient},
    payments::v1::{self as pay, payment_service_client::PaymentServiceClient},
    seating::v1::{self as seat, seating_service_client::SeatingServiceClient},
};
use tonic::{Code, Request, Status, transport::Channel};

use crate::domain::{BookingError, Money, saga::PaymentSeen};

/// A fresh token and when it expires (Unix seconds), or why not.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<(String, i64), String>> + Send>>;

/// Where booking's service token comes from, cached until shortly before it expires.
#[derive(Clone)]
pub struct TokenSource {
    fetch: Arc<dyn Fn() -> TokenFuture + Send + Sync>,
    cached: Arc<Mutex<Option<(String, i64)>>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource")
    }
}

impl TokenSource {
    /// Tokens from `fetch` (for example identity's client-credentials grant in-process).
    pub fn new(fetch: impl Fn() -> TokenFuture + Send + Sync + 'static) -> Self {
        Self {
            fetch: Arc::new(fetch),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// Tokens from identity's IssueClientToken at `channel` for a client's credentials.
    pub fn client_credentials(channel: Channel, client_id: String, client_secret: String) -> Self {
        Self::new(move || {
            let channel = channel.clone();
            let request = IssueClientTokenRequest {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            };
            Box::pin(async move {
                let response = IdentityServiceClient::new(channel)
                    .issue_client_token(request)
                    .await
                    .map_err(|s| format!("identity refused a service token: {}", s.message()))?
                    .into_inner();
                let expires = response
                    .expire_time
                    .map(|t| t.seconds)
                    .unwrap_or_else(|| Utc::now().timestamp() + 60);
                Ok((response.access_token, expires))
            })
        })
    }

    /// A valid token: the cached one unless it expires within a minute.
    pub async fn token(&self) -> Result<String, BookingError> {
        let now = Utc::now().timestamp();
        if let Ok(cached) = self.cached.lock()
            && let Some((token, exp)) = cached.as_ref()
            && *exp > now + 60
        {
            return Ok(token.clone());
        }
        let (token, exp) = (self.fetch)()
            .await
            .map_err(|message| BookingError::Dependency {
                service: "identity",
                message,
            })?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((token.clone(), exp));
        }
        Ok(token)
    }
}

/// A hold as seating reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldInfo {
    /// Hold id.
    pub id: String,
    /// Show.
    pub show_id: String,
    /// Seats.
    pub seat_ids: Vec<String>,
    /// Fencing token.
    pub fencing_token: i64,
    /// Deadline.
    pub expires_at: DateTime<Utc>,
    /// Holder.
    pub holder_id: String,
}

/// A show's facts booking needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowInfo {
    /// Theatre.
    pub theatre_id: String,
    /// Screen.
    pub screen_id: String,
    /// Movie.
    pub movie_id: String,
    /// Price per category code.
    pub prices: Vec<(String, Money)>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
}

/// A payment order as payments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    /// Marquee's order id.
    pub order_id: String,
    /// The provider's order id.
    pub provider_order_id: String,
    /// The provider's public key id (for checkouts).
    pub key_id: String,
}

/// The other services, reached over gRPC.
#[derive(Clone, Debug)]
pub struct Remotes {
    catalog: CatalogServiceClient<Channel>,
    seating: SeatingServiceClient<Channel>,
    payments: PaymentServiceClient<Channel>,
    tokens: TokenSource,
}

fn ts(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

/// A lazily connected channel to `url` (the services may start after booking).
pub fn lazy_channel(setting: &str, url: &str) -> Result<Channel, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|_| format!("{setting}: {url:?} is not a URL"))?
        .connect_timeout(StdDuration::from_secs(5))
        .timeout(StdDuration::from_secs(15));
    Ok(endpoint.connect_lazy())
}

fn dependency(service: &'static str, status: &Status) -> BookingError {
    BookingError::Dependency {
        service,
        message: format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Seating's and payments' refusals that retrying cannot change.
fn refusal(service: &'static str, status: Status) -> BookingError {
    use tonic_types::StatusExt as _;
    match status.code() {
        Code::NotFound => BookingError::NotFound {
            kind: if service == "seating" {
                "hold"
            } else {
                "order"
            },
            id: String::new(),
        },
        Code::FailedPrecondition => {
            let reason = status
                .get_error_details()
                .error_info()
                .map(|i| i.reason.clone())
                .unwrap_or_default();
            BookingError::Precondition {
                reason: match reason.as_str() {
                    "HOLD_EXPIRED" => "HOLD_EXPIRED",
                    "HOLD_NOT_FOUND" => "HOLD_NOT_FOUND",
                    "STALE_TOKEN" => "STALE_TOKEN",
                    "SEAT_SOLD" => "SEAT_SOLD",
                    "THEATRE_REFUSED" => "THEATRE_REFUSED",
                    "HOLD_LOST" => "HOLD_LOST",
                    "NOT_AUTHORIZED" => "NOT_AUTHORIZED",
                    _ => "DEPENDENCY_REFUSED",
                },
                message: status.message().to_owned(),
            }
        }
        _ => dependency(service, &status),
    }
}

impl Remotes {
    /// Clients over the given channels, authenticating with `tokens`.
    pub fn new(catalog: Channel, seating: Channel, payments: Channel, tokens: TokenSource) -> Self {
        Self {
            catalog: CatalogServiceClient::new(catalog),
            seating: SeatingServiceClient::new(seating),
            payments: PaymentServiceClient::new(payments),
            tokens,
        }
    }

    async fn authed<T>(&self, message: T) -> Result<Request<T>, BookingError> {
        let token = self.tokens.token().await?;
        let mut request = Request::new(message);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| BookingError::Dependency {
                service: "identity",
                message: "the service token is not ASCII".to_owned(),
            })?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }

    /// A hold and its holder.
    pub async fn hold(&self, hold_id: &str) -> Result<Option<HoldInfo>, BookingError> {
        let request = self
            .authed(seat::GetHoldRequest {
                hold_id: hold_id.to_owned(),
            })
            .await?;
        match self.seating.clone().get_hold(request).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok(r.hold.map(|h| HoldInfo {
                    id: h.hold_id,
                    show_id: h.show_id,
                    seat_ids: h.seat_ids,
                    fencing_token: h.fencing_token,
                    expires_at: ts(h.expire_time),
                    holder_id: r.holder_id,
                }))
            }
            Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => Ok(None),
            Err(s) => Err(dependency("seating", &s)),
        }
    }

    /// Extends a hold by `extension` (seating caps it at the hold's maximum lifetime); returns
    /// the hold's new deadline.
    pub async fn extend_hold(
        &self,
        hold_id: &str,
        extension: StdDuration,
    ) -> Result<DateTime<Utc>, BookingError> {
        let request = self
            .authed(seat::ExtendHoldRequest {
                hold_id: hold_id.to_owned(),
                extension: Some(prost_types::Duration {
                    seconds: extension.as_secs() as i64,
                    nanos: extension.subsec_nanos() as i32,
                }),
            })
            .await?;
        match self.seating.clone().extend_hold(request).await {
            Ok(r) => Ok(ts(r.into_inner().hold.and_then(|h| h.expire_time))),
            Err(s) => Err(refusal("seating", s)),
        }
    }

    /// Releases a hold; a hold that is gone already is fine.
    pub async fn release_hold(&self, hold_id: &str) -> Result<(), BookingError> {
        let request = self
            .authed(seat::ReleaseHoldRequest {
                hold_id: hold_id.to_owned(),
            })
            .await?;
        match self.seating.clone().release_hold(request).await {
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
            Err(s) => Err(dependency("seating", &s)),
        }
    }

    /// Confirms a hold with its fencing token (a retry of a confirmation that went through
    /// succeeds again).
    pub async fn confirm_hold(
        &self,
        hold_id: &str,
        fencing_token: i64,
        booking_reference: &str,
    ) -> Result<(), BookingError> {
        let request = self
            .authed(seat::ConfirmHoldRequest {
                hold_id: hold_id.to_owned(),
                fencing_token,
                booking_reference: booking_reference.to_owned(),
            })
            .await?;
        match self.seating.clone().confirm_hold(request).await {
            Ok(_) => Ok(()),
            Err(s) => Err(refusal("seating", s)),
        }
    }

    /// The catalog's show.
    async fn catalog_show(&self, show_id: &str) -> Result<cat::Show, BookingError> {
        self.catalog
            .clone()
            .get_show(cat::GetShowRequest {
                show_id: show_id.to_owned(),
            })
            .await
            .map_err(|s| dependency("catalog", &s))?
            .into_inner()
            .show
            .ok_or_else(|| BookingError::Dependency {
                service: "catalog",
                message: "GetShow returned no show".to_owned(),
            })
    }

    /// A show's theatre, screen and prices.
    pub async fn show(&self, show_id: &str) -> Result<ShowInfo, BookingError> {
        let show = self.catalog_show(show_id).await?;
        Ok(ShowInfo {
            starts_at: ts(show.start_time),
            ends_at: ts(show.end_time),
            movie_id: show.movie_id,
            theatre_id: show.theatre_id,
            screen_id: show.screen_id,
            prices: show
                .prices
                .into_iter()
                .filter_map(|p| {
                    p.price.map(|m| {
                        (
                            p.category_code,
                            Money {
                                currency: m.currency_code,
                                amount_minor: m.amount_minor,
                            },
                        )
                    })
                })
                .collect(),
        })
    }

    /// The time zone of a show's city (IANA name, as the catalog keeps it), in which people read
    /// the show's times. `None` when the catalog names none or one chrono-tz does not know.
    pub async fn show_time_zone(&self, show_id: &str) -> Result<Option<Tz>, BookingError> {
        let show = self.catalog_show(show_id).await?;
        let mut catalog = self.catalog.clone();
        let mut page_token = String::new();
        loop {
            let page = catalog
                .list_cities(cat::ListCitiesRequest {
                    page_size: 200,
                    page_token,
                })
                .await
                .map_err(|s| dependency("catalog", &s))?
                .into_inner();
            if let Some(city) = page.cities.iter().find(|c| c.id == show.city_id) {
                return Ok(city.time_zone.parse::<Tz>().ok());
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            page_token = page.next_page_token;
        }
    }

    /// The names a ticket prints: `(movie title, theatre name, screen name)`.
    pub async fn names(&self, show: &ShowInfo) -> Result<(String, String, String), BookingError> {
        let mut movies = self.catalog.clone();
        let mut theatres = self.catalog.clone();
        let (movie, theatre) = tokio::join!(
            movies.get_movie(cat::GetMovieRequest {
                movie_id: show.movie_id.clone(),
            }),
            theatres.get_theatre(cat::GetTheatreRequest {
                theatre_id: show.theatre_id.clone(),
            })
        );
        let movie = movie.map_err(|s| dependency("catalog", &s))?.into_inner();
        let theatre = theatre.map_err(|s| dependency("catalog", &s))?.into_inner();
        let screen = theatre
            .screens
            .iter()
            .find(|s| s.id == show.screen_id)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        Ok((
            movie.movie.map(|m| m.title).unwrap_or_default(),
            theatre.theatre.map(|t| t.name).unwrap_or_default(),
            screen,
        ))
    }

    /// Puts the seats sold to a booking back on sale (the booking was cancelled); a retry
    /// finds nothing left to do.
    pub async fn cancel_sale(
        &self,
        show_id: &str,
        booking_reference: &str,
    ) -> Result<(), BookingError> {
        let request = self
            .authed(seat::CancelSaleRequest {
                show_id: show_id.to_owned(),
                booking_reference: booking_reference.to_owned(),
            })
            .await?;
        self.seating
            .clone()
            .cancel_sale(request)
            .await
            .map(|_| ())
            .map_err(|s| dependency("seating", &s))
    }

    /// Closes an order that will not be captured: an authorised payment is voided now, and one
    /// that arrives later is voided when it does. `Ok(false)` when the order was captured
    /// already (it needs a refund instead).
    pub async fn close_order(
        &self,
        request_id: String,
        order_id: &str,
        reason: &str,
    ) -> Result<bool, BookingError> {
        let request = self
            .authed(pay::CloseOrderRequest {
                request_id,
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            })
            .await?;
        match self.payments.clone().close_order(request).await {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::FailedPrecondition => Ok(false),
            Err(s) => Err(dependency("payments", &s)),
        }
    }

    /// The category of every seat of a screen (`(seat id, category code)`).
    pub async fn seat_categories(
        &self,
        screen_id: &str,
    ) -> Result<Vec<(String, String)>, BookingError> {
        let response = self
            .catalog
            .clone()
            .get_screen_layout(cat::GetScreenLayoutRequest {
                screen_id: screen_id.to_owned(),
            })
            .await
            .map_err(|s| dependency("catalog", &s))?
            .into_inner();
        let mut out = Vec::new();
        for row in response
            .screen
            .and_then(|s| s.layout)
            .map(|l| l.rows)
            .unwrap_or_default()
        {
            for item in row.items {
                if let Some(cat::row_item::Item::Seat(s)) = item.item {
                    out.push((
                        format!("{}-{}", row.label, s.number),
                        row.category_code.clone(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Creates (or, on a retry, returns) the payment order of a booking, `platform_fee_minor`
    /// of it Marquee's.
    pub async fn create_order(
        &self,
        request_id: String,
        amount: &Money,
        platform_fee_minor: i64,
        theatre_id: &str,
        receipt: &str,
    ) -> Result<OrderInfo, BookingError> {
        let request = self
            .authed(pay::CreateOrderRequest {
                request_id,
                amount: Some(marquee_proto::common::v1::Money {
                    currency_code: amount.currency.clone(),
                    amount_minor: amount.amount_minor,
                }),
                // Marquee keeps the convenience fees (and the tax on them); the theatre is owed
                // the seat prices.
                platform_fee: Some(marquee_proto::common::v1::Money {
                    currency_code: amount.currency.clone(),
                    amount_minor: platform_fee_minor,
                }),
                theatre_id: theatre_id.to_owned(),
                receipt: receipt.to_owned(),
            })
            .await?;
        let r = self
            .payments
            .clone()
            .create_order(request)
            .await
            .map_err(|s| refusal("payments", s))?
            .into_inner();
        let order = r.order.ok_or_else(|| BookingError::Dependency {
            service: "payments",
            message: "CreateOrder returned no order".to_owned(),
        })?;
        Ok(OrderInfo {
            order_id: order.id,
            provider_order_id: order.provider_order_id,
            key_id: r.checkout.map(|c| c.key_id).unwrap_or_default(),
        })
    }

    /// What payments says about an order.
    pub async fn payment(&self, order_id: &str) -> Result<PaymentSeen, BookingError> {
        let request = self
            .authed(pay::GetPaymentRequest {
                order_id: order_id.to_owned(),
            })
            .await?;
        let order = self
            .payments
            .clone()
            .get_payment(request)
            .await
            .map_err(|s| dependency("payments", &s))?
            .into_inner()
            .order
            .ok_or_else(|| BookingError::Dependency {
                service: "payments",
                message: "GetPayment returned no order".to_owned(),
            })?;
        let status = pay::OrderStatus::try_from(order.status).unwrap_or_default();
        Ok(match status {
            pay::OrderStatus::Captured
            | pay::OrderStatus::PartiallyRefunded
            | pay::OrderStatus::Refunded => PaymentSeen::Captured,
            pay::OrderStatus::Authorized => PaymentSeen::Authorized,
            pay::OrderStatus::Voided => PaymentSeen::Voided,
            pay::OrderStatus::Created | pay::OrderStatus::Unspecified => {
                let failed: Vec<_> = order
                    .attempts
                    .iter()
                    .filter(|a| a.status == pay::AttemptStatus::Failed as i32)
                    .collect();
                PaymentSeen::Unpaid {
                    declines: failed.len(),
                    last_reason: failed
                        .last()
                        .map(|a| a.failure_reason.clone())
                        .unwrap_or_default(),
                }
            }
        })
    }

    /// Captures an order's authorised payment.
    pub async fn capture(&self, request_id: String, order_id: &str) -> Result<(), BookingError> {
        let request = self
            .authed(pay::CapturePaymentRequest {
                request_id,
                order_id: order_id.to_owned(),
            })
            .await?;
        self.payments
            .clone()
            .capture_payment(request)
            .await
            .map(|_| ())
            .map_err(|s| refusal("payments", s))
    }

    /// Voids an order's authorised payment.
    pub async fn void(
        &self,
        request_id: String,
        order_id: &str,
        reason: &str,
    ) -> Result<(), BookingError> {
        let request = self
            .authed(pay::VoidPaymentRequest {
                request_id,
                order_id: order_id.to_owned(),
                reason: reason.to_owned(),
            })
            .await?;
        self.payments
            .clone()
            .void_payment(request)
            .await
            .map(|_| ())
            .map_err(|s| refusal("payments", s))
    }

    /// Refunds `amount` of an order (`None`: in full).
    pub async fn refund(
        &self,
        request_id: String,
        order_id: &str,
        amount: Option<&Money>,
        reason: &str,
    ) -> Result<(), BookingError> {
        let request = self
            .authed(pay::RefundRequest {
                request_id,
                order_id: order_id.to_owned(),
                amount: amount.map(|m| marquee_proto::common::v1::Money {
                    currency_code: m.currency.clone(),
                    amount_minor: m.amount_minor,
                }),
                reason: reason.to_owned(),
            })
            .await?;
        self.payments
            .clone()
            .refund(request)
            .await
            .map(|_| ())
            .map_err(|s| refusal("payments", s))
    }
}
