use sea_orm::entity::prelude::*;

use crate::states::StepState;

/// The state of one node in one execution: the row workers lease, fence and
/// commit to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub pool: String,
    pub state: StepState,
    /// The attempt running now, or the next one to run; from 1.
    pub attempt: i32,
    /// Bumped by every claim; a result commits only under the number its
    /// worker claimed with.
    pub fencing: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Not to be run before this (backoff, a waiting node).
    pub available_at: DateTimeUtc,
    /// When a message for this step was last sent.
    pub dispatched_at: Option<DateTimeUtc>,
    /// JSON output once succeeded, or held while waiting. None for a
    /// succeeded trigger: its output is the execution's input.
    pub output: Option<String>,
    pub port: Option<String>,
    pub error: Option<String>,
    pub error_class: Option<String>,
    pub start_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    /// Deliveries whose worker stopped responding before a result (crashed
    /// or stalled); past `max_deliveries` the step is dead-lettered.
    pub lost_workers: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
