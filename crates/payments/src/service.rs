//! Payments' application service: what the gRPC adapter and the webhook endpoint call.

use marquee_platform::{
    idempotency::IdempotencyKey,
    validation::{Violations, check_request_id},
};

use crate::{
    domain::{AttemptStatus, NewOrder, PaymentsError, WebhookEvent},
    provider::{MockProvider, Outcome},
    store::{LedgerView, OrderView, PaymentsStore, RefundView},
};

/// Payments.
#[derive(Clone)]
pub struct Payments {
    store: PaymentsStore,
    provider: MockProvider,
    secret: Vec<u8>,
    key_id: String,
}

fn check_id(field: &str, id: &str) -> Result<(), PaymentsError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Violations::one(field, "must be a UUID").into());
    }
    Ok(())
}

fn authorized(order: &OrderView) -> Option<&str> {
    order
        .attempts
        .iter()
        .find(|a| a.status == AttemptStatus::Authorized)
        .map(|a| a.provider_payment_id.as_str())
}

fn captured(order: &OrderView) -> Option<&str> {
    order
        .attempts
        .iter()
        .find(|a| a.status == AttemptStatus::Captured)
        .map(|a| a.provider_payment_id.as_str())
}

impl Payments {
    /// Payments over `store` and `provider`; webhooks are verified with `secret`.
    pub fn new(
        store: PaymentsStore,
        provider: MockProvider,
        secret: Vec<u8>,
        key_id: String,
    ) -> Self {
        Self {
            store,
            provider,
            secret,
            key_id,
        }
    }

    /// The store.
    pub fn store(&self) -> &PaymentsStore {
        &self.store
    }

    /// The provider's public key id, for checkouts.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Creates an order at the provider and records it.
    pub async fn create_order(
        &self,
        request_id: &str,
        new: NewOrder,
    ) -> Result<OrderView, PaymentsError> {
        check_request_id(request_id)?;
        new.check()?;
        let key = IdempotencyKey::new("payments.create_order", request_id, &new);
        if let Some(first) = self.store.replay(&key).await? {
            return Ok(first);
        }
        let provider_order_id = self
            .provider
            .create_order(&new.amount.currency, new.amount.amount_minor, &new.receipt)
            .await?;
        self.store
            .insert_order(&key, &new, &provider_order_id)
            .await
    }

    /// One order.
    pub async fn get(&self, order_id: &str) -> Result<OrderView, PaymentsError> {
        check_id("order_id", order_id)?;
        self.store.get_order(order_id).await
    }

    /// Captures the order's authorised payment.
    pub async fn capture(
        &self,
        request_id: &str,
        order_id: &str,
    ) -> Result<OrderView, PaymentsError> {
        check_request_id(request_id)?;
        let order = self.get(order_id).await?;
        let key = IdempotencyKey::new("payments.capture", request_id, &order_id);
        if let Some(first) = self.store.replay(&key).await? {
            return Ok(first);
        }
        if captured(&order).is_some() {
            return Ok(order);
        }
        if let Some(why) = &order.close_reason {
            return Err(PaymentsError::precondition(
                "ORDER_CLOSED",
                format!("the order is closed ({why}); its payments are voided, not captured"),
            ));
        }
        let Some(payment_id) = authorized(&order) else {
            return Err(PaymentsError::precondition(
                "NOT_AUTHORIZED",
                "the order has no authorised payment to capture",
            ));
        };
        let payment = self.provider.capture(payment_id).await?;
        self.store.record_capture(&key, order_id, &payment).await
    }

    /// Voids the order's authorised payment.
    pub async fn void(
        &self,
        request_id: &str,
        order_id: &str,
        reason: &str,
    ) -> Result<OrderView, PaymentsError> {
        check_request_id(request_id)?;
        if reason.trim().is_empty() {
            return Err(Violations::one("reason", "required").into());
        }
        let order = self.get(order_id).await?;
        let key = IdempotencyKey::new("payments.void", request_id, &(order_id, reason));
        if let Some(first) = self.store.replay(&key).await? {
            return Ok(first);
        }
        let Some(payment_id) = authorized(&order).map(str::to_owned) else {
            return Err(PaymentsError::precondition(
                "NOT_AUTHORIZED",
                "the order has no authorised, uncaptured payment to void",
            ));
        };
        self.provider.void(&payment_id).await?;
        self.store
            .record_void(&key, order_id, &payment_id, reason.trim())
            .await
    }

    /// Closes an order that will not be captured: an authorised payment is voided now, one
    /// authorised later is voided when its webhook arrives (see [`Payments::webhook`]).
    pub async fn close(
        &self,
        request_id: &str,
        order_id: &str,
        reason: &str,
    ) -> Result<OrderView, PaymentsError> {
        let mut v = Violations::new();
        if let Err(e) = check_request_id(request_id) {
            v.extend(e);
        }
        let reason = reason.trim();
        v.check(
            !reason.is_empty() && reason.chars().count() <= 500,
            "reason",
            "1 to 500 characters",
        );
        v.into_result()?;
        check_id("order_id", order_id)?;
        let key = IdempotencyKey::new("payments.close", request_id, &(order_id, reason));
        let order = self.store.close(&key, order_id, reason).await?;
        self.void_if_closed(order).await
    }

    /// Voids every authorised, uncaptured payment of a closed order.
    async fn void_if_closed(&self, order: OrderView) -> Result<OrderView, PaymentsError> {
        let Some(why) = order.close_reason.clone() else {
            return Ok(order);
        };
        let mut order = order;
        let authorised: Vec<String> = order
            .attempts
            .iter()
            .filter(|a| a.status == AttemptStatus::Authorized)
            .map(|a| a.provider_payment_id.clone())
            .collect();
        for payment_id in authorised {
            self.provider.void(&payment_id).await?;
            let key = IdempotencyKey::new("payments.auto_void", &payment_id, &payment_id);
            order = self
                .store
                .record_void(
                    &key,
                    &order.id,
                    &payment_id,
                    &format!("order closed: {why}"),
                )
                .await?;
            tracing::info!(order_id = %order.id, %payment_id, "payment on a closed order voided");
        }
        Ok(order)
    }

    /// Refunds `amount_minor` (everything left when `None`) of the order's captured payment.
    pub async fn refund(
        &self,
        request_id: &str,
        order_id: &str,
        amount_minor: Option<i64>,
        reason: &str,
    ) -> Result<(OrderView, RefundView), PaymentsError> {
        check_request_id(request_id)?;
        let mut v = Violations::new();
        if reason.trim().is_empty() {
            v.add("reason", "required");
        }
        if amount_minor.is_some_and(|a| a <= 0) {
            v.add("amount.amount_minor", "must be positive");
        }
        v.into_result()?;
        let order = self.get(order_id).await?;
        let key = IdempotencyKey::new(
            "payments.refund",
            request_id,
            &(order_id, amount_minor, reason),
        );
        if let Some(first) = self.store.replay(&key).await? {
            return Ok(first);
        }
        let Some(payment_id) = captured(&order).map(str::to_owned) else {
            return Err(PaymentsError::precondition(
                "NOT_CAPTURED",
                "the order has no captured payment to refund",
            ));
        };
        let left = order.captured_minor - order.refunded_minor;
        let amount = amount_minor.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(PaymentsError::precondition(
                "REFUND_EXCEEDS_CAPTURE",
                format!(
                    "only {left} of {} captured is left to refund",
                    order.captured_minor
                ),
            ));
        }
        let refund_id = self.provider.refund(&payment_id, amount).await?;
        self.store
            .record_refund(&key, order_id, &refund_id, amount, reason.trim())
            .await
    }

    /// The ledger entries of an order.
    pub async fn ledger(&self, order_id: &str) -> Result<Vec<LedgerView>, PaymentsError> {
        check_id("order_id", order_id)?;
        self.store.get_order(order_id).await?;
        self.store.ledger(order_id).await
    }

    /// The mock checkout: the customer pays a provider order.
    pub async fn pay(
        &self,
        provider_order_id: &str,
        outcome: Outcome,
    ) -> Result<(String, AttemptStatus), PaymentsError> {
        if provider_order_id.is_empty() {
            return Err(Violations::one("provider_order_id", "required").into());
        }
        let payment = self.provider.pay(provider_order_id, outcome).await?;
        Ok((
            payment.id.clone(),
            payment.attempt_status().unwrap_or(AttemptStatus::Pending),
        ))
    }

    /// Handles a webhook: verifies the signature over the raw body, records it, applies it once.
    /// Returns the HTTP status and a short text.
    pub async fn webhook(&self, signature: Option<&str>, body: &[u8]) -> (u16, String) {
        let text = String::from_utf8_lossy(body).to_string();
        let valid = signature.is_some_and(|s| crate::domain::verify(&self.secret, body, s));
        if !valid {
            if let Err(error) = self
                .store
                .record_rejected_webhook(&text, "bad signature")
                .await
            {
                tracing::error!(%error, "cannot record a rejected webhook");
            }
            tracing::warn!("webhook with a bad signature refused");
            return (400, "bad signature".into());
        }
        let event: WebhookEvent = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(_) => {
                let _ = self
                    .store
                    .record_rejected_webhook(&text, "unreadable body")
                    .await;
                return (400, "unreadable body".into());
            }
        };
        match self
            .store
            .apply_webhook(
                &event.id,
                &event.event,
                &text,
                &event.payload.payment.entity,
            )
            .await
        {
            Ok(outcome) => {
                tracing::info!(event = %event.event, id = %event.id, %outcome, "webhook handled");
                // A payment authorised on a closed order (the customer paid after the booking
                // was gone) is voided at once. If this fails, the provider's retry of the
                // webhook (or the next CloseOrder) voids it.
                if let Ok(Some(o)) = self
                    .store
                    .order_by_provider_id(&event.payload.payment.entity.order_id)
                    .await
                    && o.closed_at.is_some()
                {
                    let voided = match self.store.get_order(&o.id).await {
                        Ok(order) => self.void_if_closed(order).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    if let Err(error) = voided {
                        tracing::error!(%error, order_id = %o.id, "cannot void a payment on a closed order; the webhook will be retried");
                        return (503, "retry later".into());
                    }
                }
                (200, outcome)
            }
            Err(error) => {
                tracing::error!(%error, "webhook not applied; the provider will retry");
                (503, "retry later".into())
            }
        }
    }
}
