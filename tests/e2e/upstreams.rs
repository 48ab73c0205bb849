//! Small local servers that stand in for the outside world, each speaking
//! the real wire format of what it stands for: an orders API, a Slack
//! incoming webhook, an OpenAI-compatible chat-completions API, and an API
//! that fails on demand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// What the servers saw.
#[derive(Default)]
pub struct Seen {
    pub orders_hits: AtomicUsize,
    pub slack_messages: Mutex<Vec<Value>>,
    pub chat_requests: Mutex<Vec<Value>>,
    /// Idempotency keys of side-effecting calls, in arrival order.
    pub sink_keys: Mutex<Vec<String>>,
    /// The flaky endpoint fails while this is above zero, counting down.
    pub flaky_failures_left: AtomicU32,
    pub flaky_hits: AtomicUsize,
    /// 0: healthy; otherwise the status the broken endpoint answers with.
    pub broken_status: AtomicU32,
    /// The client address of every call to the poison endpoint, which never
    /// answers, in arrival order.
    pub poison_peers: Mutex<Vec<SocketAddr>>,
}

pub struct Upstreams {
    pub address: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstreams {
    pub async fn start() -> Upstreams {
        let seen = Arc::new(Seen::default());
        let router = Router::new()
            .route("/orders/{id}", get(order))
            .route("/services/{team}/{bot}/{token}", post(slack))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/sink", post(sink))
            .route("/flaky", get(flaky))
            .route("/broken", get(broken))
            .route("/slow/{ms}", get(slow))
            .route("/poison", post(poison))
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Upstreams {
            address,
            seen,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn order(State(seen): State<Arc<Seen>>, Path(id): Path<String>) -> Json<Value> {
    seen.orders_hits.fetch_add(1, Ordering::SeqCst);
    let total = if id.starts_with("big") { 1250 } else { 12 };
    Json(json!({"id": id, "customer": "Ada", "total": total, "currency": "EUR"}))
}

/// Slack incoming webhooks take `{text, blocks?}` and answer `ok` as text.
async fn slack(State(seen): State<Arc<Seen>>, Json(message): Json<Value>) -> Response {
    if message.get("text").is_none() && message.get("blocks").is_none() {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    seen.slack_messages.lock().await.push(message);
    (StatusCode::OK, "ok").into_response()
}

/// The OpenAI chat-completions format, with the usage it reports.
async fn chat_completions(
    State(seen): State<Arc<Seen>>,
    Json(request): Json<Value>,
) -> Json<Value> {
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let last = request["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|message| message["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    seen.chat_requests.lock().await.push(request);
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("Summary: {last}")},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
    }))
}

/// Counts side effects by idempotency key, as an idempotent API would.
async fn sink(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut keys = seen.sink_keys.lock().await;
    keys.push(key);
    Json(json!({"received": keys.len()}))
}

async fn flaky(State(seen): State<Arc<Seen>>) -> Response {
    seen.flaky_hits.fetch_add(1, Ordering::SeqCst);
    let left = seen.flaky_failures_left.load(Ordering::SeqCst);
    if left > 0 {
        seen.flaky_failures_left.store(left - 1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    Json(json!({"ok": true})).into_response()
}

async fn broken(State(seen): State<Arc<Seen>>) -> Response {
    match seen.broken_status.load(Ordering::SeqCst) {
        0 => Json(json!({"fixed": true})).into_response(),
        status => (
            StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "broken",
        )
            .into_response(),
    }
}

async fn slow(Path(ms): Path<u64>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({"slept_ms": ms}))
}

/// Takes the call and never answers: the caller is expected to die or stall
/// here (the test does that to it), like a job that wedges its worker.
async fn poison(
    State(seen): State<Arc<Seen>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Json<Value> {
    seen.poison_peers.lock().await.push(peer);
    std::future::pending::<()>().await;
    Json(json!({}))
}
