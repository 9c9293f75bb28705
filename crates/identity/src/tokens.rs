//! Access tokens: Ed25519 key pairs (generated with ed25519-dalek, the implementation
//! jsonwebtoken itself uses, and stored as PKCS#8), JWTs signed with `alg: EdDSA` and a `kid`
//! header, and the JWKS document of the public keys.

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::JwkSet};
pub use marquee_platform::keys::KeyMaterial;
use marquee_platform::{
    auth::{AUDIENCE, Claims, ISSUER, Role},
    keys::jwks,
};

use crate::domain::{IdentityError, model::AccessToken};

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
        Ok(Self {
            kid: active.kid.clone(),
            signing: active.encoding_key().map_err(IdentityError::internal)?,
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
        jwks(
            self.public
                .iter()
                .map(|(kid, x)| (kid.as_str(), x.as_str())),
        )
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
