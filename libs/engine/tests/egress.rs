//! Safe egress through `Engine::run_node`: special addresses are refused in every
//! spelling, before any connection is made, and again on every redirect hop.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tyboo_engine::{EgressConfig, Engine, EngineConfig, ErrorClass};

use common::{context, engine_allowing, node, serve};

/// A listener that counts the connections it accepts, to prove none was attempted.
async fn counting_listener(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (address, accepted)
}

fn default_engine() -> Engine {
    Engine::new(EngineConfig::default()).expect("engine")
}

#[tokio::test]
async fn special_addresses_are_refused_before_connecting() {
    let (loopback_v4, accepted_v4) = counting_listener("127.0.0.1").await;
    let (loopback_v6, accepted_v6) = counting_listener("::1").await;
    let port = loopback_v4.port();
    let engine = default_engine();
    let urls = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{}/", loopback_v6.port()),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
    ];
    for url in urls {
        let spec = node("call", "http.request", json!({"url": url}));
        let started = Instant::now();
        let error = engine
            .run_node(&spec, &context("call", vec![]))
            .await
            .expect_err(&url);
        assert_eq!(
            error.class,
            ErrorClass::Permanent,
            "{url}: {}",
            error.message
        );
        assert!(
            error.message.contains("egress refused"),
            "{url}: {}",
            error.message
        );
        // A refusal is decided locally: no connect attempt, so no connect timeout either.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{url} took {:?}",
            started.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted_v4.load(Ordering::SeqCst), 0);
    assert_eq!(accepted_v6.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn llm_and_slack_nodes_are_guarded_too() {
    let engine = default_engine();
    let llm = node(
        "ask",
        "llm.chat",
        json!({"base_url": "http://169.254.169.254/v1", "model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let error = engine
        .run_node(&llm, &context("ask", vec![]))
        .await
        .expect_err("metadata");
    assert!(
        error.message.contains("cloud metadata"),
        "{}",
        error.message
    );

    let slack = node(
        "notify",
        "slack.message",
        json!({"webhook_url": "http://[::1]/hook", "text": "hi"}),
    );
    let error = engine
        .run_node(&slack, &context("notify", vec![]))
        .await
        .expect_err("loopback");
    assert!(error.message.contains("loopback"), "{}", error.message);
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_not_followed() {
    let (forbidden, accepted) = counting_listener("127.0.0.2").await;
    let target = format!("http://{forbidden}/stolen");
    let router = Router::new()
        .route(
            "/hop",
            get(move || {
                let target = target.clone();
                async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
            }),
        )
        .route(
            "/fine",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/landing")]) }),
        )
        .route(
            "/landing",
            get(|| async { axum::Json(json!({"landed": true})) }),
        );
    let allowed = serve(router).await;
    // Only the test server itself is allowed, not the rest of 127.0.0.0/8.
    let engine = engine_allowing(&["127.0.0.1/32"]);

    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{allowed}/fine")}),
    );
    let outcome = engine
        .run_node(&spec, &context("call", vec![]))
        .await
        .expect("same-host redirect is fine");
    let tyboo_engine::NodeOutcome::Completed { output, .. } = outcome else {
        panic!("completed")
    };
    assert_eq!(output["body"], json!({"landed": true}));

    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{allowed}/hop")}),
    );
    let error = engine
        .run_node(&spec, &context("call", vec![]))
        .await
        .expect_err("redirect refused");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert!(
        error.message.contains("redirect to http://127.0.0.2"),
        "{}",
        error.message
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirect_chains_are_bounded() {
    let router = Router::new().route(
        "/loop/{n}",
        get(
            |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("/loop/{}", n + 1))],
                )
            },
        ),
    );
    let address = serve(router).await;
    let engine = Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: vec!["127.0.0.1/32".to_owned()],
            max_redirects: 3,
            ..EgressConfig::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/loop/0")}),
    );
    let error = engine
        .run_node(&spec, &context("call", vec![]))
        .await
        .expect_err("too many");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert!(
        error.message.contains("more than 3 redirects"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn an_invalid_allow_range_fails_engine_construction() {
    let result = Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: vec!["not-a-range".to_owned()],
            ..EgressConfig::default()
        },
        ..EngineConfig::default()
    });
    assert!(result.is_err());
}

/// A credential's allowed hosts hold on every redirect hop, not only the first URL:
/// reqwest keeps custom headers across hosts, so an allowed host that redirects
/// elsewhere would otherwise hand the secret to a host its owner never named.
#[tokio::test]
async fn credential_hosts_are_checked_on_every_redirect_hop() {
    // The host the credential does not name; it counts the requests that reach it.
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let other = Router::new().route(
        "/landing",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({"landed": true}))
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.2:0").await.expect("bind");
    let other_address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, other).await;
    });
    let target = format!("http://{other_address}/landing");
    let allowed = serve(Router::new().route(
        "/hop",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
        }),
    ))
    .await;
    // Egress itself allows both hosts: only the credential's list may refuse.
    let engine = engine_allowing(&["127.0.0.0/8"]);
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{allowed}/hop")}),
    );
    let with_hosts = |hosts: Option<Vec<&str>>| {
        let mut run_context = context("call", vec![]);
        let mut credential = json!({"headers": {"X-Api-Key": "secret-header-value"}});
        if let Some(hosts) = hosts {
            credential["allowed_hosts"] = json!(hosts);
        }
        run_context.credential = Some(credential);
        run_context
    };

    let error = engine
        .run_node(&spec, &with_hosts(Some(vec!["127.0.0.1"])))
        .await
        .expect_err("the hop to a host the credential does not allow is refused");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert!(
        error
            .message
            .contains("the credential may not be sent to host `127.0.0.2`"),
        "{}",
        error.message
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);

    // Listing the second host, or listing none, lets the redirect through.
    for hosts in [Some(vec!["127.0.0.1", "127.0.0.2"]), None] {
        let outcome = engine
            .run_node(&spec, &with_hosts(hosts))
            .await
            .expect("redirect followed");
        let tyboo_engine::NodeOutcome::Completed { output, .. } = outcome else {
            panic!("completed")
        };
        assert_eq!(output["body"], json!({"landed": true}));
    }
    assert_eq!(reached.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn preflight_refuses_before_any_credential_is_needed() {
    let engine = default_engine();
    let call = |url: &str| node("call", "http.request", json!({"url": url}));
    let ctx = context("call", vec![]);
    // A refused address, spelled literally or through an expression.
    for url in [
        "http://127.0.0.1:9/",
        "http://{{ \"10.0.0.1\" }}/",
        "http://localhost:9/",
    ] {
        let error = engine
            .preflight(&call(url), &ctx, &[])
            .await
            .expect_err(url);
        assert_eq!(error.class, ErrorClass::Permanent, "{url}");
        assert!(
            error.message.contains("egress refused"),
            "{url}: {}",
            error.message
        );
    }
    // A host the credential does not allow.
    let pinned = ["api.example.com".to_owned()];
    let error = engine
        .preflight(&call("https://93.184.215.14/"), &ctx, &pinned)
        .await
        .unwrap_err();
    assert!(error.message.contains("allowed hosts"), "{}", error.message);
    // Allowed, or not an URL this check can judge: left to the run.
    assert!(
        engine
            .preflight(&call("https://api.example.com/x"), &ctx, &pinned)
            .await
            .is_ok()
    );
    assert!(
        engine
            .preflight(&call("not a url"), &ctx, &[])
            .await
            .is_ok()
    );
    let set = node("s", "set", json!({"values": {"a": 1}}));
    assert!(engine.preflight(&set, &ctx, &[]).await.is_ok());
}
