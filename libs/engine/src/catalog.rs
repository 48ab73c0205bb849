//! The node types a workflow may use, each with the JSON Schema of its parameters.
//!
//! Schemas use a small subset of JSON Schema that [`crate::schema`] checks: `type`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `default`, `description`,
//! and `format` with the engine's own formats (`identifier`, `http-url`, `cron`,
//! `timezone`, `jq`, `rfc3339`, `status-range`, `header-name`, `webhook-path`).

use serde::Serialize;
use serde_json::{Value, json};

use crate::graph::{MAIN_PORT, Pool};

/// Every trigger type's name starts with this, which lets the executor find the trigger
/// of a graph without a catalog.
pub const TRIGGER_PREFIX: &str = "trigger.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Trigger,
    Action,
    Flow,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Trigger => "trigger",
            Category::Action => "action",
            Category::Flow => "flow",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeTypeInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub category: Category,
    pub pool: Pool,
    pub parameters_schema: Value,
    /// The credential type a node of this type may reference, if any.
    pub credential_type: Option<&'static str>,
}

impl NodeTypeInfo {
    /// The ports a node of this type can emit on, given its parameters.
    pub fn output_ports(&self, parameters: &Value) -> Vec<String> {
        match self.name {
            "if" => vec!["true".to_owned(), "false".to_owned()],
            "switch" => {
                let mut ports: Vec<String> = parameters
                    .get("cases")
                    .and_then(Value::as_array)
                    .map(|cases| {
                        cases
                            .iter()
                            .filter_map(|case| case.get("name").and_then(Value::as_str))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                ports.push(SWITCH_DEFAULT_PORT.to_owned());
                ports
            }
            _ => vec![MAIN_PORT.to_owned()],
        }
    }

    /// Parameters that are jq programs evaluated by the node itself; they are compiled at
    /// save time and never rendered as `{{ }}` templates.
    pub fn is_program_parameter(&self, path: &[PathSegment<'_>]) -> bool {
        matches!(
            (self.name, path),
            ("transform", [PathSegment::Key("program")])
                | ("if", [PathSegment::Key("condition")])
                | (
                    "switch",
                    [
                        PathSegment::Key("cases"),
                        PathSegment::Index(_),
                        PathSegment::Key("condition")
                    ]
                )
        )
    }
}

/// One step of a path into a parameters document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSegment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Renders a parameter path the way errors show it: `cases[0].condition`.
pub fn format_path(path: &[PathSegment<'_>]) -> String {
    let mut rendered = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !rendered.is_empty() {
                    rendered.push('.');
                }
                rendered.push_str(key);
            }
            PathSegment::Index(index) => {
                rendered.push_str(&format!("[{index}]"));
            }
        }
    }
    rendered
}

/// The port a `switch` emits on when no case matches.
pub const SWITCH_DEFAULT_PORT: &str = "default";

#[derive(Clone, Debug)]
pub struct Catalog {
    types: Vec<NodeTypeInfo>,
}

impl Catalog {
    /// The node types every workspace can use.
    pub fn standard() -> Catalog {
        Catalog {
            types: vec![
                manual_trigger(),
                webhook_trigger(),
                schedule_trigger(),
                http_request(),
                llm_chat(),
                transform(),
                if_node(),
                switch_node(),
                merge(),
                delay(),
                slack_message(),
                sql_query(),
                set(),
            ],
        }
    }

    /// The standard catalog, built once per process.
    pub fn standard_ref() -> &'static Catalog {
        static STANDARD: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        STANDARD.get_or_init(Catalog::standard)
    }

    pub fn get(&self, name: &str) -> Option<&NodeTypeInfo> {
        self.types.iter().find(|info| info.name == name)
    }

    pub fn all(&self) -> impl Iterator<Item = &NodeTypeInfo> {
        self.types.iter()
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn manual_trigger() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "trigger.manual",
        title: "Manual or API trigger",
        description: "Starts an execution from the API or the editor, with the caller's input as trigger data.",
        category: Category::Trigger,
        pool: Pool::Default,
        parameters_schema: object(json!({}), &[]),
        credential_type: None,
    }
}

fn webhook_trigger() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "trigger.webhook",
        title: "Webhook",
        description: "Starts an execution when its URL /hooks/{token}/{path} is called; replies at once (async) or with a chosen node's output (sync). With `signature` set, every request must be signed with the attached webhook_signing_secret credential.",
        category: Category::Trigger,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "path": {"type": "string", "format": "webhook-path", "minLength": 1, "maxLength": 200,
                         "description": "Path under /hooks/{token}/"},
                "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
                "mode": {"type": "string", "enum": ["async", "sync"], "default": "async",
                         "description": "async answers 202 with the execution id; sync answers with respond_node's output"},
                "respond_node": {"type": "string", "format": "identifier",
                                 "description": "Node whose output is the sync reply"},
                "response_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 300000, "default": 30000},
                "delivery_id_header": {"type": "string", "format": "header-name",
                                       "description": "Request header whose value makes deliveries idempotent"},
                "signature": {"type": "string", "enum": ["github", "stripe"],
                              "description": "github: X-Hub-Signature-256 = sha256=<hex HMAC-SHA256 of the body>; stripe: Stripe-Signature = t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">. Needs a credential."},
                "signature_tolerance_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 300,
                                                "description": "stripe: how far the signed timestamp may be from now"}
            }),
            &["path"],
        ),
        credential_type: Some("webhook"),
    }
}

fn schedule_trigger() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "trigger.schedule",
        title: "Schedule",
        description: "Starts an execution on a cron schedule in a time zone.",
        category: Category::Trigger,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "cron": {"type": "string", "format": "cron", "maxLength": 200,
                         "description": "Five fields (minute hour day month weekday), or six with seconds first"},
                "timezone": {"type": "string", "format": "timezone", "default": "UTC"}
            }),
            &["cron"],
        ),
        credential_type: None,
    }
}

fn http_request() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "http.request",
        title: "HTTP request",
        description: "Calls an HTTP API. Output: {status, headers, body}.",
        category: Category::Action,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], "default": "GET"},
                "url": {"type": "string", "format": "http-url", "maxLength": 8192},
                "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8192}},
                "query": {"type": "object", "additionalProperties": {"type": ["string", "number", "integer", "boolean"]}},
                "body_type": {"type": "string", "enum": ["json", "text", "none"],
                              "description": "Defaults to json when a body is given, else none"},
                "body": {"description": "JSON value, or a string when body_type is text"},
                "response_type": {"type": "string", "enum": ["json", "text"], "default": "json"},
                "fail_on_status": {"type": "boolean", "default": true,
                                   "description": "Fail when the status is outside expected_status"},
                "expected_status": {"type": "array", "items": {"type": "string", "format": "status-range"},
                                    "minItems": 1, "maxItems": 20, "default": ["200-299"],
                                    "description": "Statuses such as \"204\" or ranges such as \"200-299\""}
            }),
            &["url"],
        ),
        credential_type: Some("http"),
    }
}

fn llm_chat() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "llm.chat",
        title: "LLM chat",
        description: "Calls an OpenAI-compatible chat-completions API. Output: {text, usage, model}.",
        category: Category::Action,
        pool: Pool::Ai,
        parameters_schema: object(
            json!({
                "base_url": {"type": "string", "format": "http-url", "default": "https://api.openai.com/v1"},
                "model": {"type": "string", "minLength": 1, "maxLength": 200},
                "messages": {"type": "array", "minItems": 1, "maxItems": 500, "items": object(json!({
                    "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                    "content": {"type": "string"}
                }), &["role", "content"])},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": 1000000},
                "api_key": {"type": "string", "description": "Used when no credential is attached"}
            }),
            &["model", "messages"],
        ),
        credential_type: Some("llm"),
    }
}

fn transform() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "transform",
        title: "Transform (jq)",
        description: "Runs a jq program over {trigger, nodes, input, inputs, execution}. One result is the output; several become an array.",
        category: Category::Action,
        pool: Pool::Default,
        parameters_schema: object(
            json!({"program": {"type": "string", "format": "jq"}}),
            &["program"],
        ),
        credential_type: None,
    }
}

fn if_node() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "if",
        title: "If",
        description: "Emits its input on port true or false, by the jq truthiness of condition.",
        category: Category::Flow,
        pool: Pool::Default,
        parameters_schema: object(
            json!({"condition": {"type": "string", "format": "jq"}}),
            &["condition"],
        ),
        credential_type: None,
    }
}

fn switch_node() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "switch",
        title: "Switch",
        description: "Emits its input on the port of the first case whose condition holds, else on default.",
        category: Category::Flow,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "cases": {"type": "array", "minItems": 1, "maxItems": 50, "items": object(json!({
                    "name": {"type": "string", "format": "identifier", "maxLength": 64},
                    "condition": {"type": "string", "format": "jq"}
                }), &["name", "condition"])}
            }),
            &["cases"],
        ),
        credential_type: None,
    }
}

fn merge() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "merge",
        title: "Merge",
        description: "Waits for all its inputs. inputs: {inputs: [...]}; concat: the input arrays joined; merge_objects: the input objects merged, later ones winning.",
        category: Category::Flow,
        pool: Pool::Default,
        parameters_schema: object(
            json!({"mode": {"type": "string", "enum": ["inputs", "concat", "merge_objects"], "default": "inputs"}}),
            &[],
        ),
        credential_type: None,
    }
}

fn delay() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "delay",
        title: "Delay",
        description: "Passes its input on after ms milliseconds, or at the time until; exactly one of them.",
        category: Category::Flow,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "ms": {"type": "integer", "minimum": 0},
                "until": {"type": "string", "format": "rfc3339"}
            }),
            &[],
        ),
        credential_type: None,
    }
}

fn slack_message() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "slack.message",
        title: "Slack message",
        description: "Posts to a Slack incoming webhook. The webhook URL comes from the credential or webhook_url.",
        category: Category::Action,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "webhook_url": {"type": "string", "format": "http-url"},
                "text": {"type": "string", "maxLength": 40000},
                "blocks": {"type": "array", "maxItems": 50, "items": {"type": "object"}}
            }),
            &[],
        ),
        credential_type: Some("slack"),
    }
}

fn sql_query() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "sql.query",
        title: "SQL query",
        description: "Runs one parameterized statement on PostgreSQL ($1, $2, …) or SQLite (?). Output: {rows, row_count, rows_affected}.",
        category: Category::Action,
        pool: Pool::Data,
        parameters_schema: object(
            json!({
                "driver": {"type": "string", "enum": ["postgres", "sqlite"]},
                "url": {"type": "string", "maxLength": 4096, "description": "Used when no credential is attached"},
                "query": {"type": "string", "minLength": 1, "maxLength": 100000},
                "params": {"type": "array", "maxItems": 1000,
                           "items": {"type": ["string", "number", "integer", "boolean", "null"]}},
                "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000000}
            }),
            &["driver", "query"],
        ),
        credential_type: Some("database"),
    }
}

fn set() -> NodeTypeInfo {
    NodeTypeInfo {
        name: "set",
        title: "Set",
        description: "Outputs values; with include_input, the input object with values laid over it.",
        category: Category::Action,
        pool: Pool::Default,
        parameters_schema: object(
            json!({
                "values": {"type": "object"},
                "include_input": {"type": "boolean", "default": false}
            }),
            &["values"],
        ),
        credential_type: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_and_only_triggers_carry_the_trigger_prefix() {
        for info in Catalog::standard().all() {
            assert_eq!(
                info.category == Category::Trigger,
                info.name.starts_with(TRIGGER_PREFIX),
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn pools_follow_the_resources_a_type_holds() {
        let catalog = Catalog::standard();
        assert_eq!(
            catalog.get("llm.chat").map(|info| info.pool),
            Some(Pool::Ai)
        );
        assert_eq!(
            catalog.get("sql.query").map(|info| info.pool),
            Some(Pool::Data)
        );
        assert_eq!(
            catalog.get("http.request").map(|info| info.pool),
            Some(Pool::Default)
        );
    }

    #[test]
    fn switch_ports_are_case_names_then_default() {
        let catalog = Catalog::standard();
        let switch = catalog.get("switch").expect("switch exists");
        let ports = switch.output_ports(&json!({"cases": [{"name": "big", "condition": "true"}]}));
        assert_eq!(ports, vec!["big", "default"]);
    }
}
