//! Payments' domain: orders and attempts with their state rules, the ledger postings of a capture
//! and a refund, webhook signatures, and errors. No tonic, no sea-orm.

use hmac::{Hmac, KeyInit, Mac};
use marquee_platform::validation::Violations;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Amount in minor units of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// No successful payment yet.
    Created,
    /// A payment is authorised.
    Authorized,
    /// Captured.
    Captured,
    /// Authorisation voided.
    Voided,
    /// Captured and partly refunded.
    PartiallyRefunded,
    /// Captured and fully refunded.
    Refunded,
}

/// The state of one payment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AttemptStatus {
    /// Started, no answer yet.
    Pending,
    /// Declined.
    Failed,
    /// Authorised.
    Authorized,
    /// Captured.
    Captured,
    /// Voided.
    Voided,
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            /// Parses a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

names!(OrderStatus {
    Created => "CREATED",
    Authorized => "AUTHORIZED",
    Captured => "CAPTURED",
    Voided => "VOIDED",
    PartiallyRefunded => "PARTIALLY_REFUNDED",
    Refunded => "REFUNDED",
});

names!(AttemptStatus {
    Pending => "PENDING",
    Failed => "FAILED",
    Authorized => "AUTHORIZED",
    Captured => "CAPTURED",
    Voided => "VOIDED",
});

impl AttemptStatus {
    /// Whether an attempt may move from `self` to `next`. Attempts only move forward, so a
    /// webhook that arrives late or twice changes nothing: a failure after an authorisation, or
    /// an authorisation after a capture, is ignored.
    pub fn can_become(self, next: AttemptStatus) -> bool {
        use AttemptStatus::*;
        matches!(
            (self, next),
            (Pending, Failed)
                | (Pending, Authorized)
                | (Authorized, Captured)
                | (Authorized, Voided)
        )
    }
}

/// The order's status implied by its attempts and refunds.
pub fn order_status(attempts: &[AttemptStatus], captured: i64, refunded: i64) -> OrderStatus {
    if attempts.contains(&AttemptStatus::Captured) {
        if refunded <= 0 {
            OrderStatus::Captured
        } else if refunded >= captured {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        }
    } else if attempts.contains(&AttemptStatus::Authorized) {
        OrderStatus::Authorized
    } else if attempts.contains(&AttemptStatus::Voided) {
        OrderStatus::Voided
    } else {
        OrderStatus::Created
    }
}

/// A new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Amount to pay.
    pub amount: Money,
    /// Marquee's share.
    pub platform_fee: Money,
    /// The theatre owed the rest.
    pub theatre_id: String,
    /// What it is for.
    pub receipt: String,
}

impl NewOrder {
    /// Checks the order's fields.
    pub fn check(&self) -> Result<(), Violations> {
        let mut v = Violations::new();
        let currency_ok = self.amount.currency.len() == 3
            && self.amount.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !currency_ok {
            v.add(
                "amount.currency_code",
                "must be an ISO 4217 code such as \"INR\"",
            );
        }
        if self.amount.amount_minor <= 0 || self.amount.amount_minor > 10_000_000_000 {
            v.add(
                "amount.amount_minor",
                "must be positive and at most 10000000000",
            );
        }
        if self.platform_fee.currency != self.amount.currency {
            v.add(
                "platform_fee.currency_code",
                "must be the amount's currency",
            );
        }
        let fee = self.platform_fee.amount_minor;
        if fee < 0 || (self.amount.amount_minor > 0 && fee > self.amount.amount_minor) {
            v.add(
                "platform_fee.amount_minor",
                "must be between 0 and the amount",
            );
        }
        if uuid::Uuid::parse_str(&self.theatre_id).is_err() {
            v.add("theatre_id", "must be a UUID");
        }
        if self.receipt.is_empty() || self.receipt.len() > 64 {
            v.add("receipt", "required, at most 64 characters");
        }
        v.into_result()
    }
}

/// One posting of a ledger transaction: positive debits, negative credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// Account name.
    pub account: String,
    /// Signed minor units.
    pub amount_minor: i64,
}

/// The account owed to a theatre.
pub fn theatre_account(theatre_id: &str) -> String {
    format!("theatre_payable:{theatre_id}")
}

/// The postings of a capture of `amount` with `fee` for the platform: the customer's money in,
/// owed to the theatre and earned by the platform.
pub fn capture_postings(amount: i64, fee: i64, theatre_id: &str) -> Vec<Posting> {
    vec![
        Posting {
            account: "customer".into(),
            amount_minor: amount,
        },
        Posting {
            account: "platform_fee".into(),
            amount_minor: -fee,
        },
        Posting {
            account: theatre_account(theatre_id),
            amount_minor: -(amount - fee),
        },
    ]
}

/// The postings of a refund of `refund` from a capture of `amount` with `fee`, of which
/// `refunded_before` was already refunded. The theatre's share is given back first, then the
/// platform's fee.
pub fn refund_postings(
    amount: i64,
    fee: i64,
    refunded_before: i64,
    refund: i64,
    theatre_id: &str,
) -> Vec<Posting> {
    let theatre_share = amount - fee;
    let theatre_left = (theatre_share - refunded_before).max(0);
    let from_theatre = refund.min(theatre_left);
    let from_fee = refund - from_theatre;
    let mut postings = vec![
        Posting {
            account: "customer".into(),
            amount_minor: -refund,
        },
        Posting {
            account: "refunds".into(),
            amount_minor: refund,
        },
        Posting {
            account: "refunds".into(),
            amount_minor: -refund,
        },
    ];
    if from_theatre > 0 {
        postings.push(Posting {
            account: theatre_account(theatre_id),
            amount_minor: from_theatre,
        });
    }
    if from_fee > 0 {
        postings.push(Posting {
            account: "platform_fee".into(),
            amount_minor: from_fee,
        });
    }
    postings
}

/// Hex HMAC-SHA256 of `body` with `secret`: the webhook signature. (HMAC takes keys of any
/// length, so the empty answer for a refused key cannot occur.)
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a webhook signature in constant time.
pub fn verify(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Some(expected) = decode_hex(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The webhook body the provider sends (a subset of Razorpay's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// Always "event".
    pub entity: String,
    /// Event id, unique per event (duplicates carry the same id).
    pub id: String,
    /// `payment.authorized`, `payment.failed`, `payment.captured`, `refund.processed`.
    pub event: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The payment concerned.
    pub payload: WebhookPayload,
}

/// Payload of a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// The payment.
    pub payment: WebhookPayment,
}

/// The payment in a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayment {
    /// The payment entity.
    pub entity: ProviderPayment,
}

/// A payment as the provider describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPayment {
    /// `pay_…`.
    pub id: String,
    /// `order_…`.
    pub order_id: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// `created`, `authorized`, `captured`, `failed`, `voided`.
    pub status: String,
    /// Why it failed.
    #[serde(default)]
    pub error_description: Option<String>,
}

impl ProviderPayment {
    /// The attempt status the provider's status means.
    pub fn attempt_status(&self) -> Option<AttemptStatus> {
        Some(match self.status.as_str() {
            "created" => AttemptStatus::Pending,
            "authorized" => AttemptStatus::Authorized,
            "captured" => AttemptStatus::Captured,
            "failed" => AttemptStatus::Failed,
            "voided" => AttemptStatus::Voided,
            _ => return None,
        })
    }
}

/// Everything payments can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// Bad input.
    #[error("invalid request: {0}")]
    Invalid(#[from] Violations),
    /// No such order.
    #[error("order {0} not found")]
    NotFound(String),
    /// Not allowed in the order's state.
    #[error("{message}")]
    Precondition {
        /// Stable reason.
        reason: &'static str,
        /// For the caller.
        message: String,
    },
    /// The idempotency key was used for another request.
    #[error("request_id was already used for a different request")]
    IdempotencyMismatch,
    /// The provider refused or did not answer.
    #[error("provider error: {0}")]
    Provider(String),
    /// Storage failed.
    #[error("storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PaymentsError {
    /// A failed precondition.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(p: &[Posting]) -> i64 {
        p.iter().map(|p| p.amount_minor).sum()
    }

    #[test]
    fn postings_balance() {
        let t = "0193a7c2-5f1e-7000-8000-000000000001";
        assert_eq!(sum(&capture_postings(50_000, 3_000, t)), 0);
        for (before, refund) in [(0, 10_000), (0, 47_000), (0, 50_000), (45_000, 5_000)] {
            let p = refund_postings(50_000, 3_000, before, refund, t);
            assert_eq!(sum(&p), 0, "{before} {refund}");
        }
        // A full refund gives the theatre's share back and then the fee.
        let p = refund_postings(50_000, 3_000, 0, 50_000, t);
        assert!(p.contains(&Posting {
            account: theatre_account(t),
            amount_minor: 47_000
        }));
        assert!(p.contains(&Posting {
            account: "platform_fee".into(),
            amount_minor: 3_000
        }));
    }

    #[test]
    fn attempts_only_move_forward() {
        use AttemptStatus::*;
        assert!(Pending.can_become(Authorized));
        assert!(Authorized.can_become(Captured));
        assert!(!Authorized.can_become(Failed));
        assert!(!Captured.can_become(Authorized));
        assert!(!Failed.can_become(Authorized));
        assert_eq!(
            order_status(&[Failed, Authorized], 0, 0),
            OrderStatus::Authorized
        );
        assert_eq!(
            order_status(&[Captured], 100, 40),
            OrderStatus::PartiallyRefunded
        );
        assert_eq!(order_status(&[Captured], 100, 100), OrderStatus::Refunded);
        assert_eq!(order_status(&[Failed], 0, 0), OrderStatus::Created);
    }

    #[test]
    fn signatures() {
        let body = br#"{"event":"payment.authorized"}"#;
        let sig = sign(b"secret", body);
        assert_eq!(sig.len(), 64);
        assert!(verify(b"secret", body, &sig));
        assert!(!verify(b"other", body, &sig));
        assert!(!verify(b"secret", b"tampered", &sig));
        assert!(!verify(b"secret", body, "zz"));
    }
}
