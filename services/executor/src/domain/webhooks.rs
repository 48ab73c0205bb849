//! Webhook deliveries: find the route by its URL token, check path and
//! method, verify the signature when the trigger asks for one, deduplicate
//! on the trigger's delivery id, admit the execution, and for sync hooks wait
//! for its outcome.
//!
//! A hook URL is `/hooks/{token}/{path}`. The token carries 256 random bits,
//! so a hook cannot be found by guessing; an unknown token, a path or a
//! method the trigger does not take all answer the same NOT_FOUND.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tyboo_engine::{NodeSpec, WebhookTriggerParameters};
use uuid::Uuid;
use zeroize::Zeroize;

use super::executions::Admission;
use super::scope::WorkspaceScope;
use super::workflows::{WEBHOOK_TRIGGER, normalize_hook_path};
use super::{
    Domain, Execution, ExecutionStatus, Scope, StepState, TriggerType, WEBHOOK_TOKEN,
    WebhookDelivery, WebhookRoute, json_column, now, tenant,
};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{executions, is_unique_violation, steps, triggers, workflows};

/// Every hook token starts with this, so scanners and people recognise one.
pub const HOOK_TOKEN_PREFIX: &str = "whk_";
/// The marker and 43 characters of unpadded base64url (32 random bytes).
const HOOK_TOKEN_LENGTH: usize = 4 + 43;

/// GitHub's scheme: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_GITHUB: &str = "github";
/// Stripe's scheme: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">`, refused when `t` is outside the tolerance.
pub const SIGNATURE_STRIPE: &str = "stripe";

/// A sync waiter answers this long before the caller's deadline, so the
/// answer (504 with the execution id) reaches it in time.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// A fresh hook token.
pub fn new_hook_token() -> ExecutorResult<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|error| ExecutorError::Internal(format!("random source failed: {error}")))?;
    Ok(format!(
        "{HOOK_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random)
    ))
}

/// A webhook trigger as its owners see it: where to call it and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookView {
    pub node_id: String,
    pub path: String,
    pub method: String,
    pub mode: WebhookMode,
    pub token: String,
    /// The signature scheme the trigger checks, if any.
    pub signature: Option<String>,
}

impl HookView {
    /// The URL path at the edge.
    pub fn url_path(&self) -> String {
        format!("/hooks/{}/{}", self.token, self.path)
    }
}

/// How often a sync waiter looks at the execution when no local notice
/// comes (it may run on a worker in another process).
const SYNC_POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, Default)]
pub struct WebhookRequest {
    /// The token of the hook URL.
    pub token: String,
    /// The path after the token.
    pub path: String,
    pub method: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
    pub delivery_id: String,
    /// When the caller stops waiting; a sync reply comes before it.
    pub deadline: Option<Instant>,
}

/// How a hook answers, as its trigger's `mode` says.
pub use tyboo_engine::WebhookMode;

#[derive(Clone, Debug)]
pub struct SyncReply {
    pub status_code: u32,
    pub body: Value,
    pub timed_out: bool,
}

#[derive(Clone, Debug)]
pub struct WebhookReply {
    pub execution_id: Uuid,
    pub mode: WebhookMode,
    pub duplicate: bool,
    pub status: ExecutionStatus,
    pub sync: Option<SyncReply>,
}

impl Domain {
    pub async fn deliver_webhook(&self, request: WebhookRequest) -> ExecutorResult<WebhookReply> {
        let not_found = || ExecutorError::NotFound("webhook");
        if request.token.len() != HOOK_TOKEN_LENGTH || !request.token.starts_with(HOOK_TOKEN_PREFIX)
        {
            return Err(not_found());
        }
        let route = triggers::find_route_by_token(&self.read(WEBHOOK_TOKEN), &request.token)
            .await?
            .ok_or_else(not_found)?;
        let path = normalize_hook_path(&request.path).ok_or_else(not_found)?;
        if path != route.path {
            return Err(not_found());
        }
        // From here on the delivery acts in the workspace the token names.
        let workspace_id = route.workspace_id;
        let scope = Scope::Workspace(workspace_id);
        let reader = self.read(scope);
        let workflow = workflows::find_live(&reader, route.workflow_id)
            .await?
            .ok_or_else(not_found)?;
        let graph = self
            .graph(scope, workflow.id, workflow.latest_version)
            .await?;
        let node = graph.node(&route.node_id).ok_or_else(not_found)?;
        let parameters = trigger_parameters(node)?;

        let accepted_method = parameters.method.to_ascii_uppercase();
        let method = request.method.to_ascii_uppercase();
        if method != accepted_method {
            // Answered like an unknown hook: the method tells nothing.
            return Err(not_found());
        }
        // Before anything is parsed or looked up: an unsigned request must
        // not learn even whether its delivery id was seen.
        if let Some(scheme) = &parameters.signature {
            let tolerance_seconds = parameters.signature_tolerance_seconds;
            self.verify_signature(
                workspace_id,
                &route,
                node,
                scheme,
                tolerance_seconds,
                &request,
            )
            .await?;
        }
        let mode = parameters.mode;
        // Held until the answer is built, and taken before anything is
        // admitted: a caller refused here has started nothing.
        let _waiting = match mode {
            WebhookMode::Sync => Some(self.sync_waiter()?),
            WebhookMode::Async => None,
        };
        let wait_ms = parameters
            .response_timeout_ms
            .unwrap_or(self.config().webhook_sync_default_wait_ms)
            .min(self.config().webhook_sync_max_wait_ms);
        let wait = wait_within(Duration::from_millis(wait_ms), request.deadline);
        let respond_node = parameters.respond_node;
        let delivery_id = match &parameters.delivery_id_header {
            Some(header) => request
                .headers
                .get(&header.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default(),
            None => request.delivery_id.clone(),
        };

        let cap = self.config().max_trigger_payload_bytes;
        if request.body.len() > cap {
            return Err(ExecutorError::invalid(
                "body",
                format!(
                    "payload of {} bytes exceeds the trigger payload cap of {cap} bytes \
                     (max_trigger_payload_bytes)",
                    request.body.len()
                ),
            ));
        }
        let body = parse_body(&request)?;
        // The body is stored one level down, under `body`.
        self.check_depth("body", &body, 1)?;
        let mut input = json!({
            "method": method,
            "path": path,
            "headers": request.headers,
            "query": request.query,
            "body": body,
        });
        if !delivery_id.is_empty() {
            input["delivery_id"] = Value::String(delivery_id.clone());
        }
        // The cap is the body's, checked above as the bytes received; the
        // headers around it are bounded by the edge's own header limits.

        if !delivery_id.is_empty()
            && let Some(seen) =
                triggers::find_delivery(&reader, (route.workflow_id, &route.node_id), &delivery_id)
                    .await?
        {
            return self
                .reply(
                    scope,
                    seen.execution_id,
                    mode,
                    true,
                    wait,
                    respond_node.as_deref(),
                )
                .await;
        }
        let mut work = self.begin(scope).await?;
        let execution = self
            .admit(
                &mut work,
                Admission {
                    workspace_id,
                    workflow_id: workflow.id,
                    version: workflow.latest_version,
                    graph: &graph,
                    trigger_type: TriggerType::Webhook,
                    input,
                    dead_letter_id: None,
                    started_by: None,
                    carried: Vec::new(),
                },
            )
            .await?;
        if !delivery_id.is_empty() {
            let seen = WebhookDelivery {
                id: Uuid::now_v7(),
                workspace_id,
                delivery_id: delivery_id.clone(),
                workflow_id: workflow.id,
                node_id: route.node_id.clone(),
                execution_id: execution.id,
                create_time: now(),
            };
            if let Err(error) = triggers::insert_delivery(work.tx(), &seen).await {
                work.rollback().await?;
                if !is_unique_violation(&error) {
                    return Err(error.into());
                }
                // The same delivery raced in through another request.
                let seen = triggers::find_delivery(
                    &reader,
                    (route.workflow_id, &route.node_id),
                    &delivery_id,
                )
                .await?
                .ok_or_else(|| ExecutorError::Internal("delivery vanished".to_owned()))?;
                return self
                    .reply(
                        scope,
                        seen.execution_id,
                        mode,
                        true,
                        wait,
                        respond_node.as_deref(),
                    )
                    .await;
            }
        }
        self.commit(work).await?;
        self.reply(
            scope,
            execution.id,
            mode,
            false,
            wait,
            respond_node.as_deref(),
        )
        .await
    }

    /// A place among the sync callers this process keeps waiting.
    fn sync_waiter(&self) -> ExecutorResult<tokio::sync::OwnedSemaphorePermit> {
        self.inner
            .sync_waiters
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                ExecutorError::Unavailable(format!(
                    "{} sync webhook callers are already waiting, the most this executor keeps \
                 (webhook_sync_max_waiters); retry later",
                    self.config().webhook_sync_max_waiters
                ))
            })
    }

    async fn reply(
        &self,
        scope: Scope,
        execution_id: Uuid,
        mode: WebhookMode,
        duplicate: bool,
        wait: Duration,
        respond_node: Option<&str>,
    ) -> ExecutorResult<WebhookReply> {
        if mode == WebhookMode::Async {
            let execution = executions::find(&self.read(scope), execution_id)
                .await?
                .ok_or(ExecutorError::NotFound("execution"))?;
            return Ok(WebhookReply {
                execution_id,
                mode,
                duplicate,
                status: execution.status,
                sync: None,
            });
        }
        let (status, sync) = self
            .wait_for_outcome(scope, execution_id, wait, respond_node)
            .await?;
        Ok(WebhookReply {
            execution_id,
            mode,
            duplicate,
            status,
            sync: Some(sync),
        })
    }

    /// Waits until the execution finishes or `wait` passes, and builds the
    /// HTTP answer.
    async fn wait_for_outcome(
        &self,
        scope: Scope,
        execution_id: Uuid,
        wait: Duration,
        respond_node: Option<&str>,
    ) -> ExecutorResult<(ExecutionStatus, SyncReply)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut finished = self.subscribe_finished();
        loop {
            let execution = executions::find(&self.read(scope), execution_id)
                .await?
                .ok_or(ExecutorError::NotFound("execution"))?;
            let status = execution.status;
            if status.is_terminal() {
                let reply = self.final_reply(&execution, status, respond_node).await?;
                return Ok((status, reply));
            }
            let wake = tokio::time::Instant::now() + SYNC_POLL_INTERVAL;
            tokio::select! {
                () = tokio::time::sleep_until(wake.min(deadline)) => {}
                notice = finished.recv() => {
                    // A lagged receiver just looks at the database again.
                    if matches!(notice, Ok(id) if id != execution_id) {
                        continue;
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let body = json!({
                    "error": format!("the workflow did not finish within {} ms", wait.as_millis()),
                    "execution_id": execution_id.to_string(),
                });
                return Ok((
                    status,
                    SyncReply {
                        status_code: 504,
                        body,
                        timed_out: true,
                    },
                ));
            }
        }
    }

    async fn final_reply(
        &self,
        execution: &Execution,
        status: ExecutionStatus,
        respond_node: Option<&str>,
    ) -> ExecutorResult<SyncReply> {
        if status != ExecutionStatus::Succeeded {
            return Ok(SyncReply {
                status_code: 500,
                body: json!({
                    "error": execution.error.clone().unwrap_or_else(|| status.as_str().to_owned()),
                    "status": status.as_str(),
                    "execution_id": execution.id.to_string(),
                }),
                timed_out: false,
            });
        }
        let reader = self.read(Scope::Workspace(execution.workspace_id));
        let rows = steps::list_for_execution(&reader, execution.id).await?;
        let succeeded = rows.iter().filter(|row| row.state == StepState::Succeeded);
        let chosen = match respond_node {
            Some(node_id) => rows
                .iter()
                .find(|row| row.node_id == node_id && row.state == StepState::Succeeded),
            None => None,
        }
        // The respond node may sit on a branch not taken: fall back to the
        // node that finished last.
        .or_else(|| succeeded.max_by_key(|row| (row.end_time, row.id)));
        let body = match chosen.and_then(|row| super::steps::output_text(row, execution)) {
            Some(text) => json_column(text)?,
            None => Value::Null,
        };
        Ok(SyncReply {
            status_code: 200,
            body,
            timed_out: false,
        })
    }
}

impl Domain {
    /// The workflow's webhook triggers with their URLs. The URL is what lets
    /// anyone fire the hook, so it is shown only to those who may edit.
    pub async fn list_webhooks(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
    ) -> ExecutorResult<Vec<HookView>> {
        let reader = self.read(tenant(scope));
        let workflow = workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let graph = self
            .graph(tenant(scope), workflow.id, workflow.latest_version)
            .await?;
        let routes = triggers::routes_for_workflow(&reader, workflow.id).await?;
        routes
            .into_iter()
            .filter_map(|route| {
                let node = graph.node(&route.node_id)?;
                Some(hook_view(route, node))
            })
            .collect()
    }

    /// Gives one webhook trigger a new URL token; the old URL stops working
    /// at once.
    pub async fn rotate_webhook_token(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        node_id: &str,
    ) -> ExecutorResult<HookView> {
        let not_found = || ExecutorError::NotFound("webhook trigger");
        let reader = self.read(tenant(scope));
        let workflow = workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let graph = self
            .graph(tenant(scope), workflow.id, workflow.latest_version)
            .await?;
        let node = graph
            .node(node_id)
            .filter(|node| node.node_type == WEBHOOK_TRIGGER)
            .ok_or_else(not_found)?;
        let token = new_hook_token()?;
        let work = self.begin(tenant(scope)).await?;
        if !triggers::set_route_token(work.tx(), workflow.id, node_id, &token).await? {
            work.rollback().await?;
            return Err(not_found());
        }
        self.commit(work).await?;
        let route = triggers::routes_for_workflow(&reader, workflow.id)
            .await?
            .into_iter()
            .find(|route| route.node_id == node_id)
            .ok_or_else(not_found)?;
        hook_view(route, node)
    }

    /// Checks the request's signature with the trigger's signing secret from
    /// the vault. Every refusal is UNAUTHENTICATED and says what is wrong
    /// with the request, never anything about the secret.
    async fn verify_signature(
        &self,
        workspace_id: Uuid,
        route: &WebhookRoute,
        node: &NodeSpec,
        scheme: &str,
        tolerance_seconds: u64,
        request: &WebhookRequest,
    ) -> ExecutorResult<()> {
        let unavailable =
            || ExecutorError::Unavailable("the hook's signing secret cannot be read now".into());
        let (Some(credential_id), Some(vault)) = (node.credential_id.as_deref(), self.vault())
        else {
            return Err(unavailable());
        };
        let credential = vault
            .decrypt(
                workspace_id,
                credential_id,
                route.id,
                &format!("{}:webhook", node.id),
            )
            .await
            .map_err(|error| {
                tracing::warn!(%error, "webhook signing secret unavailable");
                unavailable()
            })?;
        let mut secret = credential
            .get("secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(unavailable)?;
        drop(credential);
        let verdict = check_signature(
            scheme,
            secret.as_bytes(),
            &request.headers,
            &request.body,
            now().timestamp(),
            tolerance_seconds,
        );
        secret.zeroize();
        verdict.map_err(ExecutorError::Unauthenticated)
    }
}

/// The trigger's parameters as the engine reads them, defaults filled in. A
/// saved graph passed validation, so parameters that do not read are a fault
/// of ours.
pub(crate) fn trigger_parameters(node: &NodeSpec) -> ExecutorResult<WebhookTriggerParameters> {
    WebhookTriggerParameters::parse(&node.parameters).map_err(|error| {
        ExecutorError::Internal(format!(
            "stored parameters of webhook trigger `{}` do not parse: {error}",
            node.id
        ))
    })
}

fn hook_view(route: WebhookRoute, node: &NodeSpec) -> ExecutorResult<HookView> {
    let parameters = trigger_parameters(node)?;
    Ok(HookView {
        method: parameters.method.to_ascii_uppercase(),
        mode: parameters.mode,
        signature: parameters.signature,
        node_id: route.node_id,
        path: route.path,
        token: route.token,
    })
}

/// How long a sync waiter may wait: its own timeout, cut short so that the
/// answer comes before the caller's deadline.
fn wait_within(wait: Duration, deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            let margin = DEADLINE_MARGIN
                .min(left / 5)
                .max(left.min(Duration::from_millis(20)));
            wait.min(left.saturating_sub(margin))
        }
        None => wait,
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Verifies a request signed in the GitHub or Stripe way. The comparison is
/// the MAC's own constant-time check.
fn check_signature(
    scheme: &str,
    secret: &[u8],
    headers: &HashMap<String, String>,
    body: &[u8],
    now_seconds: i64,
    tolerance_seconds: u64,
) -> Result<(), String> {
    let mac = || HmacSha256::new_from_slice(secret).map_err(|_| "bad signing key".to_owned());
    match scheme {
        SIGNATURE_GITHUB => {
            let header = headers
                .get("x-hub-signature-256")
                .ok_or("missing X-Hub-Signature-256 header")?;
            let given = header
                .trim()
                .strip_prefix("sha256=")
                .and_then(|digits| hex::decode(digits).ok())
                .ok_or("X-Hub-Signature-256 must be sha256=<hex>")?;
            let mut mac = mac()?;
            mac.update(body);
            mac.verify_slice(&given)
                .map_err(|_| "the signature does not match the body".to_owned())
        }
        SIGNATURE_STRIPE => {
            let header = headers
                .get("stripe-signature")
                .ok_or("missing Stripe-Signature header")?;
            let mut timestamp = None;
            let mut candidates = Vec::new();
            for part in header.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
                    Some(("v1", value)) => {
                        if let Ok(bytes) = hex::decode(value) {
                            candidates.push(bytes);
                        }
                    }
                    _ => {}
                }
            }
            let timestamp = timestamp.ok_or("Stripe-Signature has no t=<unix time>")?;
            if candidates.is_empty() {
                return Err("Stripe-Signature has no v1=<hex> signature".to_owned());
            }
            if now_seconds.abs_diff(timestamp) > tolerance_seconds {
                return Err(format!(
                    "the signature's timestamp is more than {tolerance_seconds} s from now"
                ));
            }
            for candidate in &candidates {
                let mut mac = mac()?;
                mac.update(timestamp.to_string().as_bytes());
                mac.update(b".");
                mac.update(body);
                if mac.verify_slice(candidate).is_ok() {
                    return Ok(());
                }
            }
            Err("the signature does not match the body".to_owned())
        }
        other => Err(format!("unknown signature scheme `{other}`")),
    }
}

/// The body as JSON when it says it is JSON, else as text.
fn parse_body(request: &WebhookRequest) -> ExecutorResult<Value> {
    if request.body.is_empty() {
        return Ok(Value::Null);
    }
    let is_json = request
        .headers
        .get("content-type")
        .is_some_and(|content_type| content_type.to_ascii_lowercase().contains("json"));
    if is_json {
        return serde_json::from_slice(&request.body).map_err(|error| {
            ExecutorError::invalid("body", format!("is not valid JSON: {error}"))
        });
    }
    Ok(Value::String(
        String::from_utf8_lossy(&request.body).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_a-shared-secret";

    fn hex_mac(parts: &[&[u8]]) -> String {
        let mut mac = HmacSha256::new_from_slice(SECRET).unwrap();
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    fn headers(name: &str, value: &str) -> HashMap<String, String> {
        [(name.to_owned(), value.to_owned())].into()
    }

    #[test]
    fn github_signatures_are_checked_over_the_raw_body() {
        let body = br#"{"action":"opened"}"#;
        let good = format!("sha256={}", hex_mac(&[body]));
        let check = |headers: &HashMap<String, String>, body: &[u8]| {
            check_signature(SIGNATURE_GITHUB, SECRET, headers, body, 0, 300)
        };
        assert_eq!(check(&headers("x-hub-signature-256", &good), body), Ok(()));
        let upper = format!("sha256={}", hex_mac(&[body]).to_uppercase());
        assert_eq!(check(&headers("x-hub-signature-256", &upper), body), Ok(()));
        // One byte of the body changed, a signature of another secret, the
        // old SHA-1 header, a bare digest, garbage, nothing.
        let refused = [
            check(
                &headers("x-hub-signature-256", &good),
                br#"{"action":"closed"}"#,
            ),
            check(
                &headers(
                    "x-hub-signature-256",
                    &format!("sha256={}", hex::encode([0u8; 32])),
                ),
                body,
            ),
            check(&headers("x-hub-signature", &good), body),
            check(&headers("x-hub-signature-256", &hex_mac(&[body])), body),
            check(&headers("x-hub-signature-256", "sha256=zz"), body),
            check(&headers("x-hub-signature-256", "sha256="), body),
            check(&HashMap::new(), body),
        ];
        for (index, verdict) in refused.iter().enumerate() {
            assert!(verdict.is_err(), "case {index} was accepted");
        }
        // Truncated signatures never pass.
        let short = &good[..good.len() - 2];
        assert!(check(&headers("x-hub-signature-256", short), body).is_err());
    }

    #[test]
    fn stripe_signatures_bind_the_timestamp_and_expire() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000_i64;
        let signed = |t: i64| hex_mac(&[t.to_string().as_bytes(), b".", body]);
        let check = |value: &str, at: i64| {
            check_signature(
                SIGNATURE_STRIPE,
                SECRET,
                &headers("stripe-signature", value),
                body,
                at,
                300,
            )
        };
        let good = format!("t={now},v1={}", signed(now));
        assert_eq!(check(&good, now), Ok(()));
        assert_eq!(check(&good, now + 300), Ok(()));
        assert_eq!(check(&good, now - 300), Ok(()));
        // Several v1 entries (a secret being rolled): any one may match.
        let rolled = format!(
            "t={now},v1={},v1={},v0=ignored",
            "00".repeat(32),
            signed(now)
        );
        assert_eq!(check(&rolled, now), Ok(()));
        // Replayed later, a timestamp swapped for another, no timestamp, no
        // v1, only a v0.
        let refused = [
            check(&good, now + 301),
            check(&good, now - 301),
            check(&format!("t={},v1={}", now + 1, signed(now)), now),
            check(&format!("v1={}", signed(now)), now),
            check(&format!("t={now}"), now),
            check(&format!("t={now},v0={}", signed(now)), now),
            check("", now),
        ];
        for (index, verdict) in refused.iter().enumerate() {
            assert!(verdict.is_err(), "case {index} was accepted");
        }
        assert!(
            check(&good, now + 301)
                .unwrap_err()
                .contains("more than 300 s from now")
        );
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(check_signature("md5", SECRET, &HashMap::new(), b"", 0, 300).is_err());
    }

    #[test]
    fn hook_tokens_are_marked_and_random() {
        let first = new_hook_token().unwrap();
        let second = new_hook_token().unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with(HOOK_TOKEN_PREFIX));
        assert_eq!(first.len(), HOOK_TOKEN_LENGTH);
        assert!(
            first[HOOK_TOKEN_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn sync_waits_end_before_the_callers_deadline() {
        let wait = Duration::from_secs(30);
        assert_eq!(wait_within(wait, None), wait);
        let now = Instant::now();
        let cut = wait_within(wait, Some(now + Duration::from_secs(10)));
        assert!(cut <= Duration::from_millis(9_500), "{cut:?}");
        assert!(cut >= Duration::from_millis(9_000), "{cut:?}");
        let short = wait_within(wait, Some(now + Duration::from_millis(500)));
        assert!(short <= Duration::from_millis(400) && short >= Duration::from_millis(300));
        assert_eq!(wait_within(wait, Some(now)), Duration::ZERO);
        let own = wait_within(
            Duration::from_millis(100),
            Some(now + Duration::from_secs(10)),
        );
        assert_eq!(own, Duration::from_millis(100));
    }
}
