use sea_orm::entity::prelude::*;

/// A schedule trigger; `next_fire_at` moves forward by compare-and-set, so
/// a tick fires once however many executors look at it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub node_id: String,
    pub cron: String,
    pub timezone: String,
    pub next_fire_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
