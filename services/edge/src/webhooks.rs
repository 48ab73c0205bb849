//! `/hooks/{token}/{path}`: public webhook URLs. The URL itself is the
//! credential (third parties call it without an API key; its token carries
//! 256 random bits and is rotatable, and a trigger may also require a
//! signature); the edge hands
//! the request to the executor's internal `WebhookService` and answers 202
//! with the execution id (async triggers) or with the chosen node's output
//! (sync triggers).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;
use tonic::transport::Channel;
use tyboo_proto::executor::webhook_service_client::WebhookServiceClient;
use tyboo_proto::executor::{DeliverWebhookRequest, DeliverWebhookResponse, WebhookMode};

use crate::errors::ApiError;
use crate::layers::metrics::with_route_label;
use crate::request::{call_context, read_body};
use crate::state::Shared;
use crate::upstream::{CallContext, sanitize};

/// The metric label of every webhook call (paths are user-chosen, so the
/// label never carries them).
pub(crate) const WEBHOOK_ROUTE: &str = "/hooks/{token}/{path}";

/// Headers that describe one hop of the connection, not the request; they
/// are not part of what the workflow receives.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Headers the edge reads a delivery id from, first match wins.
const DELIVERY_ID_HEADERS: [&str; 2] = ["idempotency-key", "x-tyboo-delivery-id"];

pub(crate) async fn deliver(
    State(shared): State<Arc<Shared>>,
    Path((token, path)): Path<(String, String)>,
    request: Request,
) -> Response {
    let context = call_context(&request, &shared);
    let allowance = match shared.rate_limits().webhook(&token, &path).await {
        Ok(allowance) => allowance,
        Err(refused) => {
            let response = refused.into_json_response(&context.request_id);
            return with_route_label(response, Arc::from(WEBHOOK_ROUTE));
        }
    };
    let mut response = match forward(&shared, token, path, request, &context).await {
        Ok(reply) => answer(reply),
        Err(error) => error.into_json_response(&context.request_id),
    };
    if let Some(allowance) = allowance {
        response.headers_mut().extend(allowance.headers());
    }
    with_route_label(response, Arc::from(WEBHOOK_ROUTE))
}

async fn forward(
    shared: &Shared,
    token: String,
    path: String,
    request: Request,
    context: &CallContext,
) -> Result<DeliverWebhookResponse, ApiError> {
    let channel: Channel = shared
        .webhooks
        .get()
        .cloned()
        .ok_or_else(|| ApiError::route_not_found(request.uri().path()))?;
    let (parts, body) = request.into_parts();
    let body = read_body(shared, body).await?;
    let delivery_id = DELIVERY_ID_HEADERS
        .iter()
        .find_map(|name| parts.headers.get(*name)?.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let message = DeliverWebhookRequest {
        token,
        path,
        method: parts.method.as_str().to_owned(),
        headers: header_map(&parts.headers),
        query: parts
            .uri
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default(),
        body: body.to_vec(),
        delivery_id,
    };
    let mut grpc_request = tonic::Request::new(message);
    context.apply(&mut grpc_request, None);
    WebhookServiceClient::new(channel)
        .max_decoding_message_size(shared.config.max_grpc_message_bytes)
        .max_encoding_message_size(shared.config.max_grpc_message_bytes)
        .deliver_webhook(grpc_request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| {
            ApiError::from_status(&sanitize(
                status,
                "/tyboo.executor.v1.WebhookService/DeliverWebhook",
            ))
        })
}

/// Lower-case names; repeated headers joined with ", " as HTTP allows.
fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else {
            continue;
        };
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    map
}

fn answer(reply: DeliverWebhookResponse) -> Response {
    let mode = WebhookMode::try_from(reply.mode).unwrap_or(WebhookMode::Async);
    if mode != WebhookMode::Sync {
        let body = json!({
            "executionId": reply.execution_id,
            "duplicate": reply.duplicate,
        });
        return (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    }
    let status = u16::try_from(reply.status_code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    // The answer's JSON text as the executor wrote it: every number exactly
    // as stored.
    let text = reply
        .response_body
        .map(|json| json.text)
        .filter(|text| !text.trim().is_empty())
        .unwrap_or_else(|| "null".to_owned());
    let mut response = (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response();
    if let Ok(value) = http::HeaderValue::from_str(&reply.execution_id) {
        response.headers_mut().insert("x-tyboo-execution-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined_and_hop_headers_dropped() {
        let mut headers = HeaderMap::new();
        headers.append("x-tag", "a".parse().unwrap());
        headers.append("x-tag", "b".parse().unwrap());
        headers.insert("connection", "keep-alive".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        let map = header_map(&headers);
        assert_eq!(map["x-tag"], "a, b");
        assert_eq!(map["content-type"], "application/json");
        assert!(!map.contains_key("connection"));
    }

    #[test]
    fn async_answers_are_202_with_the_execution_id() {
        let response = answer(DeliverWebhookResponse {
            execution_id: "e1".into(),
            mode: WebhookMode::Async as i32,
            ..DeliverWebhookResponse::default()
        });
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    #[test]
    fn sync_answers_carry_the_executor_status() {
        let response = answer(DeliverWebhookResponse {
            execution_id: "e1".into(),
            mode: WebhookMode::Sync as i32,
            status_code: 504,
            timed_out: true,
            ..DeliverWebhookResponse::default()
        });
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()["x-tyboo-execution-id"], "e1");
    }
}
