//! Payments' storage (schema `payments` on PostgreSQL). Every change runs in one transaction with
//! its idempotency record, its ledger postings and its outbox events, so a capture is never booked
//! without its entries and its `payment.captured` event, or the other way round.

pub mod entities;
pub mod migration;

use chrono::Utc;
use marquee_platform::idempotency::{IdempotencyError, IdempotencyKey};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use self::entities::{attempt, ledger_entry, order, refund, webhook};
use crate::domain::{
    self, AttemptStatus, Money, NewOrder, OrderStatus, PaymentsError, Posting, ProviderPayment,
};
use marquee_platform::events::outbox;

/// An order with its attempts and refunds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Marquee's id.
    pub id: String,
    /// Provider's id.
    pub provider_order_id: String,
    /// What it is for.
    pub receipt: String,
    /// Amount.
    pub amount: Money,
    /// Platform fee.
    pub platform_fee: Money,
    /// Theatre.
    pub theatre_id: String,
    /// Captured minor units.
    pub captured_minor: i64,
    /// Refunded minor units.
    pub refunded_minor: i64,
    /// Status.
    pub status: OrderStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Attempts, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Refunds, oldest first.
    pub refunds: Vec<RefundView>,
    /// When it was closed (Unix seconds); `None` while open.
    #[serde(default)]
    pub closed_at: Option<i64>,
    /// Why it was closed.
    #[serde(default)]
    pub close_reason: Option<String>,
}

/// A payment attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    /// Provider's payment id.
    pub provider_payment_id: String,
    /// Status.
    pub status: AttemptStatus,
    /// Why it failed.
    pub failure_reason: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    /// Id.
    pub id: String,
    /// Provider's id.
    pub provider_refund_id: String,
    /// Minor units.
    pub amount_minor: i64,
    /// Why.
    pub reason: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerView {
    /// Id.
    pub id: String,
    /// Transaction id.
    pub transaction_id: String,
    /// Account.
    pub account: String,
    /// Amount (signed).
    pub amount: Money,
    /// `capture` or `refund`.
    pub kind: String,
    /// Unix seconds.
    pub created_at: i64,
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> PaymentsError {
    PaymentsError::Storage(Box::new(e))
}

fn idem(e: IdempotencyError) -> PaymentsError {
    match e {
        IdempotencyError::Mismatch => PaymentsError::IdempotencyMismatch,
        other => storage(other),
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Payments' database.
#[derive(Clone)]
pub struct PaymentsStore {
    db: DatabaseConnection,
}

impl PaymentsStore {
    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = marquee_platform::db::connect(url, "payments").await?;
        migration::Migrator::up(&db, None).await?;
        Ok(Self { db })
    }

    /// The connection (the mock provider keeps its records in the same database).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// True while the database answers.
    pub async fn ping(&self) -> bool {
        marquee_platform::db::ping(&self.db).await
    }

    /// Runs `work` under `key` ([`IdempotencyKey::run`]).
    async fn run<T, F, Fut>(&self, key: &IdempotencyKey, work: F) -> Result<T, PaymentsError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(DatabaseTransaction) -> Fut,
        Fut: std::future::Future<Output = (DatabaseTransaction, Result<T, PaymentsError>)>,
    {
        key.run(&self.db, idem, work).await
    }

    /// The first result stored under `key`, if the request was done before.
    pub async fn replay<T: DeserializeOwned>(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<T>, PaymentsError> {
        key.replay(&self.db).await.map_err(idem)
    }

    /// Records a new order created at the provider.
    pub async fn insert_order(
        &self,
        key: &IdempotencyKey,
        new: &NewOrder,
        provider_order_id: &str,
    ) -> Result<OrderView, PaymentsError> {
        self.run(key, |txn| async move {
            let now = Utc::now();
            let id = new_id();
            let out = order::ActiveModel {
                id: Set(id.clone()),
                provider_order_id: Set(provider_order_id.to_owned()),
                receipt: Set(new.receipt.clone()),
                currency: Set(new.amount.currency.clone()),
                amount_minor: Set(new.amount.amount_minor),
                platform_fee_minor: Set(new.platform_fee.amount_minor),
                theatre_id: Set(new.theatre_id.clone()),
                captured_minor: Set(0),
                refunded_minor: Set(0),
                status: Set(OrderStatus::Created.as_str().to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
                closed_at: Set(None),
                close_reason: Set(None),
            }
            .insert(&txn)
            .await
            .map_err(storage);
            let out = match out {
                Ok(_) => view(&txn, &id).await,
                Err(e) => Err(e),
            };
            (txn, out)
        })
        .await
    }

    /// An order with its attempts and refunds.
    pub async fn get_order(&self, id: &str) -> Result<OrderView, PaymentsError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let out = view(&txn, id).await;
        let _ = txn.commit().await;
        out
    }

    /// The order paid through a provider order id.
    pub async fn order_by_provider_id(
        &self,
        provider_order_id: &str,
    ) -> Result<Option<order::Model>, PaymentsError> {
        order::Entity::find()
            .filter(order::Column::ProviderOrderId.eq(provider_order_id))
            .one(&self.db)
            .await
            .map_err(storage)
    }

    /// Books a capture the provider confirmed: the attempt, the order's amounts, the ledger
    /// postings and a `payment.captured` event, in one transaction. Capturing twice books once.
    pub async fn record_capture(
        &self,
        key: &IdempotencyKey,
        order_id: &str,
        payment: &ProviderPayment,
    ) -> Result<OrderView, PaymentsError> {
        self.run(key, |txn| async move {
            let out = capture_in(&txn, order_id, payment).await;
            (txn, out)
        })
        .await
    }

    /// Books a void the provider confirmed, with a `payment.voided` event.
    pub async fn record_void(
        &self,
        key: &IdempotencyKey,
        order_id: &str,
        provider_payment_id: &str,
        reason: &str,
    ) -> Result<OrderView, PaymentsError> {
        self.run(key, |txn| async move {
            let out = async {
                let moved = set_attempt(
                    &txn,
                    order_id,
                    provider_payment_id,
                    AttemptStatus::Voided,
                    reason,
                )
                .await?;
                refresh_status(&txn, order_id).await?;
                if moved {
                    let receipt = lock_order(&txn, order_id).await?.receipt;
                    emit(
                        &txn,
                        "payment.voided",
                        order_id,
                        serde_json::json!({
                            "order_id": order_id,
                            "receipt": receipt,
                            "provider_payment_id": provider_payment_id,
                            "reason": reason,
                        }),
                    )
                    .await?;
                }
                view(&txn, order_id).await
            }
            .await;
            (txn, out)
        })
        .await
    }

    /// Closes an order under `key` (the first close's time and reason stay). A captured order
    /// is refused (`ORDER_CAPTURED`).
    pub async fn close(
        &self,
        key: &IdempotencyKey,
        order_id: &str,
        reason: &str,
    ) -> Result<OrderView, PaymentsError> {
        self.run(key, |txn| async move {
            let out = async {
                let o = lock_order(&txn, order_id).await?;
                if o.captured_minor > 0 {
                    return Err(PaymentsError::precondition(
                        "ORDER_CAPTURED",
                        "the order is captured: refund it instead of closing it",
                    ));
                }
                if o.closed_at.is_none() {
                    let mut active = o.into_active_model();
                    active.closed_at = Set(Some(Utc::now()));
                    active.close_reason = Set(Some(reason.to_owned()));
                    active.updated_at = Set(Utc::now());
                    active.update(&txn).await.map_err(storage)?;
                }
                view(&txn, order_id).await
            }
            .await;
            (txn, out)
        })
        .await
    }

    /// Books a refund the provider made: the refund, the order's amounts, the ledger postings and
    /// a `payment.refunded` event.
    pub async fn record_refund(
        &self,
        key: &IdempotencyKey,
        order_id: &str,
        provider_refund_id: &str,
        amount_minor: i64,
        reason: &str,
    ) -> Result<(OrderView, RefundView), PaymentsError> {
        self.run(key, |txn| async move {
            let out = refund_in(&txn, order_id, provider_refund_id, amount_minor, reason).await;
            (txn, out)
        })
        .await
    }

    /// The ledger entries of an order, oldest first.
    pub async fn ledger(&self, order_id: &str) -> Result<Vec<LedgerView>, PaymentsError> {
        Ok(ledger_entry::Entity::find()
            .filter(ledger_entry::Column::OrderId.eq(order_id))
            .order_by_asc(ledger_entry::Column::CreatedAt)
            .order_by_asc(ledger_entry::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)?
            .into_iter()
            .map(|e| LedgerView {
                id: e.id,
                transaction_id: e.transaction_id,
                account: e.account,
                amount: Money {
                    currency: e.currency,
                    amount_minor: e.amount_minor,
                },
                kind: e.kind,
                created_at: e.created_at.timestamp(),
            })
            .collect())
    }

    /// Records a webhook whose signature or body was refused.
    pub async fn record_rejected_webhook(
        &self,
        body: &str,
        why: &str,
    ) -> Result<(), PaymentsError> {
        webhook::ActiveModel {
            event_id: Set(format!("rejected:{}", new_id())),
            event: Set(String::new()),
            signature_valid: Set(false),
            body: Set(body.chars().take(16_384).collect()),
            outcome: Set(why.to_owned()),
            received_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(storage)?;
        Ok(())
    }

    /// Applies a verified webhook once: a duplicate (same event id) changes nothing, and an
    /// attempt only ever moves forward. Returns what was done, for the record and the reply.
    pub async fn apply_webhook(
        &self,
        event_id: &str,
        event: &str,
        body: &str,
        payment: &ProviderPayment,
    ) -> Result<String, PaymentsError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let seen = webhook::Entity::find_by_id(event_id.to_owned())
            .one(&txn)
            .await
            .map_err(storage)?;
        if seen.is_some() {
            let _ = txn.rollback().await;
            return Ok("duplicate".into());
        }
        let outcome = apply_in(&txn, payment).await?;
        let inserted = webhook::ActiveModel {
            event_id: Set(event_id.to_owned()),
            event: Set(event.to_owned()),
            signature_valid: Set(true),
            body: Set(body.chars().take(16_384).collect()),
            outcome: Set(outcome.clone()),
            received_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {
                txn.commit().await.map_err(storage)?;
                Ok(outcome)
            }
            Err(e) if marquee_platform::db::is_unique_violation(&e) => {
                let _ = txn.rollback().await;
                Ok("duplicate".into())
            }
            Err(e) => Err(storage(e)),
        }
    }

    /// Webhooks received, newest first (for operators and tests).
    pub async fn webhooks(&self, limit: u64) -> Result<Vec<webhook::Model>, PaymentsError> {
        webhook::Entity::find()
            .order_by_desc(webhook::Column::ReceivedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(storage)
    }

    /// Events written to the outbox for an aggregate, oldest first.
    pub async fn outbox_for(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<outbox::Model>, PaymentsError> {
        outbox::Entity::find()
            .filter(outbox::Column::AggregateId.eq(aggregate_id))
            .order_by_asc(outbox::Column::CreatedAt)
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)
    }
}

async fn lock_order(txn: &DatabaseTransaction, id: &str) -> Result<order::Model, PaymentsError> {
    let mut q = order::Entity::find_by_id(id.to_owned());
    if marquee_platform::db::is_postgres(txn) {
        q = q.lock_exclusive();
    }
    q.one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| PaymentsError::NotFound(id.to_owned()))
}

async fn view(txn: &DatabaseTransaction, id: &str) -> Result<OrderView, PaymentsError> {
    let o = order::Entity::find_by_id(id.to_owned())
        .one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| PaymentsError::NotFound(id.to_owned()))?;
    let attempts = attempt::Entity::find()
        .filter(attempt::Column::OrderId.eq(id))
        .order_by_asc(attempt::Column::UpdatedAt)
        .all(txn)
        .await
        .map_err(storage)?;
    let refunds = refund::Entity::find()
        .filter(refund::Column::OrderId.eq(id))
        .order_by_asc(refund::Column::CreatedAt)
        .order_by_asc(refund::Column::Id)
        .all(txn)
        .await
        .map_err(storage)?;
    let bad = |what: &str| storage(std::io::Error::other(format!("unknown {what} in storage")));
    Ok(OrderView {
        status: OrderStatus::parse(&o.status).ok_or_else(|| bad("order status"))?,
        amount: Money {
            currency: o.currency.clone(),
            amount_minor: o.amount_minor,
        },
        platform_fee: Money {
            currency: o.currency.clone(),
            amount_minor: o.platform_fee_minor,
        },
        id: o.id,
        provider_order_id: o.provider_order_id,
        receipt: o.receipt,
        theatre_id: o.theatre_id,
        captured_minor: o.captured_minor,
        refunded_minor: o.refunded_minor,
        created_at: o.created_at.timestamp(),
        closed_at: o.closed_at.map(|t| t.timestamp()),
        close_reason: o.close_reason,
        attempts: attempts
            .into_iter()
            .map(|a| {
                Ok(AttemptView {
                    status: AttemptStatus::parse(&a.status).ok_or_else(|| bad("attempt status"))?,
                    provider_payment_id: a.provider_payment_id,
                    failure_reason: a.failure_reason,
                    updated_at: a.updated_at.timestamp(),
                })
            })
            .collect::<Result<_, PaymentsError>>()?,
        refunds: refunds
            .into_iter()
            .map(|r| RefundView {
                id: r.id,
                provider_refund_id: r.provider_refund_id,
                amount_minor: r.amount_minor,
                reason: r.reason,
                created_at: r.created_at.timestamp(),
            })
            .collect(),
    })
}

/// Moves (or creates) an attempt to `status` if that is a forward move. Returns whether it moved.
async fn set_attempt(
    txn: &DatabaseTransaction,
    order_id: &str,
    provider_payment_id: &str,
    status: AttemptStatus,
    failure_reason: &str,
) -> Result<bool, PaymentsError> {
    let existing = attempt::Entity::find_by_id(provider_payment_id.to_owned())
        .one(txn)
        .await
        .map_err(storage)?;
    match existing {
        None => {
            attempt::ActiveModel {
                provider_payment_id: Set(provider_payment_id.to_owned()),
                order_id: Set(order_id.to_owned()),
                status: Set(status.as_str().to_owned()),
                failure_reason: Set(failure_reason.to_owned()),
                updated_at: Set(Utc::now()),
            }
            .insert(txn)
            .await
            .map_err(storage)?;
            Ok(true)
        }
        Some(a) => {
            let current = AttemptStatus::parse(&a.status).unwrap_or(AttemptStatus::Pending);
            if current == status || !current.can_become(status) {
                return Ok(false);
            }
            let mut active = a.into_active_model();
            active.status = Set(status.as_str().to_owned());
            if !failure_reason.is_empty() {
                active.failure_reason = Set(failure_reason.to_owned());
            }
            active.updated_at = Set(Utc::now());
            active.update(txn).await.map_err(storage)?;
            Ok(true)
        }
    }
}

async fn refresh_status(txn: &DatabaseTransaction, order_id: &str) -> Result<(), PaymentsError> {
    let o = lock_order(txn, order_id).await?;
    let statuses: Vec<AttemptStatus> = attempt::Entity::find()
        .filter(attempt::Column::OrderId.eq(order_id))
        .all(txn)
        .await
        .map_err(storage)?
        .iter()
        .filter_map(|a| AttemptStatus::parse(&a.status))
        .collect();
    let status = domain::order_status(&statuses, o.captured_minor, o.refunded_minor);
    if status.as_str() != o.status {
        let mut active = o.into_active_model();
        active.status = Set(status.as_str().to_owned());
        active.updated_at = Set(Utc::now());
        active.update(txn).await.map_err(storage)?;
    }
    Ok(())
}

async fn post(
    txn: &DatabaseTransaction,
    order_id: &str,
    currency: &str,
    kind: &str,
    postings: Vec<Posting>,
) -> Result<String, PaymentsError> {
    let transaction_id = new_id();
    let now = Utc::now();
    ledger_entry::Entity::insert_many(postings.into_iter().map(|p| ledger_entry::ActiveModel {
        id: Set(new_id()),
        transaction_id: Set(transaction_id.clone()),
        order_id: Set(order_id.to_owned()),
        account: Set(p.account),
        currency: Set(currency.to_owned()),
        amount_minor: Set(p.amount_minor),
        kind: Set(kind.to_owned()),
        created_at: Set(now),
    }))
    .exec(txn)
    .await
    .map_err(storage)?;
    Ok(transaction_id)
}

async fn emit(
    txn: &DatabaseTransaction,
    topic: &str,
    aggregate_id: &str,
    payload: serde_json::Value,
) -> Result<(), PaymentsError> {
    marquee_platform::events::record(txn, topic, aggregate_id, &payload)
        .await
        .map_err(storage)?;
    Ok(())
}

async fn capture_in(
    txn: &DatabaseTransaction,
    order_id: &str,
    payment: &ProviderPayment,
) -> Result<OrderView, PaymentsError> {
    let o = lock_order(txn, order_id).await?;
    if o.captured_minor > 0 {
        return view(txn, order_id).await;
    }
    set_attempt(txn, order_id, &payment.id, AttemptStatus::Captured, "").await?;
    let mut active = o.clone().into_active_model();
    active.captured_minor = Set(o.amount_minor);
    active.updated_at = Set(Utc::now());
    active.update(txn).await.map_err(storage)?;
    let tx = post(
        txn,
        order_id,
        &o.currency,
        "capture",
        domain::capture_postings(o.amount_minor, o.platform_fee_minor, &o.theatre_id),
    )
    .await?;
    emit(
        txn,
        "payment.captured",
        order_id,
        serde_json::json!({
            "order_id": order_id,
            "receipt": o.receipt,
            "provider_payment_id": payment.id,
            "amount": {"currency_code": o.currency, "amount_minor": o.amount_minor},
            "ledger_transaction_id": tx,
        }),
    )
    .await?;
    refresh_status(txn, order_id).await?;
    view(txn, order_id).await
}

async fn refund_in(
    txn: &DatabaseTransaction,
    order_id: &str,
    provider_refund_id: &str,
    amount_minor: i64,
    reason: &str,
) -> Result<(OrderView, RefundView), PaymentsError> {
    let o = lock_order(txn, order_id).await?;
    if o.refunded_minor + amount_minor > o.captured_minor {
        return Err(PaymentsError::precondition(
            "REFUND_EXCEEDS_CAPTURE",
            format!(
                "only {} of {} captured is left to refund",
                o.captured_minor - o.refunded_minor,
                o.captured_minor
            ),
        ));
    }
    let now = Utc::now();
    let r = RefundView {
        id: new_id(),
        provider_refund_id: provider_refund_id.to_owned(),
        amount_minor,
        reason: reason.to_owned(),
        created_at: now.timestamp(),
    };
    refund::ActiveModel {
        id: Set(r.id.clone()),
        order_id: Set(order_id.to_owned()),
        provider_refund_id: Set(r.provider_refund_id.clone()),
        amount_minor: Set(amount_minor),
        reason: Set(reason.to_owned()),
        created_at: Set(now),
    }
    .insert(txn)
    .await
    .map_err(storage)?;
    let tx = post(
        txn,
        order_id,
        &o.currency,
        "refund",
        domain::refund_postings(
            o.amount_minor,
            o.platform_fee_minor,
            o.refunded_minor,
            amount_minor,
            &o.theatre_id,
        ),
    )
    .await?;
    let mut active = o.clone().into_active_model();
    active.refunded_minor = Set(o.refunded_minor + amount_minor);
    active.updated_at = Set(now);
    active.update(txn).await.map_err(storage)?;
    emit(
        txn,
        "payment.refunded",
        order_id,
        serde_json::json!({
            "order_id": order_id,
            "receipt": o.receipt,
            "refund_id": r.id,
            "amount": {"currency_code": o.currency, "amount_minor": amount_minor},
            "ledger_transaction_id": tx,
        }),
    )
    .await?;
    refresh_status(txn, order_id).await?;
    Ok((view(txn, order_id).await?, r))
}

async fn apply_in(
    txn: &DatabaseTransaction,
    payment: &ProviderPayment,
) -> Result<String, PaymentsError> {
    let Some(o) = order::Entity::find()
        .filter(order::Column::ProviderOrderId.eq(payment.order_id.as_str()))
        .one(txn)
        .await
        .map_err(storage)?
    else {
        return Ok(format!("ignored: unknown order {}", payment.order_id));
    };
    if payment.amount != o.amount_minor || payment.currency != o.currency {
        return Ok("ignored: amount does not match the order".into());
    }
    let Some(status) = payment.attempt_status() else {
        return Ok(format!("ignored: unknown status {}", payment.status));
    };
    let order_id = lock_order(txn, &o.id).await?.id;
    if status == AttemptStatus::Captured {
        // Our own capture call books captures; a captured webhook for a capture we have not
        // booked (our call's answer was lost) books it now.
        if o.captured_minor == 0 {
            capture_in(txn, &order_id, payment).await?;
            return Ok("captured".into());
        }
        return Ok("unchanged: already captured".into());
    }
    let reason = payment.error_description.clone().unwrap_or_default();
    let moved = set_attempt(txn, &order_id, &payment.id, status, &reason).await?;
    if !moved {
        return Ok(format!(
            "unchanged: attempt not moved to {}",
            status.as_str()
        ));
    }
    refresh_status(txn, &order_id).await?;
    let topic = match status {
        AttemptStatus::Authorized => Some("payment.authorized"),
        AttemptStatus::Failed => Some("payment.failed"),
        _ => None,
    };
    if let Some(topic) = topic {
        emit(
            txn,
            topic,
            &order_id,
            serde_json::json!({
                "order_id": order_id,
                "receipt": o.receipt,
                "provider_payment_id": payment.id,
                "reason": reason,
            }),
        )
        .await?;
    }
    Ok(format!("attempt {} is {}", payment.id, status.as_str()))
}
