//! The gRPC adapter for `marquee.payments.v1.PaymentService` (service callers only) and
//! `MockCheckoutService` (public, like the provider's hosted page), and the one mapping of
//! [`PaymentsError`] to `tonic::Status`.

use marquee_platform::{
    auth::{Role, require_role},
    status,
    validation::Violations,
};
use marquee_proto::{common::v1::Money as PbMoney, payments::v1 as pb};
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::{
    domain::{AttemptStatus, Money, NewOrder, OrderStatus, PaymentsError},
    provider::Outcome,
    service::Payments,
    store::{LedgerView, OrderView, RefundView},
};

/// Maps a payments error to a status.
pub fn to_status(error: PaymentsError) -> Status {
    match error {
        PaymentsError::Invalid(v) => status::invalid_argument(&v),
        PaymentsError::NotFound(id) => status::not_found("order", &id),
        PaymentsError::Precondition { reason, message } => {
            status::failed_precondition(reason, message)
        }
        PaymentsError::IdempotencyMismatch => {
            status::invalid_field("request_id", "was already used for a different request")
        }
        PaymentsError::Provider(cause) => {
            tracing::warn!(%cause, "payment provider error");
            Status::unavailable("the payment provider did not answer; retry later")
        }
        PaymentsError::Storage(cause) => status::internal(cause.as_ref()),
    }
}

fn ts(secs: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: secs,
        nanos: 0,
    })
}

fn money(currency: &str, amount_minor: i64) -> Option<PbMoney> {
    Some(PbMoney {
        currency_code: currency.to_owned(),
        amount_minor,
    })
}

fn attempt_pb(s: AttemptStatus) -> pb::AttemptStatus {
    match s {
        AttemptStatus::Pending => pb::AttemptStatus::Pending,
        AttemptStatus::Failed => pb::AttemptStatus::Failed,
        AttemptStatus::Authorized => pb::AttemptStatus::Authorized,
        AttemptStatus::Captured => pb::AttemptStatus::Captured,
        AttemptStatus::Voided => pb::AttemptStatus::Voided,
    }
}

fn refund_pb(r: RefundView, currency: &str) -> pb::RefundRecord {
    pb::RefundRecord {
        id: r.id,
        provider_refund_id: r.provider_refund_id,
        amount: money(currency, r.amount_minor),
        reason: r.reason,
        create_time: ts(r.created_at),
    }
}

fn order_pb(o: OrderView) -> pb::Order {
    let currency = o.amount.currency.clone();
    pb::Order {
        id: o.id,
        provider_order_id: o.provider_order_id,
        receipt: o.receipt,
        amount: money(&currency, o.amount.amount_minor),
        platform_fee: money(&currency, o.platform_fee.amount_minor),
        theatre_id: o.theatre_id,
        status: match o.status {
            OrderStatus::Created => pb::OrderStatus::Created,
            OrderStatus::Authorized => pb::OrderStatus::Authorized,
            OrderStatus::Captured => pb::OrderStatus::Captured,
            OrderStatus::Voided => pb::OrderStatus::Voided,
            OrderStatus::PartiallyRefunded => pb::OrderStatus::PartiallyRefunded,
            OrderStatus::Refunded => pb::OrderStatus::Refunded,
        } as i32,
        attempts: o
            .attempts
            .into_iter()
            .map(|a| pb::PaymentAttempt {
                provider_payment_id: a.provider_payment_id,
                status: attempt_pb(a.status) as i32,
                failure_reason: a.failure_reason,
                update_time: ts(a.updated_at),
            })
            .collect(),
        refunds: o
            .refunds
            .into_iter()
            .map(|r| refund_pb(r, &currency))
            .collect(),
        create_time: ts(o.created_at),
        captured: money(&currency, o.captured_minor),
        refunded: money(&currency, o.refunded_minor),
        close_time: o.closed_at.and_then(ts),
        close_reason: o.close_reason.unwrap_or_default(),
    }
}

fn ledger_pb(e: LedgerView) -> pb::LedgerEntry {
    pb::LedgerEntry {
        id: e.id,
        transaction_id: e.transaction_id,
        account: e.account,
        amount: money(&e.amount.currency, e.amount.amount_minor),
        kind: e.kind,
        create_time: ts(e.created_at),
    }
}

fn money_from(field: &str, m: Option<PbMoney>) -> Result<Money, PaymentsError> {
    let PbMoney {
        currency_code,
        amount_minor,
    } = m.ok_or_else(|| PaymentsError::Invalid(Violations::one(field, "required")))?;
    Ok(Money {
        currency: currency_code,
        amount_minor,
    })
}

/// `marquee.payments.v1.PaymentService`.
#[derive(Clone)]
pub struct PaymentApi {
    payments: Payments,
}

impl PaymentApi {
    /// The API over `payments`.
    pub fn new(payments: Payments) -> Self {
        Self { payments }
    }
}

#[tonic::async_trait]
impl pb::payment_service_server::PaymentService for PaymentApi {
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::CreateOrderResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::CreateOrderRequest {
            request_id,
            amount,
            platform_fee,
            theatre_id,
            receipt,
        } = request.into_inner();
        let new = (|| {
            let amount = money_from("amount", amount)?;
            let platform_fee = match platform_fee {
                Some(fee) => money_from("platform_fee", Some(fee))?,
                None => Money {
                    currency: amount.currency.clone(),
                    amount_minor: 0,
                },
            };
            Ok::<_, PaymentsError>(NewOrder {
                amount,
                platform_fee,
                theatre_id,
                receipt,
            })
        })()
        .map_err(to_status)?;
        let order = self
            .payments
            .create_order(&request_id, new)
            .await
            .map_err(to_status)?;
        let checkout = pb::Checkout {
            key_id: self.payments.key_id().to_owned(),
            provider_order_id: order.provider_order_id.clone(),
            amount: money(&order.amount.currency, order.amount.amount_minor),
        };
        Ok(Response::new(pb::CreateOrderResponse {
            order: Some(order_pb(order)),
            checkout: Some(checkout),
        }))
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::GetPaymentRequest { order_id } = request.into_inner();
        let order = self.payments.get(&order_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetPaymentResponse {
            order: Some(order_pb(order)),
        }))
    }

    async fn capture_payment(
        &self,
        request: Request<pb::CapturePaymentRequest>,
    ) -> Result<Response<pb::CapturePaymentResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::CapturePaymentRequest {
            request_id,
            order_id,
        } = request.into_inner();
        let order = self
            .payments
            .capture(&request_id, &order_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CapturePaymentResponse {
            order: Some(order_pb(order)),
        }))
    }

    async fn void_payment(
        &self,
        request: Request<pb::VoidPaymentRequest>,
    ) -> Result<Response<pb::VoidPaymentResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::VoidPaymentRequest {
            request_id,
            order_id,
            reason,
        } = request.into_inner();
        let order = self
            .payments
            .void(&request_id, &order_id, &reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::VoidPaymentResponse {
            order: Some(order_pb(order)),
        }))
    }

    async fn close_order(
        &self,
        request: Request<pb::CloseOrderRequest>,
    ) -> Result<Response<pb::CloseOrderResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::CloseOrderRequest {
            request_id,
            order_id,
            reason,
        } = request.into_inner();
        let order = self
            .payments
            .close(&request_id, &order_id, &reason)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CloseOrderResponse {
            order: Some(order_pb(order)),
        }))
    }

    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::RefundResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::RefundRequest {
            request_id,
            order_id,
            amount,
            reason,
        } = request.into_inner();
        let amount = amount.map(|m| m.amount_minor);
        let (order, refund) = self
            .payments
            .refund(&request_id, &order_id, amount, &reason)
            .await
            .map_err(to_status)?;
        let currency = order.amount.currency.clone();
        Ok(Response::new(pb::RefundResponse {
            order: Some(order_pb(order)),
            refund: Some(refund_pb(refund, &currency)),
        }))
    }

    async fn list_ledger_entries(
        &self,
        request: Request<pb::ListLedgerEntriesRequest>,
    ) -> Result<Response<pb::ListLedgerEntriesResponse>, Status> {
        require_role(&request, Role::Service)?;
        let pb::ListLedgerEntriesRequest { order_id } = request.into_inner();
        let entries = self.payments.ledger(&order_id).await.map_err(to_status)?;
        Ok(Response::new(pb::ListLedgerEntriesResponse {
            entries: entries.into_iter().map(ledger_pb).collect(),
        }))
    }
}

/// `marquee.payments.v1.MockCheckoutService`.
#[derive(Clone)]
pub struct MockCheckoutApi {
    payments: Payments,
}

impl MockCheckoutApi {
    /// The checkout over `payments`.
    pub fn new(payments: Payments) -> Self {
        Self { payments }
    }
}

#[tonic::async_trait]
impl pb::mock_checkout_service_server::MockCheckoutService for MockCheckoutApi {
    async fn pay(
        &self,
        request: Request<pb::PayRequest>,
    ) -> Result<Response<pb::PayResponse>, Status> {
        let pb::PayRequest {
            provider_order_id,
            outcome,
        } = request.into_inner();
        let outcome = match pb::Outcome::try_from(outcome) {
            Ok(pb::Outcome::Success) => Outcome::Success,
            Ok(pb::Outcome::Decline) => Outcome::Decline,
            Ok(pb::Outcome::NoAnswer) => Outcome::NoAnswer,
            _ => {
                return Err(status::invalid_field(
                    "outcome",
                    "required: success, decline or no answer",
                ));
            }
        };
        let (provider_payment_id, state) = self
            .payments
            .pay(&provider_order_id, outcome)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::PayResponse {
            provider_payment_id,
            status: attempt_pb(state) as i32,
        }))
    }
}
