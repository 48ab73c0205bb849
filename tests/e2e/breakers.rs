//! The circuit breaker operations API in a running platform: an operator
//! token from `tyboo admin operator-token` changes a breaker on the
//! executor's port, each change lands on tenancy's mesh-wide audit chain
//! (written with the executor's service token), workspace tokens are
//! refused, and the edge does not route the service.

use std::process::Stdio;

use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;
use tyboo_proto::executor::circuit_breaker_service_client::CircuitBreakerServiceClient;
use tyboo_proto::executor::{
    CircuitBreakerKey, CircuitBreakerState, ForceOpenCircuitBreakerRequest,
    GetCircuitBreakerRequest, ListCircuitBreakersRequest, ResetCircuitBreakerRequest,
};
use tyboo_proto::tenancy::AuthenticateRequest;
use tyboo_proto::tenancy::auth_service_client::AuthServiceClient;

use crate::process::{send_sigterm, start, tyboo};
use crate::sandbox::{TestStore, with_key};

async fn connect(address: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn operator_token(store: &TestStore) -> String {
    let output = tyboo(store)
        .env("TYBOO_LOG__FILTER", "warn")
        .args(["admin", "operator-token", "--ttl", "5m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn key() -> Option<CircuitBreakerKey> {
    Some(CircuitBreakerKey {
        node_type: "http.request".to_owned(),
        host: "api.example.test".to_owned(),
    })
}

#[tokio::test]
async fn operators_change_breakers_on_the_executor_and_every_change_is_audited() {
    let store = TestStore::create().await;
    let mut running = start(&store).await;
    let operator = operator_token(&store).await;
    let mut breakers = CircuitBreakerServiceClient::new(connect(&running.executor).await);

    let opened = breakers
        .force_open_circuit_breaker(with_key(
            ForceOpenCircuitBreakerRequest { key: key() },
            &operator,
        ))
        .await
        .expect("an operator forces a breaker open")
        .into_inner()
        .circuit_breaker
        .unwrap();
    assert_eq!(opened.state(), CircuitBreakerState::ForcedOpen);
    let listed = breakers
        .list_circuit_breakers(with_key(ListCircuitBreakersRequest {}, &operator))
        .await
        .unwrap()
        .into_inner()
        .circuit_breakers;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key());
    breakers
        .reset_circuit_breaker(with_key(
            ResetCircuitBreakerRequest { key: key() },
            &operator,
        ))
        .await
        .expect("an operator resets a breaker");
    let unknown = breakers
        .get_circuit_breaker(with_key(GetCircuitBreakerRequest { key: key() }, &operator))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    // The contract's rules refuse bad keys before any handler runs.
    let invalid = breakers
        .get_circuit_breaker(with_key(
            GetCircuitBreakerRequest {
                key: Some(CircuitBreakerKey {
                    node_type: "http request".to_owned(),
                    host: "api.example.test".to_owned(),
                }),
            },
            &operator,
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");

    // The workspace owner's principal token is refused, reads included.
    let owner_key = running.api_key.clone().expect("first start prints a key");
    let owner = AuthServiceClient::new(connect(&running.tenancy).await)
        .authenticate(AuthenticateRequest {
            api_key: owner_key.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let denied = breakers
        .list_circuit_breakers(with_key(ListCircuitBreakersRequest {}, &owner))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    // The edge routes public services only.
    let through_edge = CircuitBreakerServiceClient::new(connect(&running.edge).await)
        .list_circuit_breakers(with_key(ListCircuitBreakersRequest {}, &owner_key))
        .await
        .unwrap_err();
    assert_eq!(through_edge.code(), Code::Unimplemented, "{through_edge:?}");

    // Both changes are on the mesh-wide chain, by the operator.
    let database = store.tenancy_database().await;
    let backend = database.get_database_backend();
    let rows = database
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT action, actor, target FROM audit_events \
             WHERE action LIKE 'executor.breaker.%' ORDER BY sequence"
                .to_owned(),
        ))
        .await
        .unwrap();
    let events: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "action").unwrap(),
                row.try_get("", "actor").unwrap(),
                row.try_get("", "target").unwrap(),
            )
        })
        .collect();
    let target = "breaker:http.request/api.example.test".to_owned();
    assert_eq!(
        events,
        [
            (
                "executor.breaker.forced_open".to_owned(),
                "operator:cli".to_owned(),
                target.clone()
            ),
            (
                "executor.breaker.reset".to_owned(),
                "operator:cli".to_owned(),
                target
            ),
        ]
    );
    drop(database);

    send_sigterm(&running.child);
    assert!(running.child.wait().await.unwrap().success());
    store.remove().await;
}
