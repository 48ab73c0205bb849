use sea_orm::entity::prelude::*;

/// One change that took access away or altered it. `id` is the cursor
/// readers page with; it grows in commit order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub workspace_id: Uuid,
    /// Set for changes to a member: all of that user's tokens in the workspace.
    pub user_id: Option<Uuid>,
    /// Set for changes to one API key: every token issued for it.
    pub api_key_id: Option<Uuid>,
    pub kind: String,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
