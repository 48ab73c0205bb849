//! Outside calls under their circuit breaker (`Engine::run_node_guarded`):
//! what each outcome records, and what an open breaker does to the call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use tyboo_breaker::{BreakerConfig, BreakerKey, CircuitBreakers, InProcessBreakers, SystemClock};
use tyboo_engine::ErrorClass;

use common::{context, loopback_engine, node, serve};

fn breakers() -> Arc<dyn CircuitBreakers> {
    Arc::new(InProcessBreakers::new(&BreakerConfig::default(), Arc::new(SystemClock)).unwrap())
}

async fn upstream() -> String {
    let router = Router::new()
        .route("/ok", get(|| async { "{}" }))
        .route(
            "/unavailable",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/throttled",
            get(|| async { StatusCode::TOO_MANY_REQUESTS }),
        )
        .route("/unauthorized", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        );
    serve(router).await.to_string()
}

#[tokio::test]
async fn only_an_unhealthy_target_counts_against_its_breaker() {
    let engine = loopback_engine();
    let breakers = breakers();
    let host = upstream().await;
    let key = BreakerKey::new("http.request", host.clone());
    let cases = [
        ("ok", false),
        ("unavailable", true),
        ("throttled", true),
        ("unauthorized", false),
        ("missing", false),
    ];
    for (calls, (path, counts)) in cases.iter().enumerate() {
        let before = breakers.get(&key).await.unwrap().failures_in_window;
        let spec = node(
            "call",
            "http.request",
            json!({"url": format!("http://{host}/{path}")}),
        );
        let _ = engine
            .run_node_guarded(&spec, &context("call", vec![]), Some(&breakers))
            .await;
        let after = breakers.get(&key).await.unwrap();
        assert_eq!(after.calls_in_window, calls as u64 + 1, "{path}");
        assert_eq!(
            after.failures_in_window - before,
            u64::from(*counts),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_call_cut_by_the_node_timeout_and_a_refused_connection_count() {
    let engine = loopback_engine();
    let breakers = breakers();
    let host = upstream().await;
    let mut slow = node(
        "call",
        "http.request",
        json!({"url": format!("http://{host}/slow")}),
    );
    slow.timeout_ms = Some(100);
    let error = engine
        .run_node_guarded(&slow, &context("call", vec![]), Some(&breakers))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Timeout);
    // The timeout drops the call; its outcome is recorded by a task of its own.
    let key = BreakerKey::new("http.request", host);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    while breakers.get(&key).await.unwrap().failures_in_window == 0 {
        assert!(
            tokio::time::Instant::now() < give_up,
            "the timeout was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Nothing listens on a port just freed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let refused = node(
        "call",
        "http.request",
        json!({"url": format!("http://{closed}/")}),
    );
    let error = engine
        .run_node_guarded(&refused, &context("call", vec![]), Some(&breakers))
        .await
        .unwrap_err();
    assert_eq!(error.class, ErrorClass::Transient);
    let state = breakers
        .get(&BreakerKey::new("http.request", closed.to_string()))
        .await
        .unwrap();
    assert_eq!((state.calls_in_window, state.failures_in_window), (1, 1));
}

#[tokio::test]
async fn an_open_breaker_parks_the_call_or_fails_it_fast() {
    let engine = loopback_engine();
    let breakers = breakers();
    let host = upstream().await;
    let key = BreakerKey::new("llm.chat", host.clone());
    breakers.force_open(&key).await.unwrap();
    let parameters = json!({
        "base_url": format!("http://{host}/v1"),
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    });
    let parked = engine
        .run_node_guarded(
            &node("ask", "llm.chat", parameters.clone()),
            &context("ask", vec![]),
            Some(&breakers),
        )
        .await
        .unwrap_err();
    assert!(parked.park_until.is_some(), "{parked:?}");
    assert!(parked.message.contains(&host), "{}", parked.message);

    let mut fast = parameters;
    fast["fail_fast_on_open_breaker"] = json!(true);
    let failed = engine
        .run_node_guarded(
            &node("ask", "llm.chat", fast),
            &context("ask", vec![]),
            Some(&breakers),
        )
        .await
        .unwrap_err();
    assert_eq!(failed.park_until, None);
    assert_eq!(failed.class, ErrorClass::Transient);
    assert!(
        failed.message.contains("circuit breaker"),
        "{}",
        failed.message
    );
    assert!(failed.retry_after.is_some());

    // The same host under another node type has a breaker of its own.
    let other = engine
        .run_node_guarded(
            &node(
                "call",
                "http.request",
                json!({"url": format!("http://{host}/ok")}),
            ),
            &context("call", vec![]),
            Some(&breakers),
        )
        .await;
    assert!(other.is_ok(), "{other:?}");
}
