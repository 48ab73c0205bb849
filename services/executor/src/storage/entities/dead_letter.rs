use sea_orm::entity::prelude::*;

use crate::states::DeadLetterState;

/// A step that failed for good, with what is needed to replay it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_letters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub node_id: String,
    /// JSON array of the inputs the node failed on.
    pub inputs: String,
    pub error_class: String,
    pub error: String,
    pub attempts: i32,
    pub state: DeadLetterState,
    pub create_time: DateTimeUtc,
    pub resolve_time: Option<DateTimeUtc>,
    pub replay_execution_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
