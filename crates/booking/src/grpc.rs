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
    invoice,
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
        BookingError::Forbidden { reason, message } => {
            status::with_reason(Code::PermissionDenied, reason, message)
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
        show,
        tax_bps: _,
        admitted_at,
        refund_minor,
    } = b;
    let currency = total.currency.clone();
    let minor = |amount_minor: i64| {
        Some(PbMoney {
            currency_code: currency.clone(),
            amount_minor,
        })
    };
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
                convenience_fee: minor(i.fee_minor),
                tax: minor(i.tax_minor),
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
        movie_title: show.movie_title,
        theatre_name: show.theatre_name,
        screen_name: show.screen_name,
        show_start_time: show.starts_at.and_then(ts),
        admit_time: admitted_at.and_then(ts),
        refund: refund_minor.and_then(minor),
    }
}

fn invoice_pb(b: &BookingView, i: &crate::store::InvoiceView) -> pb::Invoice {
    let cur = b.total.currency.as_str();
    let m = |amount_minor: i64| {
        Some(PbMoney {
            currency_code: cur.to_owned(),
            amount_minor,
        })
    };
    let (subtotal, fees, tax, total) = invoice::totals(b);
    pb::Invoice {
        number: i.number.clone(),
        booking_id: b.id.clone(),
        booking_code: b.code.clone(),
        issue_time: ts(i.issued_at),
        theatre_id: b.theatre_id.clone(),
        theatre_name: b.show.theatre_name.clone(),
        movie_title: b.show.movie_title.clone(),
        screen_name: b.show.screen_name.clone(),
        show_start_time: b.show.starts_at.and_then(ts),
        lines: b
            .items
            .iter()
            .map(|l| pb::InvoiceLine {
                seat_id: l.seat_id.clone(),
                category_code: l.category_code.clone(),
                price: money(&l.price),
                convenience_fee: m(l.fee_minor),
                tax: m(l.tax_minor),
                total: m(l.total_minor()),
            })
            .collect(),
        subtotal: m(subtotal),
        convenience_fees: m(fees),
        tax: m(tax),
        total: m(total),
        tax_basis_points: b.tax_bps,
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
        // Subscribed before the first read, so that no change falls between the two.
        let mut changes = self.bookings.store().subscribe(&booking_id);
        let first = self
            .bookings
            .get(&caller.subject, &booking_id)
            .await
            .map_err(to_status)?;
        let (tx, rx) = mpsc::channel(8);
        let bookings = self.bookings.clone();
        let drain = self.drain.clone();
        let every = Duration::from_millis(bookings.config().watch_poll_ms);
        // Changes this instance commits arrive at once, other instances' through the bus (when
        // it is shared); the timer is the safety net for a bus that fails.
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
                // Look again at this instance's next change of the booking, or after `every`.
                tokio::select! {
                    () = drain.cancelled() => return,
                    () = tx.closed() => return,
                    () = tokio::time::sleep(every) => {}
                    () = changes.changed() => {}
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

    #[tracing::instrument(skip_all)]
    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::CancelBookingResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::CancelBookingRequest {
            request_id,
            booking_id,
        } = request.into_inner();
        let (booking, refund) = self
            .bookings
            .cancel(&caller.subject, &request_id, &booking_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CancelBookingResponse {
            booking: Some(booking_pb(booking)),
            refund: money(&refund),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::GetInvoiceRequest { booking_id } = request.into_inner();
        let (booking, inv) = self
            .bookings
            .invoice(&caller.subject, &booking_id)
            .await
            .map_err(to_status)?;
        let tz = self.bookings.invoice_time_zone(&booking).await;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice_pb(&booking, &inv)),
            html: invoice::render_html(&booking, &inv, tz),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::GetTicketRequest { booking_id } = request.into_inner();
        let t = self
            .bookings
            .ticket(&caller.subject, &booking_id)
            .await
            .map_err(to_status)?;
        let b = t.booking;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(pb::BookingTicket {
                booking_code: b.code,
                booking_id: b.id,
                movie_title: b.show.movie_title,
                theatre_name: b.show.theatre_name,
                screen_name: b.show.screen_name,
                show_start_time: b.show.starts_at.and_then(ts),
                seat_ids: b.tickets.into_iter().map(|t| t.seat_id).collect(),
                token: t.token,
                qr_svg: t.qr_svg,
                admit_time: b.admitted_at.and_then(ts),
            }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn admit_ticket(
        &self,
        request: Request<pb::AdmitTicketRequest>,
    ) -> Result<Response<pb::AdmitTicketResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::AdmitTicketRequest { request_id, ticket } = request.into_inner();
        let (code, token) = match &ticket {
            Some(pb::admit_ticket_request::Ticket::BookingCode(c)) => (Some(c.as_str()), None),
            Some(pb::admit_ticket_request::Ticket::TicketToken(t)) => (None, Some(t.as_str())),
            None => (None, None),
        };
        let a = self
            .bookings
            .admit(&caller, &request_id, code, token)
            .await
            .map_err(to_status)?;
        let at = chrono::DateTime::from_timestamp_millis(a.admission.at_ms).and_then(ts);
        Ok(Response::new(pb::AdmitTicketResponse {
            admission: if a.admission.admitted_now {
                pb::Admission::Admitted
            } else {
                pb::Admission::AlreadyAdmitted
            } as i32,
            admit_time: at,
            booking_code: a.booking.code,
            seat_ids: a.booking.tickets.into_iter().map(|t| t.seat_id).collect(),
            show_id: a.booking.show_id,
            show_start_time: a.booking.show.starts_at.and_then(ts),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_ticket_keys(
        &self,
        _request: Request<pb::GetTicketKeysRequest>,
    ) -> Result<Response<pb::GetTicketKeysResponse>, Status> {
        let jwks_json = self.bookings.ticket_keys_jwks().await.map_err(to_status)?;
        Ok(Response::new(pb::GetTicketKeysResponse { jwks_json }))
    }
}

/// `marquee.booking.v1.BookingOperationsService` (role `service`).
#[derive(Clone)]
pub struct BookingOperationsApi {
    bookings: Bookings,
}

impl BookingOperationsApi {
    /// The API over `bookings`.
    pub fn new(bookings: Bookings) -> Self {
        Self { bookings }
    }
}

#[tonic::async_trait]
impl pb::booking_operations_service_server::BookingOperationsService for BookingOperationsApi {
    #[tracing::instrument(skip_all)]
    async fn record_settlement(
        &self,
        request: Request<pb::RecordSettlementRequest>,
    ) -> Result<Response<pb::RecordSettlementResponse>, Status> {
        auth::require_role(&request, auth::Role::Service)?;
        let pb::RecordSettlementRequest {
            request_id,
            booking_id,
            settlement_reference,
        } = request.into_inner();
        let booking = self
            .bookings
            .settle(&request_id, &booking_id, &settlement_reference)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RecordSettlementResponse {
            booking: Some(booking_pb(booking)),
        }))
    }
}
