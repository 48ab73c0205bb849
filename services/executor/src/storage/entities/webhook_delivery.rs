use sea_orm::entity::prelude::*;

/// A delivery id already seen, and the execution it started.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub delivery_id: String,
    pub workflow_id: Uuid,
    /// The webhook trigger node that received it: ids are per trigger.
    pub node_id: String,
    pub execution_id: Uuid,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
