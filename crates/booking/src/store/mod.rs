//! Booking's storage (schema `booking` on PostgreSQL). Every status change is written in one
//! transaction with its history row, its `booking.status_changed` outbox event and the saga
//! step bookkeeping, so a change is never recorded without its history or its event.

mod changes;
pub mod entities;
pub mod migration;

pub use changes::ChangeSubscription;

use chrono::{DateTime, Datelike, Duration, Utc};
use marquee_platform::idempotency::{IdempotencyError, IdempotencyKey};
use marquee_platform::keys::KeyMaterial;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
    prelude::Expr,
    sea_query::{ExprTrait, OnConflict},
};
use sea_orm_migration::MigratorTrait;
use serde::{Deserialize, Serialize};

use self::changes::Changes;
use self::entities::{
    booking, history, invoice, invoice_counter, item, outbox, step, ticket, ticket_key,
};
use crate::domain::{
    BookingCode, BookingError, BookingEvent, BookingStatus, Money, saga::Step, transition,
};

/// A seat of a booking with the price charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// Seat id, for example `C-12`.
    pub seat_id: String,
    /// Price category.
    pub category_code: String,
    /// Price charged.
    pub price: Money,
    /// Convenience fee charged, in the price's minor units.
    pub fee_minor: i64,
    /// Tax on the fee, in the price's minor units.
    pub tax_minor: i64,
}

impl ItemView {
    /// Price, fee and tax.
    pub fn total_minor(&self) -> i64 {
        self.price.amount_minor + self.fee_minor + self.tax_minor
    }
}

/// One status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryView {
    /// Before (`None` at creation).
    pub from: Option<BookingStatus>,
    /// After.
    pub to: BookingStatus,
    /// Why.
    pub cause: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketView {
    /// Id.
    pub id: String,
    /// Seat.
    pub seat_id: String,
}

/// The payment of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    /// Payments' order id.
    pub order_id: String,
    /// The provider's order id.
    pub provider_order_id: String,
    /// When the payment window closes.
    pub deadline: DateTime<Utc>,
}

/// A booking with everything that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingView {
    /// Id.
    pub id: String,
    /// Booking code.
    pub code: String,
    /// Owner.
    pub user_id: String,
    /// Show.
    pub show_id: String,
    /// Theatre.
    pub theatre_id: String,
    /// Hold.
    pub hold_id: String,
    /// The hold's fencing token.
    pub fencing_token: i64,
    /// The hold's deadline as last seen.
    pub hold_expires_at: DateTime<Utc>,
    /// Total.
    pub total: Money,
    /// Status.
    pub status: BookingStatus,
    /// Payment, once started.
    pub payment: Option<PaymentView>,
    /// Why the saga is parked, if it is.
    pub parked_reason: Option<String>,
    /// Seats.
    pub items: Vec<ItemView>,
    /// Status changes, oldest first.
    pub history: Vec<HistoryView>,
    /// Tickets.
    pub tickets: Vec<TicketView>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// What the booking is for.
    pub show: ShowFacts,
    /// The tax rate on convenience fees, basis points.
    pub tax_bps: i32,
    /// When it was admitted at the door.
    pub admitted_at: Option<DateTime<Utc>>,
    /// The refund given, once refunded.
    pub refund_minor: Option<i64>,
}

impl BookingView {
    /// True once the seats were confirmed and tickets issued (even if cancelled since).
    pub fn was_sold(&self) -> bool {
        self.history
            .iter()
            .any(|h| h.to == BookingStatus::BookingCompleted)
    }

    /// Marquee's part of the total: the convenience fees and their tax.
    pub fn platform_fee_minor(&self) -> i64 {
        self.items.iter().map(|i| i.fee_minor + i.tax_minor).sum()
    }
}

/// The show a booking is for, as the ticket and the invoice print it (kept from when the
/// booking was made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShowFacts {
    /// Movie title.
    pub movie_title: String,
    /// Theatre name.
    pub theatre_name: String,
    /// Screen name.
    pub screen_name: String,
    /// Start.
    pub starts_at: Option<DateTime<Utc>>,
    /// End.
    pub ends_at: Option<DateTime<Utc>>,
}

/// A booking to create.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// Owner.
    pub user_id: String,
    /// Show.
    pub show_id: String,
    /// Theatre.
    pub theatre_id: String,
    /// Hold.
    pub hold_id: String,
    /// The hold's fencing token.
    pub fencing_token: i64,
    /// The hold's deadline.
    pub hold_expires_at: DateTime<Utc>,
    /// Seats with prices, fees and tax (one currency).
    pub items: Vec<ItemView>,
    /// What it is for.
    pub show: ShowFacts,
    /// The tax rate on convenience fees, basis points.
    pub tax_bps: i32,
}

/// A claimed saga step: the claimant alone may finish it until the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Booking.
    pub booking_id: String,
    /// Step.
    pub step: Step,
    /// This claim's lease id.
    pub lease_id: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// What finishing a step changes, all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// The lifecycle event and its cause.
    pub event: Option<(BookingEvent, String)>,
    /// The payment started.
    pub payment: Option<PaymentView>,
    /// The hold's new deadline.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// Steps to schedule next.
    pub next: Vec<(Step, DateTime<Utc>)>,
    /// Store a ticket per seat.
    pub tickets: bool,
    /// Issue the invoice.
    pub invoice: bool,
    /// The refund given.
    pub refund_minor: Option<i64>,
}

const PENDING: &str = "pending";
const RUNNING: &str = "running";
const DONE: &str = "done";
const PARKED: &str = "parked";

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> BookingError {
    BookingError::Storage(Box::new(e))
}

fn idem(e: IdempotencyError) -> BookingError {
    match e {
        IdempotencyError::Mismatch => BookingError::IdempotencyMismatch,
        other => storage(other),
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn status_of(name: &str) -> Result<BookingStatus, BookingError> {
    BookingStatus::parse(name)
        .ok_or_else(|| BookingError::Storage(format!("unknown status {name:?}").into()))
}

/// Booking's database.
#[derive(Clone)]
pub struct BookingStore {
    db: DatabaseConnection,
    /// The watchers of bookings this instance changes, woken as it commits (WatchBooking).
    changes: Changes,
}

/// What a scan at the door came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// True when this scan admitted the booking; false when it was admitted before.
    pub admitted_now: bool,
    /// When it was (first) admitted, Unix milliseconds.
    pub at_ms: i64,
}

impl BookingStore {
    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = marquee_platform::db::connect(url, "booking").await?;
        migration::Migrator::up(&db, None).await?;
        Ok(Self {
            db,
            changes: Changes::default(),
        })
    }

    /// The changes this instance makes to one booking, from now on.
    pub fn subscribe(&self, booking_id: &str) -> ChangeSubscription {
        self.changes.subscribe(booking_id)
    }

    /// Wakes this instance's watchers at the changes other instances publish on `bus` (a
    /// shared bus: Redis Streams), until `stop`.
    pub fn follow_changes(
        &self,
        bus: &marquee_platform::events::Bus,
        stop: &marquee_platform::CancellationToken,
    ) {
        self.changes.follow(bus, stop);
    }

    fn changed(&self, booking_id: &str) {
        self.changes.changed(booking_id);
    }

    /// The booking with a code.
    pub async fn by_code(&self, code: &str) -> Result<Option<BookingView>, BookingError> {
        self.one_view(booking::Entity::find().filter(booking::Column::Code.eq(code)))
            .await
    }

    /// The view of the booking a query finds, if any.
    async fn one_view(
        &self,
        query: sea_orm::Select<booking::Entity>,
    ) -> Result<Option<BookingView>, BookingError> {
        let txn = self.snapshot().await?;
        let view = match query.one(&txn).await.map_err(storage)? {
            Some(b) => Some(view(&txn, b).await?),
            None => None,
        };
        txn.commit().await.map_err(storage)?;
        Ok(view)
    }

    /// A read-only transaction whose reads all see one snapshot, so that a booking's row and its
    /// history, items and tickets agree (read one by one, a commit between the reads showed
    /// the old status with the new status's history row). SQLite's transactions read one
    /// snapshot already; PostgreSQL's default, READ COMMITTED, takes one per statement.
    async fn snapshot(&self) -> Result<DatabaseTransaction, BookingError> {
        let (isolation, access) = match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => (
                Some(sea_orm::IsolationLevel::RepeatableRead),
                Some(sea_orm::AccessMode::ReadOnly),
            ),
            _ => (None, None),
        };
        self.db
            .begin_with_config(isolation, access)
            .await
            .map_err(storage)
    }

    /// Cancels a booking under `key`: in one transaction, with the booking locked, `decide`
    /// judges it (status, admission, show start) and returns the cause; the booking becomes
    /// CANCELLED and the step that settles the cancellation (release or refund) is scheduled.
    /// A retry under the same key returns the booking id again.
    pub async fn cancel(
        &self,
        key: &IdempotencyKey,
        booking_id: &str,
        decide: impl FnOnce(
            BookingStatus,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        ) -> Result<String, BookingError>,
    ) -> Result<String, BookingError> {
        let id = key
            .run(&self.db, idem, |txn| async move {
                let result = Self::cancel_in(&txn, booking_id, decide).await;
                (txn, result.map(|()| booking_id.to_owned()))
            })
            .await?;
        self.changed(booking_id);
        Ok(id)
    }

    /// [`Self::cancel`]'s change, in its transaction.
    async fn cancel_in(
        txn: &DatabaseTransaction,
        booking_id: &str,
        decide: impl FnOnce(
            BookingStatus,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        ) -> Result<String, BookingError>,
    ) -> Result<(), BookingError> {
        let b = lock_booking(txn, booking_id).await?;
        let from = status_of(&b.status)?;
        let cause = decide(from, b.admitted_at, b.show_starts_at)?;
        let to = transition(from, BookingEvent::Cancelled)?;
        let now = Utc::now();
        record(txn, booking_id, &b.code, Some(from), to, &cause, now)
            .await
            .map_err(storage)?;
        // The tickets are void: they go with the status change (their seats may be sold
        // again, and a ticket's seat is unique per show).
        ticket::Entity::delete_many()
            .filter(ticket::Column::BookingId.eq(booking_id))
            .exec(txn)
            .await
            .map_err(storage)?;
        let mut active: booking::ActiveModel = b.into();
        active.status = Set(to.as_str().to_owned());
        active.updated_at = Set(now);
        active.update(txn).await.map_err(storage)?;
        schedule(txn, booking_id, Step::SettleCancellation, now, now)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Admits a booking at the door under `key`, once: the first scan sets the admission time
    /// (only while the booking has a ticket), later ones report it. A retry under the same key
    /// returns the first answer. `NO_TICKET` when the booking has no valid ticket.
    pub async fn admit(
        &self,
        key: &IdempotencyKey,
        booking_id: &str,
        by: &str,
    ) -> Result<Admission, BookingError> {
        // Milliseconds: what every later read of the admission time reports.
        let now =
            DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default();
        let first = key
            .run(&self.db, idem, |txn| async move {
                let result = Self::admit_in(&txn, booking_id, by, now).await;
                (txn, result)
            })
            .await?;
        self.changed(booking_id);
        Ok(first)
    }

    /// [`Self::admit`]'s change, in its transaction.
    async fn admit_in(
        txn: &DatabaseTransaction,
        booking_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Admission, BookingError> {
        let updated = booking::Entity::update_many()
            .col_expr(booking::Column::AdmittedAt, Expr::value(Some(now)))
            .col_expr(
                booking::Column::AdmittedBy,
                Expr::value(Some(by.to_owned())),
            )
            .col_expr(booking::Column::UpdatedAt, Expr::value(now))
            .filter(booking::Column::Id.eq(booking_id))
            .filter(booking::Column::AdmittedAt.is_null())
            .filter(booking::Column::Status.is_in([
                BookingStatus::BookingCompleted.as_str(),
                BookingStatus::Invoiced.as_str(),
                BookingStatus::SettlementDone.as_str(),
            ]))
            .exec(txn)
            .await
            .map_err(storage)?;
        if updated.rows_affected == 1 {
            return Ok(Admission {
                admitted_now: true,
                at_ms: now.timestamp_millis(),
            });
        }
        let b = booking::Entity::find_by_id(booking_id.to_owned())
            .one(txn)
            .await
            .map_err(storage)?
            .ok_or_else(|| BookingError::booking_not_found(booking_id))?;
        match b.admitted_at {
            Some(at) => Ok(Admission {
                admitted_now: false,
                at_ms: at.timestamp_millis(),
            }),
            None => Err(BookingError::precondition(
                "NO_TICKET",
                format!(
                    "a booking in {} has no valid ticket",
                    status_of(&b.status)?.as_str()
                ),
            )),
        }
    }

    /// Records the settlement of an INVOICED booking (SETTLEMENT_DONE) under `key`; settling a
    /// settled booking changes nothing.
    pub async fn settle(
        &self,
        key: &IdempotencyKey,
        booking_id: &str,
        reference: &str,
    ) -> Result<(), BookingError> {
        let _: String = key
            .run(&self.db, idem, |txn| async move {
                let result = Self::settle_in(&txn, booking_id, reference).await;
                (txn, result.map(|()| booking_id.to_owned()))
            })
            .await?;
        self.changed(booking_id);
        Ok(())
    }

    /// [`Self::settle`]'s change, in its transaction.
    async fn settle_in(
        txn: &DatabaseTransaction,
        booking_id: &str,
        reference: &str,
    ) -> Result<(), BookingError> {
        let b = lock_booking(txn, booking_id).await?;
        let from = status_of(&b.status)?;
        if from == BookingStatus::SettlementDone {
            return Ok(());
        }
        let to = transition(from, BookingEvent::Settled)?;
        let now = Utc::now();
        record(
            txn,
            booking_id,
            &b.code,
            Some(from),
            to,
            &format!("the theatre was paid (settlement {reference})"),
            now,
        )
        .await
        .map_err(storage)?;
        let mut active: booking::ActiveModel = b.into();
        active.status = Set(to.as_str().to_owned());
        active.updated_at = Set(now);
        active.update(txn).await.map_err(storage)?;
        Ok(())
    }

    /// The ticket-signing keys, newest first; the first call makes one.
    pub async fn ticket_keys(&self) -> Result<Vec<KeyMaterial>, BookingError> {
        let mut keys = marquee_platform::keys::load_or_create::<ticket_key::Entity>(
            &self.db,
            Utc::now().timestamp(),
        )
        .await
        .map_err(storage)?;
        keys.reverse();
        Ok(keys)
    }

    /// The connection (the outbox relay reads booking's outbox through it).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// True while the database answers.
    pub async fn ping(&self) -> bool {
        marquee_platform::db::ping(&self.db).await
    }

    /// The booking id stored under `key`, if the request was done before.
    pub async fn replay(&self, key: &IdempotencyKey) -> Result<Option<String>, BookingError> {
        key.replay(&self.db).await.map_err(idem)
    }

    /// Stores a new booking in PRE_BOOKING with its items, its first history row, its event and
    /// the step that expires it if payment never starts. Returns its id. A hold already booked
    /// is refused (`HOLD_ALREADY_BOOKED`).
    pub async fn create(
        &self,
        key: &IdempotencyKey,
        new: &NewBooking,
        expire_at: DateTime<Utc>,
    ) -> Result<String, BookingError> {
        // A code collision (50 random bits) is retried with a new code.
        for _ in 0..5 {
            let txn = match key.begin::<String>(&self.db).await.map_err(idem)? {
                Ok(txn) => txn,
                Err(first) => return Ok(first),
            };
            match insert_booking(&txn, new).await {
                Ok(id) => {
                    let at = Utc::now();
                    let scheduled = schedule(&txn, &id, Step::ExpireUnstarted, expire_at, at).await;
                    if let Err(e) = scheduled {
                        let _ = txn.rollback().await;
                        return Err(storage(e));
                    }
                    return key.commit(&self.db, txn, id).await.map_err(idem);
                }
                Err(Inserted::HoldTaken) => {
                    let _ = txn.rollback().await;
                    if let Some(first) = self.replay(key).await? {
                        return Ok(first);
                    }
                    return Err(BookingError::precondition(
                        "HOLD_ALREADY_BOOKED",
                        "this hold already backs a booking",
                    ));
                }
                Err(Inserted::CodeTaken) => {
                    let _ = txn.rollback().await;
                }
                Err(Inserted::Db(e)) => {
                    let _ = txn.rollback().await;
                    return Err(storage(e));
                }
            }
        }
        Err(BookingError::Storage(
            "no free booking code after 5 tries".into(),
        ))
    }

    /// Records that the request under `key` was about `booking_id` (a retry with other
    /// parameters is then refused).
    pub async fn remember(
        &self,
        key: &IdempotencyKey,
        booking_id: &str,
    ) -> Result<(), BookingError> {
        let _: String = key
            .run(&self.db, idem, |txn| async move {
                (txn, Ok(booking_id.to_owned()))
            })
            .await?;
        Ok(())
    }

    /// One booking.
    pub async fn get(&self, id: &str) -> Result<Option<BookingView>, BookingError> {
        self.one_view(booking::Entity::find_by_id(id.to_owned()))
            .await
    }

    /// A user's bookings, newest first, starting after `after` (a booking id).
    pub async fn list_for_user(
        &self,
        user_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<BookingView>, BookingError> {
        let mut q = booking::Entity::find().filter(booking::Column::UserId.eq(user_id));
        if let Some(after) = after {
            q = q.filter(booking::Column::Id.lt(after));
        }
        let txn = self.snapshot().await?;
        let rows = q
            .order_by_desc(booking::Column::Id)
            .limit(limit)
            .all(&txn)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for b in rows {
            out.push(view(&txn, b).await?);
        }
        txn.commit().await.map_err(storage)?;
        Ok(out)
    }

    /// Schedules `step` of a booking unless it exists already.
    pub async fn schedule(
        &self,
        booking_id: &str,
        step: Step,
        at: DateTime<Utc>,
    ) -> Result<(), BookingError> {
        schedule(&self.db, booking_id, step, at, Utc::now())
            .await
            .map_err(storage)
    }

    /// The state of a step (`None` when it was never scheduled).
    pub async fn step_state(
        &self,
        booking_id: &str,
        step: Step,
    ) -> Result<Option<String>, BookingError> {
        Ok(
            step::Entity::find_by_id((booking_id.to_owned(), step.as_str().to_owned()))
                .one(&self.db)
                .await
                .map_err(storage)?
                .map(|s| s.state),
        )
    }

    /// Schedules `step` claimed at once by the caller (persisted before it runs), unless the
    /// step exists already; then it is claimed like any other (`None` if it is not due).
    pub async fn claim_new(
        &self,
        booking_id: &str,
        step: Step,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Claim>, BookingError> {
        let lease_id = new_id();
        let inserted = step::Entity::insert(step::ActiveModel {
            booking_id: Set(booking_id.to_owned()),
            step: Set(step.as_str().to_owned()),
            state: Set(RUNNING.to_owned()),
            attempts: Set(1),
            next_run_at: Set(now),
            lease_id: Set(Some(lease_id.clone())),
            lease_until: Set(Some(now + lease)),
            last_error: Set(String::new()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([step::Column::BookingId, step::Column::Step])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .or_else(none_on_conflict)
        .map_err(storage)?;
        if inserted == 1 {
            return Ok(Some(Claim {
                booking_id: booking_id.to_owned(),
                step,
                lease_id,
                attempts: 1,
            }));
        }
        self.claim(booking_id, step, now, lease).await
    }

    /// Steps due at `now`: pending ones whose time has come, and running ones whose claimant's
    /// lease ran out (it died or hangs).
    pub async fn due_steps(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<(String, Step)>, BookingError> {
        let rows = step::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(step::Column::State.eq(PENDING))
                            .add(step::Column::NextRunAt.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(step::Column::State.eq(RUNNING))
                            .add(step::Column::LeaseUntil.lt(now)),
                    ),
            )
            .order_by_asc(step::Column::NextRunAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Step::parse(&r.step).map(|s| (r.booking_id, s)))
            .collect())
    }

    /// Claims a step for `lease`: persisted (state `running`, attempts + 1) before the step
    /// runs. `None` when it is not due or someone else holds it.
    pub async fn claim(
        &self,
        booking_id: &str,
        step: Step,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<Claim>, BookingError> {
        let lease_id = new_id();
        let updated = step::Entity::update_many()
            .col_expr(step::Column::State, Expr::value(RUNNING))
            .col_expr(step::Column::LeaseId, Expr::value(lease_id.clone()))
            .col_expr(step::Column::LeaseUntil, Expr::value(now + lease))
            .col_expr(
                step::Column::Attempts,
                Expr::col(step::Column::Attempts).add(1),
            )
            .col_expr(step::Column::UpdatedAt, Expr::value(now))
            .filter(step::Column::BookingId.eq(booking_id))
            .filter(step::Column::Step.eq(step.as_str()))
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(step::Column::State.eq(PENDING))
                            .add(step::Column::NextRunAt.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(step::Column::State.eq(RUNNING))
                            .add(step::Column::LeaseUntil.lt(now)),
                    ),
            )
            .exec(&self.db)
            .await
            .map_err(storage)?;
        if updated.rows_affected != 1 {
            return Ok(None);
        }
        let row = step::Entity::find_by_id((booking_id.to_owned(), step.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(storage)?;
        Ok(row.map(|r| Claim {
            booking_id: booking_id.to_owned(),
            step,
            lease_id,
            attempts: r.attempts,
        }))
    }

    /// Puts a claimed step back to run again at `at` (after a failure, with `error`, or to look
    /// again later, with the attempts reset).
    pub async fn reschedule(
        &self,
        claim: &Claim,
        at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), BookingError> {
        let mut q = step::Entity::update_many()
            .col_expr(step::Column::State, Expr::value(PENDING))
            .col_expr(step::Column::NextRunAt, Expr::value(at))
            .col_expr(step::Column::LeaseId, Expr::value(Option::<String>::None))
            .col_expr(
                step::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(step::Column::UpdatedAt, Expr::value(Utc::now()));
        q = match error {
            Some(e) => q.col_expr(step::Column::LastError, Expr::value(e.to_owned())),
            None => q.col_expr(step::Column::Attempts, Expr::value(0)),
        };
        q.filter(step::Column::BookingId.eq(claim.booking_id.as_str()))
            .filter(step::Column::Step.eq(claim.step.as_str()))
            .filter(step::Column::LeaseId.eq(claim.lease_id.as_str()))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// Parks a step that keeps failing: it stops, and the booking shows why.
    pub async fn park(&self, claim: &Claim, reason: &str) -> Result<(), BookingError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let now = Utc::now();
        let parked = step::Entity::update_many()
            .col_expr(step::Column::State, Expr::value(PARKED))
            .col_expr(step::Column::LastError, Expr::value(reason.to_owned()))
            .col_expr(
                step::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(step::Column::UpdatedAt, Expr::value(now))
            .filter(step::Column::BookingId.eq(claim.booking_id.as_str()))
            .filter(step::Column::Step.eq(claim.step.as_str()))
            .filter(step::Column::LeaseId.eq(claim.lease_id.as_str()))
            .exec(&txn)
            .await
            .map_err(storage)?;
        if parked.rows_affected == 1 {
            booking::Entity::update_many()
                .col_expr(
                    booking::Column::ParkedReason,
                    Expr::value(format!("{}: {reason}", claim.step.as_str())),
                )
                .col_expr(booking::Column::UpdatedAt, Expr::value(now))
                .filter(booking::Column::Id.eq(claim.booking_id.as_str()))
                .exec(&txn)
                .await
                .map_err(storage)?;
            let payload = serde_json::json!({
                "booking_id": claim.booking_id,
                "step": claim.step.as_str(),
                "reason": reason,
                "parked_at": now.to_rfc3339(),
            });
            marquee_platform::events::record(
                &txn,
                changes::STEP_PARKED,
                &claim.booking_id,
                &payload,
            )
            .await
            .map_err(storage)?;
        }
        txn.commit().await.map_err(storage)?;
        self.changed(&claim.booking_id);
        Ok(())
    }

    /// Finishes a claimed step: marks it done and applies `finish` in the same transaction.
    /// `Ok(false)` when the claim was lost (another instance took the step over); nothing is
    /// changed then. An illegal transition rolls everything back.
    pub async fn finish(&self, claim: &Claim, finish: Finish) -> Result<bool, BookingError> {
        let txn = self.db.begin().await.map_err(storage)?;
        let now = Utc::now();
        let done = step::Entity::update_many()
            .col_expr(step::Column::State, Expr::value(DONE))
            .col_expr(
                step::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(step::Column::UpdatedAt, Expr::value(now))
            .filter(step::Column::BookingId.eq(claim.booking_id.as_str()))
            .filter(step::Column::Step.eq(claim.step.as_str()))
            .filter(step::Column::LeaseId.eq(claim.lease_id.as_str()))
            .filter(step::Column::State.eq(RUNNING))
            .exec(&txn)
            .await
            .map_err(storage)?;
        if done.rows_affected != 1 {
            let _ = txn.rollback().await;
            return Ok(false);
        }
        match apply(&txn, &claim.booking_id, finish, now).await {
            Ok(()) => {
                txn.commit().await.map_err(storage)?;
                self.changed(&claim.booking_id);
                Ok(true)
            }
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        }
    }
}

enum Inserted {
    HoldTaken,
    CodeTaken,
    Db(DbErr),
}

async fn insert_booking(txn: &DatabaseTransaction, new: &NewBooking) -> Result<String, Inserted> {
    let id = new_id();
    let now = Utc::now();
    let code = BookingCode::generate();
    let currency = new
        .items
        .first()
        .map(|i| i.price.currency.clone())
        .unwrap_or_default();
    let total: i64 = new.items.iter().map(ItemView::total_minor).sum();
    let inserted = booking::Entity::insert(booking::ActiveModel {
        id: Set(id.clone()),
        code: Set(code.as_str().to_owned()),
        user_id: Set(new.user_id.clone()),
        show_id: Set(new.show_id.clone()),
        theatre_id: Set(new.theatre_id.clone()),
        hold_id: Set(new.hold_id.clone()),
        fencing_token: Set(new.fencing_token),
        hold_expires_at: Set(new.hold_expires_at),
        currency: Set(currency),
        total_minor: Set(total),
        status: Set(BookingStatus::PreBooking.as_str().to_owned()),
        payment_order_id: Set(None),
        provider_order_id: Set(None),
        payment_deadline: Set(None),
        parked_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        movie_title: Set(new.show.movie_title.clone()),
        theatre_name: Set(new.show.theatre_name.clone()),
        screen_name: Set(new.show.screen_name.clone()),
        show_starts_at: Set(new.show.starts_at),
        show_ends_at: Set(new.show.ends_at),
        tax_bps: Set(new.tax_bps),
        admitted_at: Set(None),
        admitted_by: Set(None),
        refund_minor: Set(None),
    })
    .exec_without_returning(txn)
    .await;
    if let Err(e) = inserted {
        if marquee_platform::db::is_unique_violation(&e) {
            // Which key: the hold is checked first, the code is random.
            let held = booking::Entity::find()
                .filter(booking::Column::HoldId.eq(new.hold_id.as_str()))
                .one(txn)
                .await;
            return Err(match held {
                Ok(Some(_)) => Inserted::HoldTaken,
                Ok(None) => Inserted::CodeTaken,
                // On PostgreSQL the failed insert aborted the transaction: ask outside it.
                Err(_) => Inserted::HoldTaken,
            });
        }
        return Err(Inserted::Db(e));
    }
    for i in &new.items {
        item::Entity::insert(item::ActiveModel {
            booking_id: Set(id.clone()),
            seat_id: Set(i.seat_id.clone()),
            category_code: Set(i.category_code.clone()),
            currency: Set(i.price.currency.clone()),
            price_minor: Set(i.price.amount_minor),
            fee_minor: Set(i.fee_minor),
            tax_minor: Set(i.tax_minor),
        })
        .exec_without_returning(txn)
        .await
        .map_err(Inserted::Db)?;
    }
    record(
        txn,
        &id,
        code.as_str(),
        None,
        BookingStatus::PreBooking,
        "created from the seat hold",
        now,
    )
    .await
    .map_err(Inserted::Db)?;
    Ok(id)
}

/// A booking's view: its row with its items, history and tickets, read on `conn` (a snapshot).
async fn view(conn: &impl ConnectionTrait, b: booking::Model) -> Result<BookingView, BookingError> {
    let items = item::Entity::find()
        .filter(item::Column::BookingId.eq(b.id.as_str()))
        .order_by_asc(item::Column::SeatId)
        .all(conn)
        .await
        .map_err(storage)?;
    let history = history::Entity::find()
        .filter(history::Column::BookingId.eq(b.id.as_str()))
        .order_by_asc(history::Column::Id)
        .all(conn)
        .await
        .map_err(storage)?;
    let tickets = ticket::Entity::find()
        .filter(ticket::Column::BookingId.eq(b.id.as_str()))
        .order_by_asc(ticket::Column::SeatId)
        .all(conn)
        .await
        .map_err(storage)?;
    let payment = match (b.payment_order_id, b.provider_order_id, b.payment_deadline) {
        (Some(order_id), Some(provider_order_id), Some(deadline)) => Some(PaymentView {
            order_id,
            provider_order_id,
            deadline,
        }),
        _ => None,
    };
    let mut hist = Vec::with_capacity(history.len());
    for h in history {
        hist.push(HistoryView {
            from: h.from_status.as_deref().map(status_of).transpose()?,
            to: status_of(&h.to_status)?,
            cause: h.cause,
            at: h.changed_at,
        });
    }
    Ok(BookingView {
        status: status_of(&b.status)?,
        id: b.id,
        code: b.code,
        user_id: b.user_id,
        show_id: b.show_id,
        theatre_id: b.theatre_id,
        hold_id: b.hold_id,
        fencing_token: b.fencing_token,
        hold_expires_at: b.hold_expires_at,
        total: Money {
            currency: b.currency,
            amount_minor: b.total_minor,
        },
        payment,
        parked_reason: b.parked_reason,
        items: items
            .into_iter()
            .map(|i| ItemView {
                seat_id: i.seat_id,
                category_code: i.category_code,
                price: Money {
                    currency: i.currency,
                    amount_minor: i.price_minor,
                },
                fee_minor: i.fee_minor,
                tax_minor: i.tax_minor,
            })
            .collect(),
        history: hist,
        tickets: tickets
            .into_iter()
            .map(|t| TicketView {
                id: t.id,
                seat_id: t.seat_id,
            })
            .collect(),
        created_at: b.created_at,
        updated_at: b.updated_at,
        show: ShowFacts {
            movie_title: b.movie_title,
            theatre_name: b.theatre_name,
            screen_name: b.screen_name,
            starts_at: b.show_starts_at,
            ends_at: b.show_ends_at,
        },
        tax_bps: b.tax_bps,
        admitted_at: b.admitted_at,
        refund_minor: b.refund_minor,
    })
}

/// The history row and the outbox event of a status change.
async fn record(
    conn: &impl ConnectionTrait,
    booking_id: &str,
    code: &str,
    from: Option<BookingStatus>,
    to: BookingStatus,
    cause: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    history::Entity::insert(history::ActiveModel {
        id: Set(new_id()),
        booking_id: Set(booking_id.to_owned()),
        from_status: Set(from.map(|s| s.as_str().to_owned())),
        to_status: Set(to.as_str().to_owned()),
        cause: Set(cause.to_owned()),
        changed_at: Set(at),
    })
    .exec_without_returning(conn)
    .await?;
    let payload = serde_json::json!({
        "booking_id": booking_id,
        "code": code,
        "from_status": from.map(|s| s.as_str()),
        "to_status": to.as_str(),
        "cause": cause,
        "occurred_at": at.to_rfc3339(),
    });
    marquee_platform::events::record(conn, changes::STATUS_CHANGED, booking_id, &payload).await?;
    Ok(())
}

async fn schedule(
    conn: &impl ConnectionTrait,
    booking_id: &str,
    step: Step,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    step::Entity::insert(step::ActiveModel {
        booking_id: Set(booking_id.to_owned()),
        step: Set(step.as_str().to_owned()),
        state: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_run_at: Set(at),
        lease_id: Set(None),
        lease_until: Set(None),
        last_error: Set(String::new()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([step::Column::BookingId, step::Column::Step])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .or_else(none_on_conflict)?;
    Ok(())
}

/// An `ON CONFLICT DO NOTHING` that did nothing inserted no row: not an error.
fn none_on_conflict(e: DbErr) -> Result<u64, DbErr> {
    match e {
        DbErr::RecordNotInserted => Ok(0),
        other => Err(other),
    }
}

/// A booking read for change: locked on PostgreSQL (SQLite runs one writer at a time).
async fn lock_booking(
    txn: &DatabaseTransaction,
    booking_id: &str,
) -> Result<booking::Model, BookingError> {
    let mut q = booking::Entity::find_by_id(booking_id.to_owned());
    if marquee_platform::db::is_postgres(txn) {
        q = q.lock_exclusive();
    }
    q.one(txn)
        .await
        .map_err(storage)?
        .ok_or_else(|| BookingError::booking_not_found(booking_id))
}

async fn apply(
    txn: &DatabaseTransaction,
    booking_id: &str,
    finish: Finish,
    now: DateTime<Utc>,
) -> Result<(), BookingError> {
    let b = lock_booking(txn, booking_id).await?;
    let from = status_of(&b.status)?;
    let mut active: booking::ActiveModel = b.clone().into();
    if let Some((event, cause)) = &finish.event {
        let to = transition(from, *event)?;
        active.status = Set(to.as_str().to_owned());
        record(txn, booking_id, &b.code, Some(from), to, cause, now)
            .await
            .map_err(storage)?;
    }
    if let Some(p) = finish.payment {
        active.payment_order_id = Set(Some(p.order_id));
        active.provider_order_id = Set(Some(p.provider_order_id));
        active.payment_deadline = Set(Some(p.deadline));
    }
    if let Some(at) = finish.hold_expires_at {
        active.hold_expires_at = Set(at);
    }
    if let Some(refund) = finish.refund_minor {
        active.refund_minor = Set(Some(refund));
    }
    active.updated_at = Set(now);
    active.update(txn).await.map_err(storage)?;
    for (step, at) in finish.next {
        schedule(txn, booking_id, step, at, now)
            .await
            .map_err(storage)?;
    }
    if finish.tickets {
        let items = item::Entity::find()
            .filter(item::Column::BookingId.eq(booking_id))
            .all(txn)
            .await
            .map_err(storage)?;
        for i in items {
            ticket::Entity::insert(ticket::ActiveModel {
                id: Set(new_id()),
                booking_id: Set(booking_id.to_owned()),
                show_id: Set(b.show_id.clone()),
                seat_id: Set(i.seat_id),
                issued_at: Set(now),
            })
            .exec_without_returning(txn)
            .await
            .map_err(storage)?;
        }
    }
    if finish.invoice {
        issue_invoice(txn, &b, now).await.map_err(storage)?;
    }
    Ok(())
}

/// Issues the invoice with the next number of the theatre's year. The counter row is locked
/// in the invoice's transaction, so numbers have no gaps and no duplicates.
async fn issue_invoice(
    txn: &DatabaseTransaction,
    b: &booking::Model,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let year = now.year();
    invoice_counter::Entity::insert(invoice_counter::ActiveModel {
        theatre_id: Set(b.theatre_id.clone()),
        year: Set(year),
        last: Set(0),
    })
    .on_conflict(
        OnConflict::columns([
            invoice_counter::Column::TheatreId,
            invoice_counter::Column::Year,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await
    .or_else(none_on_conflict)?;
    let mut q = invoice_counter::Entity::find_by_id((b.theatre_id.clone(), year));
    if marquee_platform::db::is_postgres(txn) {
        q = q.lock_exclusive();
    }
    let counter = q
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("invoice counter".to_owned()))?;
    let sequence = counter.last + 1;
    invoice_counter::Entity::update_many()
        .col_expr(invoice_counter::Column::Last, Expr::value(sequence))
        .filter(invoice_counter::Column::TheatreId.eq(b.theatre_id.as_str()))
        .filter(invoice_counter::Column::Year.eq(year))
        .exec(txn)
        .await?;
    let plain: Vec<char> = b.theatre_id.chars().filter(|c| *c != '-').collect();
    let short: String = plain[plain.len().saturating_sub(6)..].iter().collect();
    let number = format!("INV-{}-{year}-{sequence:06}", short.to_uppercase());
    invoice::Entity::insert(invoice::ActiveModel {
        id: Set(new_id()),
        booking_id: Set(b.id.clone()),
        theatre_id: Set(b.theatre_id.clone()),
        year: Set(year),
        sequence: Set(sequence),
        number: Set(number.clone()),
        currency: Set(b.currency.clone()),
        total_minor: Set(b.total_minor),
        issued_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    let payload = serde_json::json!({
        "booking_id": b.id,
        "code": b.code,
        "invoice_number": number,
        "theatre_id": b.theatre_id,
        "currency": b.currency,
        "total_minor": b.total_minor,
        "issued_at": now.to_rfc3339(),
    });
    marquee_platform::events::record(txn, "invoice.issued", &b.id, &payload).await?;
    Ok(())
}

/// An issued invoice's number and date (its lines are the booking's items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceView {
    /// Number, for example `INV-ABC123-2026-000001`.
    pub number: String,
    /// Sequence within the theatre's year.
    pub sequence: i64,
    /// Year.
    pub year: i32,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

impl BookingStore {
    /// The invoice of a booking.
    pub async fn invoice_of(&self, booking_id: &str) -> Result<Option<InvoiceView>, BookingError> {
        Ok(invoice::Entity::find()
            .filter(invoice::Column::BookingId.eq(booking_id))
            .one(&self.db)
            .await
            .map_err(storage)?
            .map(|i| InvoiceView {
                number: i.number,
                sequence: i.sequence,
                year: i.year,
                issued_at: i.issued_at,
            }))
    }

    /// The `booking.status_changed` events of a booking, oldest first (their `to_status`).
    pub async fn outbox_statuses(&self, booking_id: &str) -> Result<Vec<String>, BookingError> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::AggregateId.eq(booking_id))
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("to_status")
                            .and_then(|s| s.as_str())
                            .map(str::to_owned)
                    })
            })
            .collect())
    }
}
