use sea_orm::entity::prelude::*;

/// One immutable saved graph of a workflow.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflow_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub version: i64,
    pub name: String,
    pub description: String,
    /// The validated graph as JSON.
    pub graph: String,
    pub created_by: String,
    pub create_time: DateTimeUtc,
    pub restored_from_version: Option<i64>,
    pub node_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
