//! `http.request`: call an HTTP API and return `{status, headers, body}`.

use std::collections::BTreeMap;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_client::{self, HttpResponse};
use super::kind::{NodeFuture, NodeKind, object_schema};
use super::{FAIL_FAST_PARAMETER, fail_fast_schema};
use super::{NodeRun, completed};
use crate::catalog::{Category, NodeTypeInfo};
use crate::error::NodeError;
use crate::graph::Pool;
use crate::node::NodeOutcome;
use crate::redact::basic_credentials;
use crate::schema::parse_status_range;

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    query: BTreeMap<String, Value>,
    #[serde(default)]
    body_type: Option<String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    response_type: Option<String>,
    #[serde(default)]
    fail_on_status: Option<bool>,
    #[serde(default)]
    expected_status: Option<Vec<String>>,
}

/// The `http` credential: extra headers, a bearer token, or basic authentication.
#[derive(Deserialize, Default)]
#[serde(default)]
struct HttpCredential {
    headers: BTreeMap<String, String>,
    bearer_token: Option<String>,
    basic: Option<BasicCredential>,
}

#[derive(Deserialize)]
struct BasicCredential {
    username: String,
    #[serde(default)]
    password: Option<String>,
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

const DEFAULT_METHOD: &str = "GET";
const DEFAULT_RESPONSE_TYPE: &str = "json";

#[derive(Debug)]
pub(crate) struct HttpRequest;

impl NodeKind for HttpRequest {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "http.request",
            title: "HTTP request",
            description: "Calls an HTTP API. Output: {status, headers, body}.",
            category: Category::Action,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], "default": DEFAULT_METHOD},
                    "url": {"type": "string", "format": "http-url", "maxLength": 8192},
                    "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8192}},
                    "query": {"type": "object", "additionalProperties": {"type": ["string", "number", "integer", "boolean"]}},
                    "body_type": {"type": "string", "enum": ["json", "text", "none"],
                                  "description": "Defaults to json when a body is given, else none"},
                    "body": {"description": "JSON value, or a string when body_type is text"},
                    "response_type": {"type": "string", "enum": ["json", "text"], "default": DEFAULT_RESPONSE_TYPE},
                    "fail_on_status": {"type": "boolean", "default": true,
                                       "description": "Fail when the status is outside expected_status"},
                    "expected_status": {"type": "array", "items": {"type": "string", "format": "status-range"},
                                        "minItems": 1, "maxItems": 20, "default": ["200-299"],
                                        "description": "Statuses such as \"204\" or ranges such as \"200-299\""},
                    FAIL_FAST_PARAMETER: fail_fast_schema()
                }),
                &["url"],
            ),
            credential_type: Some("http"),
            kind: self,
        }
    }

    fn egress_parameter(&self) -> Option<&'static str> {
        Some("url")
    }

    fn run<'r>(&self, run: NodeRun<'r>) -> NodeFuture<'r> {
        Box::pin(execute(run))
    }
}

async fn execute(run: NodeRun<'_>) -> Result<NodeOutcome, NodeError> {
    let parameters: Parameters = run.parameters()?;
    let method_name = parameters.method.as_deref().unwrap_or(DEFAULT_METHOD);
    let method = Method::from_bytes(method_name.as_bytes())
        .map_err(|_| run.fail_parameter("method", "unknown method"))?;

    let mut url = http_client::checked_url(&run, "url", &parameters.url)?;
    if !parameters.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &parameters.query {
            pairs.append_pair(name, &scalar_text(value));
        }
    }

    let mut request = run.http.request(method.clone(), url);
    for (name, value) in &parameters.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| run.fail_parameter(&format!("headers.{name}"), "invalid header name"))?;
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| run.fail_parameter(&format!("headers.{name}"), "invalid header value"))?;
        request = request.header(header_name, header_value);
    }
    if let Some(credential) = &run.context.credential {
        let credential: HttpCredential = serde_json::from_value(credential.clone())
            .map_err(|_| run.fail("the attached credential is not an http credential (headers, bearer_token, basic)"))?;
        for (name, value) in &credential.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| run.fail("credential has an invalid header name"))?;
            let mut header_value = HeaderValue::from_str(value)
                .map_err(|_| run.fail("credential has an invalid header value"))?;
            header_value.set_sensitive(true);
            request = request.header(header_name, header_value);
        }
        if let Some(token) = &credential.bearer_token {
            let mut header_value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| run.fail("credential has an invalid bearer token"))?;
            header_value.set_sensitive(true);
            request = request.header(AUTHORIZATION, header_value);
        }
        if let Some(basic) = &credential.basic {
            // Built here rather than by reqwest so that what is sent is
            // exactly the form the redactor knows.
            let sent = basic_credentials(&basic.username, basic.password.as_deref());
            let mut header_value = HeaderValue::from_str(&format!("Basic {sent}"))
                .map_err(|_| run.fail("credential has an invalid basic authentication"))?;
            header_value.set_sensitive(true);
            request = request.header(AUTHORIZATION, header_value);
        }
    }

    let body_type = match (parameters.body_type.as_deref(), &parameters.body) {
        (Some(explicit), _) => explicit,
        (None, Some(body)) if !body.is_null() => "json",
        (None, _) => "none",
    };
    match (body_type, parameters.body) {
        ("json", Some(body)) => request = request.json(&body),
        ("text", Some(body)) => {
            let has_content_type = parameters
                .headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case("content-type"));
            if !has_content_type {
                request = request.header(CONTENT_TYPE, "text/plain; charset=utf-8");
            }
            request = request.body(scalar_text(&body));
        }
        _ => {}
    }

    let response = http_client::send(&run, request).await?;
    let fail_on_status = parameters.fail_on_status.unwrap_or(true);
    if fail_on_status && !status_expected(response.status, parameters.expected_status.as_deref()) {
        return Err(response.status_error(&run));
    }
    let body = decode_body(
        &run,
        &response,
        parameters.response_type.as_deref(),
        &method,
    )?;
    Ok(completed(serde_json::json!({
        "status": response.status,
        "headers": response.headers_json(),
        "body": body,
    })))
}

fn status_expected(status: u16, expected: Option<&[String]>) -> bool {
    match expected {
        None => (200..=299).contains(&status),
        Some(ranges) => ranges
            .iter()
            .filter_map(|range| parse_status_range(range))
            .any(|(low, high)| (low..=high).contains(&status)),
    }
}

fn decode_body(
    run: &NodeRun<'_>,
    response: &HttpResponse,
    response_type: Option<&str>,
    method: &Method,
) -> Result<Value, NodeError> {
    if response.body.is_empty() || *method == Method::HEAD {
        return Ok(Value::Null);
    }
    match response_type.unwrap_or(DEFAULT_RESPONSE_TYPE) {
        "text" => Ok(Value::String(String::from_utf8_lossy(&response.body).into_owned())),
        _ => serde_json::from_slice(&response.body).map_err(|error| {
            run.fail_parameter(
                "response_type",
                format!("the response is not valid JSON ({error}); set response_type to text to read it as text"),
            )
        }),
    }
}
