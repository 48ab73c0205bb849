//! The access-change log: every change that takes access away or alters it
//! is recorded with it, read back by cursor, pruned, and only by the mesh.

use sea_orm::EntityTrait;
use sea_orm::sea_query::Expr;
use tonic::{Code, Request};
use tyboo_auth::{Principal, Role};
use tyboo_proto::tenancy::auth_service_server::AuthService;
use tyboo_proto::tenancy::{
    AccessChangeKind as ProtoKind, AuthenticateRequest, ListAccessChangesRequest,
};
use tyboo_store::testing::TEST;
use uuid::Uuid;

use super::conformance;
use super::harness::{SERVICE_SECRET, bootstrap, code_of, join, scope};
use crate::domain::validation::{Name, ServiceName};
use crate::domain::{AccessChange, AccessChangeKind, AccessChangesPage, AccessChangesQuery};
use crate::storage::entities::access_change;
use crate::{AuthGrpc, Tenancy};

conformance!(
    each_change_to_access_is_recorded_with_it,
    changes_page_by_cursor_from_the_head,
    only_service_tokens_read_access_changes,
    old_changes_are_pruned_and_a_cursor_behind_them_expires,
);

async fn service_principal(tenancy: &Tenancy) -> Principal {
    let domain = tenancy.domain();
    let issued = domain
        .issue_service_token(
            &ServiceName::parse("service", "edge").unwrap(),
            SERVICE_SECRET,
        )
        .await
        .unwrap();
    domain.verify_caller(Some(&issued.token)).await.unwrap()
}

async fn head(tenancy: &Tenancy, service: &Principal) -> i64 {
    let page = tenancy
        .domain()
        .list_access_changes(service, AccessChangesQuery::Head)
        .await
        .unwrap();
    assert!(page.changes.is_empty());
    assert!(!page.cursor_expired);
    page.next_cursor
}

async fn after(
    tenancy: &Tenancy,
    service: &Principal,
    cursor: i64,
    page_size: u32,
) -> AccessChangesPage {
    tenancy
        .domain()
        .list_access_changes(
            service,
            AccessChangesQuery::After {
                after: cursor,
                page_size,
            },
        )
        .await
        .unwrap()
}

/// What a change is about, without its cursor and time.
fn about(change: &AccessChange) -> (AccessChangeKind, Uuid, Option<Uuid>, Option<Uuid>) {
    (
        change.kind,
        change.workspace_id,
        change.user_id,
        change.api_key_id,
    )
}

fn name(text: &str) -> Name {
    Name::parse("name", text, 200).unwrap()
}

async fn each_change_to_access_is_recorded_with_it(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let service = service_principal(&tenancy).await;
    let workspace = fixture.workspace_id;
    let admin = join(&tenancy, &fixture, "admin@acme.test", Role::Admin).await;
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let owner_scope = scope(&tenancy, &fixture.owner, workspace).await;
    // Joining grants access; it is not a change anything cached must drop.
    let start = head(&tenancy, &service).await;
    assert!(
        after(&tenancy, &service, start, 100)
            .await
            .changes
            .is_empty()
    );

    domain
        .update_member_role(&owner_scope, admin.user_id, Role::Viewer)
        .await
        .unwrap();
    // Setting the role a member already has changes nothing.
    domain
        .update_member_role(&owner_scope, admin.user_id, Role::Viewer)
        .await
        .unwrap();
    domain
        .remove_member(&owner_scope, editor.user_id)
        .await
        .unwrap();
    let revoked = domain
        .create_api_key(&owner_scope, &name("to revoke"), None)
        .await
        .unwrap();
    domain
        .revoke_api_key(&owner_scope, revoked.api_key.id)
        .await
        .unwrap();
    let rotated = domain
        .create_api_key(&owner_scope, &name("to rotate"), None)
        .await
        .unwrap();
    domain
        .rotate_api_key(&owner_scope, rotated.api_key.id)
        .await
        .unwrap();
    // A refused change records nothing: the last owner cannot leave.
    assert_eq!(
        code_of(domain.remove_member(&owner_scope, fixture.owner_id).await),
        Code::FailedPrecondition
    );

    let page = after(&tenancy, &service, start, 100).await;
    assert!(!page.cursor_expired);
    let recorded: Vec<_> = page.changes.iter().map(about).collect();
    assert_eq!(
        recorded,
        vec![
            (
                AccessChangeKind::RoleChanged,
                workspace,
                Some(admin.user_id),
                None
            ),
            (
                AccessChangeKind::MemberRemoved,
                workspace,
                Some(editor.user_id),
                None
            ),
            (
                AccessChangeKind::ApiKeyRevoked,
                workspace,
                None,
                Some(revoked.api_key.id)
            ),
            (
                AccessChangeKind::ApiKeyRotated,
                workspace,
                None,
                Some(rotated.api_key.id)
            ),
        ]
    );
    let cursors: Vec<i64> = page.changes.iter().map(|change| change.cursor).collect();
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "{cursors:?}"
    );
    assert!(cursors[0] > start);
    assert_eq!(page.next_cursor, *cursors.last().unwrap());
    assert_eq!(head(&tenancy, &service).await, page.next_cursor);
}

async fn changes_page_by_cursor_from_the_head(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let service = service_principal(&tenancy).await;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    // Nothing recorded yet: the head is the start.
    assert_eq!(head(&tenancy, &service).await, 0);
    let mut revoked = Vec::new();
    for number in 0..5 {
        let created = domain
            .create_api_key(&owner_scope, &name(&format!("key {number}")), None)
            .await
            .unwrap();
        domain
            .revoke_api_key(&owner_scope, created.api_key.id)
            .await
            .unwrap();
        revoked.push(created.api_key.id);
    }

    // Pages of two: 2, 2, 1, then nothing, each resuming where the last ended.
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = after(&tenancy, &service, cursor, 2).await;
        assert!(!page.cursor_expired);
        sizes.push(page.changes.len());
        if page.changes.is_empty() {
            assert_eq!(page.next_cursor, cursor, "an empty page stays put");
            break;
        }
        assert!(page.changes.iter().all(|change| change.cursor > cursor));
        cursor = page.next_cursor;
        seen.extend(page.changes.iter().map(|change| change.api_key_id.unwrap()));
    }
    assert_eq!(sizes, vec![2, 2, 1, 0]);
    assert_eq!(seen, revoked);
    assert_eq!(head(&tenancy, &service).await, cursor);

    // Page sizes: zero is the default, anything above the maximum is capped.
    assert_eq!(domain.access_changes_page_size(0).unwrap(), 500);
    assert_eq!(domain.access_changes_page_size(1000).unwrap(), 1000);
    assert_eq!(domain.access_changes_page_size(1001).unwrap(), 1000);
    assert_eq!(
        code_of(domain.access_changes_page_size(-1)),
        Code::InvalidArgument
    );
    assert_eq!(
        code_of(
            domain
                .list_access_changes(
                    &service,
                    AccessChangesQuery::After {
                        after: -1,
                        page_size: 10
                    }
                )
                .await
        ),
        Code::InvalidArgument
    );

    // A cursor beyond the head means the log is not the one the reader knew.
    let reset = after(&tenancy, &service, cursor + 10, 2).await;
    assert!(reset.cursor_expired);
    assert!(reset.changes.is_empty());
    assert_eq!(reset.next_cursor, cursor);
}

async fn only_service_tokens_read_access_changes(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let auth = AuthGrpc::new(tenancy.domain().clone());
    let request = |token: Option<&str>| {
        let mut request = Request::new(ListAccessChangesRequest {
            after: 0,
            page_size: 0,
            head_only: false,
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };

    let missing = auth.list_access_changes(request(None)).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    // The owner's own API key, and the principal token it is exchanged for.
    let raw_key = auth
        .list_access_changes(request(Some(&fixture.owner_key)))
        .await
        .unwrap_err();
    assert_eq!(raw_key.code(), Code::Unauthenticated);
    let owner_token = auth
        .authenticate(Request::new(AuthenticateRequest {
            api_key: fixture.owner_key.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .token;
    let owner = auth
        .list_access_changes(request(Some(&owner_token)))
        .await
        .unwrap_err();
    assert_eq!(owner.code(), Code::PermissionDenied, "{owner:?}");

    let service_token = tenancy
        .domain()
        .issue_service_token(
            &ServiceName::parse("service", "edge").unwrap(),
            SERVICE_SECRET,
        )
        .await
        .unwrap()
        .token;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let key = tenancy
        .domain()
        .create_api_key(&owner_scope, &name("ci"), None)
        .await
        .unwrap();
    tenancy
        .domain()
        .revoke_api_key(&owner_scope, key.api_key.id)
        .await
        .unwrap();
    let answer = auth
        .list_access_changes(request(Some(&service_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.changes.len(), 1);
    let change = &answer.changes[0];
    assert_eq!(change.kind(), ProtoKind::ApiKeyRevoked);
    assert_eq!(change.api_key_id, key.api_key.id.to_string());
    assert_eq!(change.workspace_id, fixture.workspace());
    assert_eq!(change.user_id, "");
    assert_eq!(answer.next_cursor, change.cursor);

    let mut head_only = request(Some(&service_token));
    head_only.get_mut().head_only = true;
    let head = auth
        .list_access_changes(head_only)
        .await
        .unwrap()
        .into_inner();
    assert!(head.changes.is_empty());
    assert_eq!(head.next_cursor, change.cursor);

    let mut negative = request(Some(&service_token));
    negative.get_mut().after = -1;
    let negative = auth.list_access_changes(negative).await.unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert_eq!(negative.message(), "after: must not be negative");
}

async fn old_changes_are_pruned_and_a_cursor_behind_them_expires(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let service = service_principal(&tenancy).await;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let revoke_one = |label: &'static str| {
        let owner_scope = owner_scope.clone();
        async move {
            let created = domain
                .create_api_key(&owner_scope, &name(label), None)
                .await
                .unwrap();
            domain
                .revoke_api_key(&owner_scope, created.api_key.id)
                .await
                .unwrap();
            created.api_key.id
        }
    };
    revoke_one("first").await;
    revoke_one("second").await;
    let reader_cursor = after(&tenancy, &service, 0, 100).await.changes[0].cursor;
    let kept_cursor = head(&tenancy, &service).await;

    // Both changes age past the retention (an hour by default).
    let two_hours_ago = crate::storage::now() - chrono::Duration::hours(2);
    access_change::Entity::update_many()
        .col_expr(
            access_change::Column::CreateTime,
            Expr::value(two_hours_ago),
        )
        .exec(&domain.store().read(TEST))
        .await
        .unwrap();
    // The newest change is kept however old, so the head stays known.
    assert_eq!(head(&tenancy, &service).await, kept_cursor);

    // The next change prunes every older one.
    let third = revoke_one("third").await;
    let rows = access_change::Entity::find()
        .all(&domain.store().read(TEST))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].api_key_id, Some(third));

    // A reader that had seen only the first change missed the second.
    let behind = after(&tenancy, &service, reader_cursor, 100).await;
    assert!(behind.cursor_expired);
    assert!(behind.changes.is_empty());
    assert_eq!(behind.next_cursor, rows[0].id);
    // One that had seen the second misses nothing.
    let current = after(&tenancy, &service, kept_cursor, 100).await;
    assert!(!current.cursor_expired);
    assert_eq!(current.changes.len(), 1);
    assert_eq!(current.changes[0].api_key_id, Some(third));
}
