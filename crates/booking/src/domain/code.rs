//! Booking codes: 10 characters of Crockford base32 (digits and letters without I, L, O and U,
//! so nothing is misread aloud), 50 bits of randomness. Uniqueness is the database's unique key;
//! a collision is retried with a new code.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code.
pub const CODE_LEN: usize = 10;

/// A booking code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BookingCode(String);

impl BookingCode {
    /// The code made of the low 50 bits of `random`.
    pub fn from_random(random: u64) -> Self {
        let mut code = String::with_capacity(CODE_LEN);
        for i in (0..CODE_LEN).rev() {
            let index = ((random >> (i * 5)) & 0x1f) as usize;
            code.push(char::from(ALPHABET[index]));
        }
        Self(code)
    }

    /// A fresh random code.
    pub fn generate() -> Self {
        Self::from_random(rand::random::<u64>())
    }

    /// Reads a code as a person may type it: case-insensitive, `O` read as `0`, `I` and `L` as
    /// `1`, dashes and spaces ignored. `None` when it cannot be a code.
    pub fn parse(text: &str) -> Option<Self> {
        let mut code = String::with_capacity(CODE_LEN);
        for c in text.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
                _ => return None,
            };
            code.push(c);
        }
        (code.len() == CODE_LEN).then_some(Self(code))
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BookingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_unambiguous_characters_only() {
        for _ in 0..1000 {
            let c = BookingCode::generate();
            assert_eq!(c.as_str().len(), CODE_LEN);
            assert!(!c.as_str().contains(['I', 'L', 'O', 'U']), "{c}");
        }
    }

    #[test]
    fn fifty_bits_make_distinct_codes() {
        assert_eq!(BookingCode::from_random(0).as_str(), "0000000000");
        assert_eq!(
            BookingCode::from_random((1 << 50) - 1).as_str(),
            "ZZZZZZZZZZ"
        );
        assert_ne!(
            BookingCode::from_random(1 << 49),
            BookingCode::from_random(1 << 48)
        );
        // Bits above the 50th do not matter.
        assert_eq!(
            BookingCode::from_random(1 << 50),
            BookingCode::from_random(0)
        );
    }

    #[test]
    fn typed_codes_are_read_forgivingly() {
        let c = BookingCode::from_random(0x3_1234_5678_9abc);
        let typed = c.as_str().to_ascii_lowercase();
        assert_eq!(BookingCode::parse(&typed), Some(c.clone()));
        // Eleven characters.
        assert_eq!(BookingCode::parse("0o1IL-23456 7"), None);
        assert_eq!(
            BookingCode::parse("oO1iL-23456").map(|c| c.0),
            Some("0011123456".to_owned())
        );
        assert_eq!(BookingCode::parse("short"), None);
        assert_eq!(BookingCode::parse("UUUUUUUUUU"), None);
    }
}
