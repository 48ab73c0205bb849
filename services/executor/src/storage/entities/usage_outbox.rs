use sea_orm::entity::prelude::*;

/// One usage event metering has not acknowledged yet. `kind` is
/// "execution", "task" or "llm_call"; the LLM columns are empty for the
/// others.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub idempotency_key: String,
    pub kind: String,
    pub workflow_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub occurred_at: DateTimeUtc,
    pub provider_host: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
