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

/// Reading or storing a service's keys failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    /// A new key could not be made.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The keys of a service's key table (identity's signing keys, booking's ticket keys), oldest
/// first; the first call stores a new one. Instances that start at once may each store one, and
/// then all read the same list.
pub async fn load_or_create<E>(
    db: &impl sea_orm::ConnectionTrait,
    now: i64,
) -> Result<Vec<KeyMaterial>, KeyStoreError>
where
    E: sea_orm::EntityTrait,
    E::Model: Into<KeyMaterial>,
    E::ActiveModel: From<KeyMaterial> + sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    let load = || async {
        let mut keys: Vec<KeyMaterial> = E::find()
            .all(db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok::<_, KeyStoreError>(keys)
    };
    let keys = load().await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    E::insert(E::ActiveModel::from(KeyMaterial::generate(now)?))
        .exec_without_returning(db)
        .await?;
    load().await
}

/// Defines, in the module it is called in, the sea-orm entity of a service's key table
/// (`kid`, `private_pkcs8`, `public_key`, `created_at`) and its conversions from and to
/// [`KeyMaterial`], for [`load_or_create`].
#[macro_export]
macro_rules! key_table {
    ($table:literal) => {
        use sea_orm::entity::prelude::*;

        /// A stored Ed25519 key pair.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = $table)]
        pub struct Model {
            /// Key id.
            #[sea_orm(primary_key, auto_increment = false)]
            pub kid: String,
            /// PKCS#8 DER of the private key, base64.
            #[sea_orm(column_type = "Text")]
            pub private_pkcs8: String,
            /// The 32-byte public key, base64url without padding.
            pub public_key: String,
            /// When it was made (Unix seconds).
            pub created_at: i64,
        }

        /// No relations.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}

        impl From<Model> for $crate::keys::KeyMaterial {
            fn from(m: Model) -> Self {
                Self {
                    kid: m.kid,
                    private_pkcs8: m.private_pkcs8,
                    public_key: m.public_key,
                    created_at: m.created_at,
                }
            }
        }

        impl From<$crate::keys::KeyMaterial> for ActiveModel {
            fn from(k: $crate::keys::KeyMaterial) -> Self {
                use sea_orm::ActiveValue::Set;
                Self {
                    kid: Set(k.kid),
                    private_pkcs8: Set(k.private_pkcs8),
                    public_key: Set(k.public_key),
                    created_at: Set(k.created_at),
                }
            }
        }
    };
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

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait as _, EntityTrait as _, Schema};

    use super::*;

    mod test_key {
        crate::key_table!("test_keys");
    }

    #[tokio::test]
    async fn a_key_is_made_once_and_keys_are_read_oldest_first() {
        let db = crate::db::connect("sqlite::memory:", "keys")
            .await
            .expect("sqlite");
        db.execute(
            &Schema::new(db.get_database_backend()).create_table_from_entity(test_key::Entity),
        )
        .await
        .expect("table");
        let first = load_or_create::<test_key::Entity>(&db, 200)
            .await
            .expect("made");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].created_at, 200);
        assert!(first[0].encoding_key().is_ok() && first[0].decoding_key().is_ok());
        let again = load_or_create::<test_key::Entity>(&db, 300)
            .await
            .expect("read");
        assert_eq!(again, first, "stored once, read back as stored");
        let older = KeyMaterial::generate(100).expect("key");
        test_key::Entity::insert(test_key::ActiveModel::from(older.clone()))
            .exec_without_returning(&db)
            .await
            .expect("insert");
        let both = load_or_create::<test_key::Entity>(&db, 400)
            .await
            .expect("read");
        assert_eq!(both, vec![older, first[0].clone()]);
    }
}
