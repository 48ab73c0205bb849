//! Credentials and the recorded master key state.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, integer, pk_uuid, string, text, timestamp_with_time_zone, uuid,
};
use tyboo_store::create_index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_create_vault"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Credentials {
    Table,
    Id,
    WorkspaceId,
    Name,
    CredentialType,
    AllowedHosts,
    Version,
    KeyVersion,
    Ciphertext,
    DataNonce,
    WrappedKey,
    KeyNonce,
    CreatedBy,
    UpdatedBy,
    CreateTime,
    UpdateTime,
}

#[derive(Clone, Copy, DeriveIden)]
enum VaultKeyState {
    Table,
    Id,
    ActiveVersion,
    MinDecryptVersion,
    UpdateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .col(pk_uuid(Credentials::Id))
                    .col(uuid(Credentials::WorkspaceId))
                    .col(string(Credentials::Name))
                    .col(string(Credentials::CredentialType))
                    .col(text(Credentials::AllowedHosts))
                    .col(big_integer(Credentials::Version))
                    .col(big_integer(Credentials::KeyVersion))
                    .col(blob(Credentials::Ciphertext))
                    .col(blob(Credentials::DataNonce))
                    .col(blob(Credentials::WrappedKey))
                    .col(blob(Credentials::KeyNonce))
                    .col(string(Credentials::CreatedBy))
                    .col(string(Credentials::UpdatedBy))
                    .col(timestamp_with_time_zone(Credentials::CreateTime))
                    .col(timestamp_with_time_zone(Credentials::UpdateTime))
                    .to_owned(),
            )
            .await?;
        // Names are unique per workspace; listing pages by name.
        create_index(
            manager,
            "ux_credentials_workspace_name",
            Credentials::Table,
            &[Credentials::WorkspaceId, Credentials::Name],
            true,
        )
        .await?;
        // Rewrap and rotation status scan by master key version.
        create_index(
            manager,
            "ix_credentials_key_version",
            Credentials::Table,
            &[Credentials::KeyVersion, Credentials::Id],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(VaultKeyState::Table)
                    .col(integer(VaultKeyState::Id).primary_key())
                    .col(big_integer(VaultKeyState::ActiveVersion))
                    .col(big_integer(VaultKeyState::MinDecryptVersion))
                    .col(timestamp_with_time_zone(VaultKeyState::UpdateTime))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
