//! Identity's types.

use serde::{Deserialize, Serialize};

pub use marquee_platform::auth::Role;

/// A channel notifications can be sent through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentChannel {
    /// Email.
    Email,
    /// SMS.
    Sms,
}

impl ConsentChannel {
    /// Every channel.
    pub const ALL: [ConsentChannel; 2] = [ConsentChannel::Email, ConsentChannel::Sms];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentChannel::Email => "email",
            ConsentChannel::Sms => "sms",
        }
    }

    /// The channel of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(ConsentChannel::Email),
            "sms" => Some(ConsentChannel::Sms),
            _ => None,
        }
    }
}

/// A consent choice as the user gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChoice {
    /// The channel.
    pub channel: ConsentChannel,
    /// Allowed or refused.
    pub granted: bool,
    /// The policy version it was given under.
    pub policy_version: String,
}

/// A consent choice as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The channel.
    pub channel: ConsentChannel,
    /// Allowed or refused.
    pub granted: bool,
    /// The policy version it was given under.
    pub policy_version: String,
    /// When it was recorded (Unix seconds).
    pub recorded_at: i64,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Opaque id (UUIDv7).
    pub id: String,
    /// As given.
    pub email: String,
    /// E.164, if given.
    pub phone: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Theatres of a partner or staff member.
    pub theatres: Vec<String>,
    /// Every consent choice, oldest first.
    pub consent_history: Vec<Consent>,
    /// When the account was created (Unix seconds).
    pub created_at: i64,
}

impl User {
    /// The newest choice per channel.
    pub fn current_consents(&self) -> Vec<Consent> {
        crate::domain::rules::current_consents(&self.consent_history)
    }
}

/// A registered client: a Marquee service or a partner's system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The client id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// `Service` or `Partner`.
    pub role: Role,
    /// Theatres of a partner.
    pub theatres: Vec<String>,
    /// Revoked clients cannot obtain tokens.
    pub revoked: bool,
    /// When the client was registered (Unix seconds).
    pub created_at: i64,
}

/// A signed access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// The tokens of a sign-in or refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token.
    pub access: AccessToken,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// When the refresh token expires (Unix seconds).
    pub refresh_expires_at: i64,
}
