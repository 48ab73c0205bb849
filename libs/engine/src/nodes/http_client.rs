//! Sending one outbound HTTP request for a node: egress check, idempotency key, a
//! streamed body under its cap, and the classification of failures.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use tyboo_breaker::FailureKind;
use url::Url;

use super::{NodeRun, target};
use crate::egress::{CredentialHostRefused, find_in_chain, find_refusal, with_credential_hosts};
use crate::error::NodeError;

pub(super) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// How much of an upstream's body an error message quotes.
const BODY_EXCERPT_CHARS: usize = 300;

/// Retry-After values longer than this are treated as this; the retry policy caps
/// further anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

pub(super) struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn headers_json(&self) -> Value {
        let mut fields = serde_json::Map::new();
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match fields.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    fields.insert(name.as_str().to_owned(), Value::String(value));
                }
            }
        }
        Value::Object(fields)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(&self.headers)
    }

    /// The start of the body, for error messages: redacted first, then cut,
    /// so the cut cannot leave part of a secret.
    pub fn body_excerpt(&self, run: &NodeRun<'_>) -> String {
        run.redactor
            .excerpt(&String::from_utf8_lossy(&self.body), BODY_EXCERPT_CHARS)
    }

    /// The error for a status the node did not accept: 429 and 5xx are worth retrying,
    /// other statuses are not.
    pub fn status_error(&self, run: &NodeRun<'_>) -> NodeError {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("");
        let excerpt = self.body_excerpt(run);
        let message = if excerpt.is_empty() {
            format!(
                "node `{}`: upstream answered {} {reason}",
                run.node.id, self.status
            )
        } else {
            format!(
                "node `{}`: upstream answered {} {reason}: {excerpt}",
                run.node.id, self.status
            )
        };
        if self.status == 429 || (500..=599).contains(&self.status) {
            NodeError::transient(message).with_retry_after(self.retry_after())
        } else {
            NodeError::permanent(message)
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub(super) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// Parses and egress-checks a URL parameter; a refusal happens before any connection.
pub(super) fn checked_url(
    run: &NodeRun<'_>,
    parameter: &str,
    text: &str,
) -> Result<Url, NodeError> {
    let url = Url::parse(text)
        .map_err(|_| run.fail_parameter(parameter, "must be an http or https URL"))?;
    run.egress
        .check_url(&url)
        .map_err(|refusal| run.fail_parameter(parameter, refusal))?;
    run.check_credential_host(&url)?;
    Ok(url)
}

fn classify(run: &NodeRun<'_>, error: &reqwest::Error) -> NodeError {
    if let Some(refusal) = find_refusal(error) {
        return run.fail(refusal);
    }
    if let Some(refusal) = find_in_chain::<CredentialHostRefused>(error) {
        return run.fail(refusal);
    }
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_redirect() || error.is_builder() {
        return run.fail(detail);
    }
    // Connection failures, resets, timeouts and broken bodies are the network's fault:
    // another attempt may well succeed.
    NodeError::transient(format!("node `{}`: {detail}", run.node.id))
}

/// Sends the request with the idempotency key and reads the body, aborting the
/// transfer once it passes the cap; under the circuit breaker of the URL's
/// host, which counts connection failures, timeouts, 5xx and 429 against it.
pub(super) async fn send(
    run: &NodeRun<'_>,
    request: reqwest::RequestBuilder,
) -> Result<HttpResponse, NodeError> {
    let request = request.header(IDEMPOTENCY_KEY, run.context.idempotency_key.as_str());
    let (client, request) = request.build_split();
    let request = request.map_err(|error| classify(run, &error))?;
    let Some(host) = target::host_of(request.url()) else {
        return Err(run.fail("the URL names no host"));
    };
    target::call_target(run, &host, exchange(run, client, request), |response| {
        Some(FailureKind::HttpStatus(response.status))
    })
    .await
}

async fn exchange(
    run: &NodeRun<'_>,
    client: reqwest::Client,
    request: reqwest::Request,
) -> Result<HttpResponse, NodeError> {
    let cap = run.config.limits.http_response_bytes;
    // Redirects are followed inside `execute`, so the credential's hosts are
    // in scope for exactly that call.
    let mut response = with_credential_hosts(run.credential_hosts(), client.execute(request))
        .await
        .map_err(|error| classify(run, &error))?;
    let too_large = || run.fail(format!("response body exceeds the {cap}-byte cap"));
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| classify(run, &error))?
    {
        if body.len() + chunk.len() > cap {
            // Dropping the response here closes the connection mid-transfer.
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body: body.freeze(),
    })
}
