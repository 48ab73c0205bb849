use sea_orm::entity::prelude::*;

/// The end of a workspace's audit chain. Every append locks and advances this
/// row in the same transaction as the change, which serializes writers of one
/// workspace and lets the verifier notice events cut off the end.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub workspace_id: Uuid,
    pub last_sequence: i64,
    pub last_hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
