//! The money and door rules of a booking, kept pure: what a seat costs on top of its price
//! (convenience fee and its tax), what cancelling gives back, and when a ticket may be admitted.

use super::{BookingError, BookingStatus};
use crate::config::FeePolicy;

/// `amount * bps / 10_000`, rounded half up to the minor unit (`amount` not negative).
pub fn basis_points(amount: i64, bps: u32) -> i64 {
    let exact = i128::from(amount.max(0)) * i128::from(bps);
    i64::try_from((exact + 5_000) / 10_000).unwrap_or(i64::MAX)
}

/// What a seat priced `price` costs on top: `(convenience fee, tax on it)`.
pub fn seat_charges(price: i64, policy: &FeePolicy) -> (i64, i64) {
    let fee = policy
        .convenience_fee_minor
        .max(0)
        .saturating_add(basis_points(price, policy.convenience_fee_bps));
    (fee, basis_points(fee, policy.tax_bps))
}

/// What cancelling a booking does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// Nothing was captured: release the hold and close the payment order (a payment that
    /// still arrives is voided).
    BeforeCapture,
    /// The seats are sold and paid: put them back on sale and refund everything.
    FullRefund,
}

/// Decides a cancellation from the booking's status, whether it was admitted, and how far the
/// show is (`now_ms`, `show_start_ms`) against the cut-off. Refusals say why.
pub fn cancellation(
    status: BookingStatus,
    admitted: bool,
    now_ms: i64,
    show_start_ms: i64,
    cutoff_ms: i64,
) -> Result<Cancellation, BookingError> {
    use BookingStatus as S;
    match status {
        S::PreBooking | S::PaymentInitiated => Ok(Cancellation::BeforeCapture),
        S::BookingCompleted | S::Invoiced => {
            if admitted {
                return Err(BookingError::precondition(
                    "ALREADY_ADMITTED",
                    "the booking was admitted at the door and cannot be cancelled",
                ));
            }
            if now_ms > show_start_ms - cutoff_ms {
                return Err(BookingError::precondition(
                    "CANCELLATION_CLOSED",
                    format!(
                        "bookings can be cancelled up to {} minutes before the show; no refund after that",
                        cutoff_ms / 60_000
                    ),
                ));
            }
            Ok(Cancellation::FullRefund)
        }
        // The payment is being captured and the seats confirmed: a moment later it is
        // cancellable with a refund.
        S::PaymentCompleted => Err(BookingError::precondition(
            "BOOKING_IN_PROGRESS",
            "the payment was just captured and the seats are being confirmed; retry in a moment",
        )),
        other => Err(BookingError::precondition(
            "BOOKING_NOT_CANCELLABLE",
            format!("a booking in {} cannot be cancelled", other.as_str()),
        )),
    }
}

/// True when a booking in `status` has a ticket to show and admit.
pub fn has_ticket(status: BookingStatus) -> bool {
    matches!(
        status,
        BookingStatus::BookingCompleted | BookingStatus::Invoiced | BookingStatus::SettlementDone
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_half_up() {
        assert_eq!(basis_points(35_000, 500), 1_750);
        assert_eq!(basis_points(1_750, 1_800), 315);
        assert_eq!(basis_points(1, 5_000), 1);
        assert_eq!(basis_points(1, 4_999), 0);
        assert_eq!(basis_points(0, 1_800), 0);
        assert_eq!(basis_points(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn seat_charges_add_fixed_and_rate_then_tax_the_fee() {
        let p = FeePolicy {
            convenience_fee_minor: 2_000,
            convenience_fee_bps: 100,
            tax_bps: 1_800,
        };
        // 2000 + 1% of 35000 = 2350; 18% of 2350 = 423.
        assert_eq!(seat_charges(35_000, &p), (2_350, 423));
        let free = FeePolicy {
            convenience_fee_minor: 0,
            convenience_fee_bps: 0,
            tax_bps: 1_800,
        };
        assert_eq!(seat_charges(35_000, &free), (0, 0));
    }

    #[test]
    fn cancellation_policy() {
        use BookingStatus as S;
        let hour = 3_600_000;
        let start = 10 * hour;
        assert_eq!(
            cancellation(S::PreBooking, false, 0, start, 2 * hour).ok(),
            Some(Cancellation::BeforeCapture)
        );
        assert_eq!(
            cancellation(S::PaymentInitiated, false, 9 * hour, start, 2 * hour).ok(),
            Some(Cancellation::BeforeCapture)
        );
        assert_eq!(
            cancellation(S::Invoiced, false, 8 * hour, start, 2 * hour).ok(),
            Some(Cancellation::FullRefund)
        );
        let reason = |r: Result<Cancellation, BookingError>| match r {
            Err(BookingError::Precondition { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            reason(cancellation(
                S::Invoiced,
                false,
                8 * hour + 1,
                start,
                2 * hour
            )),
            "CANCELLATION_CLOSED"
        );
        assert_eq!(
            reason(cancellation(S::Invoiced, true, 0, start, 2 * hour)),
            "ALREADY_ADMITTED"
        );
        assert_eq!(
            reason(cancellation(S::Expired, false, 0, start, 2 * hour)),
            "BOOKING_NOT_CANCELLABLE"
        );
        assert_eq!(
            reason(cancellation(S::PaymentCompleted, false, 0, start, 2 * hour)),
            "BOOKING_IN_PROGRESS"
        );
    }
}
