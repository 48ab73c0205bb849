use sea_orm::entity::prelude::*;

/// One credential at its current version. The fields exist only sealed;
/// deleting a credential deletes the row, ciphertext and all.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub credential_type: String,
    /// A JSON array of host patterns.
    pub allowed_hosts: String,
    pub version: i64,
    /// The master key version that wraps `wrapped_key`.
    pub key_version: i64,
    pub ciphertext: Vec<u8>,
    pub data_nonce: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub created_by: String,
    pub updated_by: String,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

// Sealed bytes are noise to a reader and only lengthen logs.
impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Credential")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("name", &self.name)
            .field("credential_type", &self.credential_type)
            .field("version", &self.version)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
