//! The audit log is tamper-evident, and no audited change happens without
//! its record.

use serde_json::json;

use crate::sandbox::Sandbox;

async fn verify(sandbox: &Sandbox) -> serde_json::Value {
    let (status, verdict) = sandbox
        .post(
            &format!(
                "/v1/workspaces/{}/audit-events:verify",
                sandbox.workspace_id
            ),
            Some(&sandbox.owner_key),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{verdict}");
    verdict
}

#[tokio::test]
async fn a_tampered_audit_row_is_reported_by_verify() {
    let sandbox = Sandbox::start().await;
    for index in 0..3 {
        sandbox
            .add_member(&format!("member{index}@example.com"), "ROLE_VIEWER")
            .await;
    }
    let verdict = verify(&sandbox).await;
    assert_eq!(verdict["intact"], true, "{verdict}");
    let checked: i64 = verdict["eventsChecked"].as_str().unwrap().parse().unwrap();
    assert!(checked >= 7, "{verdict}");

    // Rewrite history behind the service's back: the third event's action.
    let (_, listed) = sandbox
        .get(
            &format!(
                "/v1/workspaces/{}/audit-events?pageSize=500",
                sandbox.workspace_id
            ),
            &sandbox.owner_key,
        )
        .await;
    let third = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["sequence"] == "3")
        .expect("a third event")
        .clone();
    let is_postgres = sandbox.store.as_ref().unwrap().is_postgres();
    if is_postgres {
        // The table refuses updates; only a superuser lifting that can tamper.
        sandbox
            .execute_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
            .await;
    }
    // Only the bootstrap workspace has events, so its sequence names the row.
    let changed = sandbox
        .execute_sql(
            "UPDATE audit_events SET action = 'member.nothing_happened' WHERE sequence = 3",
        )
        .await;
    assert_eq!(changed, 1);

    let verdict = verify(&sandbox).await;
    assert_eq!(verdict["intact"], false, "{verdict}");
    assert_eq!(verdict["firstBrokenEventId"], third["id"], "{verdict}");
    assert_eq!(verdict["firstBrokenSequence"], "3", "{verdict}");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_change_whose_audit_record_cannot_be_written_does_not_happen() {
    let sandbox = Sandbox::start().await;
    let is_postgres = sandbox.store.as_ref().unwrap().is_postgres();
    if is_postgres {
        sandbox
            .execute_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$",
            )
            .await;
        sandbox
            .execute_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            )
            .await;
    } else {
        sandbox
            .execute_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                 BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END",
            )
            .await;
    }
    let invitations = format!("/v1/workspaces/{}/invitations", sandbox.workspace_id);
    let (status, error) = sandbox
        .post(
            &invitations,
            Some(&sandbox.owner_key),
            json!({"email": "nobody@example.com", "role": "ROLE_VIEWER"}),
        )
        .await;
    assert_eq!(status, 500, "{error}");
    assert!(
        !error.to_string().contains("audit store unavailable"),
        "internal detail leaked: {error}"
    );

    let (_, pending) = sandbox.get(&invitations, &sandbox.owner_key).await;
    assert_eq!(
        pending["invitations"].as_array().map(Vec::len).unwrap_or(0),
        0
    );
    sandbox.stop().await;
}
