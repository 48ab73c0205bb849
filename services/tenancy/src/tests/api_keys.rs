//! API keys: who may do what, rotation, revocation, expiry.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tonic::Code;
use tyboo_auth::Role;
use tyboo_store::testing::TEST;

use super::conformance;
use super::harness::{bootstrap, code_of, join, principal_for, scope};
use crate::Tenancy;
use crate::domain::validation::Name;
use crate::storage::entities::api_key;

conformance!(
    keys_are_listed_by_role_and_managed_within_rank,
    rotation_and_revocation_stop_old_credentials_at_once,
    expired_keys_stop_working,
    tokens_never_outlive_their_key,
    authentication_records_last_use,
);

fn name(text: &str) -> Name {
    Name::parse("name", text, 200).unwrap()
}

async fn keys_are_listed_by_role_and_managed_within_rank(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let admin = join(&tenancy, &fixture, "admin@acme.test", Role::Admin).await;
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let viewer = join(&tenancy, &fixture, "viewer@acme.test", Role::Viewer).await;
    let admin_scope = scope(&tenancy, &admin.principal, fixture.workspace_id).await;
    let editor_scope = scope(&tenancy, &editor.principal, fixture.workspace_id).await;
    let viewer_scope = scope(&tenancy, &viewer.principal, fixture.workspace_id).await;

    let created = domain
        .create_api_key(&editor_scope, &name("deploys"), None)
        .await
        .unwrap();
    assert!(created.secret.starts_with("tyb_"));
    assert!(created.secret.starts_with(&created.api_key.prefix));
    assert_eq!(created.api_key.user_id, editor.user_id);
    assert_eq!(
        code_of(
            domain
                .create_api_key(&viewer_scope, &name("mine"), None)
                .await
        ),
        Code::PermissionDenied
    );
    let past = crate::storage::now() - chrono::Duration::seconds(5);
    let error = domain
        .create_api_key(&editor_scope, &name("old"), Some(past))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "expire_time: must lie in the future");

    // Editors see their own keys, admins everyone's.
    let own = domain.list_api_keys(&editor_scope).await.unwrap();
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|key| key.user_id == editor.user_id));
    let all = domain.list_api_keys(&admin_scope).await.unwrap();
    assert_eq!(all.len(), 5, "owner, admin, editor×2, viewer");
    assert_eq!(domain.list_api_keys(&viewer_scope).await.unwrap().len(), 1);

    // Someone else's key does not exist for an editor.
    let admin_key = all
        .iter()
        .find(|key| key.user_id == admin.user_id)
        .unwrap()
        .id;
    assert_eq!(
        code_of(domain.revoke_api_key(&editor_scope, admin_key).await),
        Code::NotFound
    );
    // An admin manages an editor's key but not an owner's.
    let owner_key = all
        .iter()
        .find(|key| key.user_id == fixture.owner_id)
        .unwrap()
        .id;
    assert_eq!(
        code_of(domain.rotate_api_key(&admin_scope, owner_key).await),
        Code::PermissionDenied
    );
    domain
        .revoke_api_key(&admin_scope, created.api_key.id)
        .await
        .unwrap();
    assert_eq!(domain.list_api_keys(&editor_scope).await.unwrap().len(), 1);
    assert_eq!(
        code_of(
            domain
                .revoke_api_key(&admin_scope, created.api_key.id)
                .await
        ),
        Code::NotFound
    );
}

async fn rotation_and_revocation_stop_old_credentials_at_once(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let editor_scope = scope(&tenancy, &editor.principal, fixture.workspace_id).await;
    let key_id = editor.principal.api_key_id.unwrap();
    let token_before = domain
        .authenticate_api_key(&editor.api_key)
        .await
        .unwrap()
        .token;

    // Token times are whole seconds; step past the issuing second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = domain.rotate_api_key(&editor_scope, key_id).await.unwrap();
    assert_eq!(rotated.api_key.id, key_id);
    assert!(rotated.api_key.rotate_time.is_some());
    assert_ne!(rotated.secret, editor.api_key);
    assert_eq!(
        code_of(domain.authenticate_api_key(&editor.api_key).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(domain.verify_caller(Some(&token_before)).await),
        Code::Unauthenticated
    );
    let fresh = principal_for(&tenancy, &rotated.secret).await;
    assert_eq!(fresh.api_key_id, Some(key_id));
    let listed = domain.list_api_keys(&editor_scope).await.unwrap();
    assert_eq!(listed[0].prefix, rotated.api_key.prefix);

    let token_after = domain
        .authenticate_api_key(&rotated.secret)
        .await
        .unwrap()
        .token;
    let fresh_scope = scope(&tenancy, &fresh, fixture.workspace_id).await;
    domain.revoke_api_key(&fresh_scope, key_id).await.unwrap();
    assert_eq!(
        code_of(domain.authenticate_api_key(&rotated.secret).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(domain.verify_caller(Some(&token_after)).await),
        Code::Unauthenticated
    );
}

async fn expired_keys_stop_working(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let soon = crate::storage::now() + chrono::Duration::hours(1);
    let expiring = domain
        .create_api_key(&owner_scope, &name("temporary"), Some(soon))
        .await
        .unwrap();
    assert_eq!(expiring.api_key.expire_time, Some(soon));
    let token = domain
        .authenticate_api_key(&expiring.secret)
        .await
        .unwrap()
        .token;
    api_key::Entity::update_many()
        .col_expr(
            api_key::Column::ExpireTime,
            Expr::value(crate::storage::now() - chrono::Duration::seconds(1)),
        )
        .filter(api_key::Column::Id.eq(expiring.api_key.id))
        .exec(&domain.store().read(TEST))
        .await
        .unwrap();
    let unknown = domain
        .authenticate_api_key("tyb_nothing")
        .await
        .unwrap_err();
    let expired = domain
        .authenticate_api_key(&expiring.secret)
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated);
    assert_eq!(expired.to_string(), unknown.to_string());
    assert_eq!(
        code_of(domain.verify_caller(Some(&token)).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(
            domain
                .rotate_api_key(&owner_scope, expiring.api_key.id)
                .await
        ),
        Code::FailedPrecondition
    );
}

async fn tokens_never_outlive_their_key(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let soon = crate::storage::now() + chrono::Duration::hours(1);
    let expiring = domain
        .create_api_key(&owner_scope, &name("short-lived"), Some(soon))
        .await
        .unwrap();
    // The key has 90 s left, the token lifetime is 300 s: the token ends
    // with the key, not 210 s after it.
    let key_expiry = crate::storage::now() + chrono::Duration::seconds(90);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::ExpireTime, Expr::value(key_expiry))
        .filter(api_key::Column::Id.eq(expiring.api_key.id))
        .exec(&domain.store().read(TEST))
        .await
        .unwrap();
    let issued = domain.authenticate_api_key(&expiring.secret).await.unwrap();
    assert!(
        issued.expire_time <= key_expiry,
        "token until {}, key until {key_expiry}",
        issued.expire_time
    );
    assert!(issued.expire_time > key_expiry - chrono::Duration::seconds(5));

    // With less than a second left, no token is issued at all.
    let almost = crate::storage::now() + chrono::Duration::milliseconds(500);
    api_key::Entity::update_many()
        .col_expr(api_key::Column::ExpireTime, Expr::value(almost))
        .filter(api_key::Column::Id.eq(expiring.api_key.id))
        .exec(&domain.store().read(TEST))
        .await
        .unwrap();
    assert_eq!(
        code_of(domain.authenticate_api_key(&expiring.secret).await),
        Code::Unauthenticated
    );

    // A key without an expiry keeps the configured lifetime.
    let issued = domain
        .authenticate_api_key(&fixture.owner_key)
        .await
        .unwrap();
    let lifetime = issued.expire_time - crate::storage::now();
    assert!(lifetime > chrono::Duration::seconds(290));
}

async fn authentication_records_last_use(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let keys = domain.list_api_keys(&owner_scope).await.unwrap();
    let first_use = keys[0]
        .last_use_time
        .expect("bootstrap fixture authenticated");
    // Within the resolution, another use writes nothing.
    domain
        .authenticate_api_key(&fixture.owner_key)
        .await
        .unwrap();
    let keys = domain.list_api_keys(&owner_scope).await.unwrap();
    assert_eq!(keys[0].last_use_time, Some(first_use));
    let issued = domain
        .authenticate_api_key(&fixture.owner_key)
        .await
        .unwrap();
    assert_eq!(issued.principal.role, Some(Role::Owner));
    let lifetime = issued.expire_time - crate::storage::now();
    assert!(lifetime <= chrono::Duration::seconds(300));
    assert!(lifetime > chrono::Duration::seconds(290));
}
