//! The first start that never locks anyone out, and what an operator does
//! from `tyboo admin`.

use tonic::Code;
use tyboo_auth::{Role, Subject};

use super::conformance;
use super::harness::{bootstrap, code_of, principal_for};
use crate::Tenancy;
use crate::domain::AuditQuery;
use crate::domain::admin::{MemberRef, Operator};
use crate::domain::validation::{Email, Name};

conformance!(
    an_unused_first_key_is_replaced_on_restart_until_it_is_used,
    operators_see_every_tenant_recover_keys_and_are_audited,
    operator_tokens_read_any_workspace_and_change_nothing,
);

async fn an_unused_first_key_is_replaced_on_restart_until_it_is_used(tenancy: Tenancy) {
    let start = || tenancy.bootstrap_if_empty("Acme", "Operations", "owner@acme.test");
    let first = start().await.unwrap().expect("the first start bootstraps");
    assert!(!first.renewed);

    // Restarted before anyone used the key: a new one for the same owner.
    let second = start().await.unwrap().expect("an unused key is replaced");
    assert!(second.renewed);
    assert_ne!(second.api_key, first.api_key);
    assert_eq!(second.workspace_id, first.workspace_id);
    assert_eq!(second.user_id, first.user_id);
    let domain = tenancy.domain();
    assert_eq!(
        code_of(domain.authenticate_api_key(&first.api_key).await),
        Code::Unauthenticated,
        "the replaced key no longer works"
    );

    // Once the key has been used, a restart prints nothing.
    let owner = principal_for(&tenancy, &second.api_key).await;
    assert!(start().await.unwrap().is_none());
    assert!(start().await.unwrap().is_none());
    let scope = domain
        .workspace_scope(&owner, &second.workspace_id.to_string())
        .await
        .unwrap();
    let verification = domain.verify_audit_log(&scope).await.unwrap();
    assert!(verification.intact());
    let page = domain
        .list_audit_events(
            &scope,
            &AuditQuery {
                action: Some("api_key.revoked".to_owned()),
                page_size: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].actor, "system");
}

async fn operators_see_every_tenant_recover_keys_and_are_audited(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let operator = Operator::new("cli").unwrap();
    let created = domain
        .admin_create_organization(
            &operator,
            &Name::parse("name", "Globex", 200).unwrap(),
            &Name::parse("workspace", "Main", 200).unwrap(),
            &Email::parse("owner_email", "hank@globex.test").unwrap(),
        )
        .await
        .unwrap();
    let hank = principal_for(&tenancy, &created.api_key).await;
    assert_eq!(hank.role, Some(Role::Owner));

    let organizations = domain.admin_list_organizations(&operator).await.unwrap();
    assert_eq!(organizations.len(), 2);
    let all = domain.admin_list_workspaces(&operator, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let globex = domain
        .admin_list_workspaces(&operator, Some(created.organization_id))
        .await
        .unwrap();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].id, created.workspace_id);
    assert_eq!(
        code_of(
            domain
                .admin_list_workspaces(&operator, Some(uuid::Uuid::now_v7()))
                .await
        ),
        Code::NotFound
    );
    let members = domain
        .admin_list_members(&operator, fixture.workspace_id)
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, fixture.owner_id);

    // Recovery: a new key for the owner, by address or by id; the old one
    // keeps working.
    let by_email = MemberRef::parse("owner@acme.test").unwrap();
    let (member, issued) = domain
        .admin_issue_api_key(&operator, fixture.workspace_id, &by_email)
        .await
        .unwrap();
    assert_eq!(member.user_id, fixture.owner_id);
    let recovered = principal_for(&tenancy, &issued.secret).await;
    assert_eq!(recovered.user_id(), Some(fixture.owner_id));
    principal_for(&tenancy, &fixture.owner_key).await;
    let by_id = MemberRef::parse(&fixture.owner_id.to_string()).unwrap();
    assert!(
        domain
            .admin_issue_api_key(&operator, fixture.workspace_id, &by_id)
            .await
            .is_ok()
    );
    // Nobody becomes a member this way.
    let stranger = MemberRef::parse("hank@globex.test").unwrap();
    assert_eq!(
        code_of(
            domain
                .admin_issue_api_key(&operator, fixture.workspace_id, &stranger)
                .await
        ),
        Code::NotFound
    );

    // Each action is on the log with the operator as actor, chain intact.
    let scope = domain
        .workspace_scope(&fixture.owner, &fixture.workspace_id.to_string())
        .await
        .unwrap();
    let page = domain
        .list_audit_events(
            &scope,
            &AuditQuery {
                actor: Some("operator:cli".to_owned()),
                page_size: 50,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<&str> = page
        .events
        .iter()
        .map(|event| event.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.created",
            "operator.members.listed"
        ],
        "newest first"
    );
    assert!(domain.verify_audit_log(&scope).await.unwrap().intact());
    let global = domain
        .verify_chain(crate::domain::audit::GLOBAL_CHAIN)
        .await
        .unwrap();
    assert!(global.intact());
    assert!(global.events_checked >= 3, "{global:?}");
}

async fn operator_tokens_read_any_workspace_and_change_nothing(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let operator = Operator::new("cli").unwrap();
    assert_eq!(
        code_of(
            domain
                .admin_issue_operator_token(&operator, 3601, None)
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of(domain.admin_issue_operator_token(&operator, 0, None).await),
        Code::InvalidArgument
    );
    let issued = domain
        .admin_issue_operator_token(&operator, 900, None)
        .await
        .unwrap();
    let lifetime = issued.expire_time - chrono::Utc::now();
    assert!(lifetime <= chrono::Duration::seconds(900), "{lifetime}");
    let principal = domain.verify_caller(Some(&issued.token)).await.unwrap();
    assert_eq!(principal.subject, Subject::Operator("cli".to_owned()));
    assert_eq!(principal.workspace_id, None);

    // Any workspace it names, read-only.
    let scope = domain
        .workspace_scope(&principal, &fixture.workspace_id.to_string())
        .await
        .unwrap();
    assert_eq!(domain.list_members(&scope).await.unwrap().len(), 1);
    assert!(domain.get_workspace(&scope).await.is_ok());
    assert!(domain.verify_audit_log(&scope).await.unwrap().intact());
    let name = Name::parse("name", "sneaky", 200).unwrap();
    assert_eq!(
        code_of(domain.create_api_key(&scope, &name, None).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .update_member_role(&scope, fixture.owner_id, Role::Viewer)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(domain.create_workspace(&scope, &name).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .workspace_scope(&principal, &uuid::Uuid::now_v7().to_string())
                .await
        ),
        Code::NotFound
    );

    // A token for one workspace carries it, for services that act in the
    // token's workspace; an unknown one is refused.
    let scoped = domain
        .admin_issue_operator_token(&operator, 60, Some(fixture.workspace_id))
        .await
        .unwrap();
    let principal = domain.verify_caller(Some(&scoped.token)).await.unwrap();
    assert_eq!(principal.workspace_id, Some(fixture.workspace_id));
    assert_eq!(principal.organization_id, Some(fixture.organization_id));
    assert_eq!(
        code_of(
            domain
                .admin_issue_operator_token(&operator, 60, Some(uuid::Uuid::now_v7()))
                .await
        ),
        Code::NotFound
    );
}
