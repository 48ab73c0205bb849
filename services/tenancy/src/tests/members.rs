//! Members, roles and invitations.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tonic::Code;
use tyboo_auth::Role;
use tyboo_store::testing::TEST;

use super::conformance;
use super::harness::{bootstrap, code_of, join, principal_for, scope};
use crate::Tenancy;
use crate::domain::InvitationState;
use crate::domain::validation::{Email, Name};
use crate::storage::entities::invitation;

conformance!(
    roles_follow_the_team_rules,
    removing_a_member_revokes_their_keys,
    invitations_are_single_use_and_expire,
    invitations_respect_roles_and_existing_members,
    concurrent_owner_demotions_keep_an_owner,
);

fn email(text: &str) -> Email {
    Email::parse("email", text).unwrap()
}

async fn roles_follow_the_team_rules(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let admin = join(&tenancy, &fixture, "admin@acme.test", Role::Admin).await;
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let viewer = join(&tenancy, &fixture, "viewer@acme.test", Role::Viewer).await;
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let admin_scope = scope(&tenancy, &admin.principal, fixture.workspace_id).await;
    let viewer_scope = scope(&tenancy, &viewer.principal, fixture.workspace_id).await;

    let members = domain.list_members(&viewer_scope).await.unwrap();
    let roles: Vec<Role> = members.iter().map(|member| member.role).collect();
    assert_eq!(
        roles,
        vec![Role::Owner, Role::Admin, Role::Editor, Role::Viewer]
    );

    // A viewer may read but not manage.
    assert_eq!(
        code_of(
            domain
                .update_member_role(&viewer_scope, editor.user_id, Role::Viewer)
                .await
        ),
        Code::PermissionDenied
    );
    // An admin promotes up to admin, not to owner, and never touches an owner.
    let promoted = domain
        .update_member_role(&admin_scope, editor.user_id, Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(
        code_of(
            domain
                .update_member_role(&admin_scope, viewer.user_id, Role::Owner)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .update_member_role(&admin_scope, fixture.owner_id, Role::Viewer)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(domain.remove_member(&admin_scope, fixture.owner_id).await),
        Code::PermissionDenied
    );
    // The last owner cannot step down, until there is a second one.
    assert_eq!(
        code_of(
            domain
                .update_member_role(&owner_scope, fixture.owner_id, Role::Admin)
                .await
        ),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of(domain.remove_member(&owner_scope, fixture.owner_id).await),
        Code::FailedPrecondition
    );
    domain
        .update_member_role(&owner_scope, admin.user_id, Role::Owner)
        .await
        .unwrap();
    let stepped_down = domain
        .update_member_role(&owner_scope, fixture.owner_id, Role::Admin)
        .await
        .unwrap();
    assert_eq!(stepped_down.role, Role::Admin);

    // The new role takes effect at once, whatever the token says.
    let old_owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    assert_eq!(old_owner_scope.principal().role, Some(Role::Admin));
    // Nobody raises their own role.
    assert_eq!(
        code_of(
            domain
                .update_member_role(&old_owner_scope, fixture.owner_id, Role::Owner)
                .await
        ),
        Code::PermissionDenied
    );
    // Anyone may step down.
    let viewer_self = domain
        .update_member_role(&viewer_scope, viewer.user_id, Role::Viewer)
        .await
        .unwrap();
    assert_eq!(viewer_self.role, Role::Viewer);
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        code_of(
            domain
                .update_member_role(&old_owner_scope, unknown, Role::Viewer)
                .await
        ),
        Code::NotFound
    );
}

async fn removing_a_member_revokes_their_keys(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let editor = join(&tenancy, &fixture, "editor@acme.test", Role::Editor).await;
    let editor_scope = scope(&tenancy, &editor.principal, fixture.workspace_id).await;
    let second_key = domain
        .create_api_key(
            &editor_scope,
            &Name::parse("name", "ci", 200).unwrap(),
            None,
        )
        .await
        .unwrap();
    let editor_token = domain
        .authenticate_api_key(&editor.api_key)
        .await
        .unwrap()
        .token;

    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    domain
        .remove_member(&owner_scope, editor.user_id)
        .await
        .unwrap();
    for secret in [&editor.api_key, &second_key.secret] {
        assert_eq!(
            code_of(domain.authenticate_api_key(secret).await),
            Code::Unauthenticated
        );
    }
    assert_eq!(
        code_of(domain.verify_caller(Some(&editor_token)).await),
        Code::Unauthenticated
    );
    let members = domain.list_members(&owner_scope).await.unwrap();
    assert_eq!(members.len(), 1);
    let keys = domain.list_api_keys(&owner_scope).await.unwrap();
    assert!(keys.iter().all(|key| key.user_id == fixture.owner_id));
    assert_eq!(
        code_of(domain.remove_member(&owner_scope, editor.user_id).await),
        Code::NotFound
    );
}

async fn invitations_are_single_use_and_expire(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let ttl = domain.invitation_ttl(3600).unwrap();

    let first = domain
        .create_invitation(&owner_scope, &email("Ada@Example.com"), Role::Editor, ttl)
        .await
        .unwrap();
    assert_eq!(first.invitation.email, "ada@example.com");
    assert_eq!(first.invitation.state, InvitationState::Pending);
    assert_eq!(
        first.invitation.invited_by,
        format!("user:{}", fixture.owner_id)
    );
    let display_name = Name::parse("display_name", "Ada Lovelace", 200).unwrap();
    let accepted = domain
        .accept_invitation(&first.token, Some(&display_name), None)
        .await
        .unwrap();
    assert_eq!(accepted.member.role, Role::Editor);
    assert_eq!(accepted.member.display_name, "Ada Lovelace");
    assert_eq!(accepted.workspace.id, fixture.workspace_id);
    let ada = principal_for(&tenancy, &accepted.api_key.secret).await;
    assert_eq!(ada.role, Some(Role::Editor));
    let error = domain
        .accept_invitation(&first.token, None, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(error.to_string(), "invitation was already accepted");

    let revoked = domain
        .create_invitation(&owner_scope, &email("bob@example.com"), Role::Viewer, ttl)
        .await
        .unwrap();
    let closed = domain
        .revoke_invitation(&owner_scope, revoked.invitation.id)
        .await
        .unwrap();
    assert_eq!(closed.state, InvitationState::Revoked);
    assert_eq!(
        code_of(domain.accept_invitation(&revoked.token, None, None).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of(
            domain
                .revoke_invitation(&owner_scope, revoked.invitation.id)
                .await
        ),
        Code::FailedPrecondition
    );

    let expiring = domain
        .create_invitation(&owner_scope, &email("cy@example.com"), Role::Viewer, ttl)
        .await
        .unwrap();
    invitation::Entity::update_many()
        .col_expr(
            invitation::Column::ExpireTime,
            Expr::value(crate::storage::now() - chrono::Duration::seconds(1)),
        )
        .filter(invitation::Column::Id.eq(expiring.invitation.id))
        .exec(&domain.store().read(TEST))
        .await
        .unwrap();
    let error = domain
        .accept_invitation(&expiring.token, None, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert!(error.to_string().starts_with("invitation expired at"));

    let pending = domain
        .create_invitation(&owner_scope, &email("dee@example.com"), Role::Viewer, ttl)
        .await
        .unwrap();
    let listed = domain.list_invitations(&owner_scope, false).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|invitation| invitation.id).collect();
    assert_eq!(ids, vec![pending.invitation.id]);
    let all = domain.list_invitations(&owner_scope, true).await.unwrap();
    let states: Vec<InvitationState> = all.iter().map(|invitation| invitation.state).collect();
    assert_eq!(
        states,
        vec![
            InvitationState::Pending,
            InvitationState::Expired,
            InvitationState::Revoked,
            InvitationState::Accepted,
        ]
    );

    assert_eq!(
        code_of(
            domain
                .accept_invitation("tyi_not-a-real-token", None, None)
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code_of(domain.accept_invitation("garbage", None, None).await),
        Code::NotFound
    );
}

async fn invitations_respect_roles_and_existing_members(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let ttl = domain.invitation_ttl(0).unwrap();
    let admin = join(&tenancy, &fixture, "admin@acme.test", Role::Admin).await;
    let viewer = join(&tenancy, &fixture, "viewer@acme.test", Role::Viewer).await;
    let admin_scope = scope(&tenancy, &admin.principal, fixture.workspace_id).await;
    let viewer_scope = scope(&tenancy, &viewer.principal, fixture.workspace_id).await;

    assert_eq!(
        code_of(
            domain
                .create_invitation(&viewer_scope, &email("x@example.com"), Role::Viewer, ttl)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(domain.list_invitations(&viewer_scope, false).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .create_invitation(&admin_scope, &email("x@example.com"), Role::Owner, ttl)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .create_invitation(&admin_scope, &email("viewer@acme.test"), Role::Editor, ttl)
                .await
        ),
        Code::AlreadyExists
    );
    domain
        .create_invitation(&admin_scope, &email("x@example.com"), Role::Admin, ttl)
        .await
        .unwrap();
    assert_eq!(
        code_of(
            domain
                .create_invitation(&admin_scope, &email("X@example.com"), Role::Viewer, ttl)
                .await
        ),
        Code::AlreadyExists
    );

    // A person already on the platform keeps their user when joining another
    // workspace.
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let (second, second_key) = domain
        .create_workspace(&owner_scope, &Name::parse("name", "Second", 200).unwrap())
        .await
        .unwrap();
    let second_owner = principal_for(&tenancy, &second_key.secret).await;
    let second_scope = scope(&tenancy, &second_owner, second.id).await;
    let invitation = domain
        .create_invitation(&second_scope, &email("viewer@acme.test"), Role::Editor, ttl)
        .await
        .unwrap();
    // The token alone is not enough for an address that has an account:
    // without a key, or with someone else's, nothing is written.
    assert_eq!(
        code_of(
            domain
                .accept_invitation(&invitation.token, None, None)
                .await
        ),
        Code::Unauthenticated
    );
    assert_eq!(
        code_of(
            domain
                .accept_invitation(&invitation.token, None, Some(&second_owner))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            domain
                .accept_invitation(&invitation.token, None, Some(&admin.principal))
                .await
        ),
        Code::PermissionDenied
    );
    let pending = domain.list_invitations(&second_scope, false).await.unwrap();
    assert!(
        pending
            .iter()
            .any(|open| open.id == invitation.invitation.id
                && open.state == InvitationState::Pending)
    );
    assert!(
        domain
            .list_members(&second_scope)
            .await
            .unwrap()
            .iter()
            .all(|member| member.user_id != viewer.user_id)
    );
    let accepted = domain
        .accept_invitation(&invitation.token, None, Some(&viewer.principal))
        .await
        .unwrap();
    assert_eq!(accepted.member.user_id, viewer.user_id);
    assert_eq!(accepted.member.role, Role::Editor);
    assert_eq!(accepted.member.display_name, "viewer");

    // The same address may be invited to several workspaces at once.
    domain
        .create_invitation(&owner_scope, &email("late@example.com"), Role::Viewer, ttl)
        .await
        .unwrap();
    domain
        .create_invitation(&second_scope, &email("late@example.com"), Role::Viewer, ttl)
        .await
        .unwrap();
}

async fn concurrent_owner_demotions_keep_an_owner(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain().clone();
    let second = join(&tenancy, &fixture, "second@acme.test", Role::Owner).await;
    let first_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let second_scope = scope(&tenancy, &second.principal, fixture.workspace_id).await;

    // Both owners step down at the same moment; one of them must stay.
    let first = {
        let domain = domain.clone();
        let owner_id = fixture.owner_id;
        tokio::spawn(async move {
            domain
                .update_member_role(&first_scope, owner_id, Role::Admin)
                .await
        })
    };
    let other = {
        let domain = domain.clone();
        let user_id = second.user_id;
        tokio::spawn(async move {
            domain
                .update_member_role(&second_scope, user_id, Role::Admin)
                .await
        })
    };
    let outcomes = [first.await.unwrap(), other.await.unwrap()];
    let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(succeeded, 1, "{outcomes:?}");
    let failure = outcomes.into_iter().find_map(Result::err).unwrap();
    assert_eq!(failure.code(), Code::FailedPrecondition);

    let reader = scope(&tenancy, &second.principal, fixture.workspace_id).await;
    let owners = domain
        .list_members(&reader)
        .await
        .unwrap()
        .into_iter()
        .filter(|member| member.role == Role::Owner)
        .count();
    assert_eq!(owners, 1);
}
