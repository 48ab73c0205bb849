//! The audit chain on a real database: recorded with each change, listed,
//! verified, tamper-evident, and never missing for a change that happened.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter};
use tonic::Code;
use tyboo_auth::Role;
use tyboo_store::testing::TEST;

use super::conformance;
use super::harness::{bootstrap, code_of, join, scope};
use crate::Tenancy;
use crate::domain::audit::decode_page_token;
use crate::domain::validation::{Email, Name};
use crate::domain::{AuditQuery, WorkspaceScope};
use crate::storage::entities::audit_event;

conformance!(
    changes_are_recorded_listed_and_verified,
    tampering_is_reported_at_the_first_broken_link,
    a_change_whose_audit_record_fails_does_not_happen,
    concurrent_changes_extend_one_unbroken_chain,
    other_services_append_to_the_chains_with_service_tokens_only,
);

fn all_events() -> AuditQuery {
    AuditQuery {
        page_size: 500,
        ..AuditQuery::default()
    }
}

async fn actions(tenancy: &Tenancy, scope: &WorkspaceScope, query: &AuditQuery) -> Vec<String> {
    tenancy
        .domain()
        .list_audit_events(scope, query)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|event| event.action)
        .collect()
}

async fn changes_are_recorded_listed_and_verified(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    domain
        .update_member_role(&owner_scope, editor.user_id, Role::Viewer)
        .await
        .unwrap();

    let page = domain
        .list_audit_events(&owner_scope, &all_events())
        .await
        .unwrap();
    let listed: Vec<(i64, &str)> = page
        .events
        .iter()
        .map(|event| (event.sequence, event.action.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (8, "member.role_changed"),
            (7, "api_key.created"),
            (6, "invitation.accepted"),
            (5, "invitation.created"),
            (4, "api_key.created"),
            (3, "member.added"),
            (2, "workspace.created"),
            (1, "organization.created"),
        ]
    );
    let newest = &page.events[0];
    assert_eq!(newest.actor, format!("user:{}", fixture.owner_id));
    assert_eq!(newest.target, format!("user:{}", editor.user_id));
    assert_eq!(newest.details["from"], "editor");
    assert_eq!(newest.details["to"], "viewer");
    assert_eq!(newest.previous_hash, page.events[1].hash);
    assert_eq!(page.events[7].actor, "system");
    assert_eq!(page.events[7].previous_hash, "");
    assert!(page.next_page_token.is_empty());

    // Filters match exactly.
    let by_action = AuditQuery {
        action: Some("api_key.created".to_owned()),
        ..all_events()
    };
    assert_eq!(actions(&tenancy, &owner_scope, &by_action).await.len(), 2);
    let by_actor = AuditQuery {
        actor: Some(format!("user:{}", editor.user_id)),
        ..all_events()
    };
    assert_eq!(
        actions(&tenancy, &owner_scope, &by_actor).await,
        vec!["api_key.created", "invitation.accepted"]
    );
    let future = AuditQuery {
        start_time: Some(crate::storage::now() + chrono::Duration::hours(1)),
        ..all_events()
    };
    assert!(actions(&tenancy, &owner_scope, &future).await.is_empty());
    let past = AuditQuery {
        end_time: Some(crate::storage::now() + chrono::Duration::hours(1)),
        start_time: Some(crate::storage::now() - chrono::Duration::hours(1)),
        ..all_events()
    };
    assert_eq!(actions(&tenancy, &owner_scope, &past).await.len(), 8);

    // Pages of three walk the whole log exactly once.
    let mut seen = Vec::new();
    let mut query = AuditQuery {
        page_size: 3,
        ..AuditQuery::default()
    };
    loop {
        let page = domain
            .list_audit_events(&owner_scope, &query)
            .await
            .unwrap();
        seen.extend(page.events.iter().map(|event| event.sequence));
        if page.next_page_token.is_empty() {
            break;
        }
        query.before_sequence = decode_page_token(&page.next_page_token).unwrap();
    }
    assert_eq!(seen, vec![8, 7, 6, 5, 4, 3, 2, 1]);

    let verification = domain.verify_audit_log(&owner_scope).await.unwrap();
    assert!(verification.intact(), "{verification:?}");
    assert_eq!(verification.events_checked, 8);

    // Reading the log is for admins.
    let viewer_scope = scope(&tenancy, &editor.principal, fixture.workspace_id).await;
    assert_eq!(
        code_of(domain.list_audit_events(&viewer_scope, &all_events()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(domain.verify_audit_log(&viewer_scope).await),
        Code::PermissionDenied
    );
}

async fn tampering_is_reported_at_the_first_broken_link(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let db = &domain.store().read(TEST);
    let rewrite_actor = audit_event::Entity::update_many()
        .col_expr(audit_event::Column::Actor, Expr::value("user:intruder"))
        .filter(audit_event::Column::WorkspaceId.eq(fixture.workspace_id))
        .filter(audit_event::Column::Sequence.eq(2));

    if db.get_database_backend() == DbBackend::Postgres {
        // The table refuses changes outright…
        let refused = rewrite_actor.clone().exec(db).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
        // …so tampering needs the trigger out of the way first.
        db.execute_unprepared("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            .await
            .unwrap();
    }
    rewrite_actor.exec(db).await.unwrap();
    let verification = domain.verify_audit_log(&owner_scope).await.unwrap();
    assert!(!verification.intact());
    assert_eq!(verification.events_checked, 1);
    let broken = verification.first_broken.unwrap();
    assert_eq!(broken.sequence, 2);
    assert!(
        broken.reason.starts_with("hash mismatch"),
        "{}",
        broken.reason
    );
    let tampered_id = domain
        .list_audit_events(&owner_scope, &all_events())
        .await
        .unwrap()
        .events
        .into_iter()
        .find(|event| event.sequence == 2)
        .unwrap()
        .id;
    assert_eq!(broken.event_id, Some(tampered_id));

    // Deleting the tampered event leaves a gap where it was.
    audit_event::Entity::delete_many()
        .filter(audit_event::Column::Id.eq(tampered_id))
        .exec(db)
        .await
        .unwrap();
    let broken = domain
        .verify_audit_log(&owner_scope)
        .await
        .unwrap()
        .first_broken
        .unwrap();
    assert_eq!(broken.sequence, 3);
    assert!(
        broken.reason.starts_with("sequence gap"),
        "{}",
        broken.reason
    );
}

async fn a_change_whose_audit_record_fails_does_not_happen(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let db = &domain.store().read(TEST);
    let refuse_inserts: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        _ => &["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END"],
    };
    for statement in refuse_inserts {
        db.execute_unprepared(statement).await.unwrap();
    }

    let invited = domain
        .create_invitation(
            &owner_scope,
            &Email::parse("email", "nobody@acme.test").unwrap(),
            Role::Viewer,
            domain.invitation_ttl(0).unwrap(),
        )
        .await;
    assert_eq!(code_of(invited), Code::Internal);
    let created = domain
        .create_api_key(&owner_scope, &Name::parse("name", "x", 200).unwrap(), None)
        .await;
    assert_eq!(code_of(created), Code::Internal);

    assert!(
        domain
            .list_invitations(&owner_scope, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(domain.list_api_keys(&owner_scope).await.unwrap().len(), 1);
    let verification = domain.verify_audit_log(&owner_scope).await.unwrap();
    assert!(verification.intact(), "{verification:?}");
    assert_eq!(verification.events_checked, 4);
}

async fn concurrent_changes_extend_one_unbroken_chain(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let writers: Vec<_> = (0..12)
        .map(|index| {
            let domain = tenancy.domain().clone();
            let scope = owner_scope.clone();
            tokio::spawn(async move {
                let name = Name::parse("name", &format!("key-{index}"), 200).unwrap();
                domain.create_api_key(&scope, &name, None).await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let domain = tenancy.domain();
    let verification = domain.verify_audit_log(&owner_scope).await.unwrap();
    assert!(verification.intact(), "{verification:?}");
    assert_eq!(verification.events_checked, 4 + 12);
    assert_eq!(domain.list_api_keys(&owner_scope).await.unwrap().len(), 13);
}

async fn other_services_append_to_the_chains_with_service_tokens_only(tenancy: Tenancy) {
    use std::collections::BTreeMap;

    use tyboo_auth::Principal;
    use uuid::Uuid;

    use crate::domain::audit::{ExternalAuditEvent, GLOBAL_CHAIN};

    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let vault = Principal::service("vault");
    let event = |workspace_id: Option<Uuid>| ExternalAuditEvent {
        workspace_id,
        actor: "service:vault".to_owned(),
        action: "vault.credential.created".to_owned(),
        target: "credential:c1".to_owned(),
        details: BTreeMap::from([("name".to_owned(), "stripe".to_owned())]),
    };

    let stored = domain
        .append_external_audit_event(&vault, event(Some(fixture.workspace_id)))
        .await
        .unwrap();
    assert_eq!(stored.workspace_id, fixture.workspace_id);
    assert_eq!(stored.action, "vault.credential.created");
    assert_eq!(stored.details["name"], "stripe");
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let listed = actions(&tenancy, &owner_scope, &all_events()).await;
    assert_eq!(
        listed.first().map(String::as_str),
        Some("vault.credential.created")
    );
    assert!(
        domain
            .verify_audit_log(&owner_scope)
            .await
            .unwrap()
            .intact()
    );

    // No workspace: the mesh-wide chain signing-key rotations use.
    let global = domain
        .append_external_audit_event(&vault, event(None))
        .await
        .unwrap();
    assert_eq!(global.workspace_id, GLOBAL_CHAIN);
    assert!(domain.verify_chain(GLOBAL_CHAIN).await.unwrap().intact());

    // A user, even the owner, may not write the log that records them.
    assert_eq!(
        code_of(
            domain
                .append_external_audit_event(&fixture.owner, event(Some(fixture.workspace_id)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .append_external_audit_event(&vault, event(Some(Uuid::now_v7())))
                .await
        ),
        Code::NotFound
    );
    let mut nameless = event(None);
    nameless.action = String::new();
    assert_eq!(
        code_of(domain.append_external_audit_event(&vault, nameless).await),
        Code::InvalidArgument
    );
}
