//! http.request, llm.chat and slack.message against local servers speaking the real
//! wire formats, with status classification, caps and the node timeout.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tyboo_engine::{
    EgressConfig, Engine, EngineConfig, ErrorClass, LlmUsage, NodeOutcome, RunLimits,
};

use common::{context, loopback_engine, node, serve};

async fn echo(uri: Uri, headers: HeaderMap, body: String) -> axum::Json<Value> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    axum::Json(json!({
        "path": uri.path(),
        "query": uri.query(),
        "idempotency_key": header("idempotency-key"),
        "content_type": header("content-type"),
        "authorization": header("authorization"),
        "body": body,
    }))
}

fn upstream() -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route("/text", get(|| async { "plain words" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such order") }),
        )
        .route(
            "/busy",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    "slow down",
                )
            }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "maintenance") }),
        )
        .route("/sized", get(|| async { vec![b'x'; 3 * 1024 * 1024] }))
        .route(
            "/stream",
            get(|| async {
                let chunks = (0..200)
                    .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 64 * 1024])));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "finally"
            }),
        )
}

fn completed(outcome: NodeOutcome) -> (String, Value, Option<LlmUsage>) {
    match outcome {
        NodeOutcome::Completed {
            port,
            output,
            usage,
        } => (port, output, usage),
        other => panic!("expected completion, got {other:?}"),
    }
}

#[tokio::test]
async fn json_request_with_query_body_and_idempotency_key() {
    let address = serve(upstream()).await;
    let engine = loopback_engine();
    let spec = node(
        "call",
        "http.request",
        json!({
            "method": "POST",
            "url": format!("http://{address}/echo"),
            "query": {"page": 2, "q": "{{ .trigger.customer.name }}"},
            "body": {"amount": "{{ .trigger.amount }}"}
        }),
    );
    let run_context = context("call", vec![]);
    let key = run_context.idempotency_key.clone();
    let (port, output, _) = completed(engine.run_node(&spec, &run_context).await.expect("runs"));
    assert_eq!(port, "main");
    assert_eq!(output["status"], 200);
    assert_eq!(output["headers"]["content-type"], "application/json");
    let echoed = &output["body"];
    assert_eq!(echoed["idempotency_key"], Value::String(key));
    assert_eq!(echoed["query"], "page=2&q=Ada");
    assert_eq!(echoed["content_type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(echoed["body"].as_str().expect("body")).expect("json"),
        json!({"amount": 42})
    );
}

#[tokio::test]
async fn text_responses_and_text_bodies() {
    let address = serve(upstream()).await;
    let engine = loopback_engine();
    let spec = node(
        "get",
        "http.request",
        json!({"url": format!("http://{address}/text"), "response_type": "text"}),
    );
    let (_, output, _) = completed(
        engine
            .run_node(&spec, &context("get", vec![]))
            .await
            .expect("runs"),
    );
    assert_eq!(output["body"], "plain words");

    let not_json = node(
        "get",
        "http.request",
        json!({"url": format!("http://{address}/text")}),
    );
    let error = engine
        .run_node(&not_json, &context("get", vec![]))
        .await
        .expect_err("not json");
    assert_eq!(error.parameter.as_deref(), Some("response_type"));

    let text_body = node(
        "put",
        "http.request",
        json!({"method": "PUT", "url": format!("http://{address}/echo"), "body_type": "text", "body": "hi {{ .trigger.amount }}"}),
    );
    let (_, output, _) = completed(
        engine
            .run_node(&text_body, &context("put", vec![]))
            .await
            .expect("runs"),
    );
    assert_eq!(output["body"]["body"], "hi 42");
    assert_eq!(output["body"]["content_type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn statuses_are_classified() {
    let address = serve(upstream()).await;
    let engine = loopback_engine();
    let run = |path: &str| {
        node(
            "call",
            "http.request",
            json!({"url": format!("http://{address}{path}")}),
        )
    };

    let missing = engine
        .run_node(&run("/missing"), &context("call", vec![]))
        .await
        .expect_err("404");
    assert_eq!(missing.class, ErrorClass::Permanent);
    assert!(
        missing.message.contains("404 Not Found: no such order"),
        "{}",
        missing.message
    );

    let busy = engine
        .run_node(&run("/busy"), &context("call", vec![]))
        .await
        .expect_err("429");
    assert_eq!(busy.class, ErrorClass::Transient);
    assert_eq!(busy.retry_after, Some(Duration::from_secs(7)));

    let broken = engine
        .run_node(&run("/broken"), &context("call", vec![]))
        .await
        .expect_err("503");
    assert_eq!(broken.class, ErrorClass::Transient);

    let accepted = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/missing"), "response_type": "text", "expected_status": ["200-299", "404"]}),
    );
    let (_, output, _) = completed(
        engine
            .run_node(&accepted, &context("call", vec![]))
            .await
            .expect("404 is expected"),
    );
    assert_eq!(output["status"], 404);

    let lenient = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/broken"), "response_type": "text", "fail_on_status": false}),
    );
    let (_, output, _) = completed(
        engine
            .run_node(&lenient, &context("call", vec![]))
            .await
            .expect("status ignored"),
    );
    assert_eq!(output["status"], 503);
}

#[tokio::test]
async fn connection_failures_are_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let engine = loopback_engine();
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/")}),
    );
    let error = engine
        .run_node(&spec, &context("call", vec![]))
        .await
        .expect_err("refused");
    assert_eq!(error.class, ErrorClass::Transient);
}

#[tokio::test]
async fn response_bodies_past_the_cap_are_aborted() {
    let address = serve(upstream()).await;
    let engine = Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: vec!["127.0.0.0/8".to_owned()],
            ..EgressConfig::default()
        },
        limits: RunLimits {
            http_response_bytes: 1024 * 1024,
            ..RunLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    for path in ["/sized", "/stream"] {
        let spec = node(
            "call",
            "http.request",
            json!({"url": format!("http://{address}{path}"), "response_type": "text"}),
        );
        let error = engine
            .run_node(&spec, &context("call", vec![]))
            .await
            .expect_err(path);
        assert_eq!(error.class, ErrorClass::Permanent, "{path}");
        assert!(
            error.message.contains("exceeds the 1048576-byte cap"),
            "{path}: {}",
            error.message
        );
    }
}

#[tokio::test]
async fn the_node_timeout_preempts_a_slow_upstream() {
    let address = serve(upstream()).await;
    let engine = loopback_engine();
    let mut spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/slow"), "response_type": "text"}),
    );
    spec.timeout_ms = Some(300);
    let started = Instant::now();
    let error = engine
        .run_node(&spec, &context("call", vec![]))
        .await
        .expect_err("times out");
    assert_eq!(error.class, ErrorClass::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(error.message, "node `call` timed out after 300 ms");
}

#[tokio::test]
async fn credentials_authenticate_and_never_appear_in_output() {
    let address = serve(upstream()).await;
    let engine = loopback_engine();
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/echo")}),
    );
    let mut run_context = context("call", vec![]);
    run_context.credential = Some(json!({"bearer_token": "tok-very-secret-42"}));
    let (_, output, _) = completed(engine.run_node(&spec, &run_context).await.expect("runs"));
    assert_eq!(output["body"]["authorization"], "Bearer [redacted]");
}

async fn chat_completions(
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> impl IntoResponse {
    if headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        != Some("Bearer sk-test-key")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": "Incorrect API key provided"}})),
        );
    }
    let last = request["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .cloned()
        .unwrap_or(Value::Null);
    (
        StatusCode::OK,
        axum::Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": format!("{}-2024-07-18", request["model"].as_str().unwrap_or_default()),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": format!("You said: {}", last["content"].as_str().unwrap_or_default())},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        })),
    )
}

#[tokio::test]
async fn llm_chat_returns_text_and_usage() {
    let address = serve(Router::new().route("/v1/chat/completions", post(chat_completions))).await;
    let engine = loopback_engine();
    let spec = node(
        "ask",
        "llm.chat",
        json!({
            "base_url": format!("http://{address}/v1"),
            "model": "gpt-4o-mini",
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello {{ .trigger.customer.name }}"}
            ]
        }),
    );
    let mut run_context = context("ask", vec![]);
    run_context.credential = Some(json!({"api_key": "sk-test-key"}));
    let (_, output, usage) = completed(engine.run_node(&spec, &run_context).await.expect("runs"));
    assert_eq!(output["text"], "You said: Hello Ada");
    assert_eq!(
        output["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
    );
    assert_eq!(
        usage,
        Some(LlmUsage {
            provider_host: "127.0.0.1".to_owned(),
            model: "gpt-4o-mini-2024-07-18".to_owned(),
            prompt_tokens: 12,
            completion_tokens: 5,
            total_tokens: 17
        })
    );

    let error = engine
        .run_node(&spec, &context("ask", vec![]))
        .await
        .expect_err("no key");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert!(error.message.contains("401"), "{}", error.message);
}

#[tokio::test]
async fn slack_message_posts_incoming_webhook_json() {
    let received = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new()
        .route(
            "/services/T000/B000/XXXX",
            post(move |headers: HeaderMap, body: String| {
                let sink = sink.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let is_json = headers
                        .get("content-type")
                        .and_then(|value| value.to_str().ok())
                        == Some("application/json");
                    match serde_json::from_str::<Value>(&body) {
                        Ok(payload)
                            if is_json
                                && (payload.get("text").is_some()
                                    || payload.get("blocks").is_some()) =>
                        {
                            sink.lock().expect("lock").push(payload);
                            (StatusCode::OK, "ok")
                        }
                        _ => (StatusCode::BAD_REQUEST, "invalid_payload"),
                    }
                }
            }),
        )
        .route(
            "/services/gone",
            post(|| async { (StatusCode::GONE, "channel_is_archived") }),
        );
    let address = serve(router).await;
    let engine = loopback_engine();
    let spec = node(
        "notify",
        "slack.message",
        json!({
            "text": "Order {{ .trigger.amount }} from {{ .trigger.customer.name }}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ .trigger.customer.tier }}* customer"}}]
        }),
    );
    let mut run_context = context("notify", vec![]);
    run_context.credential =
        Some(json!({"webhook_url": format!("http://{address}/services/T000/B000/XXXX")}));
    let (_, output, _) = completed(engine.run_node(&spec, &run_context).await.expect("posts"));
    assert_eq!(output["ok"], true);
    assert_eq!(
        received.lock().expect("lock").clone(),
        vec![json!({
            "text": "Order 42 from Ada",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*gold* customer"}}]
        })]
    );

    let archived = node(
        "notify",
        "slack.message",
        json!({"webhook_url": format!("http://{address}/services/gone"), "text": "hi"}),
    );
    let error = engine
        .run_node(&archived, &context("notify", vec![]))
        .await
        .expect_err("archived");
    assert_eq!(error.class, ErrorClass::Permanent);
    assert!(
        error.message.contains("channel_is_archived"),
        "{}",
        error.message
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// The leaks seen from outside: an upstream that echoes the Basic header it
/// received (a later `transform` with `@base64d` then printed the password),
/// an error body cut to its excerpt before redaction (a token minus its last
/// character), and a webhook URL printed in its normalised form.
#[tokio::test]
async fn derived_forms_of_secrets_never_leave_the_node() {
    const PASSWORD: &str = "pw-hunter2-correct-horse";
    let address = serve(upstream()).await;
    let engine = loopback_engine();

    // 1. The echoed Basic header, and what a downstream node could decode.
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{address}/echo")}),
    );
    let mut run_context = context("call", vec![]);
    run_context.credential = Some(json!({"basic": {"username": "api-user", "password": PASSWORD}}));
    let (_, output, _) = completed(engine.run_node(&spec, &run_context).await.expect("runs"));
    assert_eq!(output["body"]["authorization"], "Basic [redacted]");
    let decode = node(
        "decode",
        "transform",
        json!({"program": ".input.body.authorization | ltrimstr(\"Basic \") | @base64d"}),
    );
    let downstream = context("decode", vec![output.clone()]);
    let decoded = engine.run_node(&decode, &downstream).await;
    let shown = format!("{decoded:?}");
    assert!(!shown.contains("hunter2"), "{shown}");

    // 2. An error body whose 300-character cut falls inside the token.
    let token = "tok-0123456789-abcdefghijkl";
    let padding = "e".repeat(290);
    let router = Router::new().route(
        "/fail",
        get(move || {
            let body = format!("{padding}{token}");
            async move { (StatusCode::BAD_REQUEST, body) }
        }),
    );
    let failing = serve(router).await;
    let spec = node(
        "call",
        "http.request",
        json!({"url": format!("http://{failing}/fail")}),
    );
    let mut run_context = context("call", vec![]);
    run_context.credential = Some(json!({"bearer_token": token}));
    let error = engine
        .run_node(&spec, &run_context)
        .await
        .expect_err("400 fails the node");
    assert!(!error.message.contains("tok-0123"), "{}", error.message);
    assert!(error.message.contains("[redacted]"), "{}", error.message);

    // 3. A webhook URL the client prints normalised when it cannot connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let webhook = format!("HTTP://127.0.0.1:{port}/services/T0/B0/SeCrEtPaRt");
    let spec = node("notify", "slack.message", json!({"text": "hello"}));
    let mut run_context = context("notify", vec![]);
    run_context.credential = Some(json!({"webhook_url": webhook}));
    let error = engine
        .run_node(&spec, &run_context)
        .await
        .expect_err("nothing listens there");
    assert!(!error.message.contains("SeCrEt"), "{}", error.message);
}
