//! The pool against real databases: a SQLite file always, PostgreSQL when
//! `TYBOO_TEST_POSTGRES_URL` names a server.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::prelude::{DeriveIden, SchemaManager, Table};
use sea_orm_migration::schema::{pk_uuid, string};
use tyboo_store::testing::TestDatabase;
use tyboo_store::{Database, create_index, is_unique_violation, lock_globally};

#[derive(Clone, Copy, DeriveIden)]
enum Things {
    Table,
    Id,
    Name,
}

async fn create_things(database: &Database) {
    let manager = SchemaManager::new(database.connection());
    manager
        .create_table(
            Table::create()
                .table(Things::Table)
                .col(pk_uuid(Things::Id))
                .col(string(Things::Name))
                .to_owned(),
        )
        .await
        .unwrap();
    create_index(
        &manager,
        "ux_things_name",
        Things::Table,
        &[Things::Name],
        true,
    )
    .await
    .unwrap();
}

async fn insert_thing(database: &Database, name: &str) -> Result<(), sea_orm::DbErr> {
    let backend = database.backend();
    let placeholders = match backend {
        DbBackend::Postgres => "$1, $2",
        _ => "?, ?",
    };
    let transaction = database.begin_write().await?;
    lock_globally(&transaction, 0x7479_626f_ffff).await?;
    transaction
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("INSERT INTO things (id, name) VALUES ({placeholders})"),
            [uuid::Uuid::now_v7().into(), name.into()],
        ))
        .await?;
    transaction.commit().await
}

/// Writes through `begin_write` and `lock_globally`, and sees the unique
/// index that `create_index` made refuse a duplicate.
async fn writes_and_refuses_duplicates(database: &Database) {
    create_things(database).await;
    insert_thing(database, "first").await.unwrap();
    let duplicate = insert_thing(database, "first").await.unwrap_err();
    assert!(is_unique_violation(&duplicate), "{duplicate}");
    insert_thing(database, "second").await.unwrap();

    let count = database
        .connection()
        .query_one_raw(Statement::from_string(
            database.backend(),
            "SELECT COUNT(*) AS count FROM things",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "count")
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn sqlite_files_get_their_folder_and_write_ahead_logging() {
    let folder =
        std::env::temp_dir().join(format!("tyboo-store-{}", uuid::Uuid::now_v7().simple()));
    let path = folder.join("nested").join("store.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());

    let database = Database::connect(&url, "store", 2).await.unwrap();
    assert_eq!(database.backend(), DbBackend::Sqlite);
    assert!(path.exists());
    let journal_mode = database
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "journal_mode")
        .unwrap();
    assert_eq!(journal_mode, "wal");

    writes_and_refuses_duplicates(&database).await;
    database.close().await.unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
}

/// Many writers at once on one SQLite file: each commits, in turn, and a
/// reader on the main pool reads while a write transaction is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sqlite_writers_all_commit_and_readers_are_not_blocked() {
    let database = TestDatabase::sqlite("tyboo-store");
    let store = Database::connect(database.url(), "store", 8).await.unwrap();
    create_things(&store).await;
    let writers: Vec<_> = (0..64)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move { insert_thing(&store, &format!("thing-{index}")).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let open = store.begin_write().await.unwrap();
    open.execute_unprepared("INSERT INTO things (id, name) VALUES (x'00', 'held')")
        .await
        .unwrap();
    let count = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT COUNT(*) AS count FROM things",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "count")
        .unwrap();
    assert_eq!(
        count, 64,
        "the reader sees every committed write, not the open one"
    );
    open.rollback().await.unwrap();
    store.close().await.unwrap();
    database.discard().await;
}

#[tokio::test]
async fn a_schema_name_that_is_not_a_plain_identifier_is_refused() {
    let database = TestDatabase::sqlite("tyboo-store");
    let refused = Database::connect(database.url(), "store; DROP SCHEMA public", 1)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("schema name"), "{refused}");
    database.discard().await;
}

#[tokio::test]
async fn postgres_tables_land_in_the_service_schema() {
    let Some(database) = TestDatabase::postgres("tyboo_s").await else {
        return;
    };
    let store = Database::connect(database.url(), "store", 2).await.unwrap();
    assert_eq!(store.backend(), DbBackend::Postgres);
    writes_and_refuses_duplicates(&store).await;

    let schema = store
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'things'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "table_schema")
        .unwrap();
    assert_eq!(schema, "store");

    // A second pool finds the schema there and does not need to create it.
    let again = Database::connect(database.url(), "store", 1).await.unwrap();
    let transaction = again.connection().begin().await.unwrap();
    lock_globally(&transaction, 0x7479_626f_ffff).await.unwrap();
    transaction.commit().await.unwrap();
    again.close().await.unwrap();

    store.close().await.unwrap();
    database.discard().await;
}
