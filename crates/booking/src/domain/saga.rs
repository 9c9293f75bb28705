//! The saga's rules, kept pure: which steps exist, what to do once a payment is observed,
//! whether a hold still covers a capture, how long to wait before a retry, and the request id of
//! every side effect (derived from the booking and the step, so a repeated step repeats nothing).

use serde::{Deserialize, Serialize};

/// A step of the booking saga. Each is persisted before and after it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Extend the hold over the payment window and create the payment order.
    StartPayment,
    /// Watch the payment: capture it while the hold is valid, void it if not, expire the
    /// booking when the window closes.
    AwaitPayment,
    /// Confirm the hold at seating with its fencing token and store the tickets.
    ConfirmSeats,
    /// Issue the invoice.
    IssueInvoice,
    /// Expire a booking whose payment was never started once its hold has run out.
    ExpireUnstarted,
    /// Undo what a cancelled booking held: release the hold or put the sold seats back on
    /// sale, close the payment order, and refund what was captured.
    SettleCancellation,
}

/// Every step.
pub const ALL_STEPS: [Step; 6] = [
    Step::StartPayment,
    Step::AwaitPayment,
    Step::ConfirmSeats,
    Step::IssueInvoice,
    Step::ExpireUnstarted,
    Step::SettleCancellation,
];

impl Step {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartPayment => "start_payment",
            Self::AwaitPayment => "await_payment",
            Self::ConfirmSeats => "confirm_seats",
            Self::IssueInvoice => "issue_invoice",
            Self::ExpireUnstarted => "expire_unstarted",
            Self::SettleCancellation => "settle_cancellation",
        }
    }

    /// The step with a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        ALL_STEPS.into_iter().find(|s| s.as_str() == name)
    }
}

/// The request id of a side effect `action` (for example `capture`) of `booking_id`: the same
/// on every retry, so the other service does it once.
pub fn request_id(booking_id: &str, action: &str) -> String {
    format!("booking:{booking_id}:{action}")
}

/// The delay before attempt `attempt` (1-based) of a failing step: doubling from `base_ms`,
/// capped at `max_ms`.
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64) -> u64 {
    let shift = attempt.saturating_sub(1).min(20);
    base_ms.saturating_mul(1u64 << shift).min(max_ms)
}

/// What payments says about a booking's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentSeen {
    /// Captured already (a previous run captured and crashed before recording it).
    Captured,
    /// A payment is authorised and awaits capture.
    Authorized,
    /// Voided already.
    Voided,
    /// No successful payment yet; `declines` attempts were declined (the last reason given).
    Unpaid {
        /// How many attempts were declined.
        declines: usize,
        /// The last decline's reason.
        last_reason: String,
    },
}

/// What the saga does after looking at the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentDecision {
    /// Record the capture (it happened).
    RecordCapture,
    /// Check the hold, then capture or void.
    CaptureIfHoldValid,
    /// Nothing yet: look again later.
    Wait,
    /// The window closed without payment: release the hold, the booking expires.
    Expire(String),
    /// The window closed with declines only: release the hold, the payment failed.
    Fail(String),
}

/// Decides from what payments reports and whether the payment window (`deadline_ms`) has closed.
pub fn decide_payment(seen: &PaymentSeen, now_ms: i64, deadline_ms: i64) -> PaymentDecision {
    match seen {
        PaymentSeen::Captured => PaymentDecision::RecordCapture,
        PaymentSeen::Authorized => PaymentDecision::CaptureIfHoldValid,
        PaymentSeen::Voided => {
            PaymentDecision::Expire("the payment was voided before capture".to_owned())
        }
        PaymentSeen::Unpaid { .. } if now_ms < deadline_ms => PaymentDecision::Wait,
        PaymentSeen::Unpaid { declines: 0, .. } => {
            PaymentDecision::Expire("no payment before the payment window closed".to_owned())
        }
        PaymentSeen::Unpaid {
            declines,
            last_reason,
        } => PaymentDecision::Fail(format!(
            "the payment window closed after {declines} declined payment(s); last: {last_reason}"
        )),
    }
}

/// True when a hold seen at seating still covers a capture: it is the booking's hold (same
/// fencing token) and stays valid for at least `margin_ms` more, time to confirm it.
pub fn hold_covers_capture(
    booked_token: i64,
    seen_token: i64,
    expires_ms: i64,
    now_ms: i64,
    margin_ms: i64,
) -> bool {
    booked_token == seen_token && expires_ms - now_ms >= margin_ms
}

/// The end of the payment window: `window_ms` from now, but never later than the hold allows a
/// capture (its deadline minus the margin).
pub fn payment_deadline_ms(
    now_ms: i64,
    window_ms: i64,
    hold_expires_ms: i64,
    margin_ms: i64,
) -> i64 {
    (now_ms + window_ms).min(hold_expires_ms - margin_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip() {
        for s in ALL_STEPS {
            assert_eq!(Step::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn request_ids_are_stable_per_booking_and_action() {
        assert_eq!(request_id("b1", "capture"), request_id("b1", "capture"));
        assert_ne!(request_id("b1", "capture"), request_id("b1", "void"));
        assert_ne!(request_id("b1", "capture"), request_id("b2", "capture"));
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(1, 100, 5_000), 100);
        assert_eq!(backoff_ms(2, 100, 5_000), 200);
        assert_eq!(backoff_ms(4, 100, 5_000), 800);
        assert_eq!(backoff_ms(10, 100, 5_000), 5_000);
        assert_eq!(backoff_ms(u32::MAX, 100, 5_000), 5_000);
    }

    #[test]
    fn payment_decisions() {
        let unpaid = |declines| PaymentSeen::Unpaid {
            declines,
            last_reason: "card declined".into(),
        };
        assert_eq!(
            decide_payment(&PaymentSeen::Captured, 0, 10),
            PaymentDecision::RecordCapture
        );
        // Authorised after the window closed: still captured if the hold allows it.
        assert_eq!(
            decide_payment(&PaymentSeen::Authorized, 20, 10),
            PaymentDecision::CaptureIfHoldValid
        );
        assert_eq!(decide_payment(&unpaid(0), 5, 10), PaymentDecision::Wait);
        // A decline keeps the booking payable until the window closes.
        assert_eq!(decide_payment(&unpaid(2), 5, 10), PaymentDecision::Wait);
        assert!(matches!(
            decide_payment(&unpaid(0), 10, 10),
            PaymentDecision::Expire(_)
        ));
        assert!(
            matches!(decide_payment(&unpaid(1), 11, 10), PaymentDecision::Fail(r) if r.contains("card declined"))
        );
        assert!(matches!(
            decide_payment(&PaymentSeen::Voided, 0, 10),
            PaymentDecision::Expire(_)
        ));
    }

    #[test]
    fn holds_cover_captures_only_when_current_and_long_enough() {
        assert!(hold_covers_capture(7, 7, 10_000, 0, 5_000));
        assert!(!hold_covers_capture(7, 8, 10_000, 0, 5_000));
        assert!(!hold_covers_capture(7, 7, 10_000, 6_000, 5_000));
    }

    #[test]
    fn deadlines_stay_inside_the_hold() {
        assert_eq!(payment_deadline_ms(0, 1_000, 100_000, 5_000), 1_000);
        assert_eq!(payment_deadline_ms(0, 600_000, 100_000, 5_000), 95_000);
    }
}
