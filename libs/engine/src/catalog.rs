//! The node types a workflow may use, each with the JSON Schema of its parameters. A
//! type's entry is written with the rest of the type, in its module under
//! [`crate::nodes`]; the catalog lists them in the registry's order.
//!
//! Schemas use a small subset of JSON Schema that [`crate::schema`] checks: `type`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `default`, `description`,
//! and `format` with the engine's own formats (`identifier`, `http-url`, `cron`,
//! `timezone`, `jq`, `rfc3339`, `status-range`, `header-name`, `webhook-path`).

use serde::Serialize;
use serde_json::Value;

use crate::graph::Pool;
use crate::nodes::{self, NodeKind};

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
    /// Everything else the engine knows of the type.
    #[serde(skip)]
    pub(crate) kind: &'static dyn NodeKind,
}

impl NodeTypeInfo {
    /// The ports a node of this type can emit on, given its parameters.
    pub fn output_ports(&self, parameters: &Value) -> Vec<String> {
        self.kind.output_ports(parameters)
    }

    /// Parameters that are jq programs evaluated by the node itself; they are compiled at
    /// save time and never rendered as `{{ }}` templates.
    pub fn is_program_parameter(&self, path: &[PathSegment<'_>]) -> bool {
        self.kind.is_program_parameter(path)
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

#[derive(Clone, Debug)]
pub struct Catalog {
    types: Vec<NodeTypeInfo>,
}

impl Catalog {
    /// The node types every workspace can use.
    pub fn standard() -> Catalog {
        Catalog {
            types: nodes::KINDS.iter().map(|&kind| kind.info()).collect(),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
