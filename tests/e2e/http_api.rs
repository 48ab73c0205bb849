//! The public HTTP/JSON API through the edge, as curl users see it.

use reqwest::Method;
use serde_json::json;

use crate::sandbox::Sandbox;

#[tokio::test]
async fn member_lifecycle_over_json() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();
    let workspace = sandbox.workspace_id.clone();
    let members_path = format!("/v1/workspaces/{workspace}/members");

    let (status, me) = sandbox.get("/v1/me", &owner).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["principal"]["role"], "ROLE_OWNER");
    assert_eq!(me["email"], "owner@example.com");

    // Invite, list pending, accept with the token (no API key needed).
    let (status, invitation) = sandbox
        .post(
            &format!("/v1/workspaces/{workspace}/invitations"),
            Some(&owner),
            json!({"email": "Ada@Example.com", "role": "ROLE_EDITOR"}),
        )
        .await;
    assert_eq!(status, 200, "{invitation}");
    assert_eq!(
        invitation["invitation"]["state"],
        "INVITATION_STATE_PENDING"
    );
    assert_eq!(invitation["invitation"]["email"], "ada@example.com");
    let token = invitation["token"].as_str().unwrap().to_owned();

    let (status, pending) = sandbox
        .get(&format!("/v1/workspaces/{workspace}/invitations"), &owner)
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending["invitations"].as_array().unwrap().len(), 1);

    let (status, accepted) = sandbox
        .post(
            "/v1/invitations:accept",
            None,
            json!({"token": token, "displayName": "Ada"}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    let ada_id = accepted["member"]["userId"].as_str().unwrap().to_owned();
    let ada_key = accepted["apiKey"]["secret"].as_str().unwrap().to_owned();
    assert!(ada_key.starts_with("tyb_"));

    // The token is single-use.
    let (status, again) = sandbox
        .post("/v1/invitations:accept", None, json!({"token": token}))
        .await;
    assert!(status == 400 || status == 404, "{status} {again}");

    let (status, members) = sandbox.get(&members_path, &ada_key).await;
    assert_eq!(status, 200, "{members}");
    let listed = members["members"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|member| member["userId"] == ada_id.as_str()
                && member["role"] == "ROLE_EDITOR"
                && member["displayName"] == "Ada")
    );

    // Promote, then demote.
    let member_path = format!("{members_path}/{ada_id}");
    let (status, promoted) = sandbox
        .call(
            Method::PATCH,
            &member_path,
            Some(&owner),
            Some(json!({"role": "ROLE_ADMIN"})),
        )
        .await;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(promoted["member"]["role"], "ROLE_ADMIN");
    let (status, demoted) = sandbox
        .call(
            Method::PATCH,
            &member_path,
            Some(&owner),
            Some(json!({"role": "ROLE_VIEWER"})),
        )
        .await;
    assert_eq!(status, 200, "{demoted}");
    assert_eq!(demoted["member"]["role"], "ROLE_VIEWER");

    // A viewer cannot invite.
    let (status, denied) = sandbox
        .post(
            &format!("/v1/workspaces/{workspace}/invitations"),
            Some(&ada_key),
            json!({"email": "eve@example.com", "role": "ROLE_VIEWER"}),
        )
        .await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["code"], "PERMISSION_DENIED");
    assert!(
        denied["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    // The last owner cannot be demoted.
    let (status, refused) = sandbox
        .call(
            Method::PATCH,
            &format!("{members_path}/{}", sandbox.owner_id),
            Some(&owner),
            Some(json!({"role": "ROLE_ADMIN"})),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "FAILED_PRECONDITION");

    // Removing a member ends their keys.
    let (status, _) = sandbox
        .call(Method::DELETE, &member_path, Some(&owner), None)
        .await;
    assert_eq!(status, 200);
    let (status, gone) = sandbox.get(&members_path, &ada_key).await;
    assert_eq!(status, 401, "{gone}");
    let (_, members) = sandbox.get(&members_path, &owner).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);

    // Every change is in the audit log, and the chain holds.
    let (status, audit) = sandbox
        .get(
            &format!("/v1/workspaces/{workspace}/audit-events?pageSize=100"),
            &owner,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    for expected in [
        "invitation.created",
        "invitation.accepted",
        "member.role_changed",
        "member.removed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let (status, verdict) = sandbox
        .post(
            &format!("/v1/workspaces/{workspace}/audit-events:verify"),
            Some(&owner),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["intact"], true, "{verdict}");

    sandbox.stop().await;
}

#[tokio::test]
async fn bad_input_gets_400_naming_the_field_and_oversize_gets_413() {
    let sandbox = Sandbox::start_with(|config| config.edge.max_body_bytes = 4096).await;
    let owner = sandbox.owner_key.clone();
    let invitations = sandbox.url(&format!(
        "/v1/workspaces/{}/invitations",
        sandbox.workspace_id
    ));
    let send_raw = |body: String| {
        sandbox
            .http
            .post(&invitations)
            .bearer_auth(&owner)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let response = send_raw("{\"email\": ".to_owned()).await.unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["code"], "INVALID_ARGUMENT");

    let response = send_raw(json!({"email": "not-an-address", "role": "ROLE_VIEWER"}).to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("email"),
        "{error}"
    );

    let response = send_raw(json!({"email": "a@example.com", "colour": "red"}).to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("colour"),
        "{error}"
    );

    let response = send_raw(json!({"email": "a@example.com", "role": 17}).to_string())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // At the limit passes parsing; one byte more is refused with 413.
    let padding = |size: usize| {
        let base =
            json!({"email": "a@example.com", "role": "ROLE_VIEWER", "ttlSeconds": 60}).to_string();
        let spaces = " ".repeat(size - base.len());
        format!("{}{spaces}", base)
    };
    let response = send_raw(padding(4096)).await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = send_raw(padding(4097)).await.unwrap();
    assert_eq!(response.status(), 413);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["request_id"].is_string(), "{error}");

    // Nothing stored was lost: exactly the one good invitation exists.
    let (_, pending) = sandbox
        .get(
            &format!("/v1/workspaces/{}/invitations", sandbox.workspace_id),
            &owner,
        )
        .await;
    assert_eq!(pending["invitations"].as_array().unwrap().len(), 1);

    let (status, _) = sandbox.get("/v1/no-such-route", &owner).await;
    assert_eq!(status, 404);
    sandbox.stop().await;
}

#[tokio::test]
async fn edge_serves_openapi_and_health_and_metrics_stay_on_the_admin_port() {
    let sandbox = Sandbox::start().await;
    let openapi: serde_json::Value = sandbox
        .http
        .get(sandbox.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/workspaces/{workspace_id}/members"));
    assert!(paths.contains_key("/v1/invitations:accept"));

    let health = sandbox
        .http
        .get(sandbox.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    sandbox.get("/v1/me", &sandbox.owner_key.clone()).await;
    let metrics = sandbox
        .http
        .get(format!("http://{}/metrics", sandbox.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tyboo_broker_queue_depth"), "{metrics}");
    assert!(
        metrics.contains("tyboo_grpc_server_requests_total"),
        "{metrics}"
    );

    // The public port has no metrics, however the path is spelled: each
    // answers exactly like a route that does not exist.
    let unknown = public_answer(&sandbox, "/no-such-route").await;
    assert_eq!(unknown.0, 404);
    for spelling in [
        "/metrics",
        "/metrics/",
        "/v1/../metrics",
        "/v1/%2e%2e/metrics",
        "/v1/%2E%2E/metrics",
        "/v1/.%2e/metrics",
        "/v1/./../metrics",
        "/hooks/../metrics",
        "/../metrics",
        "//metrics",
        "/v1/../metrics?format=prometheus",
    ] {
        let answer = public_answer(&sandbox, spelling).await;
        assert_eq!(answer.0, 404, "{spelling}");
        assert!(!answer.1.contains("tyboo_"), "{spelling}: {}", answer.1);
        assert_eq!(
            error_code(&answer.1),
            error_code(&unknown.1),
            "{spelling} answers like any unknown route: {}",
            answer.1
        );
    }
    // A dot segment is resolved before routing, for real routes too.
    let (status, me) = sandbox
        .get("/v1/workspaces/../me", &sandbox.owner_key.clone())
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "owner@example.com");
    sandbox.stop().await;
}

/// The `code` of a JSON error body.
fn error_code(body: &str) -> serde_json::Value {
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |end| end + 1);
    let error: serde_json::Value = serde_json::from_str(&body[start..end])
        .unwrap_or_else(|_| panic!("a JSON error body: {body}"));
    assert!(!error["code"].is_null(), "{body}");
    error["code"].clone()
}

/// Status and body of an unauthenticated GET on the public port, the path
/// sent exactly as written (no client-side normalization).
async fn public_answer(sandbox: &Sandbox, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(sandbox.edge).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: edge\r\nx-request-id: fixed\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test]
async fn a_huge_invalid_id_gets_a_short_400_and_never_hurts_a_neighbour() {
    let sandbox = Sandbox::start().await;
    let (status, created) = sandbox
        .post(
            "/v1/workspaces",
            Some(&sandbox.owner_key),
            json!({"name": "Neighbour"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let neighbour = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let attack = |size: usize| {
        let http = sandbox.http.clone();
        let url = sandbox.url("/v1/workflows");
        let key = sandbox.owner_key.clone();
        async move {
            let id = "Ж".repeat(size / 2);
            let body = json!({"name": "x", "graph": {
                "nodes": [{"id": id, "type": "trigger.manual"}], "edges": []}});
            let response = http
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let neighbour_calls = (0..40).map(|_| {
        let http = sandbox.http.clone();
        let url = sandbox.url("/v1/workflows");
        let key = neighbour.clone();
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let (attacks, neighbours) = tokio::join!(
        futures::future::join_all([16_000, 64_000, 100_000, 100_000, 100_000].map(attack)),
        futures::future::join_all(neighbour_calls)
    );
    for (status, text) in attacks {
        assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
        assert!(text.len() < 2_000, "the error echoed {} bytes", text.len());
    }
    assert!(
        neighbours.iter().all(|status| *status == 200),
        "{neighbours:?}"
    );
    sandbox.stop().await;
}

/// Reads until the edge closes the connection or `within` passes; returns
/// what arrived and whether it was closed.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut buffer = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(read)) => seen.extend_from_slice(&buffer[..read]),
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
        }
    }
}

/// A keep-alive connection from `source` that has made one request.
async fn healthy_connection(
    edge: std::net::SocketAddr,
    source: &str,
) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(edge).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: edge\r\n\r\n")
        .await
        .ok()?;
    let mut buffer = [0u8; 1024];
    match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer)).await {
        Ok(Ok(read)) if read > 0 && buffer.starts_with(b"HTTP/1.1 200") => Some(stream),
        _ => None,
    }
}

#[tokio::test]
async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let sandbox = Sandbox::start_with(|config| {
        config.edge.header_read_timeout_ms = 500;
    })
    .await;
    let edge = sandbox.edge;
    // Says nothing at all.
    let mut silent = tokio::net::TcpStream::connect(edge).await.unwrap();
    // Starts a request head and never finishes it.
    let mut slow = tokio::net::TcpStream::connect(edge).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: edge\r\n")
        .await
        .unwrap();
    let within = std::time::Duration::from_secs(5);
    let (silent_got, silent_closed) = read_until_closed(&mut silent, within).await;
    assert!(silent_closed, "a silent connection stayed open");
    assert!(silent_got.is_empty(), "{silent_got}");
    let (slow_got, slow_closed) = read_until_closed(&mut slow, within).await;
    assert!(slow_closed, "a slow request head kept its connection");
    assert!(!slow_got.contains("200 OK"), "{slow_got}");
    // Ordinary clients are served meanwhile.
    assert!(healthy_connection(edge, "127.0.0.1").await.is_some());
    sandbox.stop().await;
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_all() {
    let sandbox = Sandbox::start_with(|config| {
        config.edge.max_connections = 6;
        config.edge.max_connections_per_ip = 4;
    })
    .await;
    let edge = sandbox.edge;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            healthy_connection(edge, "127.0.0.1")
                .await
                .expect("within the per-address cap"),
        );
    }
    // A fifth from the same address is closed at the door...
    assert!(healthy_connection(edge, "127.0.0.1").await.is_none());
    // ...while another address still gets in, up to the total cap.
    for _ in 0..2 {
        held.push(
            healthy_connection(edge, "127.0.0.2")
                .await
                .expect("within the total cap"),
        );
    }
    assert!(healthy_connection(edge, "127.0.0.3").await.is_none());
    // Closing connections frees their places.
    held.truncate(3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while healthy_connection(edge, "127.0.0.1").await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "closed connections kept their places"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(held);
    sandbox.stop().await;
}
