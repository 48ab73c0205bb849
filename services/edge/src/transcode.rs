//! JSON ↔ protobuf for a matched route, in the canonical proto3 JSON mapping.
//!
//! The request message is assembled as the `google.api.http` spec says: the
//! body fills the whole message (`body: "*"`) or one field (`body: "f"`),
//! path variables are set over it, and every field bound neither by the path
//! nor by the body may come as a query parameter. Each value is parsed by
//! prost-reflect's deserializer, so a query parameter accepts exactly what the
//! same field accepts in a JSON body (enums by name or number, RFC 3339
//! timestamps, 64-bit integers as strings, …). Every error names the field or
//! parameter at fault.

use std::collections::BTreeMap;

use prost_reflect::{DynamicMessage, Kind, SerializeOptions, Value};
use serde_json::Value as Json;

use crate::errors::ApiError;
use crate::json_text::{unwrap_json_text, wrap_json_text};
use crate::routes::{BodyBinding, FieldPath, Route, RouteMatch, is_scalar_value_field};

/// Builds the request message of `matched` from its body, path and query.
pub(crate) fn request_message(
    matched: &RouteMatch,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let route = &matched.route;
    let input = route.rpc.input();
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    let mut message = match (&route.body, has_body) {
        (BodyBinding::Whole, true) if !route.input_json_text => parse_body(input.clone(), body)?,
        (BodyBinding::Whole, true) => {
            let mut value: Json = serde_json::from_slice(body)
                .map_err(|err| ApiError::invalid_argument(format!("malformed JSON body: {err}")))?;
            wrap_json_text(&input, &mut value);
            deserialize_tracking_path(input.clone(), value).map_err(ApiError::invalid_argument)?
        }
        (BodyBinding::Field(field), true) => {
            let value: Json = serde_json::from_slice(body)
                .map_err(|err| ApiError::invalid_argument(format!("malformed JSON body: {err}")))?;
            let mut wrapped =
                Json::Object([(field.name().to_owned(), value)].into_iter().collect());
            if route.input_json_text {
                wrap_json_text(&input, &mut wrapped);
            }
            deserialize_tracking_path(input.clone(), wrapped).map_err(ApiError::invalid_argument)?
        }
        // A bodiless binding ignores a body, and an empty body is an empty
        // message: `POST …:rotate` with no body is a common, valid call.
        _ => DynamicMessage::new(input.clone()),
    };

    for (field_path, value) in &matched.path_values {
        let parsed = parse_binding(field_path, std::slice::from_ref(value)).map_err(|err| {
            ApiError::invalid_argument(format!(
                "invalid value for path variable `{}`: {err}",
                field_path.proto_path()
            ))
        })?;
        set_at_path(&mut message, field_path, parsed)?;
    }

    for binding in query_bindings(route, query)? {
        let parsed = parse_binding(&binding.field_path, &binding.values).map_err(|err| {
            ApiError::invalid_argument(format!(
                "invalid value for query parameter `{}`: {err}",
                binding.name
            ))
        })?;
        set_at_path(&mut message, &binding.field_path, parsed)?;
    }
    Ok(message)
}

/// The JSON answer for an upstream response message.
pub(crate) fn response_json(
    route: &Route,
    payload: &[u8],
    options: &SerializeOptions,
) -> Result<Vec<u8>, ApiError> {
    let internal = |what: &str| {
        tracing::error!(method = route.rpc.full_name(), "{what}");
        ApiError::new(
            tonic::Code::Internal,
            "the service answered with an unreadable message",
        )
    };
    let message = DynamicMessage::decode(route.rpc.output(), payload)
        .map_err(|_| internal("upstream response does not decode"))?;
    let output = route.rpc.output();
    let json = match &route.response_body {
        None => {
            let mut json = message
                .serialize_with_options(serde_json::value::Serializer, options)
                .map_err(|_| internal("upstream response does not serialize"))?;
            integral_numbers(&mut json);
            if route.output_json_text {
                unwrap_json_text(&output, &mut json)
                    .map_err(|_| internal("upstream JSON text does not parse"))?;
            }
            json
        }
        Some(field) if field.supports_presence() && !message.has_field(field) => Json::Null,
        Some(field) => {
            // Serialize with defaults so the chosen field is always present,
            // then keep that field alone.
            let with_defaults = options.clone().skip_default_fields(false);
            let mut whole = message
                .serialize_with_options(serde_json::value::Serializer, &with_defaults)
                .map_err(|_| internal("upstream response does not serialize"))?;
            integral_numbers(&mut whole);
            if route.output_json_text {
                unwrap_json_text(&output, &mut whole)
                    .map_err(|_| internal("upstream JSON text does not parse"))?;
            }
            whole
                .get_mut(field.json_name())
                .map(Json::take)
                .unwrap_or(Json::Null)
        }
    };
    serde_json::to_vec(&json).map_err(|_| internal("response JSON does not encode"))
}

/// The largest magnitude below which every integer is exact in a double.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Prints whole numbers as the user sent them: protobuf carries every JSON
/// number as a double, so `{"qty": 3}` would come back as `3.0`. A whole
/// double within ±2^53 is written as an integer (proto3's JSON mapping
/// accepts both spellings); other numbers are left as they are.
pub(crate) fn integral_numbers(json: &mut Json) {
    match json {
        Json::Number(number) => {
            if number.is_f64()
                && let Some(value) = number.as_f64()
                && value.fract() == 0.0
                && value.abs() < EXACT_INTEGER_LIMIT
            {
                #[allow(clippy::cast_possible_truncation)]
                let whole = value as i64;
                *number = serde_json::Number::from(whole);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(integral_numbers),
        Json::Object(fields) => fields.values_mut().for_each(integral_numbers),
        Json::Null | Json::Bool(_) | Json::String(_) => {}
    }
}

fn parse_body(
    input: prost_reflect::MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let message =
        deserialize_tracking_path(input, &mut deserializer).map_err(ApiError::invalid_argument)?;
    deserializer
        .end()
        .map_err(|err| ApiError::invalid_argument(format!("malformed JSON body: {err}")))?;
    Ok(message)
}

/// Deserializes a message, naming where in the document an error is. A
/// syntax error has no field to name and says the JSON is malformed.
fn deserialize_tracking_path<'de, D>(
    descriptor: prost_reflect::MessageDescriptor,
    deserializer: D,
) -> Result<DynamicMessage, String>
where
    D: serde::Deserializer<'de, Error = serde_json::Error>,
{
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    DynamicMessage::deserialize(descriptor, tracked).map_err(|err| {
        let path = track.path().to_string();
        if err.is_syntax() || err.is_eof() {
            format!("malformed JSON body: {err}")
        } else if path == "." || path.contains('?') {
            format!("invalid JSON body: {err}")
        } else {
            format!("invalid JSON body: field `{path}`: {err}")
        }
    })
}

/// One query parameter: the name the caller used, the field, its values.
struct QueryBinding {
    name: String,
    field_path: FieldPath,
    values: Vec<String>,
}

/// Groups the query string by field (`pageSize` and `page_size` are one
/// field), checking every parameter names a field that neither the path nor
/// the body binds.
fn query_bindings(route: &Route, query: Option<&str>) -> Result<Vec<QueryBinding>, ApiError> {
    let mut bindings: BTreeMap<String, QueryBinding> = BTreeMap::new();
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return Ok(Vec::new());
    };
    let input = route.rpc.input();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let field_path = FieldPath::resolve(&input, &name, true)
            .map_err(|_| ApiError::invalid_argument(format!("unknown query parameter `{name}`")))?;
        let key = field_path.proto_path();
        if let Some(binding) = bindings.get_mut(&key) {
            binding.values.push(value.into_owned());
            continue;
        }
        let bound_by_path = route.path_fields.iter().any(|path_field| {
            field_path.starts_with(path_field) || path_field.starts_with(&field_path)
        });
        let bound_by_body = match &route.body {
            BodyBinding::None => false,
            BodyBinding::Whole => true,
            BodyBinding::Field(body_field) => {
                field_path.fields()[0].number() == body_field.number()
            }
        };
        if bound_by_path || bound_by_body {
            return Err(ApiError::invalid_argument(format!(
                "query parameter `{name}` sets a field bound by the path or the request body"
            )));
        }
        if !is_scalar_value_field(field_path.leaf()) {
            return Err(ApiError::invalid_argument(format!(
                "query parameter `{name}` names a field that cannot be given as text"
            )));
        }
        bindings.insert(
            key,
            QueryBinding {
                name: name.into_owned(),
                field_path,
                values: vec![value.into_owned()],
            },
        );
    }
    for binding in bindings.values() {
        if binding.values.len() > 1 && !binding.field_path.leaf().is_list() {
            return Err(ApiError::invalid_argument(format!(
                "query parameter `{}` is given {} times but holds one value",
                binding.name,
                binding.values.len()
            )));
        }
    }
    Ok(bindings.into_values().collect())
}

/// Parses text values for the leaf of `field_path` with the same rules as a
/// JSON body, by deserializing `{leaf: value}` into the leaf's message.
fn parse_binding(field_path: &FieldPath, values: &[String]) -> Result<Value, String> {
    let leaf = field_path.leaf();
    let parent = leaf.parent_message().clone();
    let json_value = if leaf.is_list() {
        Json::Array(
            values
                .iter()
                .map(|value| text_to_json(&leaf.kind(), value))
                .collect(),
        )
    } else {
        text_to_json(
            &leaf.kind(),
            values.first().map(String::as_str).unwrap_or_default(),
        )
    };
    let wrapped = Json::Object([(leaf.name().to_owned(), json_value)].into_iter().collect());
    let holder = DynamicMessage::deserialize(parent, wrapped).map_err(|err| err.to_string())?;
    Ok(holder.get_field(leaf).into_owned())
}

/// The JSON a text value stands for. Numbers, timestamps, durations and bytes
/// are accepted as JSON strings by the proto3 mapping; booleans and enum
/// numbers need their JSON type.
fn text_to_json(kind: &Kind, text: &str) -> Json {
    let boolean = |text: &str| match text {
        "true" => Json::Bool(true),
        "false" => Json::Bool(false),
        other => Json::String(other.to_owned()),
    };
    match kind {
        Kind::Bool => boolean(text),
        Kind::Message(message) if message.full_name() == "google.protobuf.BoolValue" => {
            boolean(text)
        }
        Kind::Enum(_) => text
            .parse::<i32>()
            .map(Json::from)
            .unwrap_or_else(|_| Json::String(text.to_owned())),
        _ => Json::String(text.to_owned()),
    }
}

/// Sets `value` at `field_path`, creating the parent messages on the way.
fn set_at_path(
    message: &mut DynamicMessage,
    field_path: &FieldPath,
    value: Value,
) -> Result<(), ApiError> {
    let (leaf, parents) = field_path
        .fields()
        .split_last()
        .expect("a resolved field path holds at least one field");
    let mut current = message;
    for parent in parents {
        current = match current.get_field_mut(parent) {
            Value::Message(child) => child,
            _ => {
                return Err(ApiError::invalid_argument(format!(
                    "`{}` is not a message field",
                    parent.name()
                )));
            }
        };
    }
    current.set_field(leaf, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tests::table;
    use http::Method;

    fn request(
        method: Method,
        path: &str,
        query: Option<&str>,
        body: &str,
    ) -> Result<Json, ApiError> {
        let matched = table().lookup(&method, path)?;
        let message = request_message(&matched, query, body.as_bytes())?;
        Ok(serde_json::to_value(&message).expect("serializes"))
    }

    #[test]
    fn path_and_query_fill_a_get_request() {
        let json = request(
            Method::GET,
            "/v1/workspaces/ws1/audit-events",
            Some("action=member.invited&pageSize=20&start_time=2026-01-02T03:04:05Z&page_token=a%20b"),
            "",
        )
        .expect("valid request");
        assert_eq!(
            json,
            serde_json::json!({
                "workspaceId": "ws1",
                "action": "member.invited",
                "pageSize": 20,
                "startTime": "2026-01-02T03:04:05Z",
                "pageToken": "a b",
            })
        );
    }

    #[test]
    fn booleans_and_enums_come_by_name_or_number() {
        let json = request(
            Method::GET,
            "/v1/workspaces/ws1/invitations",
            Some("include_closed=true"),
            "",
        )
        .expect("bool");
        assert_eq!(json["includeClosed"], true);
        let by_name = request(
            Method::PATCH,
            "/v1/workspaces/ws1/members/u1",
            None,
            r#"{"role": "ROLE_ADMIN"}"#,
        )
        .expect("enum by name");
        let by_number = request(
            Method::PATCH,
            "/v1/workspaces/ws1/members/u1",
            None,
            r#"{"role": 3}"#,
        )
        .expect("enum by number");
        assert_eq!(by_name, by_number);
        assert_eq!(by_name["role"], "ROLE_ADMIN");
        assert_eq!(by_name["userId"], "u1");
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let unknown = request(
            Method::GET,
            "/v1/workspaces/ws1/audit-events",
            Some("bogus=1"),
            "",
        )
        .unwrap_err();
        assert!(
            unknown.message().contains("`bogus`"),
            "{}",
            unknown.message()
        );
        let not_a_number = request(
            Method::GET,
            "/v1/workspaces/ws1/audit-events",
            Some("page_size=many"),
            "",
        )
        .unwrap_err();
        assert!(
            not_a_number.message().contains("`page_size`"),
            "{}",
            not_a_number.message()
        );
        let twice = request(
            Method::GET,
            "/v1/workspaces/ws1/audit-events",
            Some("action=a&action=b"),
            "",
        )
        .unwrap_err();
        assert!(twice.message().contains("2 times"), "{}", twice.message());
        let both_spellings = request(
            Method::GET,
            "/v1/workspaces/ws1/audit-events",
            Some("pageSize=1&page_size=2"),
            "",
        )
        .unwrap_err();
        assert!(
            both_spellings.message().contains("2 times"),
            "{}",
            both_spellings.message()
        );
        let path_bound = request(
            Method::GET,
            "/v1/workspaces/ws1/members",
            Some("workspaceId=ws2"),
            "",
        )
        .unwrap_err();
        assert!(
            path_bound.message().contains("bound by the path"),
            "{}",
            path_bound.message()
        );
        let bad_enum = request(
            Method::GET,
            "/v1/workspaces/ws1/invitations",
            Some("include_closed=maybe"),
            "",
        )
        .unwrap_err();
        assert_eq!(bad_enum.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn body_fills_the_message_and_the_path_wins() {
        let json = request(
            Method::POST,
            "/v1/workspaces/ws1/invitations",
            None,
            r#"{"workspace_id": "other", "email": "a@example.com", "ttlSeconds": "3600"}"#,
        )
        .expect("valid body");
        assert_eq!(json["workspaceId"], "ws1");
        assert_eq!(json["email"], "a@example.com");
        assert_eq!(json["ttlSeconds"], "3600");
        let with_query = request(
            Method::POST,
            "/v1/workspaces/ws1/invitations",
            Some("email=x@example.com"),
            "{}",
        )
        .unwrap_err();
        assert!(
            with_query.message().contains("request body"),
            "{}",
            with_query.message()
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let unknown = request(
            Method::POST,
            "/v1/workspaces/ws1/api-keys",
            None,
            r#"{"name": "ci", "colour": "red"}"#,
        )
        .unwrap_err();
        assert_eq!(unknown.status(), http::StatusCode::BAD_REQUEST);
        assert!(
            unknown.message().contains("colour"),
            "{}",
            unknown.message()
        );
        let bad_time = request(
            Method::POST,
            "/v1/workspaces/ws1/api-keys",
            None,
            r#"{"name": "ci", "expireTime": "yesterday"}"#,
        )
        .unwrap_err();
        assert!(
            bad_time.message().contains("`expireTime`"),
            "{}",
            bad_time.message()
        );
        let malformed = request(
            Method::POST,
            "/v1/workspaces/ws1/api-keys",
            None,
            r#"{"name": "ci""#,
        )
        .unwrap_err();
        assert!(
            malformed.message().starts_with("malformed JSON body"),
            "{}",
            malformed.message()
        );
        let trailing = request(
            Method::POST,
            "/v1/workspaces/ws1/api-keys",
            None,
            r#"{} {}"#,
        )
        .unwrap_err();
        assert_eq!(trailing.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn an_empty_body_is_an_empty_message() {
        let json = request(
            Method::POST,
            "/v1/workspaces/w1/api-keys/k1:rotate",
            None,
            "",
        )
        .expect("empty body");
        assert_eq!(
            json,
            serde_json::json!({"workspaceId": "w1", "apiKeyId": "k1"})
        );
    }

    #[test]
    fn responses_are_canonical_json_with_defaults() {
        use prost::Message;
        let matched = table()
            .lookup(&Method::GET, "/v1/workspaces/w1")
            .expect("route");
        let response = tyboo_proto::tenancy::GetWorkspaceResponse {
            workspace: Some(tyboo_proto::tenancy::Workspace {
                id: "w1".into(),
                organization_id: String::new(),
                name: "Ops".into(),
                create_time: Some(prost_types::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 0,
                }),
            }),
        };
        let options = SerializeOptions::new().skip_default_fields(false);
        let json: Json = serde_json::from_slice(
            &response_json(&matched.route, &response.encode_to_vec(), &options).expect("json"),
        )
        .expect("valid json");
        assert_eq!(
            json,
            serde_json::json!({"workspace": {
                "id": "w1", "organizationId": "", "name": "Ops",
                "createTime": "2026-01-01T00:00:00Z"
            }})
        );
    }

    #[test]
    fn whole_numbers_print_without_a_fraction() {
        let mut json = serde_json::json!({
            "qty": 3.0, "price": 2.5, "negative": -7.0, "zero": 0.0,
            "big": 9_007_199_254_740_991.0_f64, "huge": 1e300,
            "nested": [{"n": 42.0}, 1.5, "3.0", true, null],
            "already": 12
        });
        integral_numbers(&mut json);
        assert_eq!(
            json.to_string(),
            r#"{"already":12,"big":9007199254740991,"huge":1e+300,"negative":-7,"nested":[{"n":42},1.5,"3.0",true,null],"price":2.5,"qty":3,"zero":0}"#
        );
    }
}
