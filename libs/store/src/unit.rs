//! A service's store, and the scoped units of work its domain runs in.
//!
//! Every read and every transaction opens with a [`Scope`]: the workspace
//! whose rows it may touch, or a named system reason for the few paths that
//! must cross workspaces (authenticating a key, the reconciler, the
//! scheduler). Storage functions take a [`Session`] rather than a bare
//! connection, so a query cannot run without saying whose rows it is for,
//! and [`Scope::restrict`] adds the workspace to its filter. Opening a
//! session is the one place where a database-level rule (PostgreSQL's
//! row-level security) can learn the workspace.

use std::marker::PhantomData;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryFilter, QueryResult, Statement,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use crate::Database;

/// Whose rows a unit of work may read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The rows of one workspace only.
    Workspace(Uuid),
    /// Rows of any workspace, for the reason named (e.g. "reconciler").
    System(&'static str),
}

impl Scope {
    /// The workspace the scope is bound to; `None` for a system scope.
    pub fn workspace_id(self) -> Option<Uuid> {
        match self {
            Scope::Workspace(workspace_id) => Some(workspace_id),
            Scope::System(_) => None,
        }
    }

    /// `query` limited to the scope's workspace through `column`, the
    /// table's workspace column; a system scope leaves it as it is.
    pub fn restrict<Q: QueryFilter, C: ColumnTrait>(self, query: Q, column: C) -> Q {
        match self {
            Scope::Workspace(workspace_id) => query.filter(column.eq(workspace_id)),
            Scope::System(_) => query,
        }
    }

    /// Whether a row of `workspace_id` is visible in this scope.
    pub fn admits(self, workspace_id: Uuid) -> bool {
        self.workspace_id().is_none_or(|own| own == workspace_id)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Workspace(workspace_id) => write!(formatter, "workspace {workspace_id}"),
            Scope::System(reason) => write!(formatter, "system ({reason})"),
        }
    }
}

/// A connection that knows its scope: what storage functions take.
pub trait Session: ConnectionTrait + Send {
    fn scope(&self) -> Scope;
}

/// A service's relational store: its pool, and its migrations `M`.
pub struct Store<M> {
    database: Database,
    migrator: PhantomData<fn() -> M>,
}

impl<M> Clone for Store<M> {
    fn clone(&self) -> Self {
        Store {
            database: self.database.clone(),
            migrator: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Store<M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("database", &self.database)
            .finish()
    }
}

impl<M: MigratorTrait> Store<M> {
    /// Opens a pool on `database_url` (`sqlite://…` or `postgres://…`),
    /// with every table in `schema` on PostgreSQL.
    pub async fn connect(
        database_url: &str,
        schema: &str,
        max_connections: u32,
    ) -> Result<Store<M>, DbErr> {
        let database = Database::connect(database_url, schema, max_connections).await?;
        Ok(Store {
            database,
            migrator: PhantomData,
        })
    }

    /// Applies every pending migration; running it again changes nothing.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        M::up(self.database.connection(), None).await
    }

    /// Opens a pool, applies every pending migration and closes it again:
    /// migrating with nothing else of the service started.
    pub async fn migrate_at(
        database_url: &str,
        schema: &str,
        max_connections: u32,
    ) -> Result<(), DbErr> {
        let store = Store::<M>::connect(database_url, schema, max_connections).await?;
        store.migrate().await?;
        store.close().await
    }

    /// Reads in `scope`, on the pool: each statement runs on its own, as
    /// reads always have.
    pub fn read(&self, scope: Scope) -> Reader<'_> {
        Reader {
            connection: self.database.connection(),
            scope,
        }
    }

    /// Starts a transaction that will write, in `scope`; see
    /// [`Database::begin_write`]. Dropped without a commit, it rolls back.
    pub async fn write(&self, scope: Scope) -> Result<Tx, DbErr> {
        let transaction = self.database.begin_write().await?;
        Ok(Tx { transaction, scope })
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.database.close().await
    }
}

/// Reads on the pool in one scope.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    connection: &'a DatabaseConnection,
    scope: Scope,
}

/// A write transaction in one scope.
#[derive(Debug)]
pub struct Tx {
    transaction: DatabaseTransaction,
    scope: Scope,
}

impl Tx {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.transaction.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.transaction.rollback().await
    }
}

impl Session for Reader<'_> {
    fn scope(&self) -> Scope {
        self.scope
    }
}

impl Session for Tx {
    fn scope(&self) -> Scope {
        self.scope
    }
}

/// Both sessions run statements on the connection they wrap.
macro_rules! delegate_connection {
    ($type:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl ConnectionTrait for $type {
            fn get_database_backend(&self) -> DbBackend {
                self.$field.get_database_backend()
            }

            async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
                self.$field.execute_raw(statement).await
            }

            async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
                self.$field.execute_unprepared(sql).await
            }

            async fn query_one_raw(
                &self,
                statement: Statement,
            ) -> Result<Option<QueryResult>, DbErr> {
                self.$field.query_one_raw(statement).await
            }

            async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
                self.$field.query_all_raw(statement).await
            }

            fn support_returning(&self) -> bool {
                self.$field.support_returning()
            }
        }
    };
}

delegate_connection!(Reader<'_>, connection);
delegate_connection!(Tx, transaction);

#[cfg(test)]
mod tests {
    use sea_orm::entity::prelude::*;
    use sea_orm::{DbBackend, QueryTrait};

    use super::*;

    mod thing {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "things")]
        pub struct Model {
            #[sea_orm(primary_key, auto_increment = false)]
            pub id: Uuid,
            pub workspace_id: Uuid,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    #[test]
    fn a_workspace_scope_filters_on_the_workspace_and_a_system_scope_does_not() {
        let workspace_id = Uuid::now_v7();
        let scoped = Scope::Workspace(workspace_id)
            .restrict(thing::Entity::find(), thing::Column::WorkspaceId)
            .build(DbBackend::Postgres)
            .to_string();
        assert!(
            scoped.contains(&format!("\"workspace_id\" = '{workspace_id}'")),
            "{scoped}"
        );
        let system = Scope::System("reconciler")
            .restrict(thing::Entity::find(), thing::Column::WorkspaceId)
            .build(DbBackend::Postgres)
            .to_string();
        assert!(!system.contains("WHERE"), "{system}");
    }

    #[test]
    fn a_workspace_scope_admits_only_its_own_rows() {
        let own = Uuid::now_v7();
        let other = Uuid::now_v7();
        assert!(Scope::Workspace(own).admits(own));
        assert!(!Scope::Workspace(own).admits(other));
        assert!(Scope::System("scheduler").admits(other));
        assert_eq!(Scope::Workspace(own).workspace_id(), Some(own));
        assert_eq!(Scope::System("scheduler").workspace_id(), None);
        assert_eq!(Scope::System("scheduler").to_string(), "system (scheduler)");
    }
}
