//! The gRPC adapter for `marquee.booking.v1.BookingService`, and the one mapping of
//! [`BookingError`] to `tonic::Status`.

use std::{pin::Pin, time::Duration};

use marquee_platform::{CancellationToken, auth, paging, status};
use marquee_proto::{booking::v1 as pb, common::v1::Money as PbMoney};
use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Code, Request, Response, Status};

use crate::{
    domain::{BookingError, BookingStatus, Money},
    service::{Bookings, CheckoutView},
    store::BookingView,
};

/// Maps a booking error to a status.
pub fn to_status(error: BookingError) -> Status {
    match error {
        BookingError::Invalid(v) => status::invalid_argument(&v),
        BookingError::NotFound { kind, id } => status::not_found(kind, &id),
        BookingError::Precondition { reason, message } => {
            status::failed_precondition(reason, message)
        }
        BookingError::IllegalTransition { from, event } => status::failed_precondition(
            "ILLEGAL_TRANSITION",
            format!("a booking in {} cannot take {event:?}", from.as_str()),
        ),
        BookingError::IdempotencyMismatch => {
            status::invalid_field("request_id", "was already used for a different request")
        }
        BookingError::Dependency { service, message } => {
            tracing::warn!(service, %message, "dependency failed");
            status::with_reason(
                Code::Unavailable,
                "DEPENDENCY_UNAVAILABLE",
                format!("{service} is unavailable; retry later"),
            )
        }
        BookingError::Storage(cause) => status::internal(cause.as_ref()),
    }
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

fn money(m: &Money) -> Option<PbMoney> {
    Some(PbMoney {
        currency_code: m.currency.clone(),
        amount_minor: m.amount_minor,
    })
}

fn status_pb(s: BookingStatus) -> pb::BookingStatus {
    match s {
        BookingStatus::PreBooking => pb::BookingStatus::PreBooking,
        BookingStatus::PaymentInitiated => pb::BookingStatus::PaymentInitiated,
        BookingStatus::PaymentCompleted => pb::BookingStatus::PaymentCompleted,
        BookingStatus::BookingCompleted => pb::BookingStatus::BookingCompleted,
        BookingStatus::Invoiced => pb::BookingStatus::Invoiced,
        BookingStatus::SettlementDone => pb::BookingStatus::SettlementDone,
        BookingStatus::Expired => pb::BookingStatus::Expired,
        BookingStatus::PaymentFailed => pb::BookingStatus::PaymentFailed,
        BookingStatus::Cancelled => pb::BookingStatus::Cancelled,
        BookingStatus::Refunded => pb::BookingStatus::Refunded,
    }
}

fn booking_pb(b: BookingView) -> pb::Booking {
    let BookingView {
        id,
        code,
        user_id: _,
        show_id,
        theatre_id,
        hold_id,
        fencing_token: _,
        hold_expires_at: _,
        total,
        status,
        payment,
        parked_reason,
        items,
        history,
        tickets,
        created_at,
        updated_at,
    } = b;
    pb::Booking {
        id,
        code,
        status: status_pb(status) as i32,
        show_id,
        theatre_id,
        hold_id,
        items: items
            .into_iter()
            .map(|i| pb::BookingItem {
                price: money(&i.price),
                seat_id: i.seat_id,
                category_code: i.category_code,
            })
            .collect(),
        total: money(&total),
        payment: payment.map(|p| pb::BookingPayment {
            order_id: p.order_id,
            provider_order_id: p.provider_order_id,
            deadline_time: ts(p.deadline),
        }),
        tickets: tickets
            .into_iter()
            .map(|t| pb::Ticket {
                id: t.id,
                seat_id: t.seat_id,
            })
            .collect(),
        history: history
            .into_iter()
            .map(|h| pb::StatusChange {
                from_status: h.from.map_or(pb::BookingStatus::Unspecified, status_pb) as i32,
                to_status: status_pb(h.to) as i32,
                cause: h.cause,
                change_time: ts(h.at),
            })
            .collect(),
        parked_reason: parked_reason.unwrap_or_default(),
        create_time: ts(created_at),
        update_time: ts(updated_at),
    }
}

fn checkout_pb(c: CheckoutView, total: Option<PbMoney>) -> pb::Checkout {
    pb::Checkout {
        key_id: c.key_id,
        provider_order_id: c.provider_order_id,
        amount: total,
        deadline_time: ts(c.deadline),
    }
}

/// `marquee.booking.v1.BookingService`.
#[derive(Clone)]
pub struct BookingApi {
    bookings: Bookings,
    drain: CancellationToken,
}

impl BookingApi {
    /// The API over `bookings`; streams end when `drain` is cancelled.
    pub fn new(bookings: Bookings, drain: CancellationToken) -> Self {
        Self { bookings, drain }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl pb::booking_service_server::BookingService for BookingApi {
    #[tracing::instrument(skip_all)]
    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::CreateBookingResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::CreateBookingRequest {
            request_id,
            hold_id,
        } = request.into_inner();
        let booking = self
            .bookings
            .create(&caller.subject, &request_id, &hold_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateBookingResponse {
            booking: Some(booking_pb(booking)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn start_payment(
        &self,
        request: Request<pb::StartPaymentRequest>,
    ) -> Result<Response<pb::StartPaymentResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::StartPaymentRequest {
            request_id,
            booking_id,
        } = request.into_inner();
        let (booking, checkout) = self
            .bookings
            .start_payment(&caller.subject, &request_id, &booking_id)
            .await
            .map_err(to_status)?;
        let total = money(&booking.total);
        Ok(Response::new(pb::StartPaymentResponse {
            booking: Some(booking_pb(booking)),
            checkout: Some(checkout_pb(checkout, total)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_booking(
        &self,
        request: Request<pb::GetBookingRequest>,
    ) -> Result<Response<pb::GetBookingResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::GetBookingRequest { booking_id } = request.into_inner();
        let booking = self
            .bookings
            .get(&caller.subject, &booking_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetBookingResponse {
            booking: Some(booking_pb(booking)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_my_bookings(
        &self,
        request: Request<pb::ListMyBookingsRequest>,
    ) -> Result<Response<pb::ListMyBookingsResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::ListMyBookingsRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let filters = ("my_bookings", &caller.subject);
        let size = paging::page_size(page_size).map_err(|v| status::invalid_argument(&v))?;
        let after = paging::decode_token(&page_token, &filters)
            .map_err(|v| status::invalid_argument(&v))?;
        let mut page = self
            .bookings
            .list(&caller.subject, after.as_deref(), size + 1)
            .await
            .map_err(to_status)?;
        let next_page_token = if page.len() as u64 > size {
            page.truncate(size as usize);
            page.last()
                .map(|b| paging::encode_token(&filters, &b.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMyBookingsResponse {
            bookings: page.into_iter().map(booking_pb).collect(),
            next_page_token,
        }))
    }

    type WatchBookingStream = BoxStream<pb::WatchBookingResponse>;

    #[tracing::instrument(skip_all)]
    async fn watch_booking(
        &self,
        request: Request<pb::WatchBookingRequest>,
    ) -> Result<Response<Self::WatchBookingStream>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::WatchBookingRequest { booking_id } = request.into_inner();
        let first = self
            .bookings
            .get(&caller.subject, &booking_id)
            .await
            .map_err(to_status)?;
        let (tx, rx) = mpsc::channel(8);
        let bookings = self.bookings.clone();
        let drain = self.drain.clone();
        let every = Duration::from_millis(bookings.config().watch_poll_ms);
        tokio::spawn(async move {
            let mut last = (
                first.status,
                first.history.len(),
                first.parked_reason.clone(),
            );
            let mut done = first.status.is_final();
            if tx
                .send(Ok(pb::WatchBookingResponse {
                    booking: Some(booking_pb(first)),
                }))
                .await
                .is_err()
            {
                return;
            }
            while !done {
                tokio::select! {
                    () = drain.cancelled() => return,
                    () = tx.closed() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let now = match bookings.get(&caller.subject, &booking_id).await {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Err(to_status(e))).await;
                        return;
                    }
                };
                let seen = (now.status, now.history.len(), now.parked_reason.clone());
                if seen == last {
                    continue;
                }
                last = seen;
                done = now.status.is_final();
                if tx
                    .send(Ok(pb::WatchBookingResponse {
                        booking: Some(booking_pb(now)),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
