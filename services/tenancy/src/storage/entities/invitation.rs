use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub role: String,
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    /// The audit actor who sent the invitation.
    pub invited_by: String,
    /// "pending", "accepted" or "revoked"; expiry is derived from `expire_time`.
    pub state: String,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
    pub close_time: Option<DateTimeUtc>,
    pub accepted_user_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
