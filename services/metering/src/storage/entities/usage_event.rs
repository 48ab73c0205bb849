use sea_orm::entity::prelude::*;

/// What a ledger row counts, stored as its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum UsageKind {
    #[sea_orm(string_value = "execution")]
    Execution,
    #[sea_orm(string_value = "task")]
    Task,
    #[sea_orm(string_value = "llm_call")]
    LlmCall,
}

impl UsageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageKind::Execution => "execution",
            UsageKind::Task => "task",
            UsageKind::LlmCall => "llm_call",
        }
    }
}

/// One row of the ledger: written once, never updated. The month and day it
/// counts in are kept as text ("2026-12", "2026-12-07", UTC) so that both
/// backends group by them the same way.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub idempotency_key: String,
    pub kind: UsageKind,
    pub workflow_id: Uuid,
    pub execution_id: Uuid,
    pub node_id: String,
    pub usage_month: String,
    pub usage_day: String,
    pub occurred_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub provider_host: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
    pub price_version: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
