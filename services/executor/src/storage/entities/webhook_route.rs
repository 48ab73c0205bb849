use sea_orm::entity::prelude::*;

/// Which workflow node listens on a webhook path; rewritten on every save.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_routes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub path: String,
    pub workflow_id: Uuid,
    pub node_id: String,
    /// The unguessable part of the hook URL; kept across saves, rotatable.
    pub token: String,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
