//! Which nodes of an execution run next. Pure functions over the graph and the terminal
//! states recorded so far, so the executor's scheduling is testable without I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::TRIGGER_PREFIX;
use crate::graph::{EdgeSpec, NodeSpec, WorkflowGraph};

/// The final state of a node within one execution, as far as scheduling is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Terminal {
    /// The node finished and emitted its output on `port`.
    Succeeded { port: String },
    /// No incoming edge fired, so the node did not run (an untaken branch).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Run,
    Skip,
}

/// The workflow's trigger. Every trigger type is named `trigger.*` (the catalog holds to
/// that), so this needs no catalog; a validated graph has exactly one.
pub fn trigger_node(graph: &WorkflowGraph) -> Option<&NodeSpec> {
    graph
        .nodes
        .iter()
        .find(|node| node.node_type.starts_with(TRIGGER_PREFIX))
}

/// Edges into `node_id`, in the graph's edge order.
pub fn incoming<'graph>(graph: &'graph WorkflowGraph, node_id: &str) -> Vec<&'graph EdgeSpec> {
    graph
        .edges
        .iter()
        .filter(|edge| edge.to == node_id)
        .collect()
}

/// Whether `edge` carried data: its source succeeded on the edge's port.
pub fn edge_fired(edge: &EdgeSpec, terminal: &HashMap<String, Terminal>) -> bool {
    matches!(
        terminal.get(&edge.from),
        Some(Terminal::Succeeded { port }) if *port == edge.from_port
    )
}

/// Sources whose edges into `node_id` fired, in edge order and without repeats. Their
/// outputs, in this order, are the node's `inputs`.
pub fn fired_sources<'graph>(
    graph: &'graph WorkflowGraph,
    node_id: &str,
    terminal: &HashMap<String, Terminal>,
) -> Vec<&'graph str> {
    let mut sources: Vec<&str> = Vec::new();
    for edge in incoming(graph, node_id) {
        if edge_fired(edge, terminal) && !sources.contains(&edge.from.as_str()) {
            sources.push(edge.from.as_str());
        }
    }
    sources
}

/// Nodes not yet in `terminal` whose predecessors are all terminal: `Run` if at least one
/// incoming edge fired, else `Skip`. Nodes without incoming edges (the trigger) are never
/// returned: the executor records the trigger itself. A skipped node fires none of its
/// edges, so skips propagate through later calls once the executor records them.
/// Waiting for every predecessor is what makes `merge` see all of its inputs.
pub fn advance(
    graph: &WorkflowGraph,
    terminal: &HashMap<String, Terminal>,
) -> Vec<(String, Decision)> {
    let mut ready = Vec::new();
    for node in &graph.nodes {
        if terminal.contains_key(&node.id) {
            continue;
        }
        let edges = incoming(graph, &node.id);
        if edges.is_empty() {
            continue;
        }
        if !edges.iter().all(|edge| terminal.contains_key(&edge.from)) {
            continue;
        }
        let decision = if edges.iter().any(|edge| edge_fired(edge, terminal)) {
            Decision::Run
        } else {
            Decision::Skip
        };
        ready.push((node.id.clone(), decision));
    }
    ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{EdgeSpec, NodeSpec, WorkflowSettings};
    use serde_json::json;

    fn node(id: &str, node_type: &str) -> NodeSpec {
        NodeSpec {
            id: id.to_owned(),
            node_type: node_type.to_owned(),
            name: String::new(),
            parameters: json!({}),
            timeout_ms: None,
            retry: None,
            pool: None,
            credential_id: None,
        }
    }

    fn edge(from: &str, port: &str, to: &str) -> EdgeSpec {
        EdgeSpec {
            from: from.to_owned(),
            from_port: port.to_owned(),
            to: to.to_owned(),
        }
    }

    fn succeeded(port: &str) -> Terminal {
        Terminal::Succeeded {
            port: port.to_owned(),
        }
    }

    /// trigger → check(if) → yes / no → join(merge) → after
    fn branching_graph() -> WorkflowGraph {
        WorkflowGraph {
            nodes: vec![
                node("start", "trigger.manual"),
                node("check", "if"),
                node("yes", "set"),
                node("no", "set"),
                node("join", "merge"),
                node("after", "set"),
            ],
            edges: vec![
                edge("start", "main", "check"),
                edge("check", "true", "yes"),
                edge("check", "false", "no"),
                edge("yes", "main", "join"),
                edge("no", "main", "join"),
                edge("join", "main", "after"),
            ],
            settings: WorkflowSettings::default(),
        }
    }

    #[test]
    fn trigger_is_found_and_never_scheduled() {
        let graph = branching_graph();
        assert_eq!(
            trigger_node(&graph).map(|node| node.id.as_str()),
            Some("start")
        );
        assert!(advance(&graph, &HashMap::new()).is_empty());
    }

    #[test]
    fn if_branch_runs_one_side_and_skips_the_other_then_merge_runs() {
        let graph = branching_graph();
        let mut terminal = HashMap::from([("start".to_owned(), succeeded("main"))]);
        assert_eq!(
            advance(&graph, &terminal),
            vec![("check".to_owned(), Decision::Run)]
        );

        terminal.insert("check".to_owned(), succeeded("true"));
        assert_eq!(
            advance(&graph, &terminal),
            vec![
                ("yes".to_owned(), Decision::Run),
                ("no".to_owned(), Decision::Skip)
            ]
        );

        terminal.insert("no".to_owned(), Terminal::Skipped);
        assert_eq!(
            advance(&graph, &terminal),
            vec![("yes".to_owned(), Decision::Run)],
            "merge waits for `yes`, which is still ready until it is terminal"
        );

        terminal.insert("yes".to_owned(), succeeded("main"));
        assert_eq!(
            advance(&graph, &terminal),
            vec![("join".to_owned(), Decision::Run)]
        );
        assert_eq!(fired_sources(&graph, "join", &terminal), vec!["yes"]);
    }

    #[test]
    fn skips_propagate_until_a_node_with_a_fired_edge() {
        let graph = WorkflowGraph {
            nodes: vec![
                node("start", "trigger.manual"),
                node("route", "switch"),
                node("a", "set"),
                node("a2", "set"),
                node("b", "set"),
                node("end", "merge"),
            ],
            edges: vec![
                edge("start", "main", "route"),
                edge("route", "alpha", "a"),
                edge("a", "main", "a2"),
                edge("route", "default", "b"),
                edge("a2", "main", "end"),
                edge("b", "main", "end"),
            ],
            settings: WorkflowSettings::default(),
        };
        let mut terminal = HashMap::from([
            ("start".to_owned(), succeeded("main")),
            ("route".to_owned(), succeeded("default")),
        ]);
        assert_eq!(
            advance(&graph, &terminal),
            vec![
                ("a".to_owned(), Decision::Skip),
                ("b".to_owned(), Decision::Run)
            ]
        );
        terminal.insert("a".to_owned(), Terminal::Skipped);
        terminal.insert("b".to_owned(), succeeded("main"));
        assert_eq!(
            advance(&graph, &terminal),
            vec![("a2".to_owned(), Decision::Skip)]
        );
        terminal.insert("a2".to_owned(), Terminal::Skipped);
        assert_eq!(
            advance(&graph, &terminal),
            vec![("end".to_owned(), Decision::Run)]
        );
        assert_eq!(fired_sources(&graph, "end", &terminal), vec!["b"]);
    }

    #[test]
    fn a_node_whose_inputs_were_all_skipped_is_skipped() {
        let graph = branching_graph();
        let terminal = HashMap::from([
            ("start".to_owned(), succeeded("main")),
            ("check".to_owned(), succeeded("true")),
            ("yes".to_owned(), Terminal::Skipped),
            ("no".to_owned(), Terminal::Skipped),
        ]);
        assert_eq!(
            advance(&graph, &terminal),
            vec![("join".to_owned(), Decision::Skip)]
        );
    }

    #[test]
    fn incoming_keeps_edge_order() {
        let graph = branching_graph();
        let sources: Vec<&str> = incoming(&graph, "join")
            .iter()
            .map(|edge| edge.from.as_str())
            .collect();
        assert_eq!(sources, vec!["yes", "no"]);
    }
}
