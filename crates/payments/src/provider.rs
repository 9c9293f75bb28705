//! The mock payment provider: behaves like Razorpay's orders API with manual capture. It keeps
//! its own records (tables `mock_provider_*`, which a real provider keeps on its side), and tells
//! Marquee what happened by signed webhooks POSTed to the configured URL, retried with backoff
//! like the real one, so that duplicates and late arrivals are a normal part of its life.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, Set};

use crate::{
    domain::{self, PaymentsError, ProviderPayment, WebhookEvent, WebhookPayload, WebhookPayment},
    store::entities::{provider_order, provider_payment},
};

/// What the customer does on the checkout page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Authorised.
    Success,
    /// Declined by the bank.
    Decline,
    /// Never completed: no webhook.
    NoAnswer,
}

/// The mock provider.
#[derive(Clone)]
pub struct MockProvider {
    db: DatabaseConnection,
    secret: Vec<u8>,
    webhook_url: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn provider_error(e: impl std::fmt::Display) -> PaymentsError {
    PaymentsError::Provider(e.to_string())
}

fn short_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl MockProvider {
    /// A provider storing its records in `db`, signing webhooks with `secret` and POSTing them
    /// to `webhook_url`.
    pub fn new(db: DatabaseConnection, secret: Vec<u8>, webhook_url: Option<String>) -> Self {
        Self {
            db,
            secret,
            webhook_url,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Creates an order; returns its id.
    pub async fn create_order(
        &self,
        currency: &str,
        amount_minor: i64,
        receipt: &str,
    ) -> Result<String, PaymentsError> {
        let id = short_id("order");
        provider_order::ActiveModel {
            id: Set(id.clone()),
            receipt: Set(receipt.to_owned()),
            currency: Set(currency.to_owned()),
            amount_minor: Set(amount_minor),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(provider_error)?;
        Ok(id)
    }

    /// The customer pays `order_id` with `outcome`.
    pub async fn pay(
        &self,
        order_id: &str,
        outcome: Outcome,
    ) -> Result<ProviderPayment, PaymentsError> {
        let order = provider_order::Entity::find_by_id(order_id.to_owned())
            .one(&self.db)
            .await
            .map_err(provider_error)?
            .ok_or_else(|| PaymentsError::NotFound(order_id.to_owned()))?;
        let (status, error) = match outcome {
            Outcome::Success => ("authorized", ""),
            Outcome::Decline => ("failed", "BAD_REQUEST_ERROR: payment declined by the bank"),
            Outcome::NoAnswer => ("created", ""),
        };
        let payment = ProviderPayment {
            id: short_id("pay"),
            order_id: order.id.clone(),
            amount: order.amount_minor,
            currency: order.currency.clone(),
            status: status.to_owned(),
            error_description: (!error.is_empty()).then(|| error.to_owned()),
        };
        provider_payment::ActiveModel {
            id: Set(payment.id.clone()),
            order_id: Set(order.id),
            currency: Set(payment.currency.clone()),
            amount_minor: Set(payment.amount),
            status: Set(payment.status.clone()),
            error_description: Set(error.to_owned()),
            refunded_minor: Set(0),
            updated_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(provider_error)?;
        match outcome {
            Outcome::Success => self.notify("payment.authorized", &payment),
            Outcome::Decline => self.notify("payment.failed", &payment),
            Outcome::NoAnswer => {}
        }
        Ok(payment)
    }

    async fn load(&self, payment_id: &str) -> Result<provider_payment::Model, PaymentsError> {
        provider_payment::Entity::find_by_id(payment_id.to_owned())
            .one(&self.db)
            .await
            .map_err(provider_error)?
            .ok_or_else(|| PaymentsError::Provider(format!("no payment {payment_id}")))
    }

    fn entity(p: &provider_payment::Model) -> ProviderPayment {
        ProviderPayment {
            id: p.id.clone(),
            order_id: p.order_id.clone(),
            amount: p.amount_minor,
            currency: p.currency.clone(),
            status: p.status.clone(),
            error_description: (!p.error_description.is_empty())
                .then(|| p.error_description.clone()),
        }
    }

    /// The provider's view of a payment.
    pub async fn payment(&self, payment_id: &str) -> Result<ProviderPayment, PaymentsError> {
        Ok(Self::entity(&self.load(payment_id).await?))
    }

    /// Captures an authorised payment (capturing a captured one again answers the same).
    pub async fn capture(&self, payment_id: &str) -> Result<ProviderPayment, PaymentsError> {
        let p = self.load(payment_id).await?;
        match p.status.as_str() {
            "captured" => return Ok(Self::entity(&p)),
            "authorized" => {}
            other => {
                return Err(PaymentsError::precondition(
                    "NOT_AUTHORIZED",
                    format!("the payment is {other}, not authorized"),
                ));
            }
        }
        let mut active = p.into_active_model();
        active.status = Set("captured".into());
        active.updated_at = Set(Utc::now());
        let p = active.update(&self.db).await.map_err(provider_error)?;
        let payment = Self::entity(&p);
        self.notify("payment.captured", &payment);
        Ok(payment)
    }

    /// Voids an authorised payment.
    pub async fn void(&self, payment_id: &str) -> Result<ProviderPayment, PaymentsError> {
        let p = self.load(payment_id).await?;
        match p.status.as_str() {
            "voided" => return Ok(Self::entity(&p)),
            "authorized" => {}
            other => {
                return Err(PaymentsError::precondition(
                    "NOT_AUTHORIZED",
                    format!("the payment is {other}, not authorized"),
                ));
            }
        }
        let mut active = p.into_active_model();
        active.status = Set("voided".into());
        active.updated_at = Set(Utc::now());
        let p = active.update(&self.db).await.map_err(provider_error)?;
        Ok(Self::entity(&p))
    }

    /// Refunds part of a captured payment; returns the refund id.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount_minor: i64,
    ) -> Result<String, PaymentsError> {
        let p = self.load(payment_id).await?;
        if p.status != "captured" {
            return Err(PaymentsError::precondition(
                "NOT_CAPTURED",
                "only a captured payment can be refunded",
            ));
        }
        if p.refunded_minor + amount_minor > p.amount_minor {
            return Err(PaymentsError::precondition(
                "REFUND_EXCEEDS_CAPTURE",
                "the refunds would exceed the captured amount",
            ));
        }
        let refunded = p.refunded_minor + amount_minor;
        let mut active = p.into_active_model();
        active.refunded_minor = Set(refunded);
        active.updated_at = Set(Utc::now());
        active.update(&self.db).await.map_err(provider_error)?;
        Ok(short_id("rfnd"))
    }

    /// Sends a signed webhook in the background, retrying with backoff.
    fn notify(&self, event: &str, payment: &ProviderPayment) {
        let Some(url) = self.webhook_url.clone() else {
            tracing::warn!(
                event,
                "mock provider has no webhook url; event not delivered"
            );
            return;
        };
        let body = WebhookEvent {
            entity: "event".into(),
            id: short_id("evt"),
            event: event.to_owned(),
            created_at: Utc::now().timestamp(),
            payload: WebhookPayload {
                payment: WebhookPayment {
                    entity: payment.clone(),
                },
            },
        };
        let Ok(json) = serde_json::to_vec(&body) else {
            return;
        };
        let signature = domain::sign(&self.secret, &json);
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            for attempt in 1..=6 {
                let request = http::Request::post(&url)
                    .header("content-type", "application/json")
                    .header("x-razorpay-signature", &signature)
                    .header("x-razorpay-event-id", &body.id)
                    .body(Full::new(Bytes::from(json.clone())));
                let Ok(request) = request else { return };
                match client.request(request).await {
                    Ok(resp) if resp.status().is_success() => return,
                    Ok(resp) => {
                        tracing::warn!(status = %resp.status(), attempt, "webhook refused");
                        if resp.status().is_client_error() {
                            return;
                        }
                    }
                    Err(error) => tracing::warn!(%error, attempt, "webhook not delivered"),
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        });
    }
}
