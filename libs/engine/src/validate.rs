//! Save-time validation of a workflow graph. Every error names the node and field at
//! fault so that an editor can point at it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, Category, NodeTypeInfo};
use crate::error::ValidationError;
use crate::graph::{NodeSpec, WorkflowGraph};
use crate::schema::{self, SchemaMode};

/// Bounds on what one saved workflow may contain; they keep a single tenant's workflow
/// from costing the platform unbounded memory or time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationLimits {
    pub max_nodes: usize,
    pub max_edges: usize,
    /// Size of one node's parameters, serialized as JSON.
    pub max_parameter_bytes: usize,
    pub max_node_timeout_ms: u64,
    pub max_retry_attempts: u32,
    pub max_backoff_ms: u64,
    pub max_workflow_duration_ms: u64,
    /// Length of one jq program or one `{{ }}` expression.
    pub max_expression_bytes: usize,
    pub max_name_chars: usize,
    pub max_id_chars: usize,
}

impl Default for ValidationLimits {
    fn default() -> ValidationLimits {
        ValidationLimits {
            max_nodes: 200,
            max_edges: 1_000,
            max_parameter_bytes: 256 * 1024,
            max_node_timeout_ms: 15 * 60 * 1000,
            max_retry_attempts: 10,
            max_backoff_ms: 60 * 60 * 1000,
            max_workflow_duration_ms: 24 * 60 * 60 * 1000,
            max_expression_bytes: 4 * 1024,
            max_name_chars: 200,
            max_id_chars: 64,
        }
    }
}

/// Checks a graph before it is saved. `credential_exists` answers whether a credential
/// id belongs to the saving workspace.
pub fn validate(
    graph: &WorkflowGraph,
    catalog: &Catalog,
    limits: &ValidationLimits,
    credential_exists: &dyn Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if graph.nodes.is_empty() {
        return Err(ValidationError::graph(
            "nodes",
            "a workflow needs at least a trigger node",
        ));
    }
    if graph.nodes.len() > limits.max_nodes {
        return Err(ValidationError::graph(
            "nodes",
            format!(
                "{} nodes exceed the limit of {}",
                graph.nodes.len(),
                limits.max_nodes
            ),
        ));
    }
    if graph.edges.len() > limits.max_edges {
        return Err(ValidationError::graph(
            "edges",
            format!(
                "{} edges exceed the limit of {}",
                graph.edges.len(),
                limits.max_edges
            ),
        ));
    }
    if let Some(max_duration_ms) = graph.settings.max_duration_ms
        && (max_duration_ms == 0 || max_duration_ms > limits.max_workflow_duration_ms)
    {
        return Err(ValidationError::graph(
            "settings.max_duration_ms",
            format!("must be between 1 and {}", limits.max_workflow_duration_ms),
        ));
    }

    let mut types: HashMap<&str, &NodeTypeInfo> = HashMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        check_node_id(graph, index, node, limits)?;
        let info = catalog.get(&node.node_type).ok_or_else(|| {
            ValidationError::node(
                &node.id,
                "type",
                format!("unknown node type `{}`", node.node_type),
            )
        })?;
        check_node(node, info, limits, credential_exists)?;
        types.insert(node.id.as_str(), info);
    }

    check_edges(graph, &types)?;
    let trigger = check_trigger(graph, &types)?;
    check_acyclic(graph)?;
    check_reachable(graph, trigger)?;
    check_cross_references(graph, &types)?;
    Ok(())
}

fn check_node_id(
    graph: &WorkflowGraph,
    index: usize,
    node: &NodeSpec,
    limits: &ValidationLimits,
) -> Result<(), ValidationError> {
    if node.id.is_empty() {
        return Err(ValidationError::graph(
            format!("nodes[{index}].id"),
            "must not be empty",
        ));
    }
    if node.id.chars().count() > limits.max_id_chars || !schema::is_valid_identifier(&node.id) {
        return Err(ValidationError::graph(
            format!("nodes[{index}].id"),
            format!(
                "`{}` must be 1 to {} letters, digits, `_` or `-`",
                node.id, limits.max_id_chars
            ),
        ));
    }
    if graph.nodes[..index]
        .iter()
        .any(|earlier| earlier.id == node.id)
    {
        return Err(ValidationError::node(
            &node.id,
            "id",
            "is used by more than one node",
        ));
    }
    if node.name.chars().count() > limits.max_name_chars {
        return Err(ValidationError::node(
            &node.id,
            "name",
            format!("must be at most {} characters", limits.max_name_chars),
        ));
    }
    Ok(())
}

fn check_node(
    node: &NodeSpec,
    info: &NodeTypeInfo,
    limits: &ValidationLimits,
    credential_exists: &dyn Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if !node.parameters.is_object() {
        return Err(ValidationError::node(
            &node.id,
            "parameters",
            "must be an object",
        ));
    }
    let parameter_bytes = serde_json::to_vec(&node.parameters)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if parameter_bytes > limits.max_parameter_bytes {
        return Err(ValidationError::node(
            &node.id,
            "parameters",
            format!(
                "{parameter_bytes} bytes exceed the limit of {}",
                limits.max_parameter_bytes
            ),
        ));
    }
    let mode = SchemaMode {
        // Trigger parameters configure the platform (paths, schedules) and are read before
        // any execution exists, so they cannot hold expressions.
        templates: info.category != Category::Trigger,
        compile_programs: true,
        max_program_bytes: limits.max_expression_bytes,
    };
    schema::check_parameters(info, &node.parameters, mode).map_err(|violation| {
        let field = if violation.path.is_empty() {
            "parameters".to_owned()
        } else {
            format!("parameters.{}", violation.path)
        };
        ValidationError::node(&node.id, field, violation.message)
    })?;
    info.kind.check_rules(node)?;

    if let Some(timeout_ms) = node.timeout_ms
        && (timeout_ms == 0 || timeout_ms > limits.max_node_timeout_ms)
    {
        return Err(ValidationError::node(
            &node.id,
            "timeout_ms",
            format!("must be between 1 and {}", limits.max_node_timeout_ms),
        ));
    }
    if let Some(retry) = &node.retry {
        if retry.max_attempts == 0 || retry.max_attempts > limits.max_retry_attempts {
            return Err(ValidationError::node(
                &node.id,
                "retry.max_attempts",
                format!("must be between 1 and {}", limits.max_retry_attempts),
            ));
        }
        if retry.max_backoff_ms > limits.max_backoff_ms {
            return Err(ValidationError::node(
                &node.id,
                "retry.max_backoff_ms",
                format!("must be at most {}", limits.max_backoff_ms),
            ));
        }
        if retry.initial_backoff_ms > retry.max_backoff_ms {
            return Err(ValidationError::node(
                &node.id,
                "retry.initial_backoff_ms",
                "must not exceed max_backoff_ms",
            ));
        }
        if !retry.multiplier.is_finite() || !(1.0..=10.0).contains(&retry.multiplier) {
            return Err(ValidationError::node(
                &node.id,
                "retry.multiplier",
                "must be between 1 and 10",
            ));
        }
    }
    if let Some(credential_id) = &node.credential_id {
        if info.credential_type.is_none() {
            return Err(ValidationError::node(
                &node.id,
                "credential_id",
                format!("node type `{}` takes no credential", info.name),
            ));
        }
        if !credential_exists(credential_id) {
            return Err(ValidationError::node(
                &node.id,
                "credential_id",
                format!("unknown credential `{credential_id}` in this workspace"),
            ));
        }
    }
    Ok(())
}

fn check_edges(
    graph: &WorkflowGraph,
    types: &HashMap<&str, &NodeTypeInfo>,
) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for (index, edge) in graph.edges.iter().enumerate() {
        let Some(source_type) = types.get(edge.from.as_str()) else {
            return Err(ValidationError::graph(
                format!("edges[{index}].from"),
                format!("unknown node `{}`", edge.from),
            ));
        };
        if !types.contains_key(edge.to.as_str()) {
            return Err(ValidationError::graph(
                format!("edges[{index}].to"),
                format!("unknown node `{}`", edge.to),
            ));
        }
        let source = graph
            .node(&edge.from)
            .map(|node| &node.parameters)
            .unwrap_or(&Value::Null);
        let ports = source_type.output_ports(source);
        if !ports.contains(&edge.from_port) {
            return Err(ValidationError::graph(
                format!("edges[{index}].from_port"),
                format!(
                    "node `{}` has no output port `{}`; its ports are {}",
                    edge.from,
                    edge.from_port,
                    ports.join(", ")
                ),
            ));
        }
        if !seen.insert((
            edge.from.as_str(),
            edge.from_port.as_str(),
            edge.to.as_str(),
        )) {
            return Err(ValidationError::graph(
                format!("edges[{index}]"),
                "duplicates an earlier edge",
            ));
        }
    }
    Ok(())
}

fn check_trigger<'graph>(
    graph: &'graph WorkflowGraph,
    types: &HashMap<&str, &NodeTypeInfo>,
) -> Result<&'graph NodeSpec, ValidationError> {
    let mut triggers = graph.nodes.iter().filter(|node| {
        types
            .get(node.id.as_str())
            .is_some_and(|info| info.category == Category::Trigger)
    });
    let Some(trigger) = triggers.next() else {
        return Err(ValidationError::graph(
            "nodes",
            "a workflow needs exactly one trigger node",
        ));
    };
    if let Some(second) = triggers.next() {
        return Err(ValidationError::node(
            &second.id,
            "type",
            format!(
                "a workflow has exactly one trigger and `{}` is already it",
                trigger.id
            ),
        ));
    }
    if let Some(index) = graph.edges.iter().position(|edge| edge.to == trigger.id) {
        return Err(ValidationError::graph(
            format!("edges[{index}].to"),
            format!("the trigger `{}` cannot have incoming edges", trigger.id),
        ));
    }
    Ok(trigger)
}

/// Depth-first search with colours; on a back edge, the path from the target to the
/// current node is the cycle to report.
fn check_acyclic(graph: &WorkflowGraph) -> Result<(), ValidationError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut successors: HashMap<&str, Vec<&str>> = HashMap::new();
    for edge in &graph.edges {
        successors
            .entry(edge.from.as_str())
            .or_default()
            .push(edge.to.as_str());
    }
    let mut colours: HashMap<&str, Colour> = graph
        .nodes
        .iter()
        .map(|node| (node.id.as_str(), Colour::White))
        .collect();
    for root in &graph.nodes {
        if colours[root.id.as_str()] != Colour::White {
            continue;
        }
        // Stack of (node, index of the next successor to visit); `path` mirrors it.
        let mut stack: Vec<(&str, usize)> = vec![(root.id.as_str(), 0)];
        colours.insert(root.id.as_str(), Colour::Grey);
        while let Some((current, next_index)) = stack.last().copied() {
            let next = successors
                .get(current)
                .and_then(|list| list.get(next_index))
                .copied();
            let Some(next) = next else {
                colours.insert(current, Colour::Black);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match colours.get(next).copied().unwrap_or(Colour::Black) {
                Colour::White => {
                    colours.insert(next, Colour::Grey);
                    stack.push((next, 0));
                }
                Colour::Grey => {
                    let start = stack.iter().position(|(id, _)| *id == next).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].iter().map(|(id, _)| *id).collect();
                    cycle.push(next);
                    return Err(ValidationError::node(
                        next,
                        "edges",
                        format!("is on a cycle: {}", cycle.join(" → ")),
                    ));
                }
                Colour::Black => {}
            }
        }
    }
    Ok(())
}

fn check_reachable(graph: &WorkflowGraph, trigger: &NodeSpec) -> Result<(), ValidationError> {
    let mut reached: HashSet<&str> = HashSet::from([trigger.id.as_str()]);
    let mut frontier = vec![trigger.id.as_str()];
    while let Some(current) = frontier.pop() {
        for edge in graph.edges.iter().filter(|edge| edge.from == current) {
            if reached.insert(edge.to.as_str()) {
                frontier.push(edge.to.as_str());
            }
        }
    }
    match graph
        .nodes
        .iter()
        .find(|node| !reached.contains(node.id.as_str()))
    {
        Some(unreached) => Err(ValidationError::node(
            &unreached.id,
            "edges",
            format!("is not reachable from the trigger `{}`", trigger.id),
        )),
        None => Ok(()),
    }
}

/// Parameters that name other nodes must name real ones.
fn check_cross_references(
    graph: &WorkflowGraph,
    types: &HashMap<&str, &NodeTypeInfo>,
) -> Result<(), ValidationError> {
    for node in &graph.nodes {
        if let Some(info) = types.get(node.id.as_str()) {
            info.kind.check_references(node, graph)?;
        }
    }
    Ok(())
}
