//! The gRPC adapter: proto <-> domain, the two streams, and the one mapping of
//! [`SeatingError`] to `tonic::Status`.

use std::{pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use marquee_platform::{
    CancellationToken,
    auth::{self, Caller, Role},
    ratelimit::{Limiter, rate_limited},
    status,
    validation::Violations,
};
use marquee_proto::{common::v1::Money as PbMoney, seating::v1 as pb};
use prost_types::Timestamp;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    domain::{
        Allocation, Channel, Cursor, EventKind, Hold, SeatEvent, SeatState, SeatStates,
        SeatingError, ShowContext, Step, Viewer,
    },
    service::{HoldCommand, Seating, Selection},
};

/// Maps a seating error to a status. Internal causes are logged, never sent.
pub fn to_status(error: SeatingError) -> Status {
    match error {
        SeatingError::Invalid(v) => status::invalid_argument(&v),
        SeatingError::NotFound { kind, id } => status::not_found(kind, &id),
        SeatingError::Precondition {
            reason,
            message,
            seats,
        } => {
            let mut meta = std::collections::HashMap::new();
            if !seats.is_empty() {
                meta.insert("seat_ids".to_owned(), seats.join(","));
            }
            let details = ErrorDetails::with_error_info(reason, status::ERROR_DOMAIN, meta);
            Status::with_error_details(Code::FailedPrecondition, message, details)
        }
        SeatingError::PermissionDenied(m) => Status::permission_denied(m),
        SeatingError::Exhausted { reason, message } => {
            status::with_reason(Code::ResourceExhausted, reason, message)
        }
        SeatingError::IdempotencyMismatch => {
            status::invalid_field("request_id", "was already used for a different request")
        }
        SeatingError::Unavailable(cause) => status::unavailable(cause.as_ref()),
        SeatingError::Storage(cause) => status::internal(cause.as_ref()),
    }
}

/// The channel a caller buys through.
pub fn channel_of(caller: &Caller) -> Channel {
    if caller.has_role(Role::Partner) {
        Channel::Partner(caller.subject.clone())
    } else if caller.has_role(Role::Staff) {
        Channel::BoxOffice
    } else {
        Channel::Platform
    }
}

fn viewer<T>(request: &Request<T>) -> Viewer {
    match auth::caller(request) {
        Ok(c) => Viewer {
            user: Some(c.subject.clone()),
            channel: channel_of(c),
        },
        Err(_) => Viewer {
            user: None,
            channel: Channel::Platform,
        },
    }
}

fn ts_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// The proto form of a hold.
pub fn hold_pb(ctx: &ShowContext, h: &Hold) -> pb::Hold {
    pb::Hold {
        hold_id: h.id.clone(),
        show_id: h.show_id.clone(),
        seat_ids: ctx.layout.seat_ids(&h.seats),
        fencing_token: h.token,
        expire_time: Some(ts_ms(h.expires_ms)),
        create_time: Some(ts_ms(h.created_ms)),
        max_expire_time: Some(ts_ms(h.max_expires_ms)),
    }
}

fn state_pb(s: SeatState) -> pb::SeatState {
    match s {
        SeatState::Available => pb::SeatState::Available,
        SeatState::Held => pb::SeatState::Held,
        SeatState::HeldByYou => pb::SeatState::HeldByYou,
        SeatState::Sold => pb::SeatState::Sold,
        SeatState::NotForSale => pb::SeatState::NotForSale,
    }
}

fn seat_pb(ctx: &ShowContext, i: u32, state: SeatState) -> pb::SeatStatus {
    let def = ctx.layout.seats.get(i as usize);
    let category = def.map(|d| d.category.clone()).unwrap_or_default();
    pb::SeatStatus {
        seat_id: ctx.layout.seat_id(i).to_owned(),
        state: state_pb(state) as i32,
        price: ctx.show.prices.get(&category).map(|m| PbMoney {
            currency_code: m.currency.clone(),
            amount_minor: m.amount_minor,
        }),
        category_code: category,
    }
}

/// The seat map of a show for a viewer.
pub fn seat_map_pb(
    ctx: &ShowContext,
    allocation: &Allocation,
    states: &SeatStates,
    viewer: &Viewer,
) -> pb::SeatMap {
    pb::SeatMap {
        show_id: ctx.show.id.clone(),
        seats: (0..ctx.layout.seats.len() as u32)
            .map(|i| seat_pb(ctx, i, states.state(i, &viewer.channel, allocation)))
            .collect(),
        version: states.version,
    }
}

/// One event as a viewer sees it.
fn change_pb(
    ctx: &ShowContext,
    allocation: &Allocation,
    viewer: &Viewer,
    ev: &SeatEvent,
) -> Option<pb::SeatChange> {
    let mine = viewer.user.as_deref() == Some(ev.user.as_str());
    let (cause, state) = match ev.kind {
        EventKind::Held => (
            pb::SeatChangeCause::Held,
            Some(if mine {
                SeatState::HeldByYou
            } else {
                SeatState::Held
            }),
        ),
        EventKind::Released | EventKind::Replaced => (pb::SeatChangeCause::Released, None),
        EventKind::Expired => (pb::SeatChangeCause::Expired, None),
        EventKind::Sold => (pb::SeatChangeCause::Sold, Some(SeatState::Sold)),
        EventKind::Unsold => (pb::SeatChangeCause::SaleCancelled, None),
        EventKind::Extended => return None,
    };
    let seats = ev
        .seats
        .iter()
        .map(|i| {
            let s = state.unwrap_or_else(|| {
                if allocation.get(i).unwrap_or(&Channel::Platform) == &viewer.channel {
                    SeatState::Available
                } else {
                    SeatState::NotForSale
                }
            });
            seat_pb(ctx, *i, s)
        })
        .collect();
    Some(pb::SeatChange {
        cause: cause as i32,
        seats,
        version: ev.version,
    })
}

/// `marquee.seating.v1.SeatingService`.
#[derive(Clone)]
pub struct SeatingApi {
    seating: Seating,
    drain: CancellationToken,
    /// Holds and extensions per user ([`crate::SeatingConfig::holds_per_user`]).
    holds: Arc<Limiter<String>>,
}

impl SeatingApi {
    /// The API over `seating`; streams end when `drain` is cancelled (as does the task that
    /// forgets idle users' buckets, so that their memory stays bounded).
    pub fn new(seating: Seating, drain: CancellationToken) -> Self {
        let holds = Arc::new(Limiter::new(seating.config().holds_per_user));
        let idle = holds.clone();
        let stop = drain.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => idle.forget_idle(),
                }
            }
        });
        Self {
            seating,
            drain,
            holds,
        }
    }

    /// Spends one of the caller's holds-and-extensions: callers on the platform's channel only
    /// (not `service` callers acting for a holder, nor box office staff and partners, who sell
    /// their own allotment to many customers; as the cap on active holds).
    fn spend_hold(&self, caller: &auth::Caller) -> Result<(), Status> {
        if caller.has_role(Role::Service) || channel_of(caller) != Channel::Platform {
            return Ok(());
        }
        self.holds.check(&caller.subject).map_err(rate_limited)
    }

    /// Whose hold a call acts on: the caller's own, or, for a service caller, the holder's.
    async fn holder(&self, caller: &auth::Caller, hold_id: &str) -> Result<String, Status> {
        if caller.has_role(Role::Service) {
            let (_, hold) = self.seating.any_hold(hold_id).await.map_err(to_status)?;
            Ok(hold.user)
        } else {
            Ok(caller.subject.clone())
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn ms_of(d: &prost_types::Duration) -> Result<u64, SeatingError> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Violations::one("extension", "must be positive").into());
    }
    Ok(d.seconds as u64 * 1000 + d.nanos as u64 / 1_000_000)
}

#[tonic::async_trait]
impl pb::seating_service_server::SeatingService for SeatingApi {
    #[tracing::instrument(skip_all)]
    async fn get_seat_map(
        &self,
        request: Request<pb::GetSeatMapRequest>,
    ) -> Result<Response<pb::GetSeatMapResponse>, Status> {
        let viewer = viewer(&request);
        let pb::GetSeatMapRequest { show_id } = request.into_inner();
        let (ctx, allocation, states) = self
            .seating
            .seat_map(&show_id, &viewer)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetSeatMapResponse {
            seat_map: Some(seat_map_pb(&ctx, &allocation, &states, &viewer)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn hold_seats(
        &self,
        request: Request<pb::HoldSeatsRequest>,
    ) -> Result<Response<pb::HoldSeatsResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        self.spend_hold(&caller)?;
        let pb::HoldSeatsRequest {
            request_id,
            show_id,
            selection,
        } = request.into_inner();
        let selection = match selection {
            Some(pb::hold_seats_request::Selection::Seats(pb::SeatSelection { seat_ids })) => {
                Selection::Seats(seat_ids)
            }
            Some(pb::hold_seats_request::Selection::BestAvailable(pb::BestAvailable {
                count,
                category_code,
            })) => Selection::BestAvailable {
                count,
                category: category_code,
            },
            None => {
                return Err(status::invalid_field(
                    "selection",
                    "seats or best_available is required",
                ));
            }
        };
        let (ctx, hold) = self
            .seating
            .hold(
                &caller.subject,
                &channel_of(&caller),
                HoldCommand {
                    request_id,
                    show_id,
                    selection,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::HoldSeatsResponse {
            hold: Some(hold_pb(&ctx, &hold)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn extend_hold(
        &self,
        request: Request<pb::ExtendHoldRequest>,
    ) -> Result<Response<pb::ExtendHoldResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        self.spend_hold(&caller)?;
        let pb::ExtendHoldRequest { hold_id, extension } = request.into_inner();
        let holder = self.holder(&caller, &hold_id).await?;
        let ext = extension
            .as_ref()
            .map(ms_of)
            .transpose()
            .map_err(to_status)?;
        let (ctx, hold) = self
            .seating
            .extend(&holder, &hold_id, ext)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ExtendHoldResponse {
            hold: Some(hold_pb(&ctx, &hold)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::ReleaseHoldRequest { hold_id } = request.into_inner();
        let holder = self.holder(&caller, &hold_id).await?;
        let (ctx, hold) = self
            .seating
            .release(&holder, &hold_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ReleaseHoldResponse {
            hold: Some(hold_pb(&ctx, &hold)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_hold(
        &self,
        request: Request<pb::GetHoldRequest>,
    ) -> Result<Response<pb::GetHoldResponse>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::GetHoldRequest { hold_id } = request.into_inner();
        let (ctx, hold) = if caller.has_role(Role::Service) {
            self.seating.any_hold(&hold_id).await
        } else {
            self.seating.own_hold(&caller.subject, &hold_id).await
        }
        .map_err(to_status)?;
        Ok(Response::new(pb::GetHoldResponse {
            hold: Some(hold_pb(&ctx, &hold)),
            holder_id: hold.user.clone(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn cancel_sale(
        &self,
        request: Request<pb::CancelSaleRequest>,
    ) -> Result<Response<pb::CancelSaleResponse>, Status> {
        auth::require_role(&request, Role::Service)?;
        let pb::CancelSaleRequest {
            show_id,
            booking_reference,
        } = request.into_inner();
        let seat_ids = self
            .seating
            .cancel_sale(&show_id, &booking_reference)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CancelSaleResponse { seat_ids }))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_hold(
        &self,
        request: Request<pb::ConfirmHoldRequest>,
    ) -> Result<Response<pb::ConfirmHoldResponse>, Status> {
        auth::require_role(&request, Role::Service)?;
        let pb::ConfirmHoldRequest {
            hold_id,
            fencing_token,
            booking_reference,
        } = request.into_inner();
        let c = self
            .seating
            .confirm(&hold_id, fencing_token, &booking_reference)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ConfirmHoldResponse {
            show_id: c.show_id,
            seat_ids: c.seat_ids,
            sold_time: Some(ts_ms(c.sold_at.timestamp_millis())),
        }))
    }

    type WatchSeatsStream = BoxStream<pb::WatchSeatsResponse>;

    #[tracing::instrument(skip_all)]
    async fn watch_seats(
        &self,
        request: Request<pb::WatchSeatsRequest>,
    ) -> Result<Response<Self::WatchSeatsStream>, Status> {
        let viewer = viewer(&request);
        let pb::WatchSeatsRequest { show_id } = request.into_inner();
        let ctx = self.seating.show(&show_id).await.map_err(to_status)?;
        // Subscribe before the snapshot so that no change falls between them; the cursor then
        // skips the events the snapshot already has.
        let mut reconnections = self.seating.store().reconnections();
        // The store's reconnections this watcher has seen.
        let mut seen = *reconnections.borrow_and_update();
        let mut events = self.seating.subscribe(&show_id).await.map_err(to_status)?;
        let allocation = self.seating.allocation(&ctx).await.map_err(to_status)?;
        let states = self
            .seating
            .watch_states(&ctx, viewer.user.as_deref(), seen)
            .await
            .map_err(to_status)?;
        let mut cursor = Cursor::at(states.version);
        let snapshot = seat_map_pb(&ctx, &allocation, &states, &viewer);
        let (tx, rx) = mpsc::channel(64);
        let drain = self.drain.clone();
        let seating = self.seating.clone();
        tokio::spawn(async move {
            let snap = |m| pb::WatchSeatsResponse {
                event: Some(pb::watch_seats_response::Event::Snapshot(m)),
            };
            if tx.send(Ok(snap(snapshot))).await.is_err() {
                return;
            }
            let mut reconnects_open = true;
            loop {
                // An event to send, or None when events were missed.
                let next = tokio::select! {
                    () = drain.cancelled() => return,
                    () = tx.closed() => return,
                    r = reconnections.changed(), if reconnects_open => {
                        reconnects_open = r.is_ok();
                        seen = *reconnections.borrow_and_update();
                        None
                    }
                    ev = events.recv() => match ev {
                        Ok(ev) => match cursor.step(ev.version) {
                            Step::Skip => continue,
                            Step::Apply => Some(ev),
                            Step::Resync => None,
                        },
                        Err(RecvError::Lagged(_)) => None,
                        Err(RecvError::Closed) => return,
                    },
                };
                let msg = match next {
                    Some(ev) => match change_pb(&ctx, &allocation, &viewer, &ev) {
                        Some(c) => pb::WatchSeatsResponse {
                            event: Some(pb::watch_seats_response::Event::Change(c)),
                        },
                        None => continue,
                    },
                    None => match seating
                        .watch_states(&ctx, viewer.user.as_deref(), seen)
                        .await
                    {
                        // Nothing was missed (a reconnection while the show was quiet).
                        Ok(s) if s.version == cursor.version() => continue,
                        Ok(s) => {
                            cursor = Cursor::at(s.version);
                            snap(seat_map_pb(&ctx, &allocation, &s, &viewer))
                        }
                        Err(e) => {
                            let _ = tx.send(Err(to_status(e))).await;
                            return;
                        }
                    },
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchHoldStream = BoxStream<pb::WatchHoldResponse>;

    #[tracing::instrument(skip_all)]
    async fn watch_hold(
        &self,
        request: Request<pb::WatchHoldRequest>,
    ) -> Result<Response<Self::WatchHoldStream>, Status> {
        let caller = auth::caller(&request)?.clone();
        let pb::WatchHoldRequest { hold_id } = request.into_inner();
        let show_id = crate::domain::show_of_hold(&hold_id)
            .ok_or_else(|| status::not_found("hold", &hold_id))?
            .to_owned();
        let mut events = self.seating.subscribe(&show_id).await.map_err(to_status)?;
        let mut reconnections = self.seating.store().reconnections();
        let mut seen = *reconnections.borrow_and_update();
        let (ctx, hold) = self
            .seating
            .own_hold(&caller.subject, &hold_id)
            .await
            .map_err(to_status)?;
        // Checks of the hold use reads of its show begun after the last check (at first, after
        // the hold was read here).
        let mut checked = crate::store::tick();
        let (tx, rx) = mpsc::channel(16);
        let drain = self.drain.clone();
        let seating = self.seating.clone();
        let warn_ms = seating.config().expiring_soon_ms as i64;
        let check_every = Duration::from_millis(seating.config().hold_check_interval_ms);
        tokio::spawn(async move {
            let mut hold = hold;
            let msg = |kind: pb::HoldEventKind, h: &Hold| pb::WatchHoldResponse {
                kind: kind as i32,
                hold: Some(hold_pb(&ctx, h)),
            };
            if tx
                .send(Ok(msg(pb::HoldEventKind::Active, &hold)))
                .await
                .is_err()
            {
                return;
            }
            let mut warned = false;
            let mut check = tokio::time::interval(check_every);
            check.reset();
            loop {
                let until_warning =
                    hold.expires_ms - warn_ms - chrono::Utc::now().timestamp_millis();
                let warning =
                    tokio::time::sleep(Duration::from_millis(until_warning.max(0) as u64));
                let suspect: bool;
                tokio::select! {
                    () = drain.cancelled() => return,
                    () = tx.closed() => return,
                    () = warning, if !warned => {
                        warned = true;
                        if tx.send(Ok(msg(pb::HoldEventKind::ExpiringSoon, &hold))).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    _ = check.tick() => suspect = true,
                    r = reconnections.changed() => {
                        if r.is_err() { continue; }
                        seen = *reconnections.borrow_and_update();
                        suspect = true;
                    }
                    ev = events.recv() => match ev {
                        Ok(ev) => {
                            if ev.hold_id != hold.id {
                                continue;
                            }
                            let kind = match ev.kind {
                                // A deadline only moves later: an extension at or before the
                                // one the stream has was published before its hold was read.
                                EventKind::Extended if ev.expires_ms <= hold.expires_ms => continue,
                                EventKind::Extended => {
                                    hold.expires_ms = ev.expires_ms;
                                    warned = false;
                                    pb::HoldEventKind::Extended
                                }
                                EventKind::Expired => pb::HoldEventKind::Expired,
                                EventKind::Released | EventKind::Replaced => pb::HoldEventKind::Released,
                                EventKind::Sold => pb::HoldEventKind::Confirmed,
                                EventKind::Held | EventKind::Unsold => continue,
                            };
                            let last = kind != pb::HoldEventKind::Extended;
                            if tx.send(Ok(msg(kind, &hold))).await.is_err() || last {
                                return;
                            }
                            continue;
                        }
                        Err(RecvError::Lagged(_)) => suspect = true,
                        Err(RecvError::Closed) => return,
                    }
                }
                if suspect {
                    let mark = std::mem::replace(&mut checked, crate::store::tick());
                    match seating.current_deadline(&hold, seen, mark).await {
                        // An extension whose event was missed: tell the holder now.
                        Ok(Some(deadline)) if deadline > hold.expires_ms => {
                            hold.expires_ms = deadline;
                            warned = false;
                            if tx
                                .send(Ok(msg(pb::HoldEventKind::Extended, &hold)))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            // Gone. Its event may still be on the way: give it a moment.
                            let grace = tokio::time::sleep(Duration::from_millis(500));
                            tokio::pin!(grace);
                            let kind = loop {
                                tokio::select! {
                                    () = &mut grace => break pb::HoldEventKind::Lost,
                                    ev = events.recv() => match ev {
                                        Ok(ev) if ev.hold_id == hold.id => match ev.kind {
                                            EventKind::Expired => break pb::HoldEventKind::Expired,
                                            EventKind::Released | EventKind::Replaced => break pb::HoldEventKind::Released,
                                            EventKind::Sold => break pb::HoldEventKind::Confirmed,
                                            _ => {}
                                        },
                                        Ok(_) => {}
                                        Err(RecvError::Lagged(_)) => {}
                                        Err(RecvError::Closed) => break pb::HoldEventKind::Lost,
                                    }
                                }
                            };
                            let _ = tx.send(Ok(msg(kind, &hold))).await;
                            return;
                        }
                        Err(error) => {
                            tracing::debug!(%error, "hold check failed; retrying");
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// `marquee.seating.v1.SeatingAdminService`.
#[derive(Clone)]
pub struct SeatingAdminApi {
    seating: Seating,
}

impl SeatingAdminApi {
    /// The admin API over `seating`.
    pub fn new(seating: Seating) -> Self {
        Self { seating }
    }
}

fn channel_pb(c: &Channel) -> (pb::SalesChannel, String) {
    match c {
        Channel::Platform => (pb::SalesChannel::Platform, String::new()),
        Channel::BoxOffice => (pb::SalesChannel::BoxOffice, String::new()),
        Channel::Partner(p) => (pb::SalesChannel::Partner, p.clone()),
    }
}

fn allocation_pb(rows: Vec<(String, Channel)>) -> Vec<pb::ChannelSeats> {
    let mut by: std::collections::BTreeMap<Channel, Vec<String>> = Default::default();
    for (seat, ch) in rows {
        by.entry(ch).or_default().push(seat);
    }
    by.into_iter()
        .map(|(c, mut seat_ids)| {
            seat_ids.sort();
            let (channel, partner_id) = channel_pb(&c);
            pb::ChannelSeats {
                channel: channel as i32,
                partner_id,
                seat_ids,
            }
        })
        .collect()
}

#[tonic::async_trait]
impl pb::seating_admin_service_server::SeatingAdminService for SeatingAdminApi {
    #[tracing::instrument(skip_all)]
    async fn set_allocation(
        &self,
        request: Request<pb::SetAllocationRequest>,
    ) -> Result<Response<pb::SetAllocationResponse>, Status> {
        auth::require_role(&request, Role::Admin)?;
        let pb::SetAllocationRequest {
            request_id,
            show_id,
            allocations,
        } = request.into_inner();
        let mut seats = Vec::new();
        let mut v = Violations::new();
        for (
            i,
            pb::ChannelSeats {
                channel,
                partner_id,
                seat_ids,
            },
        ) in allocations.into_iter().enumerate()
        {
            let ch = match pb::SalesChannel::try_from(channel) {
                Ok(pb::SalesChannel::Platform) => Some(Channel::Platform),
                Ok(pb::SalesChannel::BoxOffice) => Some(Channel::BoxOffice),
                Ok(pb::SalesChannel::Partner) if !partner_id.is_empty() => {
                    Some(Channel::Partner(partner_id))
                }
                Ok(pb::SalesChannel::Partner) => {
                    v.add(
                        format!("allocations[{i}].partner_id"),
                        "required for a partner",
                    );
                    None
                }
                _ => {
                    v.add(format!("allocations[{i}].channel"), "required");
                    None
                }
            };
            if let Some(ch) = ch {
                seats.extend(seat_ids.into_iter().map(|s| (s, ch.clone())));
            }
        }
        if !v.is_empty() {
            return Err(status::invalid_argument(&v));
        }
        self.seating
            .set_allocation(&request_id, &show_id, seats)
            .await
            .map_err(to_status)?;
        let (_, rows) = self
            .seating
            .get_allocation(&show_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SetAllocationResponse {
            show_id,
            allocations: allocation_pb(rows),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_allocation(
        &self,
        request: Request<pb::GetAllocationRequest>,
    ) -> Result<Response<pb::GetAllocationResponse>, Status> {
        auth::require_role(&request, Role::Admin)?;
        let pb::GetAllocationRequest { show_id } = request.into_inner();
        let (_, rows) = self
            .seating
            .get_allocation(&show_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetAllocationResponse {
            show_id,
            allocations: allocation_pb(rows),
        }))
    }
}

#[allow(dead_code)]
fn _assert_send(s: Arc<Seating>) -> impl Send {
    s
}
