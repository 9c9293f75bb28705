//! The gRPC adapter: proto <-> domain conversion, the callers' roles, and the one mapping of
//! [`IdentityError`] to `tonic::Status`. Incoming messages are destructured exhaustively, so a
//! field added to the contract does not compile until it is handled here.

use std::time::Duration;

use marquee_platform::{
    auth::{self, Role},
    status,
    validation::Violations,
};
use marquee_proto::identity::v1 as pb;
use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        IdentityError,
        model::{AccessToken, Client, Consent, ConsentChannel, ConsentChoice, Tokens, User},
    },
    service::{AccountRequest, ClientRequest, Identity},
};

/// Maps an identity error to a status. Storage and internal causes are logged, never sent.
pub fn to_status(error: IdentityError) -> Status {
    match error {
        IdentityError::Invalid(v) => status::invalid_argument(&v),
        IdentityError::BadCredentials
        | IdentityError::InvalidRefreshToken
        | IdentityError::InvalidClient => Status::unauthenticated(error.to_string()),
        IdentityError::RateLimited { retry_after_secs } => status::resource_exhausted(
            "too many failed sign-ins; try again later",
            Duration::from_secs(u64::try_from(retry_after_secs).unwrap_or(1).max(1)),
        ),
        IdentityError::EmailTaken => status::already_exists("EMAIL_TAKEN", error.to_string()),
        IdentityError::NotFound { kind, id } => status::not_found(kind, &id),
        IdentityError::PermissionDenied(message) => Status::permission_denied(message),
        IdentityError::IdempotencyMismatch => {
            status::invalid_field("request_id", "was already used for a different request")
        }
        IdentityError::Storage(cause) => {
            let unavailable = cause.downcast_ref::<sea_orm::DbErr>().is_some_and(|e| {
                matches!(
                    e,
                    sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
                )
            });
            if unavailable {
                status::unavailable(cause.as_ref())
            } else {
                status::internal(cause.as_ref())
            }
        }
        IdentityError::Internal(cause) => status::internal(cause.as_ref()),
    }
}

// ----- domain -> proto --------------------------------------------------------------------------

fn ts(secs: i64) -> Timestamp {
    Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

fn role_pb(r: Role) -> pb::Role {
    match r {
        Role::Customer => pb::Role::Customer,
        Role::Admin => pb::Role::Admin,
        Role::Partner => pb::Role::Partner,
        Role::Staff => pb::Role::Staff,
        Role::Service => pb::Role::Service,
    }
}

fn channel_pb(c: ConsentChannel) -> pb::ConsentChannel {
    match c {
        ConsentChannel::Email => pb::ConsentChannel::Email,
        ConsentChannel::Sms => pb::ConsentChannel::Sms,
    }
}

fn consent_pb(c: Consent) -> pb::Consent {
    pb::Consent {
        channel: channel_pb(c.channel) as i32,
        granted: c.granted,
        policy_version: c.policy_version,
        record_time: Some(ts(c.recorded_at)),
    }
}

fn user_pb(u: User) -> pb::User {
    let consents = u.current_consents().into_iter().map(consent_pb).collect();
    pb::User {
        id: u.id,
        email: u.email,
        phone: u.phone.unwrap_or_default(),
        roles: u.roles.into_iter().map(|r| role_pb(r) as i32).collect(),
        theatre_ids: u.theatres,
        consents,
        consent_history: u.consent_history.into_iter().map(consent_pb).collect(),
        create_time: Some(ts(u.created_at)),
    }
}

fn tokens_pb(t: Tokens) -> pb::Tokens {
    pb::Tokens {
        access_token: t.access.token,
        token_type: "Bearer".into(),
        access_token_expire_time: Some(ts(t.access.expires_at)),
        refresh_token: t.refresh_token,
        refresh_token_expire_time: Some(ts(t.refresh_expires_at)),
    }
}

fn client_pb(c: Client) -> pb::Client {
    pb::Client {
        client_id: c.id,
        display_name: c.display_name,
        role: role_pb(c.role) as i32,
        theatre_ids: c.theatres,
        revoked: c.revoked,
        create_time: Some(ts(c.created_at)),
    }
}

// ----- proto -> domain --------------------------------------------------------------------------

fn role_from(field: &str, value: i32) -> Result<Role, Violations> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Customer) => Ok(Role::Customer),
        Ok(pb::Role::Admin) => Ok(Role::Admin),
        Ok(pb::Role::Partner) => Ok(Role::Partner),
        Ok(pb::Role::Staff) => Ok(Role::Staff),
        Ok(pb::Role::Service) => Ok(Role::Service),
        Ok(pb::Role::Unspecified) | Err(_) => Err(Violations::one(field, "must be a role")),
    }
}

fn choices_from(choices: Vec<pb::ConsentChoice>) -> Result<Vec<ConsentChoice>, Violations> {
    let mut v = Violations::new();
    let mut out = Vec::with_capacity(choices.len());
    for (i, c) in choices.into_iter().enumerate() {
        let pb::ConsentChoice {
            channel,
            granted,
            policy_version,
        } = c;
        let channel = match pb::ConsentChannel::try_from(channel) {
            Ok(pb::ConsentChannel::Email) => ConsentChannel::Email,
            Ok(pb::ConsentChannel::Sms) => ConsentChannel::Sms,
            Ok(pb::ConsentChannel::Unspecified) | Err(_) => {
                v.add(
                    format!("consents[{i}].channel"),
                    "must be CONSENT_CHANNEL_EMAIL or CONSENT_CHANNEL_SMS",
                );
                continue;
            }
        };
        out.push(ConsentChoice {
            channel,
            granted,
            policy_version,
        });
    }
    v.into_result().map(|()| out)
}

/// The client's IP address, for per-address sign-in limits.
fn address<T>(request: &Request<T>) -> Option<String> {
    request.remote_addr().map(|a| a.ip().to_string())
}

/// The signed-in user of a call (clients have no account).
fn user_id<T>(request: &Request<T>) -> Result<String, Status> {
    let caller = auth::caller(request)?;
    if caller.has_role(Role::Service) {
        return Err(Status::permission_denied(
            "this call needs a user's access token",
        ));
    }
    Ok(caller.subject.clone())
}

/// `marquee.identity.v1.IdentityService`.
#[derive(Clone)]
pub struct IdentityApi {
    identity: Identity,
}

impl IdentityApi {
    /// The API over `identity`.
    pub fn new(identity: Identity) -> Self {
        Self { identity }
    }
}

#[tonic::async_trait]
impl pb::identity_service_server::IdentityService for IdentityApi {
    #[tracing::instrument(skip_all)]
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        let pb::SignUpRequest {
            request_id,
            email,
            phone,
            password,
            consents,
        } = request.into_inner();
        let consents = choices_from(consents).map_err(|v| status::invalid_argument(&v))?;
        let user = self
            .identity
            .sign_up(
                &request_id,
                AccountRequest {
                    email,
                    phone,
                    password,
                    consents,
                    roles: Vec::new(),
                    theatres: Vec::new(),
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SignUpResponse {
            user: Some(user_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let address = address(&request);
        let pb::SignInRequest { email, password } = request.into_inner();
        let (tokens, user) = self
            .identity
            .sign_in(&email, &password, address.as_deref())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SignInResponse {
            tokens: Some(tokens_pb(tokens)),
            user: Some(user_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let pb::RefreshRequest { refresh_token } = request.into_inner();
        let tokens = self
            .identity
            .refresh(&refresh_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RefreshResponse {
            tokens: Some(tokens_pb(tokens)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let pb::SignOutRequest {
            request_id,
            refresh_token,
        } = request.into_inner();
        self.identity
            .sign_out(&request_id, &refresh_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::GetMeResponse>, Status> {
        let user_id = user_id(&request)?;
        let pb::GetMeRequest {} = request.into_inner();
        let user = self.identity.get_user(&user_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetMeResponse {
            user: Some(user_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_consent(
        &self,
        request: Request<pb::UpdateConsentRequest>,
    ) -> Result<Response<pb::UpdateConsentResponse>, Status> {
        let user_id = user_id(&request)?;
        let pb::UpdateConsentRequest {
            request_id,
            consents,
        } = request.into_inner();
        let consents = choices_from(consents).map_err(|v| status::invalid_argument(&v))?;
        let user = self
            .identity
            .update_consent(&request_id, &user_id, consents)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateConsentResponse {
            user: Some(user_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let pb::GetJwksRequest {} = request.into_inner();
        let jwks = self.identity.jwks();
        let jwks_json = serde_json::to_string(&jwks).map_err(|e| status::internal(&e))?;
        let keys = jwks
            .keys
            .iter()
            .filter_map(|k| match &k.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => Some(pb::Jwk {
                    kid: k.common.key_id.clone().unwrap_or_default(),
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: p.x.clone(),
                    alg: "EdDSA".into(),
                    r#use: "sig".into(),
                }),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::GetJwksResponse { jwks_json, keys }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_client_token(
        &self,
        request: Request<pb::IssueClientTokenRequest>,
    ) -> Result<Response<pb::IssueClientTokenResponse>, Status> {
        let pb::IssueClientTokenRequest {
            client_id,
            client_secret,
        } = request.into_inner();
        let AccessToken { token, expires_at } = self
            .identity
            .issue_client_token(&client_id, &client_secret)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::IssueClientTokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expire_time: Some(ts(expires_at)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        auth::require_role(&request, Role::Admin)?;
        let pb::CreateUserRequest {
            request_id,
            email,
            phone,
            password,
            roles,
            theatre_ids,
        } = request.into_inner();
        let roles = roles
            .iter()
            .enumerate()
            .map(|(i, r)| role_from(&format!("roles[{i}]"), *r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|v| status::invalid_argument(&v))?;
        let user = self
            .identity
            .create_user(
                &request_id,
                AccountRequest {
                    email,
                    phone,
                    password,
                    consents: Vec::new(),
                    roles,
                    theatres: theatre_ids,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(user_pb(user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_client(
        &self,
        request: Request<pb::CreateClientRequest>,
    ) -> Result<Response<pb::CreateClientResponse>, Status> {
        auth::require_role(&request, Role::Admin)?;
        let pb::CreateClientRequest {
            request_id,
            display_name,
            role,
            theatre_ids,
        } = request.into_inner();
        let role = role_from("role", role).map_err(|v| status::invalid_argument(&v))?;
        let (client, secret) = self
            .identity
            .create_client(
                &request_id,
                ClientRequest {
                    display_name,
                    role,
                    theatres: theatre_ids,
                },
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateClientResponse {
            client: Some(client_pb(client)),
            client_secret: secret.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_client(
        &self,
        request: Request<pb::RevokeClientRequest>,
    ) -> Result<Response<pb::RevokeClientResponse>, Status> {
        auth::require_role(&request, Role::Admin)?;
        let pb::RevokeClientRequest {
            request_id,
            client_id,
        } = request.into_inner();
        let client = self
            .identity
            .revoke_client(&request_id, &client_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RevokeClientResponse {
            client: Some(client_pb(client)),
        }))
    }
}
