//! The tenancy schema, built with sea-query's table builders so the same
//! migrations run on SQLite and PostgreSQL.

use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261125_000001_create_tenancy;
mod m20261201_000002_access_changes;
mod m20261207_000003_first_start;
mod m20261207_000004_workspace_limits;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tenancy::Migration),
            Box::new(m20261201_000002_access_changes::Migration),
            Box::new(m20261207_000003_first_start::Migration),
            Box::new(m20261207_000004_workspace_limits::Migration),
        ]
    }
}
