use sea_orm::entity::prelude::*;

/// One link of a workspace's hash chain. Rows are only ever inserted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub sequence: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: String,
    pub occur_time: DateTimeUtc,
    /// The string map as a JSON object with sorted keys.
    pub details: String,
    pub previous_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
