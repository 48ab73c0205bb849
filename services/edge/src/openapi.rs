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

use crate::routes::{BodyBinding, Route, RouteTable, is_scalar_value_field};

const ERROR_SCHEMA: &str = "Error";
const SECURITY_SCHEME: &str = "apiKey";
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
        operation.insert("tags".into(), json!([service.name()]));
        if let Some(comment) = self.comments.of(method.parent_file().name(), method.path()) {
            let summary = comment.lines().next().unwrap_or_default().to_owned();
            operation.insert("summary".into(), json!(summary));
            operation.insert("description".into(), json!(comment));
        }

        let mut parameters = Vec::new();
        for field_path in &route.path_fields {
            let leaf = field_path.leaf();
            let mut parameter = json!({
                "name": field_path.proto_path(),
                "in": "path",
                "required": true,
                "schema": self.value_schema(&leaf.kind()),
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
            BodyBinding::Whole => Some(self.message_schema(&method.input())),
            BodyBinding::Field(field) => Some(self.field_schema(field)),
        };
        if let Some(schema) = body_schema {
            operation.insert(
                "requestBody".into(),
                json!({"content": {"application/json": {"schema": schema}}}),
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
                let mut schema = self.value_schema(&field.kind());
                if field.is_list() {
                    schema = json!({"type": "array", "items": schema});
                }
                let mut parameter = json!({"name": json_path, "in": "query", "schema": schema});
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

    fn field_schema(&mut self, field: &FieldDescriptor) -> Json {
        let mut schema = if field.is_map() {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            json!({"type": "object", "additionalProperties": self.value_schema(&value_kind)})
        } else if field.is_list() {
            json!({"type": "array", "items": self.value_schema(&field.kind())})
        } else {
            self.value_schema(&field.kind())
        };
        self.describe_field(&mut schema, field);
        schema
    }

    fn value_schema(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "uint32", "minimum": 0})
            }
            // proto3 JSON writes 64-bit integers as strings: a double cannot
            // hold every value.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
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
            let values: Vec<String> = enumeration
                .values()
                .map(|value| value.name().to_owned())
                .collect();
            let mut schema = json!({"type": "string", "enum": values});
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
            let mut properties = Map::new();
            for field in message.fields() {
                let schema = self.field_schema(&field);
                properties.insert(field.json_name().to_owned(), schema);
            }
            let mut schema = json!({"type": "object", "properties": properties});
            if let Some(comment) = self
                .comments
                .of(message.parent_file().name(), message.path())
            {
                schema["description"] = json!(comment);
            }
            self.schemas.insert(name.clone(), schema);
        }
        json!({"$ref": schema_ref(&name)})
    }

    fn well_known_schema(&mut self, message: &MessageDescriptor) -> Option<Json> {
        let nullable = |mut schema: Json| {
            if let Some(kind) = schema.get("type").cloned() {
                schema["type"] = json!([kind, "null"]);
            }
            schema
        };
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
        assert_eq!(workspace["organizationId"]["type"], "string");
        let audit_event = &schemas["tyboo.tenancy.v1.AuditEvent"]["properties"];
        assert_eq!(audit_event["sequence"]["type"], "string");
        assert_eq!(audit_event["sequence"]["format"], "int64");
        assert_eq!(audit_event["details"]["type"], "object");
        let role = &schemas["tyboo.common.v1.Role"];
        assert_eq!(role["type"], "string");
        assert!(
            role["enum"]
                .as_array()
                .unwrap()
                .contains(&json!("ROLE_OWNER"))
        );
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
}
