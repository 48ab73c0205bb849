use sea_orm::entity::prelude::*;

use crate::states::{ExecutionStatus, TriggerType};

/// One run of one pinned workflow version.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub status: ExecutionStatus,
    pub trigger_type: TriggerType,
    /// The trigger data as JSON.
    pub input: String,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub failed_node_id: Option<String>,
    pub create_time: DateTimeUtc,
    pub start_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    pub deadline: DateTimeUtc,
    /// Bytes of node output stored so far, against the execution data cap.
    pub data_bytes: i64,
    /// For a replay, the dead letter it came from.
    pub dead_letter_id: Option<Uuid>,
    /// The person who started it; `None` for webhooks, schedules and the mesh.
    pub started_by: Option<Uuid>,
    /// Why a queued execution has not started yet.
    #[sea_orm(column_type = "Text", nullable)]
    pub queue_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
