//! Request rate limits and load shedding at the edge, in front of a real
//! tonic server over real loopback sockets. On the PostgreSQL + Redis pass
//! (`TYBOO_TEST_BACKEND=postgres`) the limiter is the shared one on Redis
//! (`TYBOO_TEST_REDIS_URL`) under a key prefix of each test's own; on the
//! embedded pass it is in-process.

mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{Method, StatusCode};
use prost::Message;
use tonic::Code;
use tyboo_edge::{EdgeConfig, RateLimits};
use tyboo_limits::{CachedLimits, Limits, LimitsConfig, LimitsError, LimitsSource};
use tyboo_proto::tenancy::ListMembersRequest;
use tyboo_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use tyboo_ratelimit::{Quota, RateLimitConfig, RedisLimiterConfig};
use uuid::Uuid;

use support::{
    GOOD_KEY, OTHER_WORKSPACE, OTHER_WORKSPACE_KEY, SECOND_KEY, SLOW_CALL, Sandbox, WORKSPACE,
    bearer,
};

const MEMBERS: &str = "/v1/workspaces/01a24fd1-cb17-7725-9e75-ffc4fc5f8878/members";

fn on_redis() -> bool {
    std::env::var("TYBOO_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

fn redis_url() -> String {
    std::env::var("TYBOO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Limits per workspace; a workspace not listed gets the defaults.
struct PerWorkspace(HashMap<Uuid, Limits>);

#[async_trait]
impl LimitsSource for PerWorkspace {
    async fn limits(&self, workspace_id: Uuid) -> Result<Limits, LimitsError> {
        Ok(self.0.get(&workspace_id).cloned().unwrap_or_default())
    }
}

fn workspace(id: &str) -> Uuid {
    Uuid::parse_str(id).expect("a workspace id")
}

/// Limits with the given per-key and per-workspace bursts and a sustained
/// rate of one per 10 s, so that nothing refills within a test.
fn limits(api_key_burst: u32, workspace_burst: u32) -> Limits {
    Limits {
        api_key_requests_per_minute: 6,
        api_key_burst,
        workspace_requests_per_minute: 6,
        workspace_burst,
        ..Limits::default()
    }
}

/// An edge config whose shared limiter (Redis pass) writes under a prefix
/// of this test's own.
fn config_with(rate_limits: RateLimitConfig) -> EdgeConfig {
    EdgeConfig {
        rate_limits: RateLimitConfig {
            redis: RedisLimiterConfig {
                key_prefix: format!("edge-test-{}", Uuid::now_v7().simple()),
                ..RedisLimiterConfig::default()
            },
            ..rate_limits
        },
        ..EdgeConfig::default()
    }
}

/// The rate limits of `config` over this pass's backend, with each
/// workspace's limits from `per_workspace`.
async fn rate_limits(
    config: &EdgeConfig,
    redis: Option<&str>,
    per_workspace: HashMap<Uuid, Limits>,
) -> RateLimits {
    let limits = CachedLimits::new(
        Arc::new(PerWorkspace(per_workspace)),
        &LimitsConfig::default(),
    );
    RateLimits::connect(config, redis, limits)
        .await
        .expect("the limiter starts")
}

/// A sandbox on this pass's backend.
async fn sandbox(config: EdgeConfig, per_workspace: HashMap<Uuid, Limits>) -> Sandbox {
    let url = redis_url();
    let redis = on_redis().then_some(url.as_str());
    let limits = rate_limits(&config, redis, per_workspace).await;
    Sandbox::start_with(config, Some(limits)).await
}

async fn clean(config: &EdgeConfig) {
    if on_redis() {
        tyboo_redis::testing::delete_keys(&redis_url(), &config.rate_limits.redis.key_prefix).await;
    }
}

async fn members(sandbox: &Sandbox, key: &str) -> support::Answer {
    sandbox
        .call(Method::GET, MEMBERS, &[("authorization", &bearer(key))], "")
        .await
}

fn header<'a>(answer: &'a support::Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii")
}

const SECOND_ADDRESS: &str = "127.0.0.2";

fn second_address() -> IpAddr {
    SECOND_ADDRESS.parse().expect("an address")
}

#[tokio::test]
async fn a_burst_past_the_api_key_limit_is_429_with_retry_after_and_ratelimit_headers() {
    let config = config_with(RateLimitConfig::default());
    let per_workspace = HashMap::from([(workspace(WORKSPACE), limits(5, 1_000))]);
    let sandbox = sandbox(config.clone(), per_workspace).await;
    let mut allowed = 0;
    for expected_remaining in (0..5).rev() {
        let answer = members(&sandbox, GOOD_KEY).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        assert_eq!(header(&answer, "ratelimit-policy"), "\"default\";q=5;w=60");
        assert!(
            header(&answer, "ratelimit")
                .starts_with(&format!("\"default\";r={expected_remaining};")),
            "{}",
            header(&answer, "ratelimit")
        );
        allowed += 1;
    }
    assert_eq!(allowed, 5, "exactly the burst is allowed");
    let refused = members(&sandbox, GOOD_KEY).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.json
    );
    assert_eq!(refused.json["code"], "RESOURCE_EXHAUSTED");
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("too many requests for this API key"),
        "{}",
        refused.json
    );
    assert!(refused.json["request_id"].is_string());
    let retry_after: u64 = header(&refused, "retry-after").parse().expect("seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "ratelimit-policy"), "\"default\";q=5;w=60");
    assert!(header(&refused, "ratelimit").starts_with("\"default\";r=0;"));
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn two_keys_of_one_workspace_share_its_limit_and_another_workspace_is_unaffected() {
    let config = config_with(RateLimitConfig::default());
    let per_workspace = HashMap::from([
        (workspace(WORKSPACE), limits(100, 4)),
        (workspace(OTHER_WORKSPACE), limits(100, 4)),
    ]);
    let sandbox = sandbox(config.clone(), per_workspace).await;
    for key in [GOOD_KEY, SECOND_KEY, GOOD_KEY, SECOND_KEY] {
        let answer = members(&sandbox, key).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    for key in [GOOD_KEY, SECOND_KEY] {
        let refused = members(&sandbox, key).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused.json["message"]
                .as_str()
                .unwrap()
                .contains("too many requests for this workspace"),
            "{}",
            refused.json
        );
    }
    for _ in 0..4 {
        let answer = members(&sandbox, OTHER_WORKSPACE_KEY).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn a_workspace_override_changes_its_quota() {
    let config = config_with(RateLimitConfig::default());
    let per_workspace = HashMap::from([
        (workspace(WORKSPACE), limits(2, 1_000)),
        (workspace(OTHER_WORKSPACE), limits(7, 1_000)),
    ]);
    let sandbox = sandbox(config.clone(), per_workspace).await;
    let mut counts = Vec::new();
    for key in [GOOD_KEY, OTHER_WORKSPACE_KEY] {
        let mut allowed = 0;
        for _ in 0..10 {
            let answer = members(&sandbox, key).await;
            match answer.status {
                StatusCode::OK => allowed += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("{other}: {}", answer.json),
            }
        }
        counts.push(allowed);
    }
    assert_eq!(counts, [2, 7]);
    let refused = members(&sandbox, OTHER_WORKSPACE_KEY).await;
    assert_eq!(header(&refused, "ratelimit-policy"), "\"default\";q=7;w=60");
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn failed_authentications_block_the_address_even_for_a_valid_key_until_refill() {
    // Three failures, then one more every 300 ms.
    let config = config_with(RateLimitConfig {
        failed_auth_per_address: Quota::per_minute(200, 3).expect("valid"),
        ..RateLimitConfig::default()
    });
    let sandbox = sandbox(config.clone(), HashMap::new()).await;
    for guess in 0..3 {
        let answer = members(&sandbox, &format!("tyb_guess_{guess}")).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "guess {guess}: {}",
            answer.json
        );
    }
    let calls_before = sandbox.authenticate_calls();
    // Over the budget: a valid key from the same address is refused before
    // it reaches tenancy.
    let refused = members(&sandbox, GOOD_KEY).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.json
    );
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("too many failed authentications"),
        "{}",
        refused.json
    );
    assert_eq!(header(&refused, "retry-after"), "1");
    let guess = members(&sandbox, "tyb_guess_4").await;
    assert_eq!(guess.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sandbox.authenticate_calls(),
        calls_before,
        "no exchange while blocked"
    );

    // Another address is unaffected.
    let elsewhere = sandbox
        .call_from(
            second_address(),
            Method::GET,
            MEMBERS,
            &[("authorization", &bearer(GOOD_KEY))],
            "",
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.json);

    // One unit back after 300 ms: a valid key gets through again, and the
    // next wrong guess spends the unit and blocks again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let valid = members(&sandbox, SECOND_KEY).await;
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.json);
    let guess = members(&sandbox, "tyb_guess_5").await;
    assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
    let guess = members(&sandbox, "tyb_guess_6").await;
    assert_eq!(guess.status, StatusCode::TOO_MANY_REQUESTS);
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn valid_keys_exchanged_at_once_from_one_address_are_never_taken_for_failures() {
    // The requests below miss the token cache at the same time, so each
    // one probes the address's failed-authentication block at once, as a
    // busy client or a NAT does; none may be refused for failures it never
    // made. A tight failure budget shows that a probe spends none of it.
    let config = config_with(RateLimitConfig {
        failed_auth_per_address: Quota::per_minute(1, 1).expect("valid"),
        ..RateLimitConfig::default()
    });
    let sandbox = sandbox(config.clone(), HashMap::new()).await;
    let answers = futures::future::join_all((0..64).map(|index| {
        let key = [GOOD_KEY, SECOND_KEY][index % 2];
        let sandbox = &sandbox;
        async move { members(sandbox, key).await }
    }))
    .await;
    for (index, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "request {index}: {}",
            answer.json
        );
    }
    // The budget is still whole: one wrong guess is told its key is
    // invalid, and only then is the address blocked.
    let guess = members(&sandbox, "tyb_guess_0").await;
    assert_eq!(guess.status, StatusCode::UNAUTHORIZED, "{}", guess.json);
    let blocked = members(&sandbox, "tyb_guess_1").await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn a_brute_force_runs_at_the_configured_failures_per_address() {
    // 600 a minute is one every 100 ms; a burst of 2.
    let config = config_with(RateLimitConfig {
        failed_auth_per_address: Quota::per_minute(600, 2).expect("valid"),
        ..RateLimitConfig::default()
    });
    let sandbox = sandbox(config.clone(), HashMap::new()).await;
    let started = std::time::Instant::now();
    let mut guesses = 0u32;
    while started.elapsed() < Duration::from_millis(1_000) {
        members(&sandbox, &format!("tyb_guess_{guesses}")).await;
        guesses += 1;
    }
    let exchanged = u32::try_from(sandbox.authenticate_calls()).expect("small");
    // The burst, then at most one per 100 ms over the second (allowing a
    // unit of slack for the boundaries).
    assert!(guesses > 50, "the client guessed flat out: {guesses}");
    assert!(
        (2..=13).contains(&exchanged),
        "{exchanged} of {guesses} guesses reached tenancy"
    );
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn invitation_accepts_are_limited_per_address() {
    let config = config_with(RateLimitConfig {
        invitation_accept_per_address: Quota::per_minute(1, 2).expect("valid"),
        ..RateLimitConfig::default()
    });
    let sandbox = sandbox(config.clone(), HashMap::new()).await;
    let accept = |from: Option<IpAddr>| {
        let sandbox = &sandbox;
        async move {
            let body = r#"{"token": "inv_guess"}"#;
            match from {
                None => {
                    sandbox
                        .call(Method::POST, "/v1/invitations:accept", &[], body)
                        .await
                }
                Some(from) => {
                    sandbox
                        .call_from(from, Method::POST, "/v1/invitations:accept", &[], body)
                        .await
                }
            }
        }
    };
    for _ in 0..2 {
        let answer = accept(None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    }
    let refused = accept(None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap()
            .contains("invitation accepts"),
        "{}",
        refused.json
    );
    assert!(refused.headers.contains_key("retry-after"));
    let elsewhere = accept(Some(second_address())).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.json);
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn webhook_deliveries_are_limited_per_url_and_path() {
    let config = config_with(RateLimitConfig {
        webhook_per_workspace_path: Quota::per_minute(1, 3).expect("valid"),
        ..RateLimitConfig::default()
    });
    let sandbox = sandbox(config.clone(), HashMap::new()).await;
    let deliver = |path: &'static str| {
        let sandbox = &sandbox;
        async move { sandbox.call(Method::POST, path, &[], "{}").await }
    };
    for _ in 0..3 {
        let answer = deliver("/hooks/whk_one/orders").await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.json);
        assert!(answer.headers.contains_key("ratelimit"));
    }
    let refused = deliver("/hooks/whk_one/orders").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.json
    );
    assert_eq!(refused.json["code"], "RESOURCE_EXHAUSTED");
    assert!(refused.headers.contains_key("retry-after"));
    // Another path of the same URL, and another URL, have their own.
    for path in ["/hooks/whk_one/refunds", "/hooks/whk_two/orders"] {
        let answer = deliver(path).await;
        assert_eq!(
            answer.status,
            StatusCode::ACCEPTED,
            "{path}: {}",
            answer.json
        );
    }
    sandbox.shutdown().await;
    clean(&config).await;
}

/// `google.rpc.Status` and `google.rpc.RetryInfo`, read back as any gRPC
/// client library reads them.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<prost_types::Duration>,
}

#[tokio::test]
async fn native_grpc_is_resource_exhausted_with_retry_info() {
    let config = config_with(RateLimitConfig::default());
    let per_workspace = HashMap::from([(workspace(WORKSPACE), limits(2, 1_000))]);
    let sandbox = sandbox(config.clone(), per_workspace).await;
    let mut client = TenancyServiceClient::new(sandbox.grpc_channel().await);
    let call = || {
        let mut request = tonic::Request::new(ListMembersRequest {
            workspace_id: "01a24fd1-cb17-7725-9e75-ffc4fc5f8878".into(),
        });
        request
            .metadata_mut()
            .insert("authorization", bearer(GOOD_KEY).parse().expect("metadata"));
        request
    };
    for _ in 0..2 {
        let response = client.list_members(call()).await.expect("allowed");
        assert!(response.metadata().get("ratelimit").is_some());
    }
    let status = client.list_members(call()).await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.metadata().get("retry-after").is_some());
    let details = RpcStatus::decode(status.details()).expect("a google.rpc.Status");
    assert_eq!(details.code, Code::ResourceExhausted as i32);
    assert_eq!(details.details.len(), 1);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let retry = RetryInfo::decode(details.details[0].value.as_slice()).expect("a RetryInfo");
    let delay = retry.retry_delay.expect("a delay");
    // One unit per 10 s.
    assert!(
        (1..=10).contains(&(delay.seconds + i64::from(delay.nanos > 0))),
        "{delay:?}"
    );
    sandbox.shutdown().await;
    clean(&config).await;
}

#[tokio::test]
async fn the_in_flight_cap_holds_at_its_edge() {
    let config = EdgeConfig {
        max_in_flight_requests: 3,
        ..config_with(RateLimitConfig::default())
    };
    let sandbox = Arc::new(sandbox(config.clone(), HashMap::new()).await);
    // Exchanged once, so the slow calls hold their places only for the
    // slow upstream.
    assert_eq!(members(&sandbox, GOOD_KEY).await.status, StatusCode::OK);
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let sandbox = Arc::clone(&sandbox);
            tokio::spawn(async move {
                sandbox
                    .call(
                        Method::GET,
                        "/v1/me",
                        &[("authorization", &bearer(GOOD_KEY))],
                        "",
                    )
                    .await
                    .status
            })
        })
        .collect();
    tokio::time::sleep(SLOW_CALL / 4).await;
    let shed = members(&sandbox, GOOD_KEY).await;
    assert_eq!(
        shed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        shed.json
    );
    assert_eq!(shed.json["code"], "UNAVAILABLE");
    assert_eq!(header(&shed, "retry-after"), "1");
    let health = sandbox.call(Method::GET, "/healthz", &[], "").await;
    assert_eq!(health.status, StatusCode::OK, "health is never shed");
    let mut client = TenancyServiceClient::new(sandbox.grpc_channel().await);
    let mut request = tonic::Request::new(ListMembersRequest::default());
    request
        .metadata_mut()
        .insert("authorization", bearer(GOOD_KEY).parse().expect("metadata"));
    let status = client.list_members(request).await.expect_err("shed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    for call in slow {
        assert_eq!(
            call.await.expect("call"),
            StatusCode::OK,
            "the cap admits 3"
        );
    }
    assert_eq!(
        members(&sandbox, GOOD_KEY).await.status,
        StatusCode::OK,
        "places come back"
    );
    Arc::try_unwrap(sandbox)
        .ok()
        .expect("the only holder")
        .shutdown()
        .await;
    clean(&config).await;
}

#[tokio::test]
async fn two_edges_on_one_redis_share_one_limit() {
    if !on_redis() {
        return;
    }
    let config = config_with(RateLimitConfig::default());
    let url = redis_url();
    let per_workspace = || HashMap::from([(workspace(WORKSPACE), limits(6, 1_000))]);
    let first = Sandbox::start_with(
        config.clone(),
        Some(rate_limits(&config, Some(&url), per_workspace()).await),
    )
    .await;
    let second = Sandbox::start_with(
        config.clone(),
        Some(rate_limits(&config, Some(&url), per_workspace()).await),
    )
    .await;
    let mut allowed = 0;
    for _ in 0..6 {
        for edge in [&first, &second] {
            if members(edge, GOOD_KEY).await.status == StatusCode::OK {
                allowed += 1;
            }
        }
    }
    assert_eq!(allowed, 6, "one burst of 6 across both edges");
    first.shutdown().await;
    second.shutdown().await;
    clean(&config).await;
}

fn redis_server_installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_and_limited_locally_while_redis_is_down() {
    if !redis_server_installed() {
        eprintln!("redis-server is not on PATH; skipping");
        return;
    }
    let port = free_port();
    let mut server = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("redis://127.0.0.1:{port}");
    let config = config_with(RateLimitConfig {
        fallback_share: 0.5,
        ..RateLimitConfig::default()
    });
    let per_workspace = HashMap::from([
        (workspace(WORKSPACE), limits(8, 1_000)),
        (workspace(OTHER_WORKSPACE), limits(8, 1_000)),
    ]);
    let limits = rate_limits(&config, Some(&url), per_workspace).await;
    let sandbox = Sandbox::start_with(config.clone(), Some(limits)).await;

    // On Redis: 3 of GOOD_KEY's 8.
    for _ in 0..3 {
        assert_eq!(members(&sandbox, GOOD_KEY).await.status, StatusCode::OK);
    }
    server.start_kill().expect("kill redis-server");
    server.wait().await.expect("redis-server gone");

    // Redis is gone: every request is still answered, and each key gets
    // the local share of its burst (4 of 8), fresh for the outage.
    let mut statuses = HashMap::new();
    for _ in 0..10 {
        let answer = members(&sandbox, OTHER_WORKSPACE_KEY).await;
        *statuses.entry(answer.status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        HashMap::from([(StatusCode::OK, 4), (StatusCode::TOO_MANY_REQUESTS, 6)]),
    );
    let mut allowed = 0;
    for _ in 0..10 {
        let answer = members(&sandbox, GOOD_KEY).await;
        assert!(
            [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(&answer.status),
            "{}: {}",
            answer.status,
            answer.json
        );
        if answer.status == StatusCode::OK {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 4);
    sandbox.shutdown().await;
}
