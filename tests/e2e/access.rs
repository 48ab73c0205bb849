//! Who may see what: workspace isolation and the life of API keys.

use reqwest::Method;
use serde_json::json;

use crate::sandbox::Sandbox;

/// The parts of an error a caller can compare: everything but its request id.
fn without_request_id(mut error: serde_json::Value) -> serde_json::Value {
    error.as_object_mut().unwrap().remove("request_id");
    error
}

#[tokio::test]
async fn another_workspace_looks_exactly_like_no_workspace() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();

    let (status, created) = sandbox
        .post("/v1/workspaces", Some(&owner), json!({"name": "Team B"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let workspace_b = created["workspace"]["id"].as_str().unwrap().to_owned();
    let key_b = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    // Key B sees workspace B.
    let (status, _) = sandbox
        .get(&format!("/v1/workspaces/{workspace_b}/members"), &key_b)
        .await;
    assert_eq!(status, 200);

    // Key A asking for B's members, and for a workspace that never existed.
    let (status_b, answer_b) = sandbox
        .get(&format!("/v1/workspaces/{workspace_b}/members"), &owner)
        .await;
    let missing = uuid::Uuid::now_v7();
    let (status_missing, answer_missing) = sandbox
        .get(&format!("/v1/workspaces/{missing}/members"), &owner)
        .await;
    assert_eq!(status_b, 404, "{answer_b}");
    assert_eq!(status_b, status_missing);
    assert_eq!(
        without_request_id(answer_b),
        without_request_id(answer_missing)
    );

    // Nor can A act in B by naming it in a body-bearing call.
    let (status, _) = sandbox
        .post(
            &format!("/v1/workspaces/{workspace_b}/invitations"),
            Some(&owner),
            json!({"email": "x@example.com", "role": "ROLE_VIEWER"}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, pending) = sandbox
        .get(&format!("/v1/workspaces/{workspace_b}/invitations"), &key_b)
        .await;
    assert_eq!(
        pending["invitations"].as_array().map(Vec::len).unwrap_or(0),
        0
    );

    sandbox.stop().await;
}

#[tokio::test]
async fn expired_revoked_and_rotated_keys_get_401() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();
    let keys_path = format!("/v1/workspaces/{}/api-keys", sandbox.workspace_id);

    // An expiry in the past is refused; a near one is accepted and then lapses.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let (status, refused) = sandbox
        .post(
            &keys_path,
            Some(&owner),
            json!({"name": "old", "expireTime": past}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, short) = sandbox
        .post(
            &keys_path,
            Some(&owner),
            json!({"name": "short", "expireTime": soon}),
        )
        .await;
    assert_eq!(status, 200, "{short}");
    let short_key = short["apiKey"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(sandbox.get("/v1/me", &short_key).await.0, 200);

    // Revoke.
    let (_, created) = sandbox
        .post(&keys_path, Some(&owner), json!({"name": "to-revoke"}))
        .await;
    let revoked_key = created["apiKey"]["secret"].as_str().unwrap().to_owned();
    let revoked_id = created["apiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sandbox.get("/v1/me", &revoked_key).await.0, 200);
    let (status, _) = sandbox
        .call(
            Method::DELETE,
            &format!("{keys_path}/{revoked_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, error) = sandbox.get("/v1/me", &revoked_key).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["code"], "UNAUTHENTICATED");

    // Rotate: the old secret stops, the new one works.
    let (_, created) = sandbox
        .post(&keys_path, Some(&owner), json!({"name": "to-rotate"}))
        .await;
    let old_secret = created["apiKey"]["secret"].as_str().unwrap().to_owned();
    let rotate_id = created["apiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sandbox.get("/v1/me", &old_secret).await.0, 200);
    let (status, rotated) = sandbox
        .post(
            &format!("{keys_path}/{rotate_id}:rotate"),
            Some(&owner),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["apiKey"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert_eq!(sandbox.get("/v1/me", &old_secret).await.0, 401);
    assert_eq!(sandbox.get("/v1/me", &new_secret).await.0, 200);

    // Listed keys show prefixes, never secrets.
    let (_, listed) = sandbox.get(&keys_path, &owner).await;
    let text = listed.to_string();
    assert!(!text.contains(&new_secret));
    assert!(listed["apiKeys"].as_array().unwrap().iter().all(|key| {
        key["prefix"]
            .as_str()
            .is_some_and(|prefix| new_secret.starts_with(prefix) || !prefix.is_empty())
    }));

    // Unknown and malformed keys.
    assert_eq!(sandbox.get("/v1/me", "tyb_not_a_real_key").await.0, 401);
    let (status, _) = sandbox.call(Method::GET, "/v1/me", None, None).await;
    assert_eq!(status, 401);

    // By now the short-lived key has expired.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, _) = sandbox.get("/v1/me", &short_key).await;
    assert_eq!(status, 401);

    sandbox.stop().await;
}

#[tokio::test]
async fn an_invitation_to_an_existing_address_needs_that_users_own_key() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();
    let (admin_id, admin_key) = sandbox
        .add_member("admin-a@example.com", "ROLE_ADMIN")
        .await;

    // Mallory owns workspace B.
    let (status, created) = sandbox
        .post("/v1/workspaces", Some(&owner), json!({"name": "Team B"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let workspace_b = created["workspace"]["id"].as_str().unwrap().to_owned();
    let key_b = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let invite = |key: String, email: &'static str, role: &'static str| {
        let sandbox = &sandbox;
        let workspace_b = workspace_b.clone();
        async move {
            let (status, invitation) = sandbox
                .post(
                    &format!("/v1/workspaces/{workspace_b}/invitations"),
                    Some(&key),
                    json!({"email": email, "role": role}),
                )
                .await;
            assert_eq!(status, 200, "{invitation}");
            invitation["token"].as_str().unwrap().to_owned()
        }
    };
    let token = invite(key_b.clone(), "mallory@example.com", "ROLE_OWNER").await;
    let (status, accepted) = sandbox
        .post("/v1/invitations:accept", None, json!({"token": token}))
        .await;
    assert_eq!(status, 200, "{accepted}");
    let mallory = accepted["apiKey"]["secret"].as_str().unwrap().to_owned();

    // Mallory invites A's admin's address and accepts the token himself.
    let token = invite(mallory.clone(), "admin-a@example.com", "ROLE_VIEWER").await;
    let (status, answer) = sandbox
        .post("/v1/invitations:accept", None, json!({"token": token}))
        .await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = sandbox
        .post(
            "/v1/invitations:accept",
            Some(&mallory),
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["apiKey"].is_null(), "{answer}");

    // Nothing was written: the invitation is pending, A's admin is no member of B.
    let (_, pending) = sandbox
        .get(
            &format!("/v1/workspaces/{workspace_b}/invitations"),
            &mallory,
        )
        .await;
    assert!(
        pending["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|open| open["email"] == "admin-a@example.com"),
        "{pending}"
    );
    let (_, members) = sandbox
        .get(&format!("/v1/workspaces/{workspace_b}/members"), &mallory)
        .await;
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|member| member["userId"] != admin_id.as_str()),
        "{members}"
    );

    // A's admin, signed in with her own key, may accept: she stays one user.
    let (status, accepted) = sandbox
        .post(
            "/v1/invitations:accept",
            Some(&admin_key),
            json!({"token": token}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["member"]["userId"], admin_id.as_str());
    assert_eq!(accepted["member"]["role"], "ROLE_VIEWER");

    sandbox.stop().await;
}

/// Every route that names a resource, called with workspace A's key and the
/// id of workspace B's real resource, answers exactly as with an id that
/// never existed; and B's data is untouched afterwards. The route list is
/// checked against `/openapi.json`, so a new route cannot be left out.
#[tokio::test]
async fn another_workspaces_ids_answer_like_missing_ones_on_every_route() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();

    // Workspace B with one of everything.
    let (status, created) = sandbox
        .post("/v1/workspaces", Some(&owner), json!({"name": "Team B"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let ws_b = created["workspace"]["id"].as_str().unwrap().to_owned();
    let key_b = created["ownerApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_b_id = created["ownerApiKey"]["apiKey"]["id"]
        .as_str()
        .or_else(|| created["ownerApiKey"]["id"].as_str())
        .unwrap()
        .to_owned();
    let (_, me_b) = sandbox.get("/v1/me", &key_b).await;
    let user_b = me_b["principal"]["subject"]
        .as_str()
        .and_then(|subject| subject.strip_prefix("user:"))
        .map(str::to_owned)
        .or_else(|| me_b["principal"]["userId"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no user in {me_b}"));
    let graph = json!({
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "parameters": {"path": "b-orders"}},
            {"id": "fail", "type": "http.request", "parameters": {"url": "http://10.0.0.1/"}}
        ],
        "edges": [{"from": "hook", "to": "fail"}]
    });
    let (status, workflow) = sandbox
        .post(
            "/v1/workflows",
            Some(&key_b),
            json!({"name": "B", "graph": graph}),
        )
        .await;
    assert_eq!(status, 200, "{workflow}");
    let workflow_b = workflow["workflow"]["id"].as_str().unwrap().to_owned();
    let (status, started) = sandbox
        .post(
            &format!("/v1/workflows/{workflow_b}/executions"),
            Some(&key_b),
            json!({"input": {}}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let execution_b = started["execution"]["id"].as_str().unwrap().to_owned();
    let (status, credential) = sandbox
        .post(
            "/v1/credentials",
            Some(&key_b),
            json!({"name": "B token", "type": "bearer_token", "fields": {"token": "b-secret-token"}}),
        )
        .await;
    assert_eq!(status, 200, "{credential}");
    let credential_b = credential["credential"]["id"].as_str().unwrap().to_owned();
    let (status, invitation) = sandbox
        .post(
            &format!("/v1/workspaces/{ws_b}/invitations"),
            Some(&key_b),
            json!({"email": "someone@example.com", "role": "ROLE_VIEWER"}),
        )
        .await;
    assert_eq!(status, 200, "{invitation}");
    let invitation_b = invitation["invitation"]["id"].as_str().unwrap().to_owned();
    // The failing node dead-letters the execution.
    let dead_letter_b = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (_, listed) = sandbox.get("/v1/dead-letters", &key_b).await;
            if let Some(id) = listed["deadLetters"][0]["id"].as_str() {
                break id.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no dead letter: {listed}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };

    struct Case {
        method: Method,
        template: &'static str,
        body: Option<serde_json::Value>,
    }
    let case = |method: Method, template: &'static str, body: Option<serde_json::Value>| Case {
        method,
        template,
        body,
    };
    let workflow_body = json!({"name": "x", "graph": {
        "nodes": [{"id": "start", "type": "trigger.manual"},
                  {"id": "done", "type": "set", "parameters": {"values": {}}}],
        "edges": [{"from": "start", "to": "done"}]}});
    let cases = vec![
        case(Method::GET, "/v1/workspaces/{workspace_id}", None),
        case(Method::GET, "/v1/workspaces/{workspace_id}/members", None),
        case(
            Method::PATCH,
            "/v1/workspaces/{workspace_id}/members/{user_id}",
            Some(json!({"role": "ROLE_VIEWER"})),
        ),
        case(
            Method::DELETE,
            "/v1/workspaces/{workspace_id}/members/{user_id}",
            None,
        ),
        case(
            Method::GET,
            "/v1/workspaces/{workspace_id}/invitations",
            None,
        ),
        case(
            Method::POST,
            "/v1/workspaces/{workspace_id}/invitations",
            Some(json!({"email": "x@example.com", "role": "ROLE_VIEWER"})),
        ),
        case(
            Method::DELETE,
            "/v1/workspaces/{workspace_id}/invitations/{invitation_id}",
            None,
        ),
        case(Method::GET, "/v1/workspaces/{workspace_id}/limits", None),
        case(
            Method::PUT,
            "/v1/workspaces/{workspace_id}/limits",
            Some(json!({"overrides": {"apiKeyBurst": 1000000}})),
        ),
        case(Method::GET, "/v1/workspaces/{workspace_id}/usage", None),
        case(
            Method::GET,
            "/v1/workspaces/{workspace_id}/usage/events",
            None,
        ),
        case(Method::GET, "/v1/workspaces/{workspace_id}/api-keys", None),
        case(
            Method::POST,
            "/v1/workspaces/{workspace_id}/api-keys",
            Some(json!({"name": "stolen"})),
        ),
        case(
            Method::POST,
            "/v1/workspaces/{workspace_id}/api-keys/{api_key_id}:rotate",
            Some(json!({})),
        ),
        case(
            Method::DELETE,
            "/v1/workspaces/{workspace_id}/api-keys/{api_key_id}",
            None,
        ),
        case(
            Method::GET,
            "/v1/workspaces/{workspace_id}/audit-events",
            None,
        ),
        case(
            Method::POST,
            "/v1/workspaces/{workspace_id}/audit-events:verify",
            Some(json!({})),
        ),
        case(Method::GET, "/v1/workflows/{workflow_id}", None),
        case(
            Method::PUT,
            "/v1/workflows/{workflow_id}",
            Some(workflow_body.clone()),
        ),
        case(Method::DELETE, "/v1/workflows/{workflow_id}", None),
        case(Method::GET, "/v1/workflows/{workflow_id}/versions", None),
        case(
            Method::POST,
            "/v1/workflows/{workflow_id}/versions/{version}:restore",
            Some(json!({})),
        ),
        case(Method::GET, "/v1/workflows/{workflow_id}/webhooks", None),
        case(
            Method::POST,
            "/v1/workflows/{workflow_id}/webhooks/{node_id}:rotate",
            Some(json!({})),
        ),
        case(
            Method::POST,
            "/v1/workflows/{workflow_id}/executions",
            Some(json!({"input": {}})),
        ),
        case(Method::GET, "/v1/executions/{execution_id}", None),
        case(Method::GET, "/v1/executions/{execution_id}/node-runs", None),
        case(
            Method::POST,
            "/v1/executions/{execution_id}:cancel",
            Some(json!({})),
        ),
        case(Method::GET, "/v1/executions?workflowId={workflow_id}", None),
        case(Method::GET, "/v1/credentials/{credential_id}", None),
        case(
            Method::PUT,
            "/v1/credentials/{credential_id}",
            Some(
                json!({"name": "x", "type": "bearer_token", "fields": {"token": "replaced-token"}}),
            ),
        ),
        case(Method::DELETE, "/v1/credentials/{credential_id}", None),
        case(Method::GET, "/v1/dead-letters/{dead_letter_id}", None),
        case(
            Method::POST,
            "/v1/dead-letters/{dead_letter_id}:replay",
            Some(json!({})),
        ),
        case(
            Method::POST,
            "/v1/dead-letters/{dead_letter_id}:discard",
            Some(json!({})),
        ),
        case(
            Method::GET,
            "/v1/dead-letters?workflowId={workflow_id}",
            None,
        ),
        case(
            Method::POST,
            "/v1/dead-letters:bulkReplay",
            Some(json!({"filter": {"workflowId": "{workflow_id}"}})),
        ),
        case(
            Method::POST,
            "/v1/dead-letters:bulkDiscard",
            Some(json!({"filter": {"workflowId": "{workflow_id}"}})),
        ),
    ];

    // Every route of the public document that names a resource is here.
    let document: serde_json::Value = sandbox
        .http
        .get(sandbox.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let squash = |path: &str| path.replace('_', "").to_ascii_lowercase();
    let covered: std::collections::HashSet<(String, String)> = cases
        .iter()
        .map(|case| {
            (
                case.method.as_str().to_ascii_lowercase(),
                squash(case.template.split('?').next().unwrap()),
            )
        })
        .collect();
    for (path, operations) in document["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                covered.contains(&(method.clone(), squash(path))),
                "{method} {path} is not in the cross-workspace matrix"
            );
        }
    }

    let fill = |text: &str, ids: &[(&str, &str)]| {
        let mut text = text.to_owned();
        for (name, value) in ids {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    };
    let real: Vec<(&str, &str)> = vec![
        ("workspace_id", ws_b.as_str()),
        ("user_id", user_b.as_str()),
        ("invitation_id", invitation_b.as_str()),
        ("api_key_id", key_b_id.as_str()),
        ("workflow_id", workflow_b.as_str()),
        ("version", "1"),
        ("node_id", "hook"),
        ("execution_id", execution_b.as_str()),
        ("credential_id", credential_b.as_str()),
        ("dead_letter_id", dead_letter_b.as_str()),
    ];
    let randoms: Vec<String> = (0..real.len())
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    let random: Vec<(&str, &str)> = real
        .iter()
        .zip(&randoms)
        .map(|((name, value), random)| {
            let value = match *name {
                "version" | "node_id" => *value,
                _ => random.as_str(),
            };
            (*name, value)
        })
        .collect();
    let mut differences = Vec::new();
    for case in &cases {
        let mut answers = Vec::new();
        for ids in [&real, &random] {
            let path = fill(case.template, ids);
            let body = case
                .body
                .as_ref()
                .map(|body| serde_json::from_str(&fill(&body.to_string(), ids)).unwrap());
            let (status, answer) = sandbox
                .call(case.method.clone(), &path, Some(&owner), body)
                .await;
            answers.push((status, without_request_id(answer)));
        }
        let [(real_status, real_answer), (random_status, random_answer)] =
            <[_; 2]>::try_from(answers).unwrap();
        if real_status != random_status || real_answer != random_answer {
            differences.push(format!(
                "{} {}: B's id → {real_status} {real_answer}; random id → {random_status} {random_answer}",
                case.method, case.template
            ));
        }
        assert!(
            (400..500).contains(&real_status) || real_status == 200,
            "{} {}: {real_status} {real_answer}",
            case.method,
            case.template
        );
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // B's data is as it was.
    let (status, workflow) = sandbox
        .get(&format!("/v1/workflows/{workflow_b}"), &key_b)
        .await;
    assert_eq!(status, 200, "{workflow}");
    assert_eq!(workflow["workflow"]["latestVersion"], "1", "{workflow}");
    let (status, _) = sandbox
        .get(&format!("/v1/credentials/{credential_b}"), &key_b)
        .await;
    assert_eq!(status, 200);
    let (_, members) = sandbox
        .get(&format!("/v1/workspaces/{ws_b}/members"), &key_b)
        .await;
    assert_eq!(members["members"][0]["role"], "ROLE_OWNER", "{members}");
    let (_, pending) = sandbox
        .get(&format!("/v1/workspaces/{ws_b}/invitations"), &key_b)
        .await;
    assert_eq!(pending["invitations"][0]["id"], invitation_b.as_str());
    let (status, dead_letter) = sandbox
        .get(&format!("/v1/dead-letters/{dead_letter_b}"), &key_b)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        dead_letter["deadLetter"]["state"], "DEAD_LETTER_STATE_PENDING",
        "{dead_letter}"
    );
    sandbox.stop().await;
}

/// Sends `request` every 50 ms until it answers `wanted`; fails with the
/// last answer once `within` has passed. Returns how long it took.
async fn answers_within<F, Fut>(
    what: &str,
    wanted: u16,
    within: std::time::Duration,
    request: F,
) -> std::time::Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, serde_json::Value)>,
{
    let start = std::time::Instant::now();
    loop {
        let (status, body) = request().await;
        if status == wanted {
            return start.elapsed();
        }
        let mut shown = body.to_string();
        shown.truncate(300);
        assert!(
            start.elapsed() < within,
            "{what}: still {status} after {within:?}, wanted {wanted}: {shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The executor trusts the role a principal token names until the token
/// expires, and the edge caches each key's token for up to
/// `edge.auth_cache_ttl_seconds` (30 s): only the edge dropping the token
/// when tenancy reports the change makes it take effect within seconds.
#[tokio::test]
async fn a_demotion_or_removal_reaches_the_edge_within_seconds() {
    let sandbox = Sandbox::start().await;
    let owner = sandbox.owner_key.clone();
    let workspace = sandbox.workspace_id.clone();
    let (ada_id, ada_key) = sandbox.add_member("ada@example.com", "ROLE_ADMIN").await;
    let (bob_id, bob_key) = sandbox.add_member("bob@example.com", "ROLE_EDITOR").await;
    let within = std::time::Duration::from_secs(3);
    let graph = json!({"nodes": [{"id": "start", "type": "trigger.manual"}], "edges": []});
    let create_workflow = || {
        let sandbox = &sandbox;
        let ada_key = ada_key.clone();
        let graph = graph.clone();
        async move {
            let name = format!("Ada's {}", uuid::Uuid::now_v7());
            sandbox
                .post(
                    "/v1/workflows",
                    Some(&ada_key),
                    json!({"name": name, "graph": graph}),
                )
                .await
        }
    };
    let invite = |key: String| {
        let sandbox = &sandbox;
        let path = format!("/v1/workspaces/{workspace}/invitations");
        async move {
            let email = format!("guest-{}@example.com", uuid::Uuid::now_v7().simple());
            sandbox
                .post(
                    &path,
                    Some(&key),
                    json!({"email": email, "role": "ROLE_VIEWER"}),
                )
                .await
        }
    };

    // Ada, an admin, invites people and writes workflows (a call the
    // executor answers); Bob reads workflows. Their tokens are now cached.
    let (status, answer) = invite(ada_key.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = create_workflow().await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = sandbox.get("/v1/workflows", &bob_key).await;
    assert_eq!(status, 200, "{answer}");

    // The owner demotes Ada to viewer: her key loses every write at once.
    let (status, answer) = sandbox
        .call(
            Method::PATCH,
            &format!("/v1/workspaces/{workspace}/members/{ada_id}"),
            Some(&owner),
            Some(json!({"role": "ROLE_VIEWER"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let took = answers_within("Ada writing a workflow", 403, within, create_workflow).await;
    eprintln!("the demotion reached the executor through the edge in {took:?}");
    let (status, answer) = invite(ada_key.clone()).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["code"], "PERMISSION_DENIED");
    // Her key still works, with the role she has now.
    let (status, answer) = sandbox.get("/v1/workflows", &ada_key).await;
    assert_eq!(status, 200, "{answer}");

    // The owner removes Bob: his key stops, on the executor as on tenancy.
    let (status, answer) = sandbox
        .call(
            Method::DELETE,
            &format!("/v1/workspaces/{workspace}/members/{bob_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let took = answers_within("Bob listing workflows", 401, within, || {
        sandbox.get("/v1/workflows", &bob_key)
    })
    .await;
    eprintln!("the removal reached the executor through the edge in {took:?}");
    let (status, answer) = sandbox.get("/v1/me", &bob_key).await;
    assert_eq!(status, 401, "{answer}");

    sandbox.stop().await;
}
