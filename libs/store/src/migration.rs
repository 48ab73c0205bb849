//! Builders the services' migrations share.

use sea_orm_migration::prelude::{DbErr, Index, IntoIden, SchemaManager};

/// Creates the index `name` on `columns` of `table`, in that order. Index
/// names are part of the schema that migrations already produced: keep them.
pub async fn create_index<T, C>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[C],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIden + Clone + 'static,
{
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column.clone());
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}
