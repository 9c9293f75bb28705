//! Page sizes and page tokens (AIP-158).
//!
//! A page token is opaque to clients: base64url of the cursor (where the next page starts) and a
//! fingerprint of the request's filters, so a token cannot be replayed against another query. A
//! token that does not decode, or belongs to other filters, is `INVALID_ARGUMENT` on
//! `page_token`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;

use crate::validation::Violations;

/// Page size when the client asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page served; larger requests are cut to it.
pub const MAX_PAGE_SIZE: u64 = 200;

/// The page size to use for a requested `page_size` (0 means the default).
pub fn page_size(requested: i32) -> Result<u64, Violations> {
    match requested {
        n if n < 0 => Err(Violations::one("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// A token for the page starting at `cursor` of the query with `filters`.
pub fn encode_token(filters: &impl Serialize, cursor: &str) -> String {
    let fp = crate::idempotency::fingerprint(filters);
    URL_SAFE_NO_PAD.encode(format!("{}.{cursor}", &fp[..16]))
}

/// The cursor in `token` (`None` for the first page), checked against `filters`.
pub fn decode_token(token: &str, filters: &impl Serialize) -> Result<Option<String>, Violations> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Violations::one("page_token", "is not a token of this query");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (fp, cursor) = raw.split_once('.').ok_or_else(invalid)?;
    let expected = crate::idempotency::fingerprint(filters);
    if fp != &expected[..16] {
        return Err(invalid());
    }
    Ok(Some(cursor.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7).ok(), Some(7));
        assert_eq!(page_size(10_000).ok(), Some(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn tokens_round_trip_and_bind_to_filters() {
        let t = encode_token(&("mumbai", 1), "cursor|x");
        assert_eq!(
            decode_token(&t, &("mumbai", 1)).ok().flatten().as_deref(),
            Some("cursor|x")
        );
        assert!(decode_token(&t, &("delhi", 1)).is_err());
        assert!(decode_token("garbage!!", &("mumbai", 1)).is_err());
        assert_eq!(decode_token("", &()).ok(), Some(None));
    }
}
