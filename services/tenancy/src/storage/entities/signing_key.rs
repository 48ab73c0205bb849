use sea_orm::entity::prelude::*;

/// An Ed25519 key that signs principal and service tokens.
///
/// The secret half is stored unsealed until the credentials vault can seal
/// it with a data key; until then, database access is as sensitive as the
/// key itself.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub secret: Vec<u8>,
    pub public: Vec<u8>,
    pub create_time: DateTimeUtc,
    /// True for the key that signs new tokens.
    pub active: bool,
    /// When a newer key took over; the key stays published for a grace period.
    pub deactivate_time: Option<DateTimeUtc>,
    /// When the key stopped being published.
    pub retire_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
