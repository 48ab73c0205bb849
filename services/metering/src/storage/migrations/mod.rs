//! The metering schema, built with sea-query's table builders so the same
//! migrations run on SQLite and PostgreSQL.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261207_000001_create_metering;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261207_000001_create_metering::Migration)]
    }
}
