//! Shared pieces of the engine's integration tests: engines, node specs, contexts and
//! small local servers bound to an ephemeral loopback port before they are used.
#![allow(dead_code)]

use std::net::SocketAddr;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tyboo_engine::{EgressConfig, Engine, EngineConfig, NodeContext, NodeSpec};
use uuid::Uuid;

/// An engine that may reach loopback, as the tests' upstreams live there.
pub fn loopback_engine() -> Engine {
    engine_allowing(&["127.0.0.0/8", "::1/128"])
}

pub fn engine_allowing(ranges: &[&str]) -> Engine {
    Engine::new(EngineConfig {
        egress: EgressConfig {
            allow_cidrs: ranges.iter().map(|range| (*range).to_owned()).collect(),
            ..EgressConfig::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine builds")
}

pub fn node(id: &str, node_type: &str, parameters: Value) -> NodeSpec {
    serde_json::from_value(json!({"id": id, "type": node_type, "parameters": parameters}))
        .expect("valid node")
}

pub fn context(node_id: &str, inputs: Vec<Value>) -> NodeContext {
    let execution_id = Uuid::now_v7();
    NodeContext {
        execution_id,
        workflow_id: Uuid::now_v7(),
        workflow_version: 1,
        workspace_id: Uuid::now_v7(),
        node_id: node_id.to_owned(),
        attempt: 1,
        idempotency_key: format!("{execution_id}:{node_id}"),
        trigger: json!({"customer": {"name": "Ada", "tier": "gold"}, "amount": 42}),
        nodes: serde_json::Map::new(),
        inputs,
        credential: None,
    }
}

/// Serves `router` on 127.0.0.1 and returns its address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    address
}
