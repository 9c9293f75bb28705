//! Ticket tokens: what a booking's QR code carries. A JWT signed with booking's own Ed25519
//! key (`alg: EdDSA`, a `kid` header), naming the booking, its code, show, theatre and seats, so
//! a door scanner holding the public keys (`GetTicketKeys`, a JWKS document) can check a ticket
//! offline; online, `AdmitTicket` checks it again and admits once.

use jsonwebtoken::{Algorithm, Header, Validation};
use marquee_platform::keys::{KeyMaterial, jwks};
use qrcode::{EcLevel, QrCode, render::svg};
use serde::{Deserialize, Serialize};

use crate::domain::BookingError;

/// The issuer of ticket tokens.
pub const TICKET_ISSUER: &str = "marquee";
/// The audience of ticket tokens: the door.
pub const TICKET_AUDIENCE: &str = "marquee-door";

/// What a ticket token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// [`TICKET_ISSUER`].
    pub iss: String,
    /// [`TICKET_AUDIENCE`].
    pub aud: String,
    /// The booking id.
    pub sub: String,
    /// The booking code.
    pub code: String,
    /// The show.
    pub show: String,
    /// The show's theatre.
    pub theatre: String,
    /// The seats.
    pub seats: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Valid until, Unix seconds.
    pub exp: i64,
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> BookingError {
    BookingError::Storage(Box::new(e))
}

/// Signs `claims` with the newest of `keys`.
pub fn sign(keys: &[KeyMaterial], claims: &TicketClaims) -> Result<String, BookingError> {
    let key = keys
        .first()
        .ok_or_else(|| BookingError::Storage("no ticket-signing key".into()))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding_key().map_err(internal)?).map_err(internal)
}

/// Why a ticket token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Signed by a key booking does not have (yet: the caller may reload its keys).
    UnknownKey,
    /// Malformed, forged, expired or for someone else.
    Invalid,
}

/// Checks a ticket token against `keys`.
pub fn verify(keys: &[KeyMaterial], token: &str) -> Result<TicketClaims, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refused::Invalid)?;
    if header.alg != Algorithm::EdDSA {
        return Err(Refused::Invalid);
    }
    let kid = header.kid.ok_or(Refused::Invalid)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(Refused::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[TICKET_AUDIENCE]);
    validation.set_issuer(&[TICKET_ISSUER]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let decoding = key.decoding_key().map_err(|_| Refused::Invalid)?;
    jsonwebtoken::decode::<TicketClaims>(token, &decoding, &validation)
        .map(|d| d.claims)
        .map_err(|_| Refused::Invalid)
}

/// The public keys as a JWKS document (JSON).
pub fn jwks_json(keys: &[KeyMaterial]) -> String {
    let set = jwks(keys.iter().map(|k| (k.kid.as_str(), k.public_key.as_str())));
    serde_json::to_string(&set).unwrap_or_else(|_| "{\"keys\":[]}".to_owned())
}

/// A QR code of `token` as an SVG image (error correction M: a scratched phone screen or a
/// crumpled print still scans).
pub fn qr_svg(token: &str) -> Result<String, BookingError> {
    let code =
        QrCode::with_error_correction_level(token.as_bytes(), EcLevel::M).map_err(internal)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> TicketClaims {
        TicketClaims {
            iss: TICKET_ISSUER.to_owned(),
            aud: TICKET_AUDIENCE.to_owned(),
            sub: "b1".to_owned(),
            code: "7K3M9Q2XWP".to_owned(),
            show: "s1".to_owned(),
            theatre: "t1".to_owned(),
            seats: vec!["C-1".to_owned(), "C-2".to_owned()],
            iat: 0,
            exp,
        }
    }

    #[test]
    fn tokens_verify_with_their_key_only() {
        let now = chrono::Utc::now().timestamp();
        let key = KeyMaterial::generate(now).expect("key");
        let other = KeyMaterial::generate(now).expect("key");
        let token = sign(std::slice::from_ref(&key), &claims(now + 60)).expect("sign");
        assert_eq!(
            verify(std::slice::from_ref(&key), &token).expect("valid"),
            claims(now + 60)
        );
        assert_eq!(
            verify(std::slice::from_ref(&other), &token),
            Err(Refused::UnknownKey)
        );
        // A forged signature under the right kid.
        let forged = sign(
            &[KeyMaterial {
                kid: key.kid.clone(),
                ..other.clone()
            }],
            &claims(now + 60),
        )
        .expect("sign");
        assert_eq!(
            verify(std::slice::from_ref(&key), &forged),
            Err(Refused::Invalid)
        );
        let expired = sign(std::slice::from_ref(&key), &claims(now - 3_600)).expect("sign");
        assert_eq!(
            verify(std::slice::from_ref(&key), &expired),
            Err(Refused::Invalid)
        );
        assert_eq!(
            verify(std::slice::from_ref(&key), "not.a.token"),
            Err(Refused::Invalid)
        );
    }

    #[test]
    fn qr_codes_are_svg() {
        let svg = qr_svg("a ticket token").expect("qr");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    }

    #[test]
    fn jwks_lists_every_key() {
        let a = KeyMaterial::generate(0).expect("key");
        let b = KeyMaterial::generate(0).expect("key");
        let json = jwks_json(&[a.clone(), b.clone()]);
        assert!(json.contains(&a.kid) && json.contains(&b.kid), "{json}");
        assert!(!json.contains(&a.private_pkcs8));
    }
}
