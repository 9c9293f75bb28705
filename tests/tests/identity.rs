//! Identity end to end: every RPC through a real server on 127.0.0.1:0, on SQLite and on
//! PostgreSQL+Redis. Tokens are checked the way every service checks them (the listener's
//! verifier), so a token refused here is refused by the catalog too.

mod common;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use marquee_platform::auth::{AUDIENCE, Claims, ISSUER, Role};
use marquee_proto::identity::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends!(
    accounts_consent_and_keys,
    refresh_rotates_and_reuse_revokes_the_family,
    sign_out_revokes_the_family,
    bad_tokens_are_unauthenticated,
    weak_passwords_and_bad_emails,
    sign_in_failures_are_rate_limited,
    admins_create_users_and_clients,
);

fn choice(channel: pb::ConsentChannel, granted: bool, version: &str) -> pb::ConsentChoice {
    pb::ConsentChoice {
        channel: channel as i32,
        granted,
        policy_version: version.into(),
    }
}

fn sign_up(email: &str, password: &str) -> pb::SignUpRequest {
    pb::SignUpRequest {
        request_id: rid(),
        email: email.into(),
        phone: String::new(),
        password: password.into(),
        consents: Vec::new(),
    }
}

/// The JSON claims of a JWT, read without verifying it.
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

/// Identity's library on the server's own store (after the server has opened it).
async fn identity_lib(app: &TestApp) -> marquee_identity::Identity {
    app.admin_token().await;
    marquee_identity::open(&app.database_url("identity"), &app.options.identity)
        .await
        .expect("open identity")
}

async fn me(app: &TestApp, token: &str) -> Result<pb::User, tonic::Status> {
    Ok(app
        .identity_as(token)
        .await
        .get_me(pb::GetMeRequest {})
        .await?
        .into_inner()
        .user
        .expect("user"))
}

async fn accounts_consent_and_keys(app: TestApp) {
    let mut identity = app.identity().await;
    let email = format!("Asha.{}@Example.com", &rid()[24..]);
    let mut request = sign_up(&email, PASSWORD);
    request.phone = "+919876543210".into();
    request.consents = vec![choice(pb::ConsentChannel::Email, true, "2026-11")];
    let user = identity
        .sign_up(request.clone())
        .await
        .expect("sign up")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(user.email, email);
    assert_eq!(user.roles, vec![pb::Role::Customer as i32]);
    assert_eq!(user.phone, "+919876543210");
    // Email granted as asked; SMS not mentioned, so recorded as not granted.
    let current: Vec<(i32, bool, String)> = user
        .consents
        .iter()
        .map(|c| (c.channel, c.granted, c.policy_version.clone()))
        .collect();
    assert_eq!(
        current,
        vec![
            (pb::ConsentChannel::Email as i32, true, "2026-11".into()),
            (pb::ConsentChannel::Sms as i32, false, "2026-11".into()),
        ]
    );
    assert!(user.consents.iter().all(|c| c.record_time.is_some()));

    // A retry returns the first result; the same email in another case is taken.
    let again = identity
        .sign_up(request.clone())
        .await
        .expect("retry")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(again.id, user.id);
    let err = identity
        .sign_up(sign_up(&email.to_uppercase(), PASSWORD))
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    let mut other = request.clone();
    other.email = format!("other-{}", email);
    let err = identity.sign_up(other).await.expect_err("reused id");
    assert_eq!(bad_fields(&err), vec!["request_id"]);

    // Sign in with the email in any case.
    let signed = identity
        .sign_in(pb::SignInRequest {
            email: email.to_lowercase(),
            password: PASSWORD.into(),
        })
        .await
        .expect("sign in")
        .into_inner();
    let tokens = signed.tokens.expect("tokens");
    assert_eq!(signed.user.expect("user").id, user.id);
    assert_eq!(tokens.token_type, "Bearer");
    let claims = claims_of(&tokens.access_token);
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["roles"], serde_json::json!(["customer"]));
    let ttl = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(ttl, 15 * 60);
    assert_eq!(
        tokens.access_token_expire_time.expect("expiry").seconds,
        claims["exp"].as_i64().expect("exp")
    );

    // GetMe needs a token.
    let err = identity
        .get_me(pb::GetMeRequest {})
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        me(&app, &tokens.access_token).await.expect("me").id,
        user.id
    );

    // Consent changes are recorded with time and policy version; history is kept.
    let before = now();
    let update = pb::UpdateConsentRequest {
        request_id: rid(),
        consents: vec![
            choice(pb::ConsentChannel::Sms, true, "2026-12"),
            choice(pb::ConsentChannel::Email, false, "2026-12"),
        ],
    };
    let updated = app
        .identity_as(&tokens.access_token)
        .await
        .update_consent(update.clone())
        .await
        .expect("update consent")
        .into_inner()
        .user
        .expect("user");
    let me_now = me(&app, &tokens.access_token).await.expect("me");
    assert_eq!(me_now, updated);
    assert_eq!(me_now.consent_history.len(), 4);
    for c in &me_now.consents {
        assert_eq!(c.policy_version, "2026-12");
        assert!(c.record_time.as_ref().expect("time").seconds >= before);
    }
    let granted: Vec<(i32, bool)> = me_now
        .consents
        .iter()
        .map(|c| (c.channel, c.granted))
        .collect();
    assert_eq!(
        granted,
        vec![
            (pb::ConsentChannel::Email as i32, false),
            (pb::ConsentChannel::Sms as i32, true),
        ]
    );
    // A retry records nothing new.
    app.identity_as(&tokens.access_token)
        .await
        .update_consent(update)
        .await
        .expect("retry");
    assert_eq!(
        me(&app, &tokens.access_token)
            .await
            .expect("me")
            .consent_history
            .len(),
        4
    );
    let err = app
        .identity_as(&tokens.access_token)
        .await
        .update_consent(pb::UpdateConsentRequest {
            request_id: rid(),
            consents: vec![choice(pb::ConsentChannel::Unspecified, true, "v")],
        })
        .await
        .expect_err("bad channel");
    assert_eq!(bad_fields(&err), vec!["consents[0].channel"]);

    // The JWKS names the key that signed the token, as JSON and structured.
    let jwks = identity
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let kid = kid_of(&tokens.access_token);
    assert!(
        jwks.keys
            .iter()
            .any(|k| k.kid == kid && k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA")
    );
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.jwks_json).expect("jwks json");
    assert!(set.find(&kid).is_some());

    // The signing key is kept: tokens stay valid across a restart.
    let app = app.restart().await;
    assert_eq!(
        me(&app, &tokens.access_token)
            .await
            .expect("after restart")
            .id,
        user.id
    );
    app.stop().await;
}

async fn refresh(app: &TestApp, token: &str) -> Result<pb::Tokens, tonic::Status> {
    Ok(app
        .identity()
        .await
        .refresh(pb::RefreshRequest {
            refresh_token: token.into(),
        })
        .await?
        .into_inner()
        .tokens
        .expect("tokens"))
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let (email, first) = app.customer().await;
    let second = refresh(&app, &first.refresh_token).await.expect("rotate");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    me(&app, &second.access_token)
        .await
        .expect("new access token works");
    let third = refresh(&app, &second.refresh_token).await.expect("rotate");

    // Another sign-in is another family, untouched by what follows.
    let other = app.sign_in(&email, PASSWORD).await.expect("second device");

    // The first token again: theft. The whole family is revoked, the newest token included.
    let err = refresh(&app, &first.refresh_token)
        .await
        .expect_err("reused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = refresh(&app, &third.refresh_token)
        .await
        .expect_err("family revoked");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    refresh(&app, &other.refresh_token)
        .await
        .expect("the other family still works");
    let err = refresh(&app, "no-such-token").await.expect_err("unknown");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = refresh(&app, "").await.expect_err("empty");
    assert_eq!(bad_fields(&err), vec!["refresh_token"]);
    app.stop().await;
}

async fn sign_out_revokes_the_family(app: TestApp) {
    let (_, tokens) = app.customer().await;
    let next = refresh(&app, &tokens.refresh_token).await.expect("rotate");
    let request = pb::SignOutRequest {
        request_id: rid(),
        refresh_token: next.refresh_token.clone(),
    };
    let mut identity = app.identity().await;
    identity.sign_out(request.clone()).await.expect("sign out");
    identity.sign_out(request).await.expect("retry");
    let err = refresh(&app, &next.refresh_token)
        .await
        .expect_err("signed out");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .sign_out(pb::SignOutRequest {
            request_id: rid(),
            refresh_token: "unknown".into(),
        })
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = identity
        .sign_out(pb::SignOutRequest {
            request_id: String::new(),
            refresh_token: next.refresh_token,
        })
        .await
        .expect_err("no request id");
    assert_eq!(bad_fields(&err), vec!["request_id"]);
    app.stop().await;
}

async fn bad_tokens_are_unauthenticated(app: TestApp) {
    let (_, tokens) = app.customer().await;
    let user_id = claims_of(&tokens.access_token)["sub"]
        .as_str()
        .expect("sub")
        .to_owned();
    let kid = kid_of(&tokens.access_token);
    let lib = identity_lib(&app).await;
    let now = now();

    let expired = lib
        .sign_access_token(&user_id, &[Role::Customer], &[], now - 3_600, 900)
        .expect("sign")
        .token;
    let material = marquee_identity::tokens::KeyMaterial::generate(now).expect("key");
    let forged = marquee_identity::tokens::Keys::new(
        &marquee_identity::tokens::KeyMaterial {
            kid: kid.clone(),
            ..material
        },
        &[],
    )
    .expect("keys")
    .sign(&user_id, &[Role::Admin], &[], now, 900)
    .expect("sign")
    .token;
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user_id.clone(),
        iat: now,
        exp: now + 900,
        jti: rid(),
        roles: vec![Role::Admin],
        theatres: Vec::new(),
    };
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims_json = serde_json::to_value(&claims).expect("claims");
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims_json)
    );
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret anyone could guess"),
    )
    .expect("hs256");
    let tampered = {
        let mut parts: Vec<String> = tokens.access_token.split('.').map(str::to_owned).collect();
        let mut c = claims_of(&tokens.access_token);
        c["roles"] = serde_json::json!(["admin"]);
        parts[1] = b64(&c);
        parts.join(".")
    };

    for (what, token) in [
        ("malformed", "not-a-jwt".to_owned()),
        ("expired", expired),
        ("wrongly signed", forged),
        ("alg none", none),
        ("HS256", hs256),
        ("tampered claims", tampered),
    ] {
        let err = me(&app, &token).await.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
        let err = app
            .admin_as(Some(&token))
            .await
            .create_city(marquee_proto::catalog::v1::CreateCityRequest {
                request_id: rid(),
                city: None,
            })
            .await
            .expect_err(what);
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "catalog, {what}: {err:?}"
        );
    }

    // A valid token without the role.
    let err = app
        .identity_as(&tokens.access_token)
        .await
        .create_user(pb::CreateUserRequest {
            request_id: rid(),
            email: "someone@example.com".into(),
            phone: String::new(),
            password: PASSWORD.into(),
            roles: vec![pb::Role::Admin as i32],
            theatre_ids: Vec::new(),
        })
        .await
        .expect_err("customer creating an admin");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A fresh token from the same library verifies (the check above is not vacuous).
    let fresh = lib
        .sign_access_token(&user_id, &[Role::Customer], &[], now, 900)
        .expect("sign")
        .token;
    me(&app, &fresh).await.expect("valid token");
    app.stop().await;
}

async fn weak_passwords_and_bad_emails(app: TestApp) {
    let mut identity = app.identity().await;
    let cases = [
        ("short", "ok@example.com", "Sh0rt!", "password"),
        (
            "one class",
            "ok@example.com",
            "onlylowercaseletters",
            "password",
        ),
        (
            "digits only",
            "ok@example.com",
            "12345678901234",
            "password",
        ),
        (
            "the email",
            "Pass.Word1@example.com",
            "pass.word1@example.com",
            "password",
        ),
        ("bad email", "not-an-email", PASSWORD, "email"),
        ("no email", "", PASSWORD, "email"),
    ];
    for (what, email, password, field) in cases {
        let err = identity
            .sign_up(sign_up(email, password))
            .await
            .expect_err(what);
        assert_eq!(bad_fields(&err), vec![field], "{what}");
    }
    let mut bad_phone = sign_up("phone@example.com", PASSWORD);
    bad_phone.phone = "98765 43210".into();
    let err = identity.sign_up(bad_phone).await.expect_err("phone");
    assert_eq!(bad_fields(&err), vec!["phone"]);
    let mut bad_consent = sign_up("consent@example.com", PASSWORD);
    bad_consent.consents = vec![choice(pb::ConsentChannel::Email, true, "")];
    let err = identity.sign_up(bad_consent).await.expect_err("consent");
    assert_eq!(bad_fields(&err), vec!["consents[0].policy_version"]);
    app.stop().await;
}

async fn sign_in_failures_are_rate_limited(app: TestApp) {
    let (email, _) = app.customer().await;
    let unknown = format!("nobody-{}@example.com", &rid()[24..]);
    let mut wrong = Vec::new();
    let mut missing = Vec::new();
    for _ in 0..5 {
        wrong.push(
            app.sign_in(&email, "Wrong-pass-99")
                .await
                .expect_err("wrong"),
        );
        missing.push(
            app.sign_in(&unknown, "Wrong-pass-99")
                .await
                .expect_err("unknown"),
        );
    }
    for (w, m) in wrong.iter().zip(&missing) {
        assert_eq!(w.code(), Code::Unauthenticated, "{w:?}");
        assert_eq!((w.code(), w.message()), (m.code(), m.message()));
    }
    // The account is locked for a while: even the right password is refused, with a retry hint.
    let limited = app.sign_in(&email, PASSWORD).await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    let retry = limited
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        retry.as_secs() > 0 && retry.as_secs() <= 15 * 60,
        "{retry:?}"
    );
    let limited_unknown = app.sign_in(&unknown, PASSWORD).await.expect_err("limited");
    assert_eq!(
        (limited.code(), limited.message()),
        (limited_unknown.code(), limited_unknown.message())
    );

    // Per address: 20 failures from one address in the window, whatever the accounts.
    for i in 0..10 {
        let err = app
            .sign_in(&format!("spray-{i}@example.com"), "Wrong-pass-99")
            .await
            .expect_err("spray");
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    let (fresh, _) = {
        // Sign up works (it is not a sign-in); signing in from this address does not.
        let email = format!("fresh-{}@example.com", &rid()[24..]);
        app.identity()
            .await
            .sign_up(sign_up(&email, PASSWORD))
            .await
            .expect("sign up");
        (email, ())
    };
    let err = app.sign_in(&fresh, PASSWORD).await.expect_err("address");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    app.stop().await;
}

async fn admins_create_users_and_clients(app: TestApp) {
    let admin = app.admin_token().await;
    let mut as_admin = app.identity_as(&admin).await;

    // Staff scoped to theatres.
    let staff_email = format!("door-{}@example.com", &rid()[24..]);
    let staff = as_admin
        .create_user(pb::CreateUserRequest {
            request_id: rid(),
            email: staff_email.clone(),
            phone: String::new(),
            password: PASSWORD.into(),
            roles: vec![pb::Role::Staff as i32],
            theatre_ids: vec!["theatre-1".into(), "theatre-2".into()],
        })
        .await
        .expect("staff")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(staff.roles, vec![pb::Role::Staff as i32]);
    let staff_token = app
        .sign_in(&staff_email, PASSWORD)
        .await
        .expect("staff signs in")
        .access_token;
    let claims = claims_of(&staff_token);
    assert_eq!(claims["roles"], serde_json::json!(["staff"]));
    assert_eq!(
        claims["theatres"],
        serde_json::json!(["theatre-1", "theatre-2"])
    );

    // Admins create admins; the new admin can act as one.
    let admin2_email = format!("admin2-{}@example.com", &rid()[24..]);
    as_admin
        .create_user(pb::CreateUserRequest {
            request_id: rid(),
            email: admin2_email.clone(),
            phone: String::new(),
            password: PASSWORD.into(),
            roles: vec![pb::Role::Admin as i32],
            theatre_ids: Vec::new(),
        })
        .await
        .expect("admin");
    let admin2 = app
        .sign_in(&admin2_email, PASSWORD)
        .await
        .expect("sign in")
        .access_token;
    let mut as_admin2 = app.identity_as(&admin2).await;

    // Scope rules.
    for (what, roles, theatres, field) in [
        (
            "staff without theatres",
            vec![pb::Role::Staff],
            vec![],
            "theatre_ids",
        ),
        (
            "admin with theatres",
            vec![pb::Role::Admin],
            vec!["t".to_owned()],
            "theatre_ids",
        ),
        ("a service user", vec![pb::Role::Service], vec![], "roles"),
        ("no roles", vec![], vec![], "roles"),
    ] {
        let err = as_admin
            .create_user(pb::CreateUserRequest {
                request_id: rid(),
                email: format!("x-{}@example.com", &rid()[24..]),
                phone: String::new(),
                password: PASSWORD.into(),
                roles: roles.into_iter().map(|r| r as i32).collect(),
                theatre_ids: theatres,
            })
            .await
            .expect_err(what);
        assert_eq!(bad_fields(&err), vec![field], "{what}");
    }

    // A service client: the secret once, then client credentials.
    let create = pb::CreateClientRequest {
        request_id: rid(),
        display_name: "booking".into(),
        role: pb::Role::Service as i32,
        theatre_ids: Vec::new(),
    };
    let created = as_admin2
        .create_client(create.clone())
        .await
        .expect("client")
        .into_inner();
    let client = created.client.expect("client");
    assert!(!created.client_secret.is_empty());
    assert!(!client.revoked);
    let retry = as_admin2
        .create_client(create)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry.client.expect("client").client_id, client.client_id);
    assert!(retry.client_secret.is_empty(), "the secret is shown once");

    let mut anonymous = app.identity().await;
    let issued = anonymous
        .issue_client_token(pb::IssueClientTokenRequest {
            client_id: client.client_id.clone(),
            client_secret: created.client_secret.clone(),
        })
        .await
        .expect("client token")
        .into_inner();
    let claims = claims_of(&issued.access_token);
    assert_eq!(claims["sub"], client.client_id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["service"]));
    assert!(issued.expire_time.expect("expiry").seconds > now());
    // A service token is valid but is neither a user nor an admin.
    let err = me(&app, &issued.access_token)
        .await
        .expect_err("no account");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = app
        .admin_as(Some(&issued.access_token))
        .await
        .create_city(marquee_proto::catalog::v1::CreateCityRequest {
            request_id: rid(),
            city: None,
        })
        .await
        .expect_err("service is not admin");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let err = anonymous
        .issue_client_token(pb::IssueClientTokenRequest {
            client_id: client.client_id.clone(),
            client_secret: "wrong".into(),
        })
        .await
        .expect_err("wrong secret");
    assert_eq!(err.code(), Code::Unauthenticated);

    // A partner client carries its theatres.
    let partner = as_admin
        .create_client(pb::CreateClientRequest {
            request_id: rid(),
            display_name: "Galaxy Cinemas box office".into(),
            role: pb::Role::Partner as i32,
            theatre_ids: vec!["theatre-9".into()],
        })
        .await
        .expect("partner")
        .into_inner();
    let partner_token = anonymous
        .issue_client_token(pb::IssueClientTokenRequest {
            client_id: partner.client.expect("client").client_id,
            client_secret: partner.client_secret,
        })
        .await
        .expect("partner token")
        .into_inner()
        .access_token;
    assert_eq!(
        claims_of(&partner_token)["theatres"],
        serde_json::json!(["theatre-9"])
    );
    let err = as_admin
        .create_client(pb::CreateClientRequest {
            request_id: rid(),
            display_name: "a customer client".into(),
            role: pb::Role::Customer as i32,
            theatre_ids: Vec::new(),
        })
        .await
        .expect_err("role");
    assert_eq!(bad_fields(&err), vec!["role"]);

    // Revoked: no more tokens.
    let revoked = as_admin
        .revoke_client(pb::RevokeClientRequest {
            request_id: rid(),
            client_id: client.client_id.clone(),
        })
        .await
        .expect("revoke")
        .into_inner()
        .client
        .expect("client");
    assert!(revoked.revoked);
    let err = anonymous
        .issue_client_token(pb::IssueClientTokenRequest {
            client_id: client.client_id.clone(),
            client_secret: created.client_secret.clone(),
        })
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = as_admin
        .revoke_client(pb::RevokeClientRequest {
            request_id: rid(),
            client_id: "cli_nope".into(),
        })
        .await
        .expect_err("unknown client");
    assert_eq!(err.code(), Code::NotFound);

    // Only admins manage users and clients.
    let (_, customer) = app.customer().await;
    let mut as_customer = app.identity_as(&customer.access_token).await;
    let err = as_customer
        .create_client(pb::CreateClientRequest {
            request_id: rid(),
            display_name: "mine".into(),
            role: pb::Role::Service as i32,
            theatre_ids: Vec::new(),
        })
        .await
        .expect_err("customer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = as_customer
        .revoke_client(pb::RevokeClientRequest {
            request_id: rid(),
            client_id: client.client_id.clone(),
        })
        .await
        .expect_err("customer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = anonymous
        .create_client(pb::CreateClientRequest {
            request_id: rid(),
            display_name: "anon".into(),
            role: pb::Role::Service as i32,
            theatre_ids: Vec::new(),
        })
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = app
        .identity_as(&staff_token)
        .await
        .create_user(pb::CreateUserRequest {
            request_id: rid(),
            email: "x@example.com".into(),
            phone: String::new(),
            password: PASSWORD.into(),
            roles: vec![pb::Role::Customer as i32],
            theatre_ids: Vec::new(),
        })
        .await
        .expect_err("staff");
    assert_eq!(err.code(), Code::PermissionDenied);
    app.stop().await;
}
