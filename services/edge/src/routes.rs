//! The route table: every `google.api.http` binding of every public method,
//! read from the descriptor set at start-up.
//!
//! Nothing here names a service or an RPC: a method annotated later becomes a
//! route with no edge code. Every binding is checked once, here (fields that
//! exist, path variables on scalar fields, no two bindings of one method and
//! path shape), so a bad annotation stops the edge at start rather than
//! failing a caller.

use std::collections::HashSet;
use std::sync::Arc;

use http::Method;
use http::uri::PathAndQuery;
use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, Value,
};
use tyboo_proto::google::api::{HttpRule, http_rule::Pattern};

use crate::errors::{ApiError, EdgeError, EdgeResult};
use crate::path_template::PathTemplate;

/// The extension that carries a method's HTTP binding.
const HTTP_RULE_EXTENSION: &str = "google.api.http";

/// Paths the edge serves itself; an annotation may not shadow them.
pub(crate) const RESERVED_PREFIXES: &[&str] =
    &["/healthz", "/metrics", "/openapi.json", "/hooks", "/ui"];

/// Well-known types whose JSON form is a single string, number or boolean,
/// so a path variable or query parameter can carry them.
const SCALAR_LIKE_WELL_KNOWN_TYPES: &[&str] = &[
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// A chain of fields from a request message down to one field (`a.b.c`).
#[derive(Clone, Debug)]
pub(crate) struct FieldPath {
    fields: Vec<FieldDescriptor>,
}

impl FieldPath {
    /// Resolves a dotted path of proto field names (and, when
    /// `accept_json_names`, lowerCamelCase JSON names) in `message`. Every
    /// step but the last must be a singular message field.
    pub(crate) fn resolve(
        message: &MessageDescriptor,
        dotted: &str,
        accept_json_names: bool,
    ) -> Result<Self, String> {
        let mut fields = Vec::new();
        let mut current = message.clone();
        let mut names = dotted.split('.').peekable();
        while let Some(name) = names.next() {
            let field = current
                .get_field_by_name(name)
                .or_else(|| {
                    accept_json_names
                        .then(|| current.get_field_by_json_name(name))
                        .flatten()
                })
                .ok_or_else(|| format!("`{}` has no field `{name}`", current.full_name()))?;
            if names.peek().is_some() {
                match field.kind() {
                    Kind::Message(child)
                        if !field.is_list() && !field.is_map() && !is_scalar_like(&child) =>
                    {
                        current = child;
                    }
                    _ => {
                        return Err(format!(
                            "`{}` is not a singular message field, so `{dotted}` cannot reach into it",
                            field.name()
                        ));
                    }
                }
            }
            fields.push(field);
        }
        Ok(Self { fields })
    }

    pub(crate) fn fields(&self) -> &[FieldDescriptor] {
        &self.fields
    }

    pub(crate) fn leaf(&self) -> &FieldDescriptor {
        self.fields
            .last()
            .expect("a resolved field path holds at least one field")
    }

    pub(crate) fn proto_path(&self) -> String {
        self.fields
            .iter()
            .map(FieldDescriptor::name)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Whether `self` is `other` or lies inside it.
    pub(crate) fn starts_with(&self, other: &FieldPath) -> bool {
        other.fields.len() <= self.fields.len()
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|(mine, theirs)| mine.number() == theirs.number())
    }
}

/// Whether a field's value can be written as one string (a path variable or
/// a query parameter value).
pub(crate) fn is_scalar_value_field(field: &FieldDescriptor) -> bool {
    !field.is_map()
        && match field.kind() {
            Kind::Message(message) => is_scalar_like(&message),
            _ => true,
        }
}

pub(crate) fn is_scalar_like(message: &MessageDescriptor) -> bool {
    SCALAR_LIKE_WELL_KNOWN_TYPES.contains(&message.full_name())
}

/// Where the HTTP body goes in the request message.
#[derive(Clone, Debug)]
pub(crate) enum BodyBinding {
    /// No body: every field not in the path is a query parameter.
    None,
    /// `body: "*"`: the body is the whole message.
    Whole,
    /// `body: "field"`: the body is that top-level field.
    Field(FieldDescriptor),
}

#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) http_method: Method,
    pub(crate) template: PathTemplate,
    pub(crate) rpc: MethodDescriptor,
    /// Full name of the service, to find its upstream channel.
    pub(crate) service: String,
    pub(crate) grpc_path: PathAndQuery,
    /// One per template variable, in the same order.
    pub(crate) path_fields: Vec<FieldPath>,
    pub(crate) body: BodyBinding,
    pub(crate) response_body: Option<FieldDescriptor>,
    /// The bounded `route` label of metrics: the template, never the path.
    pub(crate) label: Arc<str>,
    /// Whether the request or the answer holds JSON carried as text
    /// (`tyboo.common.v1.Json`), found once here rather than per call.
    pub(crate) input_json_text: bool,
    pub(crate) output_json_text: bool,
}

/// A matched route with its decoded path variables.
#[derive(Debug)]
pub(crate) struct RouteMatch {
    pub(crate) route: Arc<Route>,
    pub(crate) path_values: Vec<(FieldPath, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    /// Most specific first, so the first match wins.
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    pub(crate) fn build(pool: &DescriptorPool, public_services: &[String]) -> EdgeResult<Self> {
        // A set without the annotations at all simply has no HTTP routes.
        let Some(extension) = pool.get_extension_by_name(HTTP_RULE_EXTENSION) else {
            return Ok(Self::default());
        };
        let mut routes = Vec::new();
        for service_name in public_services {
            let service = pool
                .get_service_by_name(service_name)
                .ok_or_else(|| EdgeError::UnknownService(service_name.clone()))?;
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                let route_error = |reason: String| EdgeError::Route {
                    method: method.full_name().to_owned(),
                    reason,
                };
                if method.is_client_streaming() || method.is_server_streaming() {
                    // Streaming RPCs stay reachable over native gRPC; only
                    // unary calls have a one-request, one-response JSON form.
                    tracing::warn!(
                        method = method.full_name(),
                        "streaming method has an HTTP binding; it is served over gRPC only"
                    );
                    continue;
                }
                let rule = match options.get_extension(&extension).as_ref() {
                    Value::Message(message) => message
                        .transcode_to::<HttpRule>()
                        .map_err(|err| route_error(format!("unreadable HttpRule: {err}")))?,
                    _ => return Err(route_error("google.api.http is not a message".into())),
                };
                routes.push(build_route(&method, service_name, &rule)?);
                for binding in &rule.additional_bindings {
                    if !binding.additional_bindings.is_empty() {
                        return Err(route_error(
                            "additional_bindings cannot nest additional_bindings".into(),
                        ));
                    }
                    routes.push(build_route(&method, service_name, binding)?);
                }
            }
        }
        check_conflicts(&routes)?;
        routes.sort_by_key(|route| std::cmp::Reverse(route.template.specificity()));
        Ok(Self {
            routes: routes.into_iter().map(Arc::new).collect(),
        })
    }

    pub(crate) fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Finds the route of a request: 404 when no template matches the path,
    /// 405 when templates match but for other methods. Only the most
    /// specific template that matches counts (routes are kept in that
    /// order): `/v1/things/{id}:cancel` is not also `/v1/things/{id}` with
    /// an id of `…:cancel`, so its `Allow` names only the cancel's method.
    pub(crate) fn lookup(&self, method: &Method, path: &str) -> Result<RouteMatch, ApiError> {
        let mut allowed: Vec<Method> = Vec::new();
        let mut best_shape: Option<String> = None;
        for route in &self.routes {
            let Some(raw_values) = route.template.matches(path) else {
                continue;
            };
            let shape = route.template.shape();
            match &best_shape {
                None => best_shape = Some(shape),
                Some(best) if *best != shape => continue,
                Some(_) => {}
            }
            if route.http_method != *method {
                if !allowed.contains(&route.http_method) {
                    allowed.push(route.http_method.clone());
                }
                continue;
            }
            let mut path_values = Vec::with_capacity(raw_values.len());
            for (index, raw) in raw_values.iter().enumerate() {
                let value = route
                    .template
                    .decode(index, raw)
                    .map_err(|err| ApiError::invalid_argument(err.to_string()))?;
                path_values.push((route.path_fields[index].clone(), value));
            }
            return Ok(RouteMatch {
                route: Arc::clone(route),
                path_values,
            });
        }
        if allowed.is_empty() {
            return Err(ApiError::route_not_found(path));
        }
        // A stable order, so the Allow header does not depend on specificity.
        allowed.sort_by_key(|method| {
            [
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ]
            .iter()
            .position(|known| known == method)
            .unwrap_or(usize::MAX)
        });
        Err(ApiError::method_not_allowed(method, &allowed))
    }
}

fn build_route(method: &MethodDescriptor, service: &str, rule: &HttpRule) -> EdgeResult<Route> {
    let route_error = |reason: String| EdgeError::Route {
        method: method.full_name().to_owned(),
        reason,
    };
    let (http_method, template_text) = match &rule.pattern {
        Some(Pattern::Get(path)) => (Method::GET, path.as_str()),
        Some(Pattern::Put(path)) => (Method::PUT, path.as_str()),
        Some(Pattern::Post(path)) => (Method::POST, path.as_str()),
        Some(Pattern::Delete(path)) => (Method::DELETE, path.as_str()),
        Some(Pattern::Patch(path)) => (Method::PATCH, path.as_str()),
        Some(Pattern::Custom(custom)) => (
            Method::from_bytes(custom.kind.as_bytes())
                .map_err(|_| route_error(format!("`{}` is not an HTTP method", custom.kind)))?,
            custom.path.as_str(),
        ),
        None => return Err(route_error("the HttpRule names no method and path".into())),
    };
    if RESERVED_PREFIXES
        .iter()
        .any(|prefix| template_text == *prefix || template_text.starts_with(&format!("{prefix}/")))
    {
        return Err(route_error(format!(
            "`{template_text}` collides with a path the edge serves itself"
        )));
    }
    let template =
        PathTemplate::parse(template_text).map_err(|err| route_error(err.to_string()))?;

    let input = method.input();
    let mut path_fields = Vec::with_capacity(template.variables().len());
    for variable in template.variables() {
        let field_path = FieldPath::resolve(&input, variable.field_path(), false)
            .map_err(|reason| route_error(format!("path variable: {reason}")))?;
        let leaf = field_path.leaf();
        if leaf.is_list() || !is_scalar_value_field(leaf) {
            return Err(route_error(format!(
                "path variable `{}` must be a singular scalar field",
                variable.field_path()
            )));
        }
        path_fields.push(field_path);
    }

    let body = match rule.body.as_str() {
        "" => BodyBinding::None,
        "*" => BodyBinding::Whole,
        name => BodyBinding::Field(input.get_field_by_name(name).ok_or_else(|| {
            route_error(format!(
                "body field `{name}` is not a top-level request field"
            ))
        })?),
    };
    let response_body = match rule.response_body.as_str() {
        "" => None,
        name => Some(method.output().get_field_by_name(name).ok_or_else(|| {
            route_error(format!(
                "response_body `{name}` is not a top-level response field"
            ))
        })?),
    };
    let grpc_path = PathAndQuery::try_from(format!("/{service}/{}", method.name()))
        .map_err(|err| route_error(format!("invalid gRPC path: {err}")))?;
    Ok(Route {
        label: Arc::from(template_text),
        input_json_text: crate::json_text::holds_json_text(&method.input(), &mut Vec::new()),
        output_json_text: crate::json_text::holds_json_text(&method.output(), &mut Vec::new()),
        http_method,
        template,
        rpc: method.clone(),
        service: service.to_owned(),
        grpc_path,
        path_fields,
        body,
        response_body,
    })
}

/// Two bindings with one method and one path shape cannot be told apart; the
/// later would silently never be reached.
fn check_conflicts(routes: &[Route]) -> EdgeResult<()> {
    let mut seen = HashSet::new();
    for route in routes {
        let key = format!("{} {}", route.http_method, route.template.shape());
        if !seen.insert(key) {
            return Err(EdgeError::Route {
                method: route.rpc.full_name().to_owned(),
                reason: format!(
                    "{} {} is already bound to another method",
                    route.http_method,
                    route.template.text()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const TENANCY: &str = "tyboo.tenancy.v1.TenancyService";

    pub(crate) fn pool() -> DescriptorPool {
        DescriptorPool::decode(tyboo_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
    }

    pub(crate) fn table() -> RouteTable {
        RouteTable::build(&pool(), &[TENANCY.to_owned()]).expect("tenancy routes build")
    }

    #[test]
    fn every_annotated_tenancy_method_is_routed() {
        let table = table();
        let pool = pool();
        let service = pool.get_service_by_name(TENANCY).expect("service");
        assert_eq!(table.routes().len(), service.methods().len());
        assert!(table.routes().iter().all(|route| {
            route
                .grpc_path
                .as_str()
                .starts_with("/tyboo.tenancy.v1.TenancyService/")
        }));
    }

    #[test]
    fn lookup_binds_path_variables_to_fields() {
        let found = table()
            .lookup(&Method::POST, "/v1/workspaces/w%201/api-keys/k1:rotate")
            .expect("rotate route");
        assert_eq!(found.route.rpc.name(), "RotateApiKey");
        let bound: Vec<(String, String)> = found
            .path_values
            .iter()
            .map(|(path, value)| (path.proto_path(), value.clone()))
            .collect();
        assert_eq!(
            bound,
            vec![
                ("workspace_id".to_owned(), "w 1".to_owned()),
                ("api_key_id".to_owned(), "k1".to_owned())
            ]
        );
        let accept = table()
            .lookup(&Method::POST, "/v1/invitations:accept")
            .expect("accept route");
        assert_eq!(accept.route.rpc.name(), "AcceptInvitation");
        assert!(matches!(accept.route.body, BodyBinding::Whole));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let table = table();
        let missing = table.lookup(&Method::GET, "/v1/nothing").unwrap_err();
        assert_eq!(missing.status(), http::StatusCode::NOT_FOUND);
        let wrong = table
            .lookup(&Method::PUT, "/v1/workspaces/w1/members/u1")
            .unwrap_err();
        assert_eq!(wrong.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert!(wrong.message().contains("PATCH"));
        assert!(wrong.message().contains("DELETE"));
    }

    #[test]
    fn field_paths_resolve_proto_and_json_names() {
        let pool = pool();
        let request = pool
            .get_message_by_name("tyboo.tenancy.v1.ListAuditEventsRequest")
            .expect("message");
        let by_json = FieldPath::resolve(&request, "pageSize", true).expect("json name");
        assert_eq!(by_json.proto_path(), "page_size");
        assert!(FieldPath::resolve(&request, "pageSize", false).is_err());
        assert!(FieldPath::resolve(&request, "start_time.seconds", true).is_err());
        let response = pool
            .get_message_by_name("tyboo.tenancy.v1.GetWorkspaceResponse")
            .expect("message");
        let nested =
            FieldPath::resolve(&response, "workspace.organization_id", false).expect("nested path");
        assert_eq!(nested.proto_path(), "workspace.organization_id");
        assert_eq!(nested.leaf().json_name(), "organizationId");
        let parent = FieldPath::resolve(&response, "workspace", false).expect("parent");
        assert!(nested.starts_with(&parent));
        assert!(!parent.starts_with(&nested));
    }
}
