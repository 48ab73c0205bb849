//! `/openapi.json`: an OpenAPI 3.1 document made from the same route table
//! and descriptors that drive transcoding, so it cannot drift from what the
//! edge accepts.
//!
//! Schemas follow the proto3 JSON mapping the edge speaks: lowerCamelCase
//! property names, enums by name, 64-bit integers as strings, `Timestamp` as
//! an RFC 3339 `date-time` string, wrappers as nullable scalars. Descriptions
//! come from the comments in the `.proto` files.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost_reflect::{DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json, json};

use tyboo_proto::buf::validate as rules;
use tyboo_proto::validation::{FieldConstraints, IntegerBounds};

use crate::routes::{BodyBinding, Route, RouteTable, is_scalar_value_field};

const ERROR_SCHEMA: &str = "Error";
const SECURITY_SCHEME: &str = "apiKey";
/// Methods that may be called without an API key: accepting an
/// invitation for an address new to the platform, where the invitation's
/// token is the credential.
const KEY_OPTIONAL: &[&str] = &["tyboo.tenancy.v1.TenancyService.AcceptInvitation"];
/// How deep query parameters are flattened into nested messages.
const MAX_QUERY_DEPTH: usize = 4;

/// The whole document.
pub(crate) fn document(routes: &RouteTable) -> Json {
    let mut builder = Builder::default();
    if let Some(route) = routes.routes().first() {
        builder.comments = Comments::new(route.rpc.parent_pool());
    }
    let mut ordered: Vec<&Route> = routes.routes().iter().map(AsRef::as_ref).collect();
    ordered.sort_by(|a, b| {
        (a.template.text(), a.http_method.as_str())
            .cmp(&(b.template.text(), b.http_method.as_str()))
    });
    let mut bindings_seen: HashMap<String, usize> = HashMap::new();
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    for route in ordered {
        let count = bindings_seen
            .entry(route.rpc.full_name().to_owned())
            .or_default();
        *count += 1;
        let operation = builder.operation(route, *count);
        let (path, _) = route.template.openapi_path();
        paths
            .entry(path)
            .or_default()
            .insert(route.http_method.as_str().to_ascii_lowercase(), operation);
    }
    builder.schemas.insert(
        ERROR_SCHEMA.to_owned(),
        json!({
            "type": "object",
            "description": "Every failed request answers with this body.",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The gRPC code name (e.g. NOT_FOUND), or \
                        PAYLOAD_TOO_LARGE for a body over the limit.",
                },
                "message": {"type": "string"},
                "request_id": {
                    "type": "string",
                    "description": "Quote it when reporting a problem.",
                },
            },
            "required": ["code", "message", "request_id"],
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tyboo Studio API",
            "version": "v1",
            "description": "Generated from the gRPC contracts. Every operation is also \
                reachable over native gRPC on the same port.",
        },
        "paths": paths,
        "components": {
            "schemas": builder.schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer tyb_…`.",
                },
            },
        },
        "security": [{ SECURITY_SCHEME: [] }],
    })
}

#[derive(Default)]
struct Builder {
    schemas: BTreeMap<String, Json>,
    comments: Comments,
}

impl Builder {
    fn operation(&mut self, route: &Route, binding_number: usize) -> Json {
        let method = &route.rpc;
        let service = method.parent_service();
        let mut operation_id = format!("{}_{}", service.name(), method.name());
        if binding_number > 1 {
            operation_id.push_str(&format!("_{binding_number}"));
        }
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(operation_id));
        if KEY_OPTIONAL.contains(&method.full_name()) {
            // The call may come without a key; the service decides.
            operation.insert("security".into(), json!([{}, { SECURITY_SCHEME: [] }]));
        }
        operation.insert("tags".into(), json!([service.name()]));
        if let Some(comment) = self.comments.of(method.parent_file().name(), method.path()) {
            let summary = comment.lines().next().unwrap_or_default().to_owned();
            operation.insert("summary".into(), json!(summary));
            operation.insert("description".into(), json!(comment));
        }

        let mut parameters = Vec::new();
        for field_path in &route.path_fields {
            let leaf = field_path.leaf();
            let schema = self.parameter_schema(leaf);
            let mut parameter = json!({
                "name": field_path.proto_path(),
                "in": "path",
                "required": true,
                "schema": schema,
            });
            self.describe_field(&mut parameter, leaf);
            parameters.push(parameter);
        }
        for name in route.template.openapi_path().1 {
            parameters.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        let bound: HashSet<String> = route.path_fields.iter().map(|p| p.proto_path()).collect();
        match &route.body {
            BodyBinding::Whole => {}
            BodyBinding::None => {
                self.query_parameters(
                    &method.input(),
                    "",
                    "",
                    &bound,
                    &mut Vec::new(),
                    &mut parameters,
                );
            }
            BodyBinding::Field(body_field) => {
                let mut without_body = bound.clone();
                without_body.insert(body_field.name().to_owned());
                self.query_parameters(
                    &method.input(),
                    "",
                    "",
                    &without_body,
                    &mut Vec::new(),
                    &mut parameters,
                );
            }
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Json::Array(parameters));
        }

        let body_schema = match &route.body {
            BodyBinding::None => None,
            // The fields the path binds are not part of the body.
            BodyBinding::Whole => Some(self.message_object(&method.input(), &bound)),
            BodyBinding::Field(field) => Some(self.field_schema(field)),
        };
        if let Some(schema) = body_schema {
            // An absent body is an empty message: it is only refused when
            // some field of the body is required.
            let required = match &route.body {
                BodyBinding::Field(field) => FieldConstraints::of(field).required,
                _ => schema
                    .get("required")
                    .and_then(Json::as_array)
                    .is_some_and(|required| !required.is_empty()),
            };
            operation.insert(
                "requestBody".into(),
                json!({
                    "required": required,
                    "content": {"application/json": {"schema": schema}},
                }),
            );
        }
        let response_schema = match &route.response_body {
            None => self.message_schema(&method.output()),
            Some(field) => self.field_schema(field),
        };
        operation.insert(
            "responses".into(),
            json!({
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": response_schema}},
                },
                "default": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": schema_ref(ERROR_SCHEMA)}}},
                },
            }),
        );
        Json::Object(operation)
    }

    /// Every field neither the path nor the body binds, flattened into
    /// `a.b` names as the transcoder accepts them.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        proto_prefix: &str,
        json_prefix: &str,
        bound: &HashSet<String>,
        visiting: &mut Vec<String>,
        parameters: &mut Vec<Json>,
    ) {
        visiting.push(message.full_name().to_owned());
        for field in message.fields() {
            let proto_path = format!("{proto_prefix}{}", field.name());
            let json_path = format!("{json_prefix}{}", field.json_name());
            if bound.contains(&proto_path) {
                continue;
            }
            if is_scalar_value_field(&field) {
                let schema = self.parameter_schema(&field);
                let mut parameter = json!({"name": json_path, "in": "query", "schema": schema});
                if FieldConstraints::of(&field).required {
                    parameter["required"] = json!(true);
                }
                if field.is_list() {
                    parameter["style"] = json!("form");
                    parameter["explode"] = json!(true);
                }
                self.describe_field(&mut parameter, &field);
                parameters.push(parameter);
            } else if let Kind::Message(child) = field.kind()
                && !field.is_list()
                && !field.is_map()
                && visiting.len() < MAX_QUERY_DEPTH
                && !visiting.iter().any(|name| name == child.full_name())
            {
                self.query_parameters(
                    &child,
                    &format!("{proto_path}."),
                    &format!("{json_path}."),
                    bound,
                    visiting,
                    parameters,
                );
            }
        }
        visiting.pop();
    }

    fn describe_field(&self, target: &mut Json, field: &FieldDescriptor) {
        if let Some(comment) = self.comments.of(field.parent_file().name(), field.path()) {
            target["description"] = json!(comment);
        }
    }

    /// A field inside a JSON object: its type, the rules the contract
    /// declares, and `null` where the field is optional (the proto3 JSON
    /// mapping reads `null` as "not set").
    fn field_schema(&mut self, field: &FieldDescriptor) -> Json {
        let constraints = FieldConstraints::of(field);
        let mut schema = if field.is_map() {
            let (key_kind, value_kind) = match field.kind() {
                Kind::Message(entry) => (
                    entry.map_entry_key_field().kind(),
                    entry.map_entry_value_field().kind(),
                ),
                other => (Kind::String, other),
            };
            let mut values = self.value_schema(&value_kind);
            let mut names = json!({"type": "string"});
            if let Some(rules::field_rules::Type::Map(map)) = &constraints.rules {
                if let Some(value_rules) = map.values.as_ref().and_then(|r| r.r#type.as_ref()) {
                    apply_rules(&mut values, value_rules, &value_kind);
                }
                if let Some(key_rules) = map.keys.as_ref().and_then(|r| r.r#type.as_ref()) {
                    apply_rules(&mut names, key_rules, &key_kind);
                }
            }
            let mut schema = json!({"type": "object", "additionalProperties": values});
            if names != json!({"type": "string"}) {
                schema["propertyNames"] = names;
            }
            if let Some(rules::field_rules::Type::Map(map)) = &constraints.rules
                && let Some(max) = map.max_pairs
            {
                schema["maxProperties"] = json!(max);
            }
            schema
        } else if field.is_list() {
            let kind = field.kind();
            let mut items = self.value_schema(&kind);
            let mut schema = json!({"type": "array"});
            if let Some(rules::field_rules::Type::Repeated(repeated)) = &constraints.rules {
                if let Some(item_rules) = repeated.items.as_ref().and_then(|r| r.r#type.as_ref()) {
                    apply_rules(&mut items, item_rules, &kind);
                }
                if let Some(min) = repeated.min_items {
                    schema["minItems"] = json!(min);
                }
                if let Some(max) = repeated.max_items {
                    schema["maxItems"] = json!(max);
                }
            }
            schema["items"] = items;
            schema
        } else {
            let kind = field.kind();
            let mut schema = self.value_schema(&kind);
            if let Some(field_rules) = &constraints.rules {
                apply_rules(&mut schema, field_rules, &kind);
                if constraints.ignore_if_zero {
                    schema = or_zero(schema, &kind);
                }
            }
            schema
        };
        if constraints.required {
            require(
                &mut schema,
                &field.kind(),
                field.is_list() || field.is_map(),
            );
        } else if !matches!(field.kind(), Kind::Message(ref m) if m.full_name() == "google.protobuf.Value")
        {
            schema = nullable(schema);
        }
        if constraints.output_only {
            schema["readOnly"] = json!(true);
        }
        self.describe_field(&mut schema, field);
        if constraints.immutable {
            let text = schema
                .get("description")
                .and_then(Json::as_str)
                .map(|text| format!("{text}\n\nImmutable: set when created, never changed."))
                .unwrap_or_else(|| "Immutable: set when created, never changed.".to_owned());
            schema["description"] = json!(text);
        }
        schema
    }

    /// A path or query parameter: the value itself with its rules (a query
    /// parameter that is absent is unset, so none is nullable).
    fn parameter_schema(&mut self, field: &FieldDescriptor) -> Json {
        let constraints = FieldConstraints::of(field);
        let kind = field.kind();
        let mut schema = self.value_schema(&kind);
        let rules = match &constraints.rules {
            Some(rules::field_rules::Type::Repeated(repeated)) => {
                repeated.items.as_ref().and_then(|r| r.r#type.clone())
            }
            other => other.clone(),
        };
        if let Some(rules) = &rules {
            apply_rules(&mut schema, rules, &kind);
            if constraints.ignore_if_zero {
                schema = or_zero(schema, &kind);
            }
        }
        if constraints.required {
            require(&mut schema, &kind, false);
        }
        if field.is_list() {
            schema = json!({"type": "array", "items": schema});
        }
        schema
    }

    fn value_schema(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({
                "type": "integer",
                "format": "int32",
                "minimum": i32::MIN,
                "maximum": i32::MAX,
            }),
            Kind::Uint32 | Kind::Fixed32 => json!({
                "type": "integer",
                "format": "uint32",
                "minimum": 0,
                "maximum": u32::MAX,
            }),
            // proto3 JSON writes 64-bit integers as strings (a double cannot
            // hold every value) and reads them as strings or numbers.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
                "type": ["string", "integer"],
                "format": "int64",
                "pattern": INT64_PATTERN,
                "minimum": i64::MIN,
                "maximum": i64::MAX,
            }),
            Kind::Uint64 | Kind::Fixed64 => json!({
                "type": ["string", "integer"],
                "format": "uint64",
                "pattern": UINT64_PATTERN,
                "minimum": 0,
                "maximum": u64::MAX,
            }),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(enumeration) => self.enum_schema(enumeration),
            Kind::Message(message) => self.message_schema(message),
        }
    }

    fn enum_schema(&mut self, enumeration: &EnumDescriptor) -> Json {
        if enumeration.full_name() == "google.protobuf.NullValue" {
            return json!({"type": "null"});
        }
        let name = enumeration.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            let mut schema = enum_values(enumeration, &[]);
            if let Some(comment) = self
                .comments
                .of(enumeration.parent_file().name(), enumeration.path())
            {
                schema["description"] = json!(comment);
            }
            self.schemas.insert(name.clone(), schema);
        }
        json!({"$ref": schema_ref(&name)})
    }

    fn message_schema(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = self.well_known_schema(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            // Reserve the name first: a message may contain itself.
            self.schemas.insert(name.clone(), json!({}));
            let schema = self.message_object(message, &HashSet::new());
            self.schemas.insert(name.clone(), schema);
        }
        json!({"$ref": schema_ref(&name)})
    }

    /// The JSON object of `message` without the fields named in `left_out`
    /// (those a request's path binds). Unknown fields are refused, so none
    /// are allowed here.
    fn message_object(&mut self, message: &MessageDescriptor, left_out: &HashSet<String>) -> Json {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if left_out.contains(field.name()) {
                continue;
            }
            let schema = self.field_schema(&field);
            if FieldConstraints::of(&field).required {
                required.push(json!(field.json_name()));
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            schema["required"] = Json::Array(required);
        }
        if let Some(comment) = self
            .comments
            .of(message.parent_file().name(), message.path())
        {
            schema["description"] = json!(comment);
        }
        schema
    }

    fn well_known_schema(&mut self, message: &MessageDescriptor) -> Option<Json> {
        Some(match message.full_name() {
            "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            "google.protobuf.Duration" => {
                json!({
                    "type": "string",
                    "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
                    "examples": ["1.5s"],
                })
            }
            "google.protobuf.FieldMask" => {
                json!({
                    "type": "string",
                    "description": "Comma-separated lowerCamelCase field paths.",
                })
            }
            "google.protobuf.Empty" => json!({"type": "object"}),
            "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
            "google.protobuf.Value" => json!({}),
            // JSON carried as text so its numbers stay exact; over HTTP it
            // is the value itself.
            crate::json_text::JSON_TEXT_MESSAGE => json!({}),
            "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
            "google.protobuf.Any" => json!({
                "type": "object",
                "properties": {"@type": {"type": "string"}},
                "required": ["@type"],
                "additionalProperties": true,
            }),
            "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue" => {
                let inner = message.get_field_by_name("value")?.kind();
                nullable(self.value_schema(&inner))
            }
            _ => return None,
        })
    }
}

/// A 64-bit integer written as a string: digits with an optional sign.
/// Eighteen digits keep every such value within range.
const INT64_PATTERN: &str = "^-?[0-9]{1,18}$";
const UINT64_PATTERN: &str = "^[0-9]{1,19}$";

/// An enum by name or by number, as the proto3 JSON mapping reads it,
/// without the values in `left_out`.
fn enum_values(enumeration: &EnumDescriptor, left_out: &[i32]) -> Json {
    let kept: Vec<_> = enumeration
        .values()
        .filter(|value| !left_out.contains(&value.number()))
        .collect();
    let mut values: Vec<Json> = kept.iter().map(|value| json!(value.name())).collect();
    values.extend(kept.iter().map(|value| json!(value.number())));
    json!({"type": ["string", "integer"], "enum": values})
}

/// `schema` with `null` allowed besides.
fn nullable(mut schema: Json) -> Json {
    let kinds = match schema.get("type") {
        _ if schema.get("$ref").is_some() => None,
        Some(Json::String(kind)) => Some(vec![json!(kind)]),
        Some(Json::Array(kinds)) => Some(kinds.clone()),
        Some(_) => return schema,
        None => None,
    };
    let Some(mut kinds) = kinds else {
        // `{}` already allows anything.
        if schema.as_object().is_some_and(Map::is_empty) {
            return schema;
        }
        let mut holder = json!({"anyOf": [schema, {"type": "null"}]});
        // Keep the documentation keywords where readers look for them.
        for keyword in ["description", "readOnly"] {
            if let Some(value) = holder["anyOf"][0]
                .as_object_mut()
                .and_then(|o| o.remove(keyword))
            {
                holder[keyword] = value;
            }
        }
        return holder;
    };
    if !kinds.contains(&json!("null")) {
        kinds.push(json!("null"));
    }
    schema["type"] = Json::Array(kinds);
    if let Some(Json::Array(values)) = schema.get_mut("enum") {
        values.push(Json::Null);
    }
    schema
}

/// `schema`, or the kind's zero value, which `IGNORE_IF_ZERO_VALUE` lets
/// through unchecked (an empty filter means "any").
fn or_zero(schema: Json, kind: &Kind) -> Json {
    let zero = match kind {
        Kind::String => json!(""),
        Kind::Bool => json!(false),
        Kind::Double | Kind::Float => json!(0.0),
        Kind::Enum(_) | Kind::Message(_) | Kind::Bytes => return schema,
        _ => json!(0),
    };
    json!({"anyOf": [{"const": zero}, schema]})
}

/// A required field: set, and for a scalar not its zero value.
fn require(schema: &mut Json, kind: &Kind, repeated: bool) {
    if repeated {
        if schema.get("minItems").is_none() && schema["type"] == "array" {
            schema["minItems"] = json!(1);
        }
        return;
    }
    match kind {
        Kind::String if schema.get("minLength").is_none() => schema["minLength"] = json!(1),
        _ => {}
    }
}

/// The JSON Schema keywords of a `buf.validate` rule.
fn apply_rules(schema: &mut Json, field_rules: &rules::field_rules::Type, kind: &Kind) {
    use rules::field_rules::Type;
    match field_rules {
        Type::String(string) => {
            if let Some(min) = string.min_len {
                schema["minLength"] = json!(min);
            }
            if let Some(max) = string.max_len {
                schema["maxLength"] = json!(max);
            }
            if let Some(pattern) = &string.pattern {
                schema["pattern"] = json!(pattern);
            }
            if !string.r#in.is_empty() {
                schema["enum"] = json!(string.r#in);
            }
            use rules::string_rules::WellKnown;
            match string.well_known {
                Some(WellKnown::Uuid(true)) => {
                    schema["format"] = json!("uuid");
                    schema["pattern"] = json!(UUID_PATTERN);
                }
                Some(WellKnown::Email(true)) => {
                    schema["format"] = json!("email");
                    if schema.get("maxLength").is_none() {
                        schema["maxLength"] = json!(254);
                    }
                }
                _ => {}
            }
        }
        Type::Int32(_) | Type::Int64(_) | Type::Uint32(_) => {
            let bounds = IntegerBounds::of(field_rules);
            bound(schema, bounds.min, bounds.max, bounds.exactly);
        }
        Type::Enum(enumeration) => {
            if let Kind::Enum(descriptor) = kind
                && (enumeration.defined_only.unwrap_or(false) || !enumeration.not_in.is_empty())
            {
                *schema = enum_values(descriptor, &enumeration.not_in);
            }
        }
        _ => {}
    }
}

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Narrows an integer schema to `[min, max]` (or to one value). A 64-bit
/// integer may also come as a string, whose pattern then says the same.
fn bound(schema: &mut Json, min: Option<i128>, max: Option<i128>, constant: Option<i128>) {
    let (min, max) = match constant {
        Some(value) => (Some(value), Some(value)),
        None => (min, max),
    };
    let current_min = schema.get("minimum").and_then(Json::as_i64).map(i128::from);
    let current_max = schema.get("maximum").and_then(|v| {
        v.as_u64()
            .map(i128::from)
            .or_else(|| v.as_i64().map(i128::from))
    });
    if let Some(min) = min {
        let min = current_min.map_or(min, |current| current.max(min));
        schema["minimum"] = json_integer(min);
    }
    if let Some(max) = max {
        let max = current_max.map_or(max, |current| current.min(max));
        schema["maximum"] = json_integer(max);
    }
    if schema.get("pattern").is_some() && min.is_some_and(|min| min >= 0) {
        // Digits only: a sign is never needed.
        schema["pattern"] = json!(if min.is_some_and(|min| min >= 1) {
            "^0*[1-9][0-9]{0,17}$"
        } else {
            "^[0-9]{1,18}$"
        });
    }
}

fn json_integer(value: i128) -> Json {
    if let Ok(value) = i64::try_from(value) {
        json!(value)
    } else if let Ok(value) = u64::try_from(value) {
        json!(value)
    } else {
        json!(value as f64)
    }
}

fn schema_ref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// Leading comments of every declaration, by file and descriptor path.
#[derive(Default)]
struct Comments {
    by_location: HashMap<(String, Vec<i32>), String>,
}

impl Comments {
    fn new(pool: &DescriptorPool) -> Self {
        let mut by_location = HashMap::new();
        for file in pool.files() {
            let proto = file.file_descriptor_proto();
            let Some(info) = &proto.source_code_info else {
                continue;
            };
            for location in &info.location {
                let Some(comment) = location.leading_comments.as_deref() else {
                    continue;
                };
                let text = comment
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim()
                    .to_owned();
                if !text.is_empty() {
                    by_location.insert((file.name().to_owned(), location.path.clone()), text);
                }
            }
        }
        Self { by_location }
    }

    fn of(&self, file: &str, path: &[i32]) -> Option<&str> {
        self.by_location
            .get(&(file.to_owned(), path.to_vec()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tests::table;

    #[test]
    fn paths_and_parameters_come_from_the_annotations() {
        let document = document(&table());
        assert_eq!(document["openapi"], "3.1.0");
        let members = &document["paths"]["/v1/workspaces/{workspace_id}/members"]["get"];
        assert_eq!(members["operationId"], "TenancyService_ListMembers");
        assert_eq!(members["parameters"][0]["name"], "workspace_id");
        assert_eq!(members["parameters"][0]["in"], "path");
        assert!(document["paths"]["/v1/invitations:accept"]["post"]["requestBody"].is_object());
        assert!(
            document["paths"]["/v1/workspaces/{workspace_id}/api-keys/{api_key_id}:rotate"]["post"]
                .is_object()
        );
        let audit = &document["paths"]["/v1/workspaces/{workspace_id}/audit-events"]["get"];
        let query: Vec<&str> = audit["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|parameter| parameter["in"] == "query")
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert!(query.contains(&"pageSize"));
        assert!(query.contains(&"startTime"));
        assert!(!query.contains(&"workspaceId"));
    }

    #[test]
    fn schemas_follow_the_proto3_json_mapping() {
        let document = document(&table());
        let schemas = &document["components"]["schemas"];
        let workspace = &schemas["tyboo.tenancy.v1.Workspace"]["properties"];
        assert_eq!(workspace["createTime"]["format"], "date-time");
        // proto3 JSON reads null as "not set".
        assert_eq!(
            workspace["organizationId"]["type"],
            json!(["string", "null"])
        );
        let audit_event = &schemas["tyboo.tenancy.v1.AuditEvent"]["properties"];
        // Written as strings, read as strings or numbers.
        assert_eq!(
            audit_event["sequence"]["type"],
            json!(["string", "integer", "null"])
        );
        assert_eq!(audit_event["sequence"]["format"], "int64");
        assert_eq!(audit_event["details"]["type"], json!(["object", "null"]));
        let role = &schemas["tyboo.common.v1.Role"];
        assert_eq!(role["type"], json!(["string", "integer"]));
        let values = role["enum"].as_array().unwrap();
        assert!(values.contains(&json!("ROLE_OWNER")));
        assert!(values.contains(&json!(4)), "enums come by name or number");
        assert_eq!(
            document["components"]["securitySchemes"]["apiKey"]["scheme"],
            "bearer"
        );
        let summary = document["paths"]["/v1/me"]["get"]["summary"]
            .as_str()
            .unwrap();
        assert!(
            summary.contains("caller"),
            "comments become summaries: {summary}"
        );
    }

    #[test]
    fn the_contracts_rules_reach_the_document() {
        let services: Vec<String> = [
            "tyboo.tenancy.v1.TenancyService",
            "tyboo.executor.v1.WorkflowService",
            "tyboo.executor.v1.ExecutionService",
            "tyboo.executor.v1.DeadLetterService",
            "tyboo.vault.v1.CredentialService",
        ]
        .map(str::to_owned)
        .to_vec();
        let table = RouteTable::build(&crate::routes::tests::pool(), &services).unwrap();
        let document = document(&table);
        let schemas = &document["components"]["schemas"];

        // A path id is a UUID.
        let get = &document["paths"]["/v1/workspaces/{workspace_id}"]["get"];
        let id = &get["parameters"][0]["schema"];
        assert_eq!(id["format"], "uuid");
        assert!(
            id["pattern"]
                .as_str()
                .unwrap()
                .starts_with("^[0-9a-fA-F]{8}-")
        );

        // A body leaves out what the path binds, lists what it requires,
        // carries formats and enum rules, and refuses unknown fields.
        let invite = &document["paths"]["/v1/workspaces/{workspace_id}/invitations"]["post"];
        assert_eq!(invite["requestBody"]["required"], true);
        let body = &invite["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["additionalProperties"], false);
        assert!(body["properties"].get("workspaceId").is_none(), "{body}");
        assert_eq!(body["required"], json!(["email", "role"]));
        assert_eq!(body["properties"]["email"]["format"], "email");
        assert_eq!(body["properties"]["email"]["maxLength"], 254);
        let roles = body["properties"]["role"]["enum"].as_array().unwrap();
        assert!(roles.contains(&json!("ROLE_EDITOR")));
        assert!(
            !roles.contains(&json!("ROLE_UNSPECIFIED")),
            "not_in leaves it out"
        );
        assert!(!roles.contains(&json!(0)));
        assert_eq!(body["properties"]["ttlSeconds"]["minimum"], 0);
        assert_eq!(body["properties"]["ttlSeconds"]["pattern"], "^[0-9]{1,18}$");

        // Names: length and a visible character.
        let create = &document["paths"]["/v1/workspaces"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        let name = &create["properties"]["name"];
        assert_eq!(name["minLength"], 1);
        assert_eq!(name["maxLength"], 200);
        assert!(name["pattern"].is_string());
        assert_eq!(create["required"], json!(["name"]));

        // Optional filters accept their zero value besides the rule.
        let executions = &document["paths"]["/v1/executions"]["get"]["parameters"];
        let workflow = executions
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "workflowId")
            .unwrap();
        assert_eq!(workflow["schema"]["anyOf"][0]["const"], "");
        assert_eq!(workflow["schema"]["anyOf"][1]["format"], "uuid");
        let page_size = executions
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "pageSize")
            .unwrap();
        assert_eq!(page_size["schema"]["minimum"], 0);
        assert_eq!(page_size["schema"]["maximum"], i32::MAX);

        // A call that may come without a key says so.
        let accept = &document["paths"]["/v1/invitations:accept"]["post"];
        assert_eq!(accept["security"], json!([{}, {"apiKey": []}]));
        assert!(
            get.get("security").is_none(),
            "the document's default applies"
        );

        // Credential types are the catalog's.
        let credential = &schemas["tyboo.vault.v1.Credential"];
        assert!(credential.is_object());
        let create_credential = &document["paths"]["/v1/credentials"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert!(
            create_credential["properties"]["type"]["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("bearer_token"))
        );
    }
}
