use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "first_start")]
pub struct Model {
    /// Always [`crate::storage::first_start::ROW_ID`].
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization_id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    /// The owner's current first-start key: replaced on every restart until
    /// one of them is used.
    pub api_key_id: Uuid,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
