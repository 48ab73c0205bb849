//! Bootstrap, workspaces, and the scope every call runs in.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tonic::Code;
use tyboo_auth::Role;
use tyboo_store::testing::TEST;
use uuid::Uuid;

use super::conformance;
use super::harness::{bootstrap, code_of, join, principal_for, scope};
use crate::Tenancy;
use crate::domain::validation::Name;

conformance!(
    migrations_are_idempotent_and_bootstrap_runs_once,
    owners_create_workspaces_in_their_organization,
    other_workspaces_look_like_missing_ones,
    only_principal_tokens_identify_callers,
);

async fn migrations_are_idempotent_and_bootstrap_runs_once(tenancy: Tenancy) {
    tenancy.migrate().await.unwrap();
    let fixture = bootstrap(&tenancy).await;
    tenancy.migrate().await.unwrap();
    let again = tenancy
        .bootstrap_if_empty("Other", "Other", "other@acme.test")
        .await
        .unwrap();
    assert!(again.is_none(), "a second start must not bootstrap again");

    let domain = tenancy.domain();
    let (principal, user) = domain.current_principal(&fixture.owner).await.unwrap();
    assert_eq!(principal.role, Some(Role::Owner));
    assert_eq!(principal.organization_id, Some(fixture.organization_id));
    let user = user.unwrap();
    assert_eq!(user.email, "owner@acme.test", "e-mail is stored lowercased");
    assert_eq!(user.display_name, "owner");

    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let organization = domain.get_organization(&owner_scope).await.unwrap();
    assert_eq!(organization.name, "Acme");
    let members = domain.list_members(&owner_scope).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::Owner);

    let bad_email = tenancy.bootstrap_if_empty("A", "B", "not-an-email").await;
    assert_eq!(code_of(bad_email), Code::InvalidArgument);

    let db = &domain.store().read(TEST);
    if db.get_database_backend() == DbBackend::Postgres {
        // Every table, the migration bookkeeping included, is in the schema.
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT table_schema, table_name FROM information_schema.tables \
                 WHERE table_name IN ('audit_events', 'seaql_migrations', 'users') \
                 ORDER BY table_name",
            ))
            .await
            .unwrap();
        let placed: Vec<(String, String)> = rows
            .iter()
            .map(|row| {
                (
                    row.try_get::<String>("", "table_schema").unwrap(),
                    row.try_get::<String>("", "table_name").unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = ["audit_events", "seaql_migrations", "users"]
            .into_iter()
            .map(|table| ("tenancy".to_owned(), table.to_owned()))
            .collect();
        assert_eq!(placed, expected);
    }
}

async fn owners_create_workspaces_in_their_organization(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let name = Name::parse("name", "Marketing", 200).unwrap();
    let (workspace, owner_key) = domain.create_workspace(&owner_scope, &name).await.unwrap();
    assert_eq!(workspace.organization_id, fixture.organization_id);
    assert_eq!(owner_key.api_key.workspace_id, workspace.id);

    // The new key speaks for the owner in the new workspace.
    let in_new = principal_for(&tenancy, &owner_key.secret).await;
    assert_eq!(in_new.workspace_id, Some(workspace.id));
    assert_eq!(in_new.role, Some(Role::Owner));
    let listed = domain.list_workspaces(&owner_scope).await.unwrap();
    let ids: Vec<Uuid> = listed.iter().map(|workspace| workspace.id).collect();
    assert_eq!(ids, vec![fixture.workspace_id, workspace.id]);

    // An admin of the first workspace sees only that one and may not create.
    let admin = join(&tenancy, &fixture, "admin@acme.test", Role::Admin).await;
    let admin_scope = scope(&tenancy, &admin.principal, fixture.workspace_id).await;
    assert_eq!(domain.list_workspaces(&admin_scope).await.unwrap().len(), 1);
    assert_eq!(
        code_of(domain.create_workspace(&admin_scope, &name).await),
        Code::PermissionDenied
    );
    let new_scope = scope(&tenancy, &in_new, workspace.id).await;
    let events = domain
        .list_audit_events(
            &new_scope,
            &crate::domain::AuditQuery {
                page_size: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<&str> = events.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["api_key.created", "member.added", "workspace.created"]
    );
}

async fn other_workspaces_look_like_missing_ones(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let name = Name::parse("name", "Finance", 200).unwrap();
    let (other, _) = domain.create_workspace(&owner_scope, &name).await.unwrap();

    // The owner is a member of both, but a token scoped to the first one
    // does not reach the second.
    let mut answers = Vec::new();
    for requested in [
        other.id.to_string(),
        Uuid::now_v7().to_string(),
        "nope".to_owned(),
    ] {
        let error = domain
            .workspace_scope(&fixture.owner, &requested)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
        answers.push(error.to_string());
    }
    assert!(answers.iter().all(|answer| answer == "workspace not found"));

    // A removed member's still-valid token sees nothing either.
    let viewer = join(&tenancy, &fixture, "viewer@acme.test", Role::Viewer).await;
    domain
        .remove_member(&owner_scope, viewer.user_id)
        .await
        .unwrap();
    let stale = domain
        .workspace_scope(&viewer.principal, &fixture.workspace())
        .await;
    assert_eq!(code_of(stale), Code::NotFound);
}

async fn only_principal_tokens_identify_callers(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let error = domain
        .verify_caller(Some(&fixture.owner_key))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated);
    assert!(error.to_string().contains("AuthService/Authenticate"));
    assert_eq!(
        code_of(domain.verify_caller(None).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(domain.verify_caller(Some("eyJhbGciOi.not.valid")).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(domain.authenticate_api_key("tyb_unknown").await),
        Code::Unauthenticated
    );
}
