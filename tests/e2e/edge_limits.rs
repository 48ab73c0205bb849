//! The edge's request rate limits through a whole mesh, with real API keys
//! exchanged at tenancy. With separate processes (`TYBOO_TEST_TOPOLOGY=
//! processes`) a second edge process joins the first on the same Redis,
//! and the two spend from one limit.

use std::net::SocketAddr;

use crate::sandbox::Sandbox;

/// Sustained one per 10 s: nothing refills within the test.
const BURST: u32 = 6;

async fn me(sandbox: &Sandbox, edge: SocketAddr) -> reqwest::Response {
    sandbox
        .http
        .get(format!("http://{edge}/v1/me"))
        .bearer_auth(&sandbox.owner_key)
        .send()
        .await
        .expect("the edge answers")
}

#[tokio::test]
async fn a_burst_past_the_key_limit_is_429_and_every_edge_spends_from_one_limit() {
    let mut sandbox = Sandbox::start_with(|config| {
        config.limits.defaults.api_key_requests_per_minute = 6;
        config.limits.defaults.api_key_burst = BURST;
    })
    .await;
    let mut edges = vec![sandbox.edge];
    edges.extend(sandbox.add_edge().await);

    let mut allowed = 0;
    let mut refused = Vec::new();
    for round in 0..BURST as usize * 2 {
        let edge = edges[round % edges.len()];
        let response = me(&sandbox, edge).await;
        match response.status().as_u16() {
            200 => {
                let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
                allowed += 1;
                assert!(
                    state.starts_with(&format!("\"default\";r={};", BURST - allowed)),
                    "{state} after {allowed} allowed"
                );
            }
            429 => refused.push(response),
            other => panic!("{other}: {}", response.text().await.unwrap()),
        }
    }
    assert_eq!(allowed, BURST, "one burst across {} edge(s)", edges.len());
    assert_eq!(refused.len(), BURST as usize);
    let refusal = refused.pop().unwrap();
    let headers = refusal.headers().clone();
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=6;w=60");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refusal.json().await.unwrap();
    assert_eq!(body["code"], "RESOURCE_EXHAUSTED", "{body}");
    sandbox.stop().await;
}
