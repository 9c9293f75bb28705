//! Payments end to end: orders through the Razorpay-style mock provider, signed webhooks over real
//! HTTP, manual capture, void, refunds and the ledger; on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use marquee_proto::{
    identity::v1 as idpb,
    payments::v1::{
        self as pay, mock_checkout_service_client::MockCheckoutServiceClient,
        payment_service_client::PaymentServiceClient,
    },
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

on_both_backends!(
    happy_path_capture_and_refunds,
    declines_and_no_answer,
    webhooks_are_verified_and_applied_once,
    void_and_bad_input,
    closed_orders_void_late_payments,
);

const THEATRE: &str = "0193a7c2-5f1e-7000-8000-0000000000aa";

/// A service's access token, through identity's client credentials.
async fn service_token(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    let created = app
        .identity_as(&admin)
        .await
        .create_client(idpb::CreateClientRequest {
            request_id: rid(),
            display_name: "booking".into(),
            role: idpb::Role::Service as i32,
            theatre_ids: vec![],
        })
        .await
        .expect("create client")
        .into_inner();
    let client = created.client.expect("client");
    app.identity()
        .await
        .issue_client_token(idpb::IssueClientTokenRequest {
            client_id: client.client_id,
            client_secret: created.client_secret,
        })
        .await
        .expect("client token")
        .into_inner()
        .access_token
}

async fn payments(app: &TestApp, token: &str) -> PaymentServiceClient<Authed> {
    PaymentServiceClient::with_interceptor(app.channel().await, Bearer::new(token))
}

fn order_request(amount: i64, fee: i64) -> pay::CreateOrderRequest {
    pay::CreateOrderRequest {
        request_id: rid(),
        amount: Some(inr(amount)),
        platform_fee: Some(inr(fee)),
        theatre_id: THEATRE.into(),
        receipt: format!("booking-{}", &rid()[24..]),
    }
}

async fn create(
    client: &mut PaymentServiceClient<Authed>,
    amount: i64,
    fee: i64,
) -> pay::CreateOrderResponse {
    client
        .create_order(order_request(amount, fee))
        .await
        .expect("create order")
        .into_inner()
}

async fn pay_with(
    app: &TestApp,
    provider_order_id: &str,
    outcome: pay::Outcome,
) -> pay::PayResponse {
    MockCheckoutServiceClient::new(app.channel().await)
        .pay(pay::PayRequest {
            provider_order_id: provider_order_id.into(),
            outcome: outcome as i32,
        })
        .await
        .expect("pay")
        .into_inner()
}

/// Waits (bounded) until the order satisfies `done`: webhooks arrive asynchronously.
async fn until(
    client: &mut PaymentServiceClient<Authed>,
    order_id: &str,
    done: impl Fn(&pay::Order) -> bool,
) -> pay::Order {
    let mut last = None;
    for _ in 0..100 {
        let order = client
            .get_payment(pay::GetPaymentRequest {
                order_id: order_id.into(),
            })
            .await
            .expect("get")
            .into_inner()
            .order
            .expect("order");
        if done(&order) {
            return order;
        }
        last = Some(order);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("order never reached the expected state: {last:?}");
}

fn status(o: &pay::Order) -> pay::OrderStatus {
    pay::OrderStatus::try_from(o.status).expect("status")
}

async fn ledger_balances(
    client: &mut PaymentServiceClient<Authed>,
    order_id: &str,
) -> Vec<pay::LedgerEntry> {
    let entries = client
        .list_ledger_entries(pay::ListLedgerEntriesRequest {
            order_id: order_id.into(),
        })
        .await
        .expect("ledger")
        .into_inner()
        .entries;
    let mut by_tx = std::collections::BTreeMap::<String, i64>::new();
    for e in &entries {
        *by_tx.entry(e.transaction_id.clone()).or_default() +=
            e.amount.as_ref().expect("amount").amount_minor;
    }
    assert!(
        by_tx.values().all(|sum| *sum == 0),
        "every transaction balances: {by_tx:?}"
    );
    entries
}

fn account_total(entries: &[pay::LedgerEntry], account: &str) -> i64 {
    entries
        .iter()
        .filter(|e| e.account == account)
        .map(|e| e.amount.as_ref().expect("amount").amount_minor)
        .sum()
}

async fn happy_path_capture_and_refunds(app: TestApp) {
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let created = create(&mut client, 50_000, 3_000).await;
    let order = created.order.expect("order");
    let checkout = created.checkout.expect("checkout");
    assert_eq!(status(&order), pay::OrderStatus::Created);
    assert_eq!(checkout.provider_order_id, order.provider_order_id);
    assert!(checkout.provider_order_id.starts_with("order_"));

    let paid = pay_with(&app, &checkout.provider_order_id, pay::Outcome::Success).await;
    assert_eq!(paid.status, pay::AttemptStatus::Authorized as i32);
    let order = until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    assert_eq!(order.attempts.len(), 1);
    assert_eq!(
        order.attempts[0].provider_payment_id,
        paid.provider_payment_id
    );

    let capture = pay::CapturePaymentRequest {
        request_id: rid(),
        order_id: order.id.clone(),
    };
    let captured = client
        .capture_payment(capture.clone())
        .await
        .expect("capture")
        .into_inner();
    let captured_order = captured.order.expect("order");
    assert_eq!(status(&captured_order), pay::OrderStatus::Captured);
    assert_eq!(
        captured_order.captured.as_ref().map(|m| m.amount_minor),
        Some(50_000)
    );
    // A retry is the first answer; a second capture books nothing new.
    let again = client
        .capture_payment(capture)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        again.order.expect("order").captured,
        captured_order.captured
    );
    client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: order.id.clone(),
        })
        .await
        .expect("capture again");
    let entries = ledger_balances(&mut client, &order.id).await;
    assert_eq!(account_total(&entries, "customer"), 50_000);
    assert_eq!(account_total(&entries, "platform_fee"), -3_000);
    assert_eq!(
        account_total(&entries, &format!("theatre_payable:{THEATRE}")),
        -47_000
    );
    // The provider's own payment.captured webhook arrives later and changes nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ledger_balances(&mut client, &order.id).await.len(),
        entries.len()
    );

    // Partial, then full refund; never more than captured.
    let partial = client
        .refund(pay::RefundRequest {
            request_id: rid(),
            order_id: order.id.clone(),
            amount: Some(inr(10_000)),
            reason: "one seat cancelled".into(),
        })
        .await
        .expect("partial refund")
        .into_inner();
    assert_eq!(
        status(partial.order.as_ref().expect("order")),
        pay::OrderStatus::PartiallyRefunded
    );
    let rest = client
        .refund(pay::RefundRequest {
            request_id: rid(),
            order_id: order.id.clone(),
            amount: None,
            reason: "show cancelled".into(),
        })
        .await
        .expect("refund the rest")
        .into_inner();
    let refunded = rest.order.expect("order");
    assert_eq!(status(&refunded), pay::OrderStatus::Refunded);
    assert_eq!(
        rest.refund.expect("refund").amount.map(|m| m.amount_minor),
        Some(40_000)
    );
    assert_eq!(refunded.refunds.len(), 2);
    let err = client
        .refund(pay::RefundRequest {
            request_id: rid(),
            order_id: order.id.clone(),
            amount: Some(inr(1)),
            reason: "too much".into(),
        })
        .await
        .expect_err("nothing left");
    assert_eq!(reason(&err), "REFUND_EXCEEDS_CAPTURE");
    let entries = ledger_balances(&mut client, &order.id).await;
    assert_eq!(
        account_total(&entries, "customer"),
        0,
        "all the customer's money went back"
    );
    assert_eq!(
        account_total(&entries, &format!("theatre_payable:{THEATRE}")),
        0
    );
    assert_eq!(account_total(&entries, "platform_fee"), 0);
    app.stop().await;
}

async fn declines_and_no_answer(app: TestApp) {
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let order = create(&mut client, 30_000, 0).await.order.expect("order");

    // A declined attempt is recorded and leaves the order payable.
    let declined = pay_with(&app, &order.provider_order_id, pay::Outcome::Decline).await;
    assert_eq!(declined.status, pay::AttemptStatus::Failed as i32);
    let after = until(&mut client, &order.id, |o| !o.attempts.is_empty()).await;
    assert_eq!(status(&after), pay::OrderStatus::Created);
    assert_eq!(after.attempts[0].status, pay::AttemptStatus::Failed as i32);
    assert!(!after.attempts[0].failure_reason.is_empty());
    let err = client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: order.id.clone(),
        })
        .await
        .expect_err("nothing authorised");
    assert_eq!(reason(&err), "NOT_AUTHORIZED");
    pay_with(&app, &order.provider_order_id, pay::Outcome::Success).await;
    let order = until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    assert_eq!(order.attempts.len(), 2);

    // No answer: the provider never calls back, the order stays as it was.
    let quiet = create(&mut client, 20_000, 0).await.order.expect("order");
    let pending = pay_with(&app, &quiet.provider_order_id, pay::Outcome::NoAnswer).await;
    assert_eq!(pending.status, pay::AttemptStatus::Pending as i32);
    let err = client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: quiet.id.clone(),
        })
        .await
        .expect_err("no answer, no capture");
    assert_eq!(reason(&err), "NOT_AUTHORIZED");
    app.stop().await;
}

/// POSTs a webhook over a raw HTTP/1.1 connection; returns the status code and body.
async fn post_webhook(app: &TestApp, body: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let sig = signature
        .map(|s| format!("x-razorpay-signature: {s}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /webhooks/payments HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{sig}\
         content-length: {}\r\nconnection: close\r\n\r\n",
        app.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

fn event(
    id: &str,
    name: &str,
    provider_order_id: &str,
    payment_id: &str,
    status: &str,
    amount: i64,
) -> Vec<u8> {
    serde_json::json!({
        "entity": "event",
        "id": id,
        "event": name,
        "created_at": now(),
        "payload": {"payment": {"entity": {
            "id": payment_id,
            "order_id": provider_order_id,
            "amount": amount,
            "currency": "INR",
            "status": status,
        }}}
    })
    .to_string()
    .into_bytes()
}

async fn webhooks_are_verified_and_applied_once(app: TestApp) {
    let secret = app
        .options
        .payments
        .webhook_secret
        .as_ref()
        .expect("the harness sets a webhook secret")
        .expose()
        .clone();
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let order = create(&mut client, 25_000, 0).await.order.expect("order");
    let authorized = event(
        "evt_1",
        "payment.authorized",
        &order.provider_order_id,
        "pay_manual1",
        "authorized",
        25_000,
    );
    let sign = |body: &[u8]| marquee_payments::domain::sign(secret.as_bytes(), body);

    // Bad or missing signature: refused, nothing changes.
    assert_eq!(
        post_webhook(&app, &authorized, Some(&"0".repeat(64)))
            .await
            .0,
        400
    );
    assert_eq!(post_webhook(&app, &authorized, None).await.0, 400);
    let tampered = event(
        "evt_1",
        "payment.authorized",
        &order.provider_order_id,
        "pay_manual1",
        "authorized",
        1,
    );
    assert_eq!(
        post_webhook(&app, &tampered, Some(&sign(&authorized)))
            .await
            .0,
        400
    );
    let unchanged = client
        .get_payment(pay::GetPaymentRequest {
            order_id: order.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .order
        .expect("order");
    assert!(unchanged.attempts.is_empty());

    // Signed: applied once; the duplicate changes nothing.
    let (code, text) = post_webhook(&app, &authorized, Some(&sign(&authorized))).await;
    assert_eq!(code, 200, "{text}");
    let (code, text) = post_webhook(&app, &authorized, Some(&sign(&authorized))).await;
    assert_eq!((code, text.as_str()), (200, "duplicate"));
    let o = until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    assert_eq!(o.attempts.len(), 1);

    // Out of order: a failure reported after the authorisation does not undo it.
    let failed = event(
        "evt_2",
        "payment.failed",
        &order.provider_order_id,
        "pay_manual1",
        "failed",
        25_000,
    );
    let (code, text) = post_webhook(&app, &failed, Some(&sign(&failed))).await;
    assert_eq!(code, 200);
    assert!(text.starts_with("unchanged"), "{text}");
    // A payment for an amount other than the order's is not applied.
    let wrong = event(
        "evt_3",
        "payment.authorized",
        &order.provider_order_id,
        "pay_manual2",
        "authorized",
        1,
    );
    let (_, text) = post_webhook(&app, &wrong, Some(&sign(&wrong))).await;
    assert!(text.starts_with("ignored"), "{text}");
    let o = until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    assert_eq!(o.attempts.len(), 1);
    assert_eq!(o.attempts[0].status, pay::AttemptStatus::Authorized as i32);
    app.stop().await;
}

async fn void_and_bad_input(app: TestApp) {
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let order = create(&mut client, 40_000, 2_000)
        .await
        .order
        .expect("order");
    pay_with(&app, &order.provider_order_id, pay::Outcome::Success).await;
    until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    let voided = client
        .void_payment(pay::VoidPaymentRequest {
            request_id: rid(),
            order_id: order.id.clone(),
            reason: "the hold expired before capture".into(),
        })
        .await
        .expect("void")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(status(&voided), pay::OrderStatus::Voided);
    let err = client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: order.id.clone(),
        })
        .await
        .expect_err("voided");
    assert_eq!(reason(&err), "NOT_AUTHORIZED");
    assert!(
        ledger_balances(&mut client, &order.id).await.is_empty(),
        "a void books nothing"
    );

    // Idempotency of CreateOrder.
    let req = order_request(10_000, 0);
    let a = client
        .create_order(req.clone())
        .await
        .expect("a")
        .into_inner();
    let b = client
        .create_order(req.clone())
        .await
        .expect("b")
        .into_inner();
    assert_eq!(a.order.expect("a").id, b.order.expect("b").id);
    let mut other = req;
    other.receipt = "something else".into();
    assert_eq!(
        bad_fields(&client.create_order(other).await.expect_err("reused")),
        ["request_id"]
    );

    // Bad input names the field.
    let mut bad = order_request(-5, 0);
    bad.theatre_id = "nope".into();
    assert_eq!(
        bad_fields(&client.create_order(bad).await.expect_err("bad")),
        ["amount.amount_minor", "theatre_id"]
    );
    let bad = order_request(100, 500);
    assert_eq!(
        bad_fields(&client.create_order(bad).await.expect_err("fee")),
        ["platform_fee.amount_minor"]
    );
    let err = client
        .get_payment(pay::GetPaymentRequest {
            order_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    // Only services may call payments.
    let anonymous = PaymentServiceClient::new(app.channel().await)
        .create_order(order_request(100, 0))
        .await
        .expect_err("anonymous");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let (_, customer) = app.customer().await;
    let denied = payments(&app, &customer.access_token)
        .await
        .create_order(order_request(100, 0))
        .await
        .expect_err("customer");
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.stop().await;
}

fn voided(o: &pay::Order) -> bool {
    o.attempts
        .iter()
        .any(|a| a.status() == pay::AttemptStatus::Voided)
}

/// A closed order (its booking is gone) never captures: an authorised payment is voided at
/// once, one that arrives later is voided when it does.
async fn closed_orders_void_late_payments(app: TestApp) {
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let close = |order_id: &str, request_id: &str| pay::CloseOrderRequest {
        request_id: request_id.to_owned(),
        order_id: order_id.to_owned(),
        reason: "booking expired".into(),
    };

    // Closed while unpaid, then paid late: voided when the payment's webhook arrives.
    let late = create(&mut client, 30_000, 1_500)
        .await
        .order
        .expect("order");
    let key = rid();
    let closed = client
        .close_order(close(&late.id, &key))
        .await
        .expect("close")
        .into_inner()
        .order
        .expect("order");
    assert!(closed.close_time.is_some());
    assert_eq!(closed.close_reason, "booking expired");
    // A retry answers the same; the key with another order is refused.
    let again = client
        .close_order(close(&late.id, &key))
        .await
        .expect("retry")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(again.close_time, closed.close_time);
    pay_with(&app, &late.provider_order_id, pay::Outcome::Success).await;
    let o = until(&mut client, &late.id, voided).await;
    assert_eq!(o.captured.as_ref().map(|m| m.amount_minor), Some(0));
    assert!(
        o.attempts
            .iter()
            .any(|a| a.failure_reason.contains("order closed")),
        "{o:?}"
    );
    let err = client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: late.id.clone(),
        })
        .await
        .expect_err("closed");
    assert_eq!(reason(&err), "ORDER_CLOSED");
    assert!(ledger_balances(&mut client, &late.id).await.is_empty());

    // Authorised, then closed: voided at once.
    let authorised = create(&mut client, 20_000, 1_000)
        .await
        .order
        .expect("order");
    pay_with(&app, &authorised.provider_order_id, pay::Outcome::Success).await;
    until(&mut client, &authorised.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    let closed = client
        .close_order(close(&authorised.id, &rid()))
        .await
        .expect("close")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(status(&closed), pay::OrderStatus::Voided);

    // A captured order is refunded, not closed.
    let captured = create(&mut client, 10_000, 500).await.order.expect("order");
    pay_with(&app, &captured.provider_order_id, pay::Outcome::Success).await;
    until(&mut client, &captured.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: captured.id.clone(),
        })
        .await
        .expect("capture");
    let err = client
        .close_order(close(&captured.id, &rid()))
        .await
        .expect_err("captured");
    assert_eq!(reason(&err), "ORDER_CAPTURED");

    // Bad input names the field; customers may not close orders.
    let err = client
        .close_order(pay::CloseOrderRequest {
            request_id: rid(),
            order_id: late.id.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_eq!(bad_fields(&err), ["reason"]);
    let (_, customer) = app.customer().await;
    let denied = payments(&app, &customer.access_token)
        .await
        .close_order(close(&late.id, &rid()))
        .await
        .expect_err("customer");
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.stop().await;
}

/// Events leave through the outbox: the relay publishes `payment.captured` to Redis Streams, a
/// consumer group gets it, an unacknowledged event is redelivered to the consumer that restarts,
/// and an acknowledged one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_payments_reach_redis_streams_at_least_once() {
    let Some(app) = TestApp::spawn("payments_events", Backend::Postgres, false).await else {
        return;
    };
    let ext = app.external.as_ref().expect("external servers");
    let redis = marquee_platform::redis::connect(&ext.redis_url)
        .await
        .expect("redis");
    let bus = marquee_platform::events::Bus::redis(redis, &ext.redis_prefix);
    let token = service_token(&app).await;
    let mut client = payments(&app, &token).await;
    let order = create(&mut client, 12_000, 500).await.order.expect("order");
    pay_with(&app, &order.provider_order_id, pay::Outcome::Success).await;
    until(&mut client, &order.id, |o| {
        status(o) == pay::OrderStatus::Authorized
    })
    .await;
    client
        .capture_payment(pay::CapturePaymentRequest {
            request_id: rid(),
            order_id: order.id.clone(),
        })
        .await
        .expect("capture");

    let next = |mut sub: marquee_platform::events::Subscription| async move {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("an event in time")
            .expect("bus");
        (sub, d)
    };
    let sub = bus
        .subscribe("payment.captured", "settlement", "worker-1")
        .await
        .expect("subscribe");
    let (sub, first) = next(sub).await;
    assert_eq!(first.event.aggregate_id, order.id);
    let payload: serde_json::Value = serde_json::from_str(&first.event.payload).expect("json");
    assert_eq!(payload["amount"]["amount_minor"], 12_000);
    drop(sub);
    // Not acknowledged: the same consumer gets it again after a restart.
    let sub = bus
        .subscribe("payment.captured", "settlement", "worker-1")
        .await
        .expect("subscribe");
    let (sub, again) = next(sub).await;
    assert_eq!(again.event.id, first.event.id);
    sub.ack(&again).await.expect("ack");
    drop(sub);
    let mut sub = bus
        .subscribe("payment.captured", "settlement", "worker-1")
        .await
        .expect("subscribe");
    let nothing = tokio::time::timeout(Duration::from_millis(1500), sub.next()).await;
    assert!(
        nothing.is_err(),
        "an acknowledged event is not redelivered: {nothing:?}"
    );
    app.stop().await;
}
