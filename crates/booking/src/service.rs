//! Booking's application service: what the gRPC adapter calls, and the saga's steps, which the
//! StartPayment call and the background worker run alike.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use marquee_platform::{
    CancellationToken,
    idempotency::IdempotencyKey,
    validation::{Violations, check_request_id},
};
use tokio::task::JoinSet;

use crate::{
    config::BookingConfig,
    domain::{
        BookingCode, BookingError, BookingEvent, BookingStatus, Money,
        policy::{self, Cancellation},
        saga::{self, PaymentDecision, Step},
    },
    remote::Remotes,
    store::{
        Admission, BookingStore, BookingView, Claim, Finish, InvoiceView, ItemView, NewBooking,
        PaymentView, ShowFacts,
    },
    tickets::{self, Refused, TicketClaims},
};

/// A booking's ticket as the customer shows it.
#[derive(Debug, Clone)]
pub struct TicketView {
    /// The booking.
    pub booking: BookingView,
    /// The signed ticket token.
    pub token: String,
    /// Its QR code (SVG).
    pub qr_svg: String,
}

/// What a scan at the door came to, with the booking it admitted.
#[derive(Debug, Clone)]
pub struct AdmitView {
    /// The scan's outcome.
    pub admission: Admission,
    /// The booking.
    pub booking: BookingView,
}

/// How many saga steps one worker runs at once.
pub const WORKER_CONCURRENCY: usize = 64;

/// What a checkout needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutView {
    /// Provider's public key id.
    pub key_id: String,
    /// Provider's order id.
    pub provider_order_id: String,
    /// When the payment window closes.
    pub deadline: DateTime<Utc>,
}

/// What running a step came to.
enum Outcome {
    /// Done: apply this.
    Finish(Finish),
    /// Not yet: look again at this time.
    Wait(DateTime<Utc>),
}

/// Bookings.
#[derive(Clone)]
pub struct Bookings {
    store: BookingStore,
    remotes: Remotes,
    config: Arc<BookingConfig>,
    /// The ticket-signing keys, newest first (loaded once; again when a token names a key
    /// another instance made).
    ticket_keys: Arc<tokio::sync::RwLock<Vec<marquee_platform::keys::KeyMaterial>>>,
}

fn check_booking_id(id: &str) -> Result<(), BookingError> {
    if id.is_empty() {
        return Err(Violations::one("booking_id", "required").into());
    }
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Violations::one("booking_id", "must be a UUID").into());
    }
    Ok(())
}

/// Checks a mutating request's idempotency key and booking id, then `more` (further fields'
/// violations), and reports them all at once.
fn check_mutation(
    request_id: &str,
    booking_id: &str,
    more: Violations,
) -> Result<(), BookingError> {
    let mut v = Violations::new();
    if let Err(e) = check_request_id(request_id) {
        v.extend(e);
    }
    if let Err(BookingError::Invalid(e)) = check_booking_id(booking_id) {
        v.extend(e);
    }
    v.extend(more);
    Ok(v.into_result()?)
}

fn ms(d: u64) -> Duration {
    Duration::milliseconds(i64::try_from(d).unwrap_or(i64::MAX / 2))
}

impl Bookings {
    /// Bookings over `store`, calling other services through `remotes`.
    pub fn new(store: BookingStore, remotes: Remotes, config: BookingConfig) -> Self {
        Self {
            store,
            remotes,
            config: Arc::new(config),
            ticket_keys: Arc::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &BookingStore {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &BookingConfig {
        &self.config
    }

    /// `user`'s booking, or NOT_FOUND (also for other users' bookings: their existence is not
    /// revealed).
    pub async fn get(&self, user: &str, booking_id: &str) -> Result<BookingView, BookingError> {
        check_booking_id(booking_id)?;
        match self.store.get(booking_id).await? {
            Some(b) if b.user_id == user => Ok(b),
            _ => Err(BookingError::booking_not_found(booking_id)),
        }
    }

    /// `user`'s bookings, newest first.
    pub async fn list(
        &self,
        user: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<BookingView>, BookingError> {
        self.store.list_for_user(user, after, limit).await
    }

    /// Creates a booking in PRE_BOOKING from `user`'s hold, priced at the show's prices now.
    pub async fn create(
        &self,
        user: &str,
        request_id: &str,
        hold_id: &str,
    ) -> Result<BookingView, BookingError> {
        let mut v = Violations::new();
        if let Err(e) = check_request_id(request_id) {
            v.extend(e);
        }
        v.check(!hold_id.is_empty(), "hold_id", "required");
        v.check(hold_id.len() <= 128, "hold_id", "at most 128 characters");
        v.into_result()?;
        let key = IdempotencyKey::new("booking.create", request_id, &(user, hold_id));
        if let Some(id) = self.store.replay(&key).await? {
            return self.get(user, &id).await;
        }
        let hold_not_found = || BookingError::NotFound {
            kind: "hold",
            id: hold_id.to_owned(),
        };
        let hold = self
            .remotes
            .hold(hold_id)
            .await?
            .filter(|h| h.holder_id == user)
            .ok_or_else(hold_not_found)?;
        if hold.expires_at <= Utc::now() {
            return Err(BookingError::precondition(
                "HOLD_EXPIRED",
                "the seat hold has expired",
            ));
        }
        let show = self.remotes.show(&hold.show_id).await?;
        let (categories, names) = tokio::join!(
            self.remotes.seat_categories(&show.screen_id),
            self.remotes.names(&show)
        );
        let (categories, (movie_title, theatre_name, screen_name)) = (categories?, names?);
        let fees = self.config.fees_of(&show.theatre_id);
        let mut items = Vec::with_capacity(hold.seat_ids.len());
        for seat in &hold.seat_ids {
            let category = categories
                .iter()
                .find(|(s, _)| s == seat)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| BookingError::Dependency {
                    service: "catalog",
                    message: format!("seat {seat} is not in the screen's layout"),
                })?;
            let price = show
                .prices
                .iter()
                .find(|(c, _)| *c == category)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| {
                    BookingError::precondition(
                        "PRICE_MISSING",
                        format!("the show has no price for category {category}"),
                    )
                })?;
            let (fee_minor, tax_minor) = policy::seat_charges(price.amount_minor, &fees);
            items.push(ItemView {
                seat_id: seat.clone(),
                category_code: category,
                price,
                fee_minor,
                tax_minor,
            });
        }
        if items.is_empty() {
            return Err(BookingError::precondition(
                "HOLD_EMPTY",
                "the hold has no seats",
            ));
        }
        if items
            .iter()
            .any(|i| i.price.currency != items[0].price.currency)
        {
            return Err(BookingError::precondition(
                "MIXED_CURRENCIES",
                "the seats are priced in different currencies",
            ));
        }
        let new = NewBooking {
            user_id: user.to_owned(),
            show_id: hold.show_id.clone(),
            theatre_id: show.theatre_id,
            hold_id: hold.id.clone(),
            fencing_token: hold.fencing_token,
            hold_expires_at: hold.expires_at,
            items,
            show: ShowFacts {
                movie_title,
                theatre_name,
                screen_name,
                starts_at: Some(show.starts_at),
                ends_at: Some(show.ends_at),
            },
            tax_bps: i32::try_from(fees.tax_bps).unwrap_or(i32::MAX),
        };
        let id = self.store.create(&key, &new, hold.expires_at).await?;
        self.get(user, &id).await
    }

    /// Starts payment for `user`'s booking (see the StartPayment RPC).
    pub async fn start_payment(
        &self,
        user: &str,
        request_id: &str,
        booking_id: &str,
    ) -> Result<(BookingView, CheckoutView), BookingError> {
        check_mutation(request_id, booking_id, Violations::new())?;
        let key = IdempotencyKey::new("booking.start_payment", request_id, &(user, booking_id));
        // A reused key with other parameters is refused; a retry runs the (idempotent) rest.
        self.store.replay(&key).await?;
        let booking = self.get(user, booking_id).await?;
        if booking.status == BookingStatus::PreBooking
            && let Some(claim) = self
                .store
                .claim_new(
                    booking_id,
                    Step::StartPayment,
                    Utc::now(),
                    ms(self.config.lease_ms),
                )
                .await?
        {
            self.run_claimed(claim).await;
        }
        let mut booking = self.get(user, booking_id).await?;
        // Another call is starting the payment right now: wait for it (bounded).
        for _ in 0..50 {
            if booking.status != BookingStatus::PreBooking
                || booking.parked_reason.is_some()
                || self
                    .store
                    .step_state(booking_id, Step::StartPayment)
                    .await?
                    .as_deref()
                    != Some("running")
            {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            booking = self.get(user, booking_id).await?;
        }
        if let Some(reason) = &booking.parked_reason {
            return Err(BookingError::precondition(
                "BOOKING_PARKED",
                format!("the booking is waiting for an operator: {reason}"),
            ));
        }
        let payable = matches!(
            booking.status,
            BookingStatus::PaymentInitiated
                | BookingStatus::PaymentCompleted
                | BookingStatus::BookingCompleted
                | BookingStatus::Invoiced
        );
        let Some(payment) = booking.payment.clone().filter(|_| payable) else {
            return Err(match booking.status {
                BookingStatus::PreBooking => BookingError::Dependency {
                    service: "booking",
                    message: "payment is being started; retry".to_owned(),
                },
                BookingStatus::Expired => BookingError::precondition(
                    "BOOKING_EXPIRED",
                    "the booking has expired: its seat hold ran out",
                ),
                _ => BookingError::precondition(
                    "BOOKING_NOT_PAYABLE",
                    format!("a booking in {} cannot be paid", booking.status.as_str()),
                ),
            });
        };
        // The order's creation is idempotent under its derived request id: this returns it.
        let order = self
            .remotes
            .create_order(
                saga::request_id(booking_id, "create_order"),
                &booking.total,
                booking.platform_fee_minor(),
                &booking.theatre_id,
                booking_id,
            )
            .await?;
        self.store.remember(&key, booking_id).await?;
        Ok((
            booking,
            CheckoutView {
                key_id: order.key_id,
                provider_order_id: payment.provider_order_id,
                deadline: payment.deadline,
            },
        ))
    }

    /// Runs a claimed step and records what came of it: finished, waiting, retried with backoff,
    /// or parked after `max_attempts` failures.
    ///
    /// A step that finishes and schedules the next one due at once (capture -> confirm ->
    /// invoice) claims and runs it right here, instead of leaving it to the worker's next tick.
    pub async fn run_claimed(&self, claim: Claim) {
        let mut claim = claim;
        loop {
            let Some(next) = self.run_one(&claim).await else {
                return;
            };
            match self
                .store
                .claim(
                    &claim.booking_id,
                    next,
                    Utc::now(),
                    ms(self.config.lease_ms),
                )
                .await
            {
                Ok(Some(c)) => claim = c,
                // Someone else has it, or it is not due after all: the worker sees to it.
                _ => return,
            }
        }
    }

    /// Runs one claimed step and records its outcome; returns a step it scheduled to run at
    /// once, if any.
    async fn run_one(&self, claim: &Claim) -> Option<Step> {
        let claim = claim.clone();
        let outcome = self.run_step(&claim).await;
        let now = Utc::now();
        let mut chained = None;
        let recorded = match outcome {
            Ok(Outcome::Finish(finish)) => {
                let immediate = finish
                    .next
                    .iter()
                    .find(|(_, at)| *at <= Utc::now())
                    .map(|(s, _)| *s);
                match self.store.finish(&claim, finish).await {
                    Ok(true) => {
                        chained = immediate;
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    // The booking moved on meanwhile (another step won): look again.
                    Err(BookingError::IllegalTransition { .. }) => {
                        self.store
                            .reschedule(&claim, now, Some("the booking changed meanwhile"))
                            .await
                    }
                    Err(e) => self.failed(&claim, &e, now).await,
                }
            }
            Ok(Outcome::Wait(at)) => self.store.reschedule(&claim, at, None).await,
            Err(e) => self.failed(&claim, &e, now).await,
        };
        if let Err(e) = recorded {
            // The lease runs out and the step is picked up again.
            tracing::warn!(booking_id = %claim.booking_id, step = claim.step.as_str(), error = %e, "saga step outcome not recorded");
        }
        chained
    }

    async fn failed(
        &self,
        claim: &Claim,
        error: &BookingError,
        now: DateTime<Utc>,
    ) -> Result<(), BookingError> {
        let reason = match error {
            BookingError::Storage(cause) => format!("storage error: {cause}"),
            other => other.to_string(),
        };
        let attempts = u32::try_from(claim.attempts).unwrap_or(0);
        if error.is_transient() && attempts < self.config.max_attempts {
            tracing::info!(booking_id = %claim.booking_id, step = claim.step.as_str(), attempts, error = %reason, "saga step failed; retrying");
            let delay = saga::backoff_ms(
                attempts,
                self.config.retry_base_ms,
                self.config.retry_max_ms,
            );
            self.store
                .reschedule(claim, now + ms(delay), Some(&reason))
                .await
        } else {
            tracing::error!(booking_id = %claim.booking_id, step = claim.step.as_str(), attempts, error = %reason, "saga step parked");
            self.store.park(claim, &reason).await
        }
    }

    async fn run_step(&self, claim: &Claim) -> Result<Outcome, BookingError> {
        let booking = self
            .store
            .get(&claim.booking_id)
            .await?
            .ok_or_else(|| BookingError::booking_not_found(&claim.booking_id))?;
        match claim.step {
            Step::StartPayment => self.start_payment_step(&booking).await,
            Step::AwaitPayment => self.await_payment_step(&booking).await,
            Step::ConfirmSeats => self.confirm_seats_step(&booking).await,
            Step::IssueInvoice => Ok(Outcome::Finish(
                if booking.status == BookingStatus::BookingCompleted {
                    Finish {
                        event: Some((BookingEvent::Invoiced, "invoice issued".to_owned())),
                        invoice: true,
                        ..Finish::default()
                    }
                } else {
                    Finish::default()
                },
            )),
            Step::ExpireUnstarted => self.expire_unstarted_step(&booking).await,
            Step::SettleCancellation => self.settle_cancellation_step(&booking).await,
        }
    }

    async fn start_payment_step(&self, b: &BookingView) -> Result<Outcome, BookingError> {
        if b.status != BookingStatus::PreBooking {
            return Ok(Outcome::Finish(Finish::default()));
        }
        let window = self.config.payment_window_ms + self.config.capture_margin_ms;
        let hold_expires = match self
            .remotes
            .extend_hold(&b.hold_id, StdDuration::from_millis(window))
            .await
        {
            Ok(at) => at,
            Err(BookingError::Precondition { .. } | BookingError::NotFound { .. }) => {
                return Ok(Outcome::Finish(Finish {
                    event: Some((
                        BookingEvent::Expired,
                        "the seat hold expired before payment started".to_owned(),
                    )),
                    ..Finish::default()
                }));
            }
            Err(e) => return Err(e),
        };
        let order = self
            .remotes
            .create_order(
                saga::request_id(&b.id, "create_order"),
                &b.total,
                b.platform_fee_minor(),
                &b.theatre_id,
                &b.id,
            )
            .await?;
        let now = Utc::now();
        let deadline_ms = saga::payment_deadline_ms(
            now.timestamp_millis(),
            self.config.payment_window_ms as i64,
            hold_expires.timestamp_millis(),
            self.config.capture_margin_ms as i64,
        );
        let deadline = DateTime::from_timestamp_millis(deadline_ms).unwrap_or(now);
        Ok(Outcome::Finish(Finish {
            event: Some((
                BookingEvent::PaymentStarted,
                format!(
                    "payment order created; the seat hold runs until {}",
                    hold_expires.to_rfc3339()
                ),
            )),
            payment: Some(PaymentView {
                order_id: order.order_id,
                provider_order_id: order.provider_order_id,
                deadline,
            }),
            hold_expires_at: Some(hold_expires),
            next: vec![(Step::AwaitPayment, now + ms(self.config.poll_min_ms))],
            ..Finish::default()
        }))
    }

    async fn await_payment_step(&self, b: &BookingView) -> Result<Outcome, BookingError> {
        let (BookingStatus::PaymentInitiated, Some(payment)) = (b.status, &b.payment) else {
            return Ok(Outcome::Finish(Finish::default()));
        };
        let now = Utc::now();
        let seen = self.remotes.payment(&payment.order_id).await?;
        let decision = saga::decide_payment(
            &seen,
            now.timestamp_millis(),
            payment.deadline.timestamp_millis(),
        );
        let captured = || Finish {
            event: Some((BookingEvent::PaymentCaptured, "payment captured".to_owned())),
            next: vec![(Step::ConfirmSeats, Utc::now())],
            ..Finish::default()
        };
        match decision {
            PaymentDecision::RecordCapture => Ok(Outcome::Finish(captured())),
            PaymentDecision::CaptureIfHoldValid => {
                let hold = self.remotes.hold(&b.hold_id).await?;
                let valid = hold.as_ref().is_some_and(|h| {
                    saga::hold_covers_capture(
                        b.fencing_token,
                        h.fencing_token,
                        h.expires_at.timestamp_millis(),
                        Utc::now().timestamp_millis(),
                        self.config.capture_margin_ms as i64,
                    )
                });
                if valid {
                    let captured_now = self
                        .remotes
                        .capture(saga::request_id(&b.id, "capture"), &payment.order_id)
                        .await;
                    if let Err(BookingError::Precondition { .. }) = &captured_now
                        && self
                            .store
                            .get(&b.id)
                            .await?
                            .is_some_and(|now| now.status != BookingStatus::PaymentInitiated)
                    {
                        // Cancelled meanwhile: the cancellation closed the order, which
                        // refuses the capture and voids the payment. Nothing left to do here.
                        return Ok(Outcome::Finish(Finish::default()));
                    }
                    captured_now?;
                    // A crash here leaves the step claimed: it runs again once the lease
                    // runs out, sees the capture, and records it (no second capture).
                    fail::fail_point!("booking::after_capture");
                    return Ok(Outcome::Finish(captured()));
                }
                let reason = "the seat hold expired before the payment could be captured";
                if !self
                    .remotes
                    .close_order(saga::request_id(&b.id, "close"), &payment.order_id, reason)
                    .await?
                {
                    // Captured meanwhile (a retry of a capture that went through): record it.
                    return Ok(Outcome::Finish(captured()));
                }
                self.remotes.release_hold(&b.hold_id).await?;
                Ok(Outcome::Finish(Finish {
                    event: Some((
                        BookingEvent::Expired,
                        format!("{reason}; the payment was voided"),
                    )),
                    ..Finish::default()
                }))
            }
            PaymentDecision::Wait => {
                // Look more often at first (a checkout is usually quick), less later.
                let elapsed = (now - b.updated_at).num_milliseconds().max(0) as u64;
                let every = (elapsed / 8).clamp(self.config.poll_min_ms, self.config.poll_max_ms);
                Ok(Outcome::Wait(
                    (now + ms(every)).min(payment.deadline).max(now),
                ))
            }
            PaymentDecision::Expire(reason) => {
                self.close_unpaid(b, payment, BookingEvent::Expired, reason)
                    .await
            }
            PaymentDecision::Fail(reason) => {
                self.close_unpaid(b, payment, BookingEvent::PaymentFailed, reason)
                    .await
            }
        }
    }

    /// Ends a booking whose payment window closed unpaid: the order is closed first (a payment
    /// authorised from now on is voided, never captured), then the seats are released.
    async fn close_unpaid(
        &self,
        b: &BookingView,
        payment: &PaymentView,
        event: BookingEvent,
        reason: String,
    ) -> Result<Outcome, BookingError> {
        if !self
            .remotes
            .close_order(saga::request_id(&b.id, "close"), &payment.order_id, &reason)
            .await?
        {
            // Captured after all (the customer paid at the last moment and a previous run
            // captured it): record the capture instead.
            return Ok(Outcome::Finish(Finish {
                event: Some((BookingEvent::PaymentCaptured, "payment captured".to_owned())),
                next: vec![(Step::ConfirmSeats, Utc::now())],
                ..Finish::default()
            }));
        }
        self.remotes.release_hold(&b.hold_id).await?;
        Ok(Outcome::Finish(Finish {
            event: Some((
                event,
                format!(
                    "{reason}; seats released; the payment order is closed (a late payment is voided automatically)"
                ),
            )),
            ..Finish::default()
        }))
    }

    async fn confirm_seats_step(&self, b: &BookingView) -> Result<Outcome, BookingError> {
        let (BookingStatus::PaymentCompleted, Some(payment)) = (b.status, &b.payment) else {
            return Ok(Outcome::Finish(Finish::default()));
        };
        match self
            .remotes
            .confirm_hold(&b.hold_id, b.fencing_token, &b.code)
            .await
        {
            Ok(()) => {
                // A crash here (seats sold, tickets not stored) repeats the confirmation, which
                // seating answers again for the same booking reference.
                fail::fail_point!("booking::after_confirm");
                Ok(Outcome::Finish(Finish {
                    event: Some((
                        BookingEvent::SeatsConfirmed,
                        format!("seats sold; {} ticket(s) issued", b.items.len()),
                    )),
                    tickets: true,
                    next: vec![(Step::IssueInvoice, Utc::now())],
                    ..Finish::default()
                }))
            }
            Err(BookingError::Precondition { reason, .. }) => {
                let why = format!("the seat hold was lost after capture ({reason})");
                self.remotes
                    .refund(
                        saga::request_id(&b.id, "refund"),
                        &payment.order_id,
                        None,
                        &why,
                    )
                    .await?;
                Ok(Outcome::Finish(Finish {
                    event: Some((
                        BookingEvent::Refunded,
                        format!("{why}; the payment was refunded"),
                    )),
                    refund_minor: Some(b.total.amount_minor),
                    ..Finish::default()
                }))
            }
            Err(e) => Err(e),
        }
    }

    async fn expire_unstarted_step(&self, b: &BookingView) -> Result<Outcome, BookingError> {
        if b.status != BookingStatus::PreBooking {
            return Ok(Outcome::Finish(Finish::default()));
        }
        if let Some(h) = self.remotes.hold(&b.hold_id).await?
            && h.fencing_token == b.fencing_token
            && h.expires_at > Utc::now()
        {
            // The customer extended the hold: expire when it runs out.
            return Ok(Outcome::Wait(h.expires_at));
        }
        self.remotes.release_hold(&b.hold_id).await?;
        Ok(Outcome::Finish(Finish {
            event: Some((
                BookingEvent::Expired,
                "the seat hold expired before payment started".to_owned(),
            )),
            ..Finish::default()
        }))
    }

    /// Undoes what a cancelled booking held: the sold seats go back on sale (or the hold is
    /// released), the payment order is closed, and what was captured is refunded in full.
    async fn settle_cancellation_step(&self, b: &BookingView) -> Result<Outcome, BookingError> {
        if b.status != BookingStatus::Cancelled {
            return Ok(Outcome::Finish(Finish::default()));
        }
        // Sold once the seats were confirmed (the tickets went with the cancellation).
        let sold = b.was_sold();
        if sold {
            self.remotes.cancel_sale(&b.show_id, &b.code).await?;
        } else {
            self.remotes.release_hold(&b.hold_id).await?;
        }
        let Some(payment) = &b.payment else {
            return Ok(Outcome::Finish(Finish::default()));
        };
        let reason = "the booking was cancelled";
        let captured = sold
            || !self
                .remotes
                .close_order(saga::request_id(&b.id, "close"), &payment.order_id, reason)
                .await?;
        if !captured {
            return Ok(Outcome::Finish(Finish::default()));
        }
        self.remotes
            .refund(
                saga::request_id(&b.id, "refund"),
                &payment.order_id,
                None,
                reason,
            )
            .await?;
        Ok(Outcome::Finish(Finish {
            event: Some((
                BookingEvent::Refunded,
                format!(
                    "cancelled; {} refunded in full",
                    crate::invoice::format_money(b.total.amount_minor, &b.total.currency)
                ),
            )),
            refund_minor: Some(b.total.amount_minor),
            ..Finish::default()
        }))
    }

    /// Cancels `user`'s booking by the cancellation policy (see the CancelBooking RPC);
    /// returns it and the refund due.
    pub async fn cancel(
        &self,
        user: &str,
        request_id: &str,
        booking_id: &str,
    ) -> Result<(BookingView, Money), BookingError> {
        check_mutation(request_id, booking_id, Violations::new())?;
        // Ownership first: another customer's booking is NOT_FOUND.
        let before = self.get(user, booking_id).await?;
        let key = IdempotencyKey::new("booking.cancel", request_id, &(user, booking_id));
        let cutoff = i64::try_from(self.config.cancellation_cutoff_ms).unwrap_or(i64::MAX / 2);
        let mut plan = None;
        self.store
            .cancel(&key, booking_id, |status, admitted, starts| {
                let now = Utc::now().timestamp_millis();
                let start = starts.map_or(i64::MAX / 2, |t| t.timestamp_millis());
                let decided = policy::cancellation(status, admitted.is_some(), now, start, cutoff)?;
                plan = Some(decided);
                Ok(match decided {
                    Cancellation::BeforeCapture => {
                        "cancelled by the customer before payment; seats released".to_owned()
                    }
                    Cancellation::FullRefund => format!(
                        "cancelled by the customer more than {} minutes before the show; full refund",
                        cutoff / 60_000
                    ),
                })
            })
            .await?;
        let booking = self.get(user, booking_id).await?;
        let refund_minor = match plan {
            Some(Cancellation::FullRefund) => booking.total.amount_minor,
            // Before capture nothing is owed back; a replay reports what the booking shows.
            Some(Cancellation::BeforeCapture) => 0,
            None => booking.refund_minor.unwrap_or(if before.was_sold() {
                booking.total.amount_minor
            } else {
                0
            }),
        };
        let refund = Money {
            currency: booking.total.currency.clone(),
            amount_minor: refund_minor,
        };
        Ok((booking, refund))
    }

    /// The invoice of `user`'s booking, with the booking it belongs to.
    pub async fn invoice(
        &self,
        user: &str,
        booking_id: &str,
    ) -> Result<(BookingView, InvoiceView), BookingError> {
        let booking = self.get(user, booking_id).await?;
        match self.store.invoice_of(booking_id).await? {
            Some(invoice) => Ok((booking, invoice)),
            None => Err(BookingError::precondition(
                "NOT_INVOICED",
                format!("no invoice yet: the booking is {}", booking.status.as_str()),
            )),
        }
    }

    /// The time zone an invoice prints a booking's times in: its show's city's. `None` (the
    /// invoice then says UTC) when the catalog cannot tell now; an invoice is still served.
    pub async fn invoice_time_zone(&self, booking: &BookingView) -> Option<chrono_tz::Tz> {
        match self.remotes.show_time_zone(&booking.show_id).await {
            Ok(tz) => tz,
            Err(error) => {
                tracing::warn!(%error, show = %booking.show_id, "no time zone for the invoice; printing UTC");
                None
            }
        }
    }

    async fn keys(
        &self,
        reload: bool,
    ) -> Result<Vec<marquee_platform::keys::KeyMaterial>, BookingError> {
        if !reload {
            let keys = self.ticket_keys.read().await;
            if !keys.is_empty() {
                return Ok(keys.clone());
            }
        }
        let loaded = self.store.ticket_keys().await?;
        *self.ticket_keys.write().await = loaded.clone();
        Ok(loaded)
    }

    /// The public ticket-signing keys (JWKS JSON).
    pub async fn ticket_keys_jwks(&self) -> Result<String, BookingError> {
        Ok(tickets::jwks_json(&self.keys(false).await?))
    }

    /// The ticket of `user`'s booking: its signed token and QR code.
    pub async fn ticket(&self, user: &str, booking_id: &str) -> Result<TicketView, BookingError> {
        let booking = self.get(user, booking_id).await?;
        if !policy::has_ticket(booking.status) {
            return Err(BookingError::precondition(
                "NO_TICKET",
                format!("a booking in {} has no ticket", booking.status.as_str()),
            ));
        }
        let now = Utc::now().timestamp();
        let valid_until = booking
            .show
            .ends_at
            .map_or(now + 86_400, |t| t.timestamp() + 6 * 3_600);
        let claims = TicketClaims {
            iss: tickets::TICKET_ISSUER.to_owned(),
            aud: tickets::TICKET_AUDIENCE.to_owned(),
            sub: booking.id.clone(),
            code: booking.code.clone(),
            show: booking.show_id.clone(),
            theatre: booking.theatre_id.clone(),
            seats: booking.tickets.iter().map(|t| t.seat_id.clone()).collect(),
            iat: now,
            exp: valid_until,
        };
        let token = tickets::sign(&self.keys(false).await?, &claims)?;
        let qr_svg = tickets::qr_svg(&token)?;
        Ok(TicketView {
            booking,
            token,
            qr_svg,
        })
    }

    /// Admits a booking at the door (see the AdmitTicket RPC). `caller` is the scanner's
    /// verified identity.
    pub async fn admit(
        &self,
        caller: &marquee_platform::auth::Caller,
        request_id: &str,
        code: Option<&str>,
        token: Option<&str>,
    ) -> Result<AdmitView, BookingError> {
        use marquee_platform::auth::Role;
        if !(caller.has_role(Role::Staff) || caller.has_role(Role::Admin)) {
            return Err(BookingError::Forbidden {
                reason: "DOOR_STAFF_ONLY",
                message: "only door staff of the theatre admit tickets".to_owned(),
            });
        }
        let mut v = Violations::new();
        if let Err(e) = check_request_id(request_id) {
            v.extend(e);
        }
        let booking = match (code, token) {
            (Some(code), None) => match BookingCode::parse(code) {
                Some(code) => {
                    v.into_result()?;
                    self.store.by_code(code.as_str()).await?
                }
                None => {
                    v.add("booking_code", "must be a 10-character booking code");
                    return Err(v.into());
                }
            },
            (None, Some(token)) => {
                let mut keys = self.keys(false).await?;
                let mut checked = tickets::verify(&keys, token);
                if checked == Err(Refused::UnknownKey) {
                    keys = self.keys(true).await?;
                    checked = tickets::verify(&keys, token);
                }
                match checked {
                    Ok(claims) => {
                        v.into_result()?;
                        self.store.get(&claims.sub).await?
                    }
                    Err(_) => {
                        v.add(
                            "ticket_token",
                            "is not a valid Marquee ticket (forged, damaged or expired)",
                        );
                        return Err(v.into());
                    }
                }
            }
            _ => {
                v.add("ticket", "give exactly one of booking_code or ticket_token");
                return Err(v.into());
            }
        };
        let booking = booking.ok_or_else(|| BookingError::NotFound {
            kind: "booking",
            id: code.unwrap_or("(from the ticket token)").to_owned(),
        })?;
        if !caller.acts_for_theatre(&booking.theatre_id) {
            return Err(BookingError::Forbidden {
                reason: "OTHER_THEATRE",
                message: "this ticket is for another theatre".to_owned(),
            });
        }
        let key = IdempotencyKey::new("booking.admit", request_id, &(&caller.subject, &booking.id));
        let admission = self.store.admit(&key, &booking.id, &caller.subject).await?;
        let booking = self
            .store
            .get(&booking.id)
            .await?
            .ok_or_else(|| BookingError::booking_not_found(&booking.id))?;
        Ok(AdmitView { admission, booking })
    }

    /// Records a booking's settlement (SETTLEMENT_DONE); for the settlement run.
    pub async fn settle(
        &self,
        request_id: &str,
        booking_id: &str,
        reference: &str,
    ) -> Result<BookingView, BookingError> {
        let mut more = Violations::new();
        more.check(
            !reference.is_empty() && reference.len() <= 128,
            "settlement_reference",
            "1 to 128 characters",
        );
        check_mutation(request_id, booking_id, more)?;
        let key = IdempotencyKey::new("booking.settle", request_id, &(booking_id, reference));
        self.store.settle(&key, booking_id, reference).await?;
        self.store
            .get(booking_id)
            .await?
            .ok_or_else(|| BookingError::booking_not_found(booking_id))
    }

    /// Runs due saga steps until `stop` is cancelled: on start-up this resumes every step left
    /// unfinished (a pending one at once, a running one when its claimant's lease has run out).
    ///
    /// Up to [`WORKER_CONCURRENCY`] steps run at once; a slow step (a dependency timing out)
    /// does not hold back the others, which are claimed on the next tick.
    pub async fn run_worker(self, stop: CancellationToken) {
        let tick = StdDuration::from_millis(self.config.tick_ms);
        let permits = Arc::new(tokio::sync::Semaphore::new(WORKER_CONCURRENCY));
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let free = permits.available_permits() as u64;
            let due = if free == 0 {
                Vec::new()
            } else {
                match self.store.due_steps(Utc::now(), free).await {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::warn!(error = %e, "saga worker cannot read due steps");
                        Vec::new()
                    }
                }
            };
            for (booking_id, step) in due {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                let claim = self
                    .store
                    .claim(&booking_id, step, Utc::now(), ms(self.config.lease_ms))
                    .await;
                if let Ok(Some(claim)) = claim {
                    let this = self.clone();
                    running.spawn(async move {
                        this.run_claimed(claim).await;
                        drop(permit);
                    });
                }
            }
            tokio::select! {
                () = stop.cancelled() => {
                    // Steps under way finish (or their leases run out and they resume).
                    while running.join_next().await.is_some() {}
                    return;
                }
                () = tokio::time::sleep(tick) => {}
            }
        }
    }
}
