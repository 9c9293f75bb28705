//! The `marquee` binary as a newcomer runs it: `marquee up` on a data directory, called over
//! gRPC, stopped with SIGTERM, started again on the same data; and a bad setting refused at
//! start-up with its name.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tonic::transport::Channel;

fn marquee() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marquee"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("MARQUEE_CONFIG")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `marquee up` and returns it with the address it printed.
fn up(data: &std::path::Path) -> (Child, String) {
    let mut child = marquee()
        .args(["up", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn marquee up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("marquee up printed where it serves")
            .expect("line");
        if let Some(rest) = line.strip_prefix("marquee is serving on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

async fn terminate(mut child: Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "marquee exits cleanly on SIGTERM: {status}"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("marquee did not stop within 10 s of SIGTERM");
}

async fn city_ids(addr: &str) -> Vec<String> {
    use marquee_proto::catalog::v1::{
        ListCitiesRequest, catalog_service_client::CatalogServiceClient,
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    CatalogServiceClient::new(channel)
        .list_cities(ListCitiesRequest::default())
        .await
        .expect("list cities")
        .into_inner()
        .cities
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_demo_data_and_restarts_on_the_same_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, addr) = up(dir.path());
    let first = city_ids(&addr).await;
    assert!(first.len() >= 3, "demo cities: {first:?}");
    terminate(child).await;

    let (child, addr) = up(dir.path());
    let second = city_ids(&addr).await;
    assert_eq!(first, second, "same data, seeded once");
    terminate(child).await;
}

#[test]
fn a_bad_setting_is_refused_with_its_name() {
    let out = marquee()
        .args(["up", "--data", "/tmp/unused"])
        .env("MARQUEE_SERVER__REQUEST_TIMEOUT_MS", "soon")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.request_timeout_ms"),
        "the error names the setting: {stderr}"
    );
}

#[test]
fn serve_without_a_database_says_what_is_missing() {
    let out = marquee().args(["serve", "catalog"]).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_signs_in_and_tokens_survive_a_restart() {
    use std::io::Write as _;

    use marquee_proto::identity::v1::{
        GetMeRequest, SignInRequest, identity_service_client::IdentityServiceClient,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = marquee()
        .args([
            "admin",
            "create",
            "--email",
            "root@example.com",
            "--password-stdin",
            "--data",
        ])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn admin create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Admin-pass-2026\n")
        .expect("write password");
    let out = child.wait_with_output().expect("admin create");
    assert!(out.status.success(), "{out:?}");

    let connect = |addr: String| async move {
        IdentityServiceClient::new(
            Channel::from_shared(format!("http://{addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect"),
        )
    };
    let (child, addr) = up(dir.path());
    let token = connect(addr)
        .await
        .sign_in(SignInRequest {
            email: "root@example.com".into(),
            password: "Admin-pass-2026".into(),
        })
        .await
        .expect("the admin signs in")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    terminate(child).await;

    let (child, addr) = up(dir.path());
    let mut request = tonic::Request::new(GetMeRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    let me = connect(addr)
        .await
        .get_me(request)
        .await
        .expect("the token is still valid")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(me.email, "root@example.com");
    terminate(child).await;

    let out = marquee()
        .args([
            "admin",
            "create",
            "--email",
            "weak@example.com",
            "--password-stdin",
            "--data",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}
