//! Access tokens: Ed25519 key pairs (generated with ed25519-dalek, the implementation
//! jsonwebtoken itself uses, and stored as PKCS#8), JWTs signed with `alg: EdDSA` and a `kid`
//! header, and the JWKS document of the public keys.

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    },
};
use marquee_platform::auth::{AUDIENCE, Claims, ISSUER, Role};

use crate::domain::{IdentityError, model::AccessToken};

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
    pub fn generate(now: i64) -> Result<Self, IdentityError> {
        let seed: [u8; 32] = rand::random();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = key.to_pkcs8_der().map_err(IdentityError::internal)?;
        Ok(Self {
            kid: uuid::Uuid::now_v7().simple().to_string(),
            private_pkcs8: STANDARD.encode(der.as_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            created_at: now,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored signing key is unreadable")]
struct BadKey;

/// The keys identity signs with and publishes.
pub struct Keys {
    kid: String,
    signing: EncodingKey,
    public: Vec<(String, String)>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish()
    }
}

impl Keys {
    /// Signs with `active`, publishes every key of `all`.
    pub fn new(active: &KeyMaterial, all: &[KeyMaterial]) -> Result<Self, IdentityError> {
        let der = STANDARD
            .decode(&active.private_pkcs8)
            .map_err(|_| IdentityError::internal(BadKey))?;
        Ok(Self {
            kid: active.kid.clone(),
            signing: EncodingKey::from_ed_der(&der),
            public: all
                .iter()
                .map(|k| (k.kid.clone(), k.public_key.clone()))
                .collect(),
        })
    }

    /// The id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs an access token for `subject` issued at `issued_at`, valid for `ttl_secs`.
    pub fn sign(
        &self,
        subject: &str,
        roles: &[Role],
        theatres: &[String],
        issued_at: i64,
        ttl_secs: i64,
    ) -> Result<AccessToken, IdentityError> {
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: subject.to_owned(),
            iat: issued_at,
            exp: issued_at + ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
            roles: roles.to_vec(),
            theatres: theatres.to_vec(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(IdentityError::internal)?;
        Ok(AccessToken {
            token,
            expires_at: claims.exp,
        })
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .public
                .iter()
                .map(|(kid, x)| Jwk {
                    common: CommonParameters {
                        public_key_use: Some(PublicKeyUse::Signature),
                        key_algorithm: Some(KeyAlgorithm::EdDSA),
                        key_id: Some(kid.clone()),
                        ..CommonParameters::default()
                    },
                    algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x: x.clone(),
                    }),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marquee_platform::auth::Verifier;

    #[test]
    fn signed_tokens_verify_with_the_published_keys() {
        let now = chrono::Utc::now().timestamp();
        let material = KeyMaterial::generate(now).expect("key");
        let keys = Keys::new(&material, std::slice::from_ref(&material)).expect("keys");
        let token = keys
            .sign("user-1", &[Role::Customer], &[], now, 900)
            .expect("sign");
        let verifier = Verifier::new();
        assert_eq!(verifier.set_keys(&keys.jwks()), 1);
        let caller = verifier.verify(&token.token).expect("verifies");
        assert_eq!(caller.subject, "user-1");
        assert_eq!(caller.roles, vec![Role::Customer]);

        let expired = keys
            .sign("user-1", &[Role::Customer], &[], now - 3600, 900)
            .expect("sign");
        assert!(verifier.verify(&expired.token).is_err());

        let other = KeyMaterial::generate(now).expect("key");
        let forged = Keys::new(
            &KeyMaterial {
                kid: material.kid.clone(),
                ..other
            },
            &[],
        )
        .expect("keys")
        .sign("user-1", &[Role::Admin], &[], now, 900)
        .expect("sign");
        assert!(verifier.verify(&forged.token).is_err());
    }
}
