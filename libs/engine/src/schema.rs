//! A checker for the JSON Schema subset the catalog's parameter schemas use (see
//! [`crate::catalog`]). A full JSON Schema crate would pull in regex engines and remote
//! reference resolution for no gain here: these schemas are ours and small.

use serde_json::Value;

use crate::catalog::{NodeTypeInfo, PathSegment, format_path};
use crate::expr;

/// How strictly to check: saved parameters may hold `{{ }}` templates anywhere (their
/// type is known only once rendered); rendered parameters may not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SchemaMode {
    pub templates: bool,
    pub compile_programs: bool,
    pub max_program_bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchemaViolation {
    /// Path within the parameters, such as `messages[0].role`; empty for the whole object.
    pub path: String,
    pub message: String,
}

pub(crate) fn check_parameters(
    info: &NodeTypeInfo,
    parameters: &Value,
    mode: SchemaMode,
) -> Result<(), SchemaViolation> {
    let mut path = Vec::new();
    check_value(info, &info.parameters_schema, parameters, &mut path, mode)
}

fn violation(path: &[PathSegment<'_>], message: impl Into<String>) -> SchemaViolation {
    SchemaViolation {
        path: format_path(path),
        message: message.into(),
    }
}

fn check_value<'v>(
    info: &NodeTypeInfo,
    schema: &Value,
    value: &'v Value,
    path: &mut Vec<PathSegment<'v>>,
    mode: SchemaMode,
) -> Result<(), SchemaViolation> {
    if let Value::String(text) = value {
        if info.is_program_parameter(path) {
            if text.len() > mode.max_program_bytes {
                return Err(violation(
                    path,
                    format!(
                        "jq program of {} bytes exceeds the {}-byte limit",
                        text.len(),
                        mode.max_program_bytes
                    ),
                ));
            }
            if mode.compile_programs {
                expr::check_program(text)
                    .map_err(|message| violation(path, format!("invalid jq program: {message}")))?;
            }
            return Ok(());
        }
        if mode.templates && expr::has_template(text) {
            return expr::check_template(text, mode.max_program_bytes)
                .map_err(|message| violation(path, message));
        }
    }

    check_type(schema, value, path)?;

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(violation(
            path,
            format!("must be one of {}", names.join(", ")),
        ));
    }

    match value {
        Value::String(text) => check_string(schema, text, path),
        Value::Number(number) => check_number(schema, number.as_f64().unwrap_or(f64::NAN), path),
        Value::Array(items) => check_array(info, schema, items, path, mode),
        Value::Object(fields) => check_object(info, schema, fields, path, mode),
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn type_matches(type_name: &str, value: &Value) -> bool {
    match type_name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn check_type(
    schema: &Value,
    value: &Value,
    path: &[PathSegment<'_>],
) -> Result<(), SchemaViolation> {
    let allowed: Vec<&str> = match schema.get("type") {
        None => return Ok(()),
        Some(Value::String(single)) => vec![single.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Ok(()),
    };
    if allowed
        .iter()
        .any(|type_name| type_matches(type_name, value))
    {
        return Ok(());
    }
    let article = |name: &str| match name {
        "integer" | "object" | "array" => format!("an {name}"),
        "null" => "null".to_owned(),
        _ => format!("a {name}"),
    };
    let expected: Vec<String> = allowed.iter().map(|name| article(name)).collect();
    Err(violation(
        path,
        format!("must be {}", expected.join(" or ")),
    ))
}

fn check_string(
    schema: &Value,
    text: &str,
    path: &[PathSegment<'_>],
) -> Result<(), SchemaViolation> {
    let length = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        return Err(violation(
            path,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        return Err(violation(path, format!("must be at most {max} characters")));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        check_format(format, text).map_err(|message| violation(path, message))?;
    }
    Ok(())
}

fn check_number(
    schema: &Value,
    number: f64,
    path: &[PathSegment<'_>],
) -> Result<(), SchemaViolation> {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && number < min
    {
        return Err(violation(path, format!("must be at least {min}")));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && number > max
    {
        return Err(violation(path, format!("must be at most {max}")));
    }
    Ok(())
}

fn check_array<'v>(
    info: &NodeTypeInfo,
    schema: &Value,
    items: &'v [Value],
    path: &mut Vec<PathSegment<'v>>,
    mode: SchemaMode,
) -> Result<(), SchemaViolation> {
    let count = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        return Err(violation(path, format!("must have at least {min} item(s)")));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        return Err(violation(path, format!("must have at most {max} items")));
    }
    if let Some(item_schema) = schema.get("items") {
        for (index, item) in items.iter().enumerate() {
            path.push(PathSegment::Index(index));
            let result = check_value(info, item_schema, item, path, mode);
            path.pop();
            result?;
        }
    }
    Ok(())
}

fn check_object<'v>(
    info: &NodeTypeInfo,
    schema: &Value,
    fields: &'v serde_json::Map<String, Value>,
    path: &mut Vec<PathSegment<'v>>,
    mode: SchemaMode,
) -> Result<(), SchemaViolation> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                let mut missing = format_path(path);
                if !missing.is_empty() {
                    missing.push('.');
                }
                missing.push_str(name);
                return Err(SchemaViolation {
                    path: missing,
                    message: "is required".to_owned(),
                });
            }
        }
    }
    for (key, field_value) in fields {
        let field_schema = match properties.and_then(|known| known.get(key)) {
            Some(field_schema) => Some(field_schema),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    path.push(PathSegment::Key(key));
                    let known: Vec<&str> = properties
                        .map(|known| known.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let message = if known.is_empty() {
                        "unknown parameter; this node type takes none".to_owned()
                    } else {
                        format!("unknown parameter; expected one of: {}", known.join(", "))
                    };
                    return Err(violation(path, message));
                }
                Some(extra @ Value::Object(_)) => Some(extra),
                _ => None,
            },
        };
        if let Some(field_schema) = field_schema {
            path.push(PathSegment::Key(key));
            let result = check_value(info, field_schema, field_value, path, mode);
            path.pop();
            result?;
        }
    }
    Ok(())
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn check_format(format: &str, text: &str) -> Result<(), String> {
    match format {
        "identifier" => {
            if is_identifier(text) {
                Ok(())
            } else {
                Err("must use only letters, digits, `_` and `-`".to_owned())
            }
        }
        "http-url" => check_http_url(text),
        "cron" => crate::schedule::parse_cron(text).map(|_| ()),
        "timezone" => crate::schedule::parse_timezone(text).map(|_| ()),
        "rfc3339" => chrono::DateTime::parse_from_rfc3339(text)
            .map(|_| ())
            .map_err(|_| "must be an RFC 3339 time such as 2026-01-31T12:00:00Z".to_owned()),
        "status-range" => parse_status_range(text).map(|_| ()).ok_or_else(|| {
            "must be a status such as \"204\" or a range such as \"200-299\"".to_owned()
        }),
        "header-name" => http::HeaderName::from_bytes(text.as_bytes())
            .map(|_| ())
            .map_err(|_| "must be a valid HTTP header name".to_owned()),
        "webhook-path" => {
            let valid = text.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment.bytes().all(|byte| {
                        byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
                    })
            });
            if valid {
                Ok(())
            } else {
                Err(
                    "must be segments of letters, digits, `_`, `-` and `.` separated by `/`"
                        .to_owned(),
                )
            }
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_http_url(text: &str) -> Result<(), String> {
    let parsed = url::Url::parse(text).map_err(|_| "must be an http or https URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("must be an http or https URL".to_owned());
    }
    Ok(())
}

/// `"204"` → (204, 204); `"200-299"` → (200, 299).
pub(crate) fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (
            low.trim().parse::<u16>().ok()?,
            high.trim().parse::<u16>().ok()?,
        ),
        None => {
            let single = text.trim().parse::<u16>().ok()?;
            (single, single)
        }
    };
    ((100..=599).contains(&low) && (100..=599).contains(&high) && low <= high)
        .then_some((low, high))
}

pub(crate) fn is_valid_identifier(text: &str) -> bool {
    is_identifier(text)
}
