use sea_orm::entity::prelude::*;

use crate::states::NodeRunStatus;

/// One attempt of one node; unique on (execution, node, attempt).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "node_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub attempt: i32,
    pub status: NodeRunStatus,
    /// JSON array of the inputs the attempt ran on, or empty
    /// (`DERIVED_INPUT`): the predecessors' outputs, read back from their
    /// steps when the run is shown, instead of a second copy of them.
    pub input: String,
    pub output: Option<String>,
    pub port: Option<String>,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub start_time: DateTimeUtc,
    pub end_time: Option<DateTimeUtc>,
    pub resume_time: Option<DateTimeUtc>,
    pub llm_model: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
