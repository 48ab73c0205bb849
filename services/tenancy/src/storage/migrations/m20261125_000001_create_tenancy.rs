//! Organizations, workspaces, users, memberships, invitations, API keys,
//! signing keys and the audit chain.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, binary, boolean, pk_uuid, string, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid, uuid_null,
};
use sea_orm_migration::sea_orm::DbBackend;
use tyboo_store::create_index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_create_tenancy"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreateTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum Workspaces {
    Table,
    Id,
    OrganizationId,
    Name,
    CreateTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    CreateTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum Memberships {
    Table,
    Id,
    WorkspaceId,
    UserId,
    Role,
    JoinTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum Invitations {
    Table,
    Id,
    WorkspaceId,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    State,
    CreateTime,
    ExpireTime,
    CloseTime,
    AcceptedUserId,
}

#[derive(Clone, Copy, DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    WorkspaceId,
    UserId,
    Name,
    Prefix,
    KeyHash,
    CreateTime,
    ExpireTime,
    LastUseTime,
    RotateTime,
    RevokeTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Secret,
    Public,
    CreateTime,
    Active,
    DeactivateTime,
    RetireTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    WorkspaceId,
    Sequence,
    Actor,
    Action,
    Target,
    RequestId,
    OccurTime,
    Details,
    PreviousHash,
    Hash,
}

#[derive(Clone, Copy, DeriveIden)]
enum AuditHeads {
    Table,
    WorkspaceId,
    LastSequence,
    LastHash,
}

/// Rejects any change to a written audit event, and truncation, so even a
/// bug or a careless operator cannot quietly rewrite history. The hash chain
/// still catches tampering by someone who disables the trigger.
const POSTGRES_APPEND_ONLY: &[&str] = &[
    r#"CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit events are append-only'
           USING ERRCODE = 'insufficient_privilege';
       END
       $$"#,
    r#"CREATE TRIGGER audit_events_append_only
       BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"#,
    r#"CREATE TRIGGER audit_events_no_truncate
       BEFORE TRUNCATE ON audit_events
       FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"#,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(pk_uuid(Organizations::Id))
                    .col(string(Organizations::Name))
                    .col(timestamp_with_time_zone(Organizations::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Workspaces::Table)
                    .col(pk_uuid(Workspaces::Id))
                    .col(uuid(Workspaces::OrganizationId))
                    .col(string(Workspaces::Name))
                    .col(timestamp_with_time_zone(Workspaces::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workspaces_organization")
                            .from(Workspaces::Table, Workspaces::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_workspaces_organization",
            Workspaces::Table,
            &[Workspaces::OrganizationId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string(Users::Email))
                    .col(string(Users::DisplayName))
                    .col(timestamp_with_time_zone(Users::CreateTime))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_users_email",
            Users::Table,
            &[Users::Email],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(pk_uuid(Memberships::Id))
                    .col(uuid(Memberships::WorkspaceId))
                    .col(uuid(Memberships::UserId))
                    .col(string(Memberships::Role))
                    .col(timestamp_with_time_zone(Memberships::JoinTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_workspace")
                            .from(Memberships::Table, Memberships::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_memberships_user")
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_memberships_workspace_user",
            Memberships::Table,
            &[Memberships::WorkspaceId, Memberships::UserId],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_memberships_user",
            Memberships::Table,
            &[Memberships::UserId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(pk_uuid(Invitations::Id))
                    .col(uuid(Invitations::WorkspaceId))
                    .col(string(Invitations::Email))
                    .col(string(Invitations::Role))
                    .col(string(Invitations::TokenHash))
                    .col(string(Invitations::InvitedBy))
                    .col(string(Invitations::State))
                    .col(timestamp_with_time_zone(Invitations::CreateTime))
                    .col(timestamp_with_time_zone(Invitations::ExpireTime))
                    .col(timestamp_with_time_zone_null(Invitations::CloseTime))
                    .col(uuid_null(Invitations::AcceptedUserId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_workspace")
                            .from(Invitations::Table, Invitations::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_invitations_token_hash",
            Invitations::Table,
            &[Invitations::TokenHash],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_invitations_workspace_state",
            Invitations::Table,
            &[Invitations::WorkspaceId, Invitations::State],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(pk_uuid(ApiKeys::Id))
                    .col(uuid(ApiKeys::WorkspaceId))
                    .col(uuid(ApiKeys::UserId))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::Prefix))
                    .col(string(ApiKeys::KeyHash))
                    .col(timestamp_with_time_zone(ApiKeys::CreateTime))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpireTime))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUseTime))
                    .col(timestamp_with_time_zone_null(ApiKeys::RotateTime))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokeTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_workspace")
                            .from(ApiKeys::Table, ApiKeys::WorkspaceId)
                            .to(Workspaces::Table, Workspaces::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_user")
                            .from(ApiKeys::Table, ApiKeys::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_api_keys_key_hash",
            ApiKeys::Table,
            &[ApiKeys::KeyHash],
            true,
        )
        .await?;
        create_index(
            manager,
            "ix_api_keys_workspace_user",
            ApiKeys::Table,
            &[ApiKeys::WorkspaceId, ApiKeys::UserId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string(SigningKeys::Kid).primary_key())
                    .col(binary(SigningKeys::Secret))
                    .col(binary(SigningKeys::Public))
                    .col(timestamp_with_time_zone(SigningKeys::CreateTime))
                    .col(boolean(SigningKeys::Active))
                    .col(timestamp_with_time_zone_null(SigningKeys::DeactivateTime))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetireTime))
                    .to_owned(),
            )
            .await?;

        // No foreign key to workspaces: the global chain (signing-key
        // rotations) uses the nil workspace id.
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(uuid(AuditEvents::WorkspaceId))
                    .col(big_integer(AuditEvents::Sequence))
                    .col(string(AuditEvents::Actor))
                    .col(string(AuditEvents::Action))
                    .col(string(AuditEvents::Target))
                    .col(string(AuditEvents::RequestId))
                    .col(timestamp_with_time_zone(AuditEvents::OccurTime))
                    .col(text(AuditEvents::Details))
                    .col(string(AuditEvents::PreviousHash))
                    .col(string(AuditEvents::Hash))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_audit_events_workspace_sequence",
            AuditEvents::Table,
            &[AuditEvents::WorkspaceId, AuditEvents::Sequence],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditHeads::Table)
                    .col(pk_uuid(AuditHeads::WorkspaceId))
                    .col(big_integer(AuditHeads::LastSequence))
                    .col(string(AuditHeads::LastHash))
                    .to_owned(),
            )
            .await?;

        if manager.get_database_backend() == DbBackend::Postgres {
            for statement in POSTGRES_APPEND_ONLY {
                manager
                    .get_connection()
                    .execute_unprepared(statement)
                    .await?;
            }
        }
        Ok(())
    }
}
