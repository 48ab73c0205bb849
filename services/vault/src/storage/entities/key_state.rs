use sea_orm::entity::prelude::*;

/// The master key versions the vault last ran with (one row, id 1), so a
/// change of them is noticed and audited as a rotation once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vault_key_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub active_version: i64,
    pub min_decrypt_version: i64,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
