//! What every listener does, whatever it serves: health, reflection, gRPC-Web (binary and text,
//! over a raw HTTP/1.1 connection), CORS, deadlines, request ids, load shedding.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use marquee_proto::catalog::v1 as pb;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

on_both_backends!(
    health_and_reflection,
    grpc_web_over_http1,
    deadlines_and_request_ids
);

async fn health_and_reflection(app: TestApp) {
    let mut health = HealthClient::new(app.channel().await);
    for service in [
        "",
        "marquee.catalog.v1.CatalogService",
        "marquee.catalog.v1.CatalogAdminService",
    ] {
        // Health starts NOT_SERVING and flips once the database (and Redis) answer.
        let mut status = ServingStatus::Unknown;
        for _ in 0..50 {
            status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .expect("health")
                .into_inner()
                .status();
            if status == ServingStatus::Serving {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "marquee.nothing.v1.Nothing".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(err.code(), Code::NotFound);

    // Reflection, v1 and v1alpha, lists the services and resolves their files.
    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(app.channel().await);
        let requests = tokio_stream::iter(vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    "marquee.catalog.v1.CatalogService".into(),
                )),
            },
        ]);
        let mut responses = client
            .server_reflection_info(requests)
            .await
            .expect("reflection")
            .into_inner();
        let first = responses.message().await.expect("ok").expect("response");
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("unexpected {first:?}");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for expected in [
            "marquee.catalog.v1.CatalogService",
            "marquee.catalog.v1.CatalogAdminService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        let second = responses.message().await.expect("ok").expect("response");
        let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
            panic!("unexpected {second:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(app.channel().await);
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            }]))
            .await
            .expect("reflection v1alpha")
            .into_inner();
        let first = responses.message().await.expect("ok").expect("response");
        assert!(matches!(
            first.message_response,
            Some(MessageResponse::ListServicesResponse(_))
        ));
    }
    app.stop().await;
}

/// One HTTP/1.1 request on a fresh connection; returns the status line, headers and body.
async fn http1(app: &TestApp, request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    read.expect("response in time").expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end]).expect("hex").trim(),
            16,
        )
        .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Splits a gRPC-Web body into its data frames and its trailers.
fn frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut data = Vec::new();
    let mut trailers = String::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = rest[5..5 + len].to_vec();
        if flag & 0x80 != 0 {
            trailers = String::from_utf8(payload).expect("trailers");
        } else {
            data.push(payload);
        }
        rest = &rest[5 + len..];
    }
    (data, trailers)
}

fn grpc_web_request(app: &TestApp, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    grpc_web_request_with(app, path, content_type, "", body)
}

fn grpc_web_request_with(
    app: &TestApp,
    path: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\n\
         accept: {content_type}\r\nx-grpc-web: 1\r\n{extra_headers}\
         origin: http://localhost:5173\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        app.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// The grpc-status of a gRPC-Web response: in the headers (trailers-only) or the trailer frame.
fn grpc_status(headers: &[(String, String)], body: &[u8]) -> String {
    header(headers, "grpc-status")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let (_, trailers) = frames(body);
            trailers
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status:"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
}

fn frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

async fn grpc_web_over_http1(app: TestApp) {
    let v = venue(&app).await;
    let path = "/marquee.catalog.v1.CatalogService/GetTheatre";
    let request = pb::GetTheatreRequest {
        theatre_id: v.theatre.id.clone(),
    };

    // Binary.
    let (status, headers, body) = http1(
        &app,
        &grpc_web_request(&app, path, "application/grpc-web+proto", &frame(&request)),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/grpc-web+proto")
    );
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("*"),
        "CORS on the response"
    );
    let (data, trailers) = frames(&body);
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    let response = pb::GetTheatreResponse::decode(data[0].as_slice()).expect("decode");
    assert_eq!(response.theatre.expect("theatre").name, "Galaxy Cinemas");
    assert_eq!(response.screens.len(), 1);

    // Text (base64), as browsers without binary support send it.
    let b64 = base64::engine::general_purpose::STANDARD;
    let (status, headers, body) = http1(
        &app,
        &grpc_web_request(
            &app,
            path,
            "application/grpc-web-text",
            b64.encode(frame(&request)).as_bytes(),
        ),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/grpc-web-text+proto")
    );
    let text = String::from_utf8(body).expect("text");
    // Frames may be base64-encoded separately (each with its padding): decode quad by quad.
    assert_eq!(text.len() % 4, 0, "{text}");
    let mut decoded = Vec::new();
    for quad in text.as_bytes().chunks(4) {
        decoded.extend(b64.decode(quad).expect("base64"));
    }
    let (data, trailers) = frames(&decoded);
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    assert_eq!(
        pb::GetTheatreResponse::decode(data[0].as_slice())
            .expect("decode")
            .theatre
            .expect("theatre")
            .id,
        v.theatre.id
    );

    // An error travels in the trailers, with its details.
    let bad = pb::GetTheatreRequest {
        theatre_id: "not-a-uuid".into(),
    };
    let (_, headers, body) = http1(
        &app,
        &grpc_web_request(&app, path, "application/grpc-web+proto", &frame(&bad)),
    )
    .await;
    assert_eq!(grpc_status(&headers, &body), "3", "INVALID_ARGUMENT");

    // CORS preflight.
    let preflight = format!(
        "OPTIONS {path} HTTP/1.1\r\nhost: {}\r\norigin: http://localhost:5173\r\n\
         access-control-request-method: POST\r\n\
         access-control-request-headers: content-type,x-grpc-web,authorization\r\n\
         connection: close\r\n\r\n",
        app.addr
    );
    let (status, headers, _) = http1(&app, preflight.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let allowed = header(&headers, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-grpc-web") && allowed.contains("authorization"),
        "{allowed}"
    );
    let exposed = header(&headers, "access-control-expose-headers");
    assert!(exposed.is_none() || exposed.is_some_and(|e| e.contains("grpc-status")));
    app.stop().await;
}

async fn deadlines_and_request_ids(app: TestApp) {
    let v = venue(&app).await;
    let mut client = app.catalog().await;

    // A deadline that cannot be met is DEADLINE_EXCEEDED (not CANCELLED). Sent raw, since a
    // tonic client would give up on its own at the same instant.
    let search = pb::SearchShowsRequest {
        city_id: v.city.id.clone(),
        ..Default::default()
    };
    let (_, headers, body) = http1(
        &app,
        &grpc_web_request_with(
            &app,
            "/marquee.catalog.v1.CatalogService/SearchShows",
            "application/grpc-web+proto",
            "grpc-timeout: 1n\r\n",
            &frame(&search),
        ),
    )
    .await;
    assert_eq!(grpc_status(&headers, &body), "4", "DEADLINE_EXCEEDED");

    // A generous one is fine, and every response carries a request id (ours if we sent one).
    let mut req = tonic::Request::new(pb::GetTheatreRequest {
        theatre_id: v.theatre.id.clone(),
    });
    req.set_timeout(Duration::from_secs(10));
    req.metadata_mut()
        .insert("x-request-id", "test-request-42".parse().expect("value"));
    let resp = client.get_theatre(req).await.expect("theatre");
    assert_eq!(
        resp.metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("test-request-42")
    );
    let resp = client
        .get_theatre(pb::GetTheatreRequest {
            theatre_id: v.theatre.id.clone(),
        })
        .await
        .expect("theatre");
    let generated = resp
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("generated request id");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    app.stop().await;
}

/// Beyond the concurrency limit, calls are shed with RESOURCE_EXHAUSTED instead of queueing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_beyond_the_concurrency_limit() {
    let mut server = server_config();
    server.max_concurrent_requests = 1;
    let app = TestApp::spawn_with("load_shedding", Backend::Sqlite, true, server)
        .await
        .expect("sqlite is always available");
    let cities = app
        .catalog()
        .await
        .list_cities(pb::ListCitiesRequest::default())
        .await
        .expect("cities")
        .into_inner()
        .cities;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut client = app.catalog().await;
        let city = cities[i % cities.len()].id.clone();
        tasks.push(tokio::spawn(async move {
            client
                .search_shows(pb::SearchShowsRequest {
                    city_id: city,
                    query: format!("{}", i % 7),
                    ..Default::default()
                })
                .await
        }));
    }
    let (mut ok, mut shed) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => ok += 1,
            Err(e) if e.code() == Code::ResourceExhausted => shed += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(ok > 0, "some calls are served");
    assert!(shed > 0, "some calls are shed ({ok} served)");
    app.stop().await;
}

/// A tail of a topic gets every event published after it was made, in order, and none from
/// before; on Redis Streams and in-process alike.
async fn tails_follow_a_topic_from_now_on(bus: marquee_platform::events::Bus) {
    use marquee_platform::events::Event;
    let event = |id: &str| Event {
        id: id.to_owned(),
        topic: "tail.test".to_owned(),
        aggregate_id: format!("agg-{id}"),
        payload: "{}".to_owned(),
        occurred_at_ms: 1,
    };
    bus.publish(&event("before")).await.expect("publish");
    let mut first = bus.tail("tail.test").await.expect("tail");
    let mut second = bus.tail("tail.test").await.expect("tail");
    for id in ["1", "2", "3"] {
        bus.publish(&event(id)).await.expect("publish");
    }
    for tail in [&mut first, &mut second] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = tokio::time::timeout(Duration::from_secs(10), tail.next())
                .await
                .expect("an event in time")
                .expect("bus");
            assert_eq!(e.topic, "tail.test");
            seen.push((e.id, e.aggregate_id));
        }
        assert_eq!(
            seen,
            [("1", "agg-1"), ("2", "agg-2"), ("3", "agg-3")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        // Nothing more (over two of the Redis tail's 1 s blocking reads, which time out
        // empty): the event published before the tail was made is not in it.
        let more = tokio::time::timeout(Duration::from_millis(2_500), tail.next()).await;
        assert!(more.is_err(), "{more:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_tails_follow_a_topic_from_now_on() {
    tails_follow_a_topic_from_now_on(marquee_platform::events::Bus::in_process()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_tails_follow_a_topic_from_now_on() {
    let Some(url) = redis_url("redis_tails_follow_a_topic_from_now_on") else {
        return;
    };
    let redis = marquee_platform::redis::connect(&url).await.expect("redis");
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    tails_follow_a_topic_from_now_on(marquee_platform::events::Bus::redis(redis.clone(), &prefix))
        .await;
    delete_redis_prefix(&redis, &prefix)
        .await
        .expect("clean up");
}

/// The next event a tail gets, within 20 s: its aggregate id.
async fn next_published(tail: &mut marquee_platform::events::Tail) -> String {
    tokio::time::timeout(Duration::from_secs(20), tail.next())
        .await
        .expect("published without waiting for the relay's next look")
        .expect("bus")
        .aggregate_id
}

/// On PostgreSQL the outbox relay hears each commit that wrote events (the outbox's trigger
/// notifies, and the relay listens), so it publishes them at once: here its own look at the
/// outbox comes only every ten minutes, and the events still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_relays_publish_at_commit() {
    use marquee_platform::events;
    use sea_orm::TransactionTrait as _;
    use sea_orm_migration::MigratorTrait as _;
    const TEST: &str = "postgres_relays_publish_at_commit";
    let ext = match common::External::create().await {
        Ok(ext) => ext,
        Err(why) => {
            let _ = common::skip(TEST, &why);
            return;
        }
    };
    let db = marquee_platform::db::connect(&ext.database_url, "payments")
        .await
        .expect("postgres");
    marquee_payments::store::migration::Migrator::up(&db, None)
        .await
        .expect("migrate");
    let bus = events::Bus::in_process();
    let mut tail = bus.tail("relay.test").await.expect("tail");
    let stop = marquee_platform::CancellationToken::new();
    let relay = events::spawn_relay_polling(
        db.clone(),
        bus.clone(),
        stop.clone(),
        Some(Duration::from_secs(600)),
    );
    let commit = |ids: &'static [&'static str]| {
        let db = db.clone();
        async move {
            let txn = db.begin().await.expect("begin");
            for id in ids {
                events::record(&txn, "relay.test", id, &serde_json::json!({}))
                    .await
                    .expect("record");
            }
            txn.commit().await.expect("commit");
        }
    };
    // The first is published by the relay's first look (it listens before it looks) ...
    commit(&["first"]).await;
    assert_eq!(next_published(&mut tail).await, "first");
    // ... and these, committed while it waits for ten minutes, by the notifications alone.
    // (The pauses let the relay finish its look and go idle: committed during a look, an
    // event would be found by the next look, with no notification needed.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    commit(&["second", "third"]).await;
    assert_eq!(next_published(&mut tail).await, "second");
    assert_eq!(next_published(&mut tail).await, "third");
    tokio::time::sleep(Duration::from_secs(1)).await;
    commit(&["fourth"]).await;
    assert_eq!(next_published(&mut tail).await, "fourth");
    stop.cancel();
    let _ = relay.await;
    let _ = db.close().await;
    ext.drop_database().await;
}

/// Idempotency keys are kept for `server.idempotency_retention_secs` and then forgotten: a
/// fresh key is stored with its first result, and soon after its retention it is gone.
async fn idempotency_keys_are_forgotten_after_retention(test: &str, backend: Backend) {
    use sea_orm::{EntityTrait as _, PaginatorTrait as _};
    let server = marquee_platform::config::ServerConfig {
        idempotency_retention_secs: 3,
        ..server_config()
    };
    let Some(app) = TestApp::spawn_with(test, backend, false, server).await else {
        return;
    };
    let db = marquee_platform::db::connect(&app.database_url("catalog"), "catalog")
        .await
        .expect("catalog database");
    let keys = || async {
        marquee_platform::idempotency::entity::Entity::find()
            .count(&db)
            .await
            .expect("count keys")
    };
    let mut admin = app.admin().await;
    admin
        .create_city(pb::CreateCityRequest {
            request_id: rid(),
            city: Some(pb::City {
                id: String::new(),
                name: "Retentionpur".into(),
                region: "Test Pradesh".into(),
                country_code: "IN".into(),
                time_zone: "Asia/Kolkata".into(),
                currency_code: "INR".into(),
            }),
        })
        .await
        .expect("city");
    assert_eq!(keys().await, 1, "the key is stored with the city");
    // Purged by age, through an index on it.
    let backend = sea_orm::ConnectionTrait::get_database_backend(&db);
    let index = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() \
             AND indexname = 'ix_idempotency_keys_created_at'"
        }
        _ => {
            "SELECT 1 FROM sqlite_master WHERE type = 'index' \
             AND name = 'ix_idempotency_keys_created_at'"
        }
    };
    let found = sea_orm::ConnectionTrait::query_one_raw(
        &db,
        sea_orm::Statement::from_string(backend, index),
    )
    .await
    .expect("index query");
    assert!(found.is_some(), "no index on idempotency_keys.created_at");

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while keys().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the key outlived its retention"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_retention_sqlite() {
    idempotency_keys_are_forgotten_after_retention(
        "idempotency_retention::sqlite",
        Backend::Sqlite,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_retention_postgres() {
    idempotency_keys_are_forgotten_after_retention(
        "idempotency_retention::postgres",
        Backend::Postgres,
    )
    .await;
}
