//! The booking lifecycle: statuses, the events that move a booking, and the one pure function
//! that decides every transition.

use serde::{Deserialize, Serialize};

use super::BookingError;

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BookingStatus {
    /// Created from a hold; not paid for yet.
    PreBooking,
    /// A payment order exists; the customer is paying.
    PaymentInitiated,
    /// The payment is captured.
    PaymentCompleted,
    /// Seats sold, tickets issued.
    BookingCompleted,
    /// Invoice issued.
    Invoiced,
    /// The theatre has been paid.
    SettlementDone,
    /// The hold or the payment window ran out before capture.
    Expired,
    /// The payment window ended with declined payments only.
    PaymentFailed,
    /// Cancelled.
    Cancelled,
    /// The captured payment was refunded.
    Refunded,
}

/// Every status, in lifecycle order.
pub const ALL_STATUSES: [BookingStatus; 10] = [
    BookingStatus::PreBooking,
    BookingStatus::PaymentInitiated,
    BookingStatus::PaymentCompleted,
    BookingStatus::BookingCompleted,
    BookingStatus::Invoiced,
    BookingStatus::SettlementDone,
    BookingStatus::Expired,
    BookingStatus::PaymentFailed,
    BookingStatus::Cancelled,
    BookingStatus::Refunded,
];

impl BookingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreBooking => "PRE_BOOKING",
            Self::PaymentInitiated => "PAYMENT_INITIATED",
            Self::PaymentCompleted => "PAYMENT_COMPLETED",
            Self::BookingCompleted => "BOOKING_COMPLETED",
            Self::Invoiced => "INVOICED",
            Self::SettlementDone => "SETTLEMENT_DONE",
            Self::Expired => "EXPIRED",
            Self::PaymentFailed => "PAYMENT_FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// The status with a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        ALL_STATUSES.into_iter().find(|s| s.as_str() == name)
    }

    /// True when no event moves the booking any more.
    pub fn is_final(self) -> bool {
        ALL_EVENTS.iter().all(|e| transition(self, *e).is_err())
    }
}

/// What happens to a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BookingEvent {
    /// A payment order was created and the hold extended.
    PaymentStarted,
    /// The authorised payment was captured.
    PaymentCaptured,
    /// The hold was confirmed at seating and the tickets stored.
    SeatsConfirmed,
    /// The invoice was issued.
    Invoiced,
    /// The theatre was paid (settlement; an internal step).
    Settled,
    /// The hold or the payment window ran out before capture.
    Expired,
    /// The payment window ended with declined payments only.
    PaymentFailed,
    /// The customer (or an operator) cancelled.
    Cancelled,
    /// The captured payment was refunded.
    Refunded,
}

/// Every event.
pub const ALL_EVENTS: [BookingEvent; 9] = [
    BookingEvent::PaymentStarted,
    BookingEvent::PaymentCaptured,
    BookingEvent::SeatsConfirmed,
    BookingEvent::Invoiced,
    BookingEvent::Settled,
    BookingEvent::Expired,
    BookingEvent::PaymentFailed,
    BookingEvent::Cancelled,
    BookingEvent::Refunded,
];

/// The status a booking in `from` moves to on `event`; an illegal transition is refused.
pub fn transition(from: BookingStatus, event: BookingEvent) -> Result<BookingStatus, BookingError> {
    use BookingEvent as E;
    use BookingStatus as S;
    let to = match (from, event) {
        (S::PreBooking, E::PaymentStarted) => S::PaymentInitiated,
        (S::PreBooking | S::PaymentInitiated, E::Expired) => S::Expired,
        (S::PreBooking | S::PaymentInitiated, E::Cancelled) => S::Cancelled,
        (S::PaymentInitiated, E::PaymentCaptured) => S::PaymentCompleted,
        (S::PaymentInitiated, E::PaymentFailed) => S::PaymentFailed,
        (S::PaymentCompleted, E::SeatsConfirmed) => S::BookingCompleted,
        // The hold was lost after capture: the money goes back automatically.
        (S::PaymentCompleted, E::Refunded) => S::Refunded,
        (S::BookingCompleted, E::Invoiced) => S::Invoiced,
        (S::BookingCompleted | S::Invoiced, E::Cancelled) => S::Cancelled,
        (S::Cancelled, E::Refunded) => S::Refunded,
        (S::Invoiced, E::Settled) => S::SettlementDone,
        _ => return Err(BookingError::IllegalTransition { from, event }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use BookingEvent as E;
    use BookingStatus as S;

    #[test]
    fn the_happy_path() {
        let mut s = S::PreBooking;
        for (e, want) in [
            (E::PaymentStarted, S::PaymentInitiated),
            (E::PaymentCaptured, S::PaymentCompleted),
            (E::SeatsConfirmed, S::BookingCompleted),
            (E::Invoiced, S::Invoiced),
            (E::Settled, S::SettlementDone),
        ] {
            s = transition(s, e).expect("legal");
            assert_eq!(s, want);
        }
        assert!(s.is_final());
    }

    #[test]
    fn side_exits() {
        assert_eq!(transition(S::PreBooking, E::Expired).ok(), Some(S::Expired));
        assert_eq!(
            transition(S::PaymentInitiated, E::PaymentFailed).ok(),
            Some(S::PaymentFailed)
        );
        assert_eq!(
            transition(S::PaymentCompleted, E::Refunded).ok(),
            Some(S::Refunded)
        );
        assert_eq!(
            transition(S::Invoiced, E::Cancelled).ok(),
            Some(S::Cancelled)
        );
        assert_eq!(
            transition(S::Cancelled, E::Refunded).ok(),
            Some(S::Refunded)
        );
    }

    #[test]
    fn illegal_transitions_are_refused() {
        for (from, e) in [
            (S::PreBooking, E::PaymentCaptured),
            (S::PreBooking, E::Invoiced),
            (S::PaymentInitiated, E::SeatsConfirmed),
            (S::PaymentCompleted, E::Expired),
            (S::Expired, E::PaymentCaptured),
            (S::Invoiced, E::PaymentStarted),
            (S::BookingCompleted, E::Settled),
            (S::SettlementDone, E::Cancelled),
        ] {
            assert!(
                matches!(
                    transition(from, e),
                    Err(BookingError::IllegalTransition { .. })
                ),
                "{from:?} + {e:?}"
            );
        }
    }

    #[test]
    fn final_statuses_accept_nothing() {
        for s in ALL_STATUSES {
            let finals = [S::SettlementDone, S::Expired, S::PaymentFailed, S::Refunded];
            assert_eq!(s.is_final(), finals.contains(&s), "{s:?}");
            if s.is_final() {
                assert!(ALL_EVENTS.iter().all(|e| transition(s, *e).is_err()));
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("nope"), None);
    }
}
