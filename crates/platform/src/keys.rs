//! Ed25519 signing keys as Marquee stores them (PKCS#8, generated with ed25519-dalek, the
//! implementation jsonwebtoken itself uses) and the JWKS document of their public halves.
//! Identity signs access tokens with them; booking signs ticket tokens.

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{
    DecodingKey, EncodingKey,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    },
};

/// A stored key is unreadable, or a key could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("signing key unusable: {0}")]
pub struct KeyError(String);

/// A key pair as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Key id.
    pub kid: String,
    /// PKCS#8 DER of the private key, base64.
    pub private_pkcs8: String,
    /// The public key, base64url without padding.
    pub public_key: String,
    /// When it was made (Unix seconds).
    pub created_at: i64,
}

impl KeyMaterial {
    /// A new random key pair.
    pub fn generate(now: i64) -> Result<Self, KeyError> {
        let seed: [u8; 32] = rand::random();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = key.to_pkcs8_der().map_err(|e| KeyError(e.to_string()))?;
        Ok(Self {
            kid: uuid::Uuid::now_v7().simple().to_string(),
            private_pkcs8: STANDARD.encode(der.as_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            created_at: now,
        })
    }

    /// The key to sign with.
    pub fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let der = STANDARD
            .decode(&self.private_pkcs8)
            .map_err(|_| KeyError("stored private key is not base64".to_owned()))?;
        Ok(EncodingKey::from_ed_der(&der))
    }

    /// The key to verify with.
    pub fn decoding_key(&self) -> Result<DecodingKey, KeyError> {
        DecodingKey::from_ed_components(&self.public_key).map_err(|e| KeyError(e.to_string()))
    }
}

/// The JWKS document of public keys given as `(kid, public key base64url)`.
pub fn jwks<'a>(public: impl IntoIterator<Item = (&'a str, &'a str)>) -> JwkSet {
    JwkSet {
        keys: public
            .into_iter()
            .map(|(kid, x)| Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Signature),
                    key_algorithm: Some(KeyAlgorithm::EdDSA),
                    key_id: Some(kid.to_owned()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: x.to_owned(),
                }),
            })
            .collect(),
    }
}
