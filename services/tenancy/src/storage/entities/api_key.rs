use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The first characters of the current secret, shown in lists.
    pub prefix: String,
    /// Hex SHA-256 of the current secret; replaced on rotation.
    pub key_hash: String,
    pub create_time: DateTimeUtc,
    pub expire_time: Option<DateTimeUtc>,
    pub last_use_time: Option<DateTimeUtc>,
    pub rotate_time: Option<DateTimeUtc>,
    /// Set when revoked; a revoked key is kept for the audit trail but never
    /// authenticates or lists again.
    pub revoke_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
