use sea_orm::entity::prelude::*;

/// A workflow's identity; its graphs live in `workflow_versions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: String,
    pub latest_version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    /// Set when deleted: versions stay for the executions that pinned them.
    pub delete_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
