//! Saving a workflow: every refusal names the node and the field at fault.

use serde_json::{Value, json};
use tyboo_engine::{Catalog, ValidationError, ValidationLimits, WorkflowGraph, validate};

fn graph(nodes: Value, edges: Value) -> WorkflowGraph {
    serde_json::from_value(json!({"nodes": nodes, "edges": edges})).expect("graph parses")
}

fn check(graph: &WorkflowGraph) -> Result<(), ValidationError> {
    validate(
        graph,
        &Catalog::standard(),
        &ValidationLimits::default(),
        &|id| id == "cred-1",
    )
}

fn error_text(graph: &WorkflowGraph) -> String {
    check(graph).expect_err("must be refused").to_string()
}

fn webhook_pipeline() -> WorkflowGraph {
    graph(
        json!([
            {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "orders", "mode": "sync", "respond_node": "notify"}},
            {"id": "fetch", "type": "http.request", "parameters": {"url": "https://api.example.com/orders/{{ .trigger.id }}"}},
            {"id": "shape", "type": "transform", "parameters": {"program": ".nodes.fetch.body | {id, total}"}},
            {"id": "big", "type": "if", "parameters": {"condition": ".input.total > 100"}},
            {"id": "notify", "type": "slack.message", "parameters": {"webhook_url": "https://hooks.slack.com/services/T/B/X", "text": "Big order {{ .input.id }}"}},
            {"id": "ask", "type": "llm.chat", "credential_id": "cred-1", "parameters": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "{{ .input | tojson }}"}]}}
        ]),
        json!([
            {"from": "hook", "to": "fetch"},
            {"from": "fetch", "to": "shape"},
            {"from": "shape", "to": "big"},
            {"from": "big", "from_port": "true", "to": "notify"},
            {"from": "big", "from_port": "false", "to": "ask"}
        ]),
    )
}

#[test]
fn a_sound_workflow_is_accepted() {
    check(&webhook_pipeline()).expect("valid");
}

#[test]
fn a_cycle_names_a_node_on_it() {
    let mut cyclic = webhook_pipeline();
    cyclic
        .edges
        .push(serde_json::from_value(json!({"from": "shape", "to": "fetch"})).expect("edge"));
    let error = check(&cyclic).expect_err("cycle");
    assert!(error.message.contains("cycle"), "{error}");
    assert!(
        matches!(error.node_id.as_deref(), Some("fetch" | "shape")),
        "{error}"
    );
}

#[test]
fn an_unknown_type_is_named() {
    let mut unknown = webhook_pipeline();
    unknown.nodes[2].node_type = "teleport".to_owned();
    assert_eq!(
        error_text(&unknown),
        "nodes[shape].type: unknown node type `teleport`"
    );
}

#[test]
fn a_bad_parameter_is_named_with_its_path() {
    let mut bad = webhook_pipeline();
    bad.nodes[1].parameters = json!({"url": "ftp://example.com/file"});
    assert_eq!(
        error_text(&bad),
        "nodes[fetch].parameters.url: must be an http or https URL"
    );

    bad.nodes[1].parameters = json!({"url": "https://example.com", "method": "YEET"});
    assert!(error_text(&bad).starts_with("nodes[fetch].parameters.method: must be one of"));

    bad.nodes[1].parameters = json!({"url": "https://example.com", "retries": 3});
    assert!(error_text(&bad).starts_with("nodes[fetch].parameters.retries: unknown parameter"));

    bad.nodes[1].parameters = json!({"method": "GET"});
    assert_eq!(error_text(&bad), "nodes[fetch].parameters.url: is required");

    let mut bad_message = webhook_pipeline();
    bad_message.nodes[5].parameters["messages"][0]["role"] = json!("robot");
    assert!(
        error_text(&bad_message)
            .starts_with("nodes[ask].parameters.messages[0].role: must be one of")
    );

    let mut bad_temperature = webhook_pipeline();
    bad_temperature.nodes[5].parameters["temperature"] = json!(7);
    assert_eq!(
        error_text(&bad_temperature),
        "nodes[ask].parameters.temperature: must be at most 2"
    );
}

#[test]
fn expressions_must_compile_and_are_named() {
    let mut bad = webhook_pipeline();
    bad.nodes[1].parameters = json!({"url": "https://example.com/{{ .trigger. | }}"});
    let text = error_text(&bad);
    assert!(
        text.starts_with("nodes[fetch].parameters.url: expression"),
        "{text}"
    );

    let mut bad_program = webhook_pipeline();
    bad_program.nodes[2].parameters = json!({"program": "map(."});
    assert!(
        error_text(&bad_program).starts_with("nodes[shape].parameters.program: invalid jq program")
    );

    let mut definitions = webhook_pipeline();
    definitions.nodes[2].parameters = json!({"program": "def loop: loop; loop"});
    assert!(error_text(&definitions).contains("`def` is not allowed"));
}

#[test]
fn a_template_may_stand_for_a_number_but_triggers_take_none() {
    let mut templated = webhook_pipeline();
    templated.nodes[5].parameters["temperature"] = json!("{{ .trigger.temperature }}");
    check(&templated).expect("a template may fill a number");

    let mut trigger = webhook_pipeline();
    trigger.nodes[0].parameters["path"] = json!("{{ .x }}");
    assert!(error_text(&trigger).starts_with("nodes[hook].parameters.path: must be segments"));
}

#[test]
fn a_dangling_edge_is_named_by_index() {
    let mut dangling = webhook_pipeline();
    dangling
        .edges
        .push(serde_json::from_value(json!({"from": "notify", "to": "ghost"})).expect("edge"));
    assert_eq!(error_text(&dangling), "edges[5].to: unknown node `ghost`");
}

#[test]
fn an_edge_must_leave_from_a_real_port() {
    let mut wrong_port = webhook_pipeline();
    wrong_port.edges[3].from_port = "maybe".to_owned();
    assert_eq!(
        error_text(&wrong_port),
        "edges[3].from_port: node `big` has no output port `maybe`; its ports are true, false"
    );
}

#[test]
fn switch_ports_come_from_case_names() {
    let switching = graph(
        json!([
            {"id": "start", "type": "trigger.manual"},
            {"id": "route", "type": "switch", "parameters": {"cases": [{"name": "vip", "condition": ".trigger.vip"}]}},
            {"id": "a", "type": "set", "parameters": {"values": {}}},
            {"id": "b", "type": "set", "parameters": {"values": {}}}
        ]),
        json!([
            {"from": "start", "to": "route"},
            {"from": "route", "from_port": "vip", "to": "a"},
            {"from": "route", "from_port": "default", "to": "b"}
        ]),
    );
    check(&switching).expect("valid");
}

#[test]
fn an_unknown_credential_is_refused() {
    let mut unknown = webhook_pipeline();
    unknown.nodes[5].credential_id = Some("cred-other-workspace".to_owned());
    assert_eq!(
        error_text(&unknown),
        "nodes[ask].credential_id: unknown credential `cred-other-workspace` in this workspace"
    );
}

#[test]
fn exactly_one_trigger_without_incoming_edges_and_everything_reachable() {
    let no_trigger = graph(
        json!([{"id": "a", "type": "set", "parameters": {"values": {}}}]),
        json!([]),
    );
    assert_eq!(
        error_text(&no_trigger),
        "nodes: a workflow needs exactly one trigger node"
    );

    let orphan = graph(
        json!([{"id": "t", "type": "trigger.manual"}, {"id": "lonely", "type": "set", "parameters": {"values": {}}}]),
        json!([]),
    );
    assert_eq!(
        error_text(&orphan),
        "nodes[lonely].edges: is not reachable from the trigger `t`"
    );

    let into_trigger = graph(
        json!([{"id": "t", "type": "trigger.manual"}, {"id": "a", "type": "set", "parameters": {"values": {}}}]),
        json!([{"from": "t", "to": "a"}, {"from": "a", "to": "t"}]),
    );
    assert_eq!(
        error_text(&into_trigger),
        "edges[1].to: the trigger `t` cannot have incoming edges"
    );
}

#[test]
fn ids_timeouts_and_retries_are_bounded() {
    let mut bad_id = webhook_pipeline();
    bad_id.nodes[1].id = "has space".to_owned();
    assert!(error_text(&bad_id).starts_with("nodes[1].id:"));

    let mut slow = webhook_pipeline();
    slow.nodes[1].timeout_ms = Some(24 * 60 * 60 * 1000);
    assert!(error_text(&slow).starts_with("nodes[fetch].timeout_ms: must be between 1 and"));

    let mut retries = webhook_pipeline();
    retries.nodes[1].retry =
        Some(serde_json::from_value(json!({"max_attempts": 50})).expect("policy"));
    assert_eq!(
        error_text(&retries),
        "nodes[fetch].retry.max_attempts: must be between 1 and 10"
    );
}

#[test]
fn schedules_need_a_valid_cron_and_zone() {
    let schedule = |parameters: Value| {
        graph(
            json!([{"id": "tick", "type": "trigger.schedule", "parameters": parameters}]),
            json!([]),
        )
    };
    check(&schedule(
        json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}),
    ))
    .expect("valid");
    assert!(
        error_text(&schedule(json!({"cron": "every day"})))
            .starts_with("nodes[tick].parameters.cron: invalid cron")
    );
    assert!(
        error_text(&schedule(
            json!({"cron": "0 9 * * *", "timezone": "Moon/Base"})
        ))
        .starts_with("nodes[tick].parameters.timezone: unknown time zone")
    );
}

#[test]
fn unknown_graph_fields_are_refused_when_parsing() {
    let parsed: Result<WorkflowGraph, _> =
        serde_json::from_value(json!({"nodes": [], "edges": [], "colour": "red"}));
    assert!(parsed.is_err());
}
