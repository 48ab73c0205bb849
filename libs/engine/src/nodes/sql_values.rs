//! Turning database rows into JSON objects, by the type each value actually has.

use base64::Engine as _;
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::sqlite::SqliteRow;
use sea_orm::sqlx::{self, Column, Row, TypeInfo, ValueRef};
use serde_json::{Map, Value};

pub(super) trait RowToJson {
    fn to_json(&self) -> Result<Value, String>;
}

/// Rows affected by one finished statement, for either driver.
pub(super) trait AffectedRows {
    fn affected(&self) -> u64;
}

impl AffectedRows for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl AffectedRows for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

fn decode_error(column: &str, error: impl std::fmt::Display) -> String {
    format!("cannot read column `{column}`: {error}")
}

impl RowToJson for PgRow {
    fn to_json(&self) -> Result<Value, String> {
        let mut object = Map::new();
        for column in self.columns() {
            let index = column.ordinal();
            let name = column.name();
            let raw = self
                .try_get_raw(index)
                .map_err(|error| decode_error(name, error))?;
            if raw.is_null() {
                object.insert(name.to_owned(), Value::Null);
                continue;
            }
            let type_name = column.type_info().name().to_owned();
            let value = match type_name.as_str() {
                "BOOL" => self.try_get::<bool, _>(index).map(Value::from),
                "INT2" => self.try_get::<i16, _>(index).map(Value::from),
                "INT4" => self.try_get::<i32, _>(index).map(Value::from),
                "INT8" => self.try_get::<i64, _>(index).map(Value::from),
                "OID" => self.try_get::<sqlx::postgres::types::Oid, _>(index).map(|oid| Value::from(oid.0)),
                "FLOAT4" => self.try_get::<f32, _>(index).map(|number| Value::from(number as f64)),
                "FLOAT8" => self.try_get::<f64, _>(index).map(Value::from),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" => {
                    self.try_get::<String, _>(index).map(Value::from)
                }
                "JSON" | "JSONB" => self.try_get::<Value, _>(index),
                "UUID" => self.try_get::<uuid::Uuid, _>(index).map(|id| Value::from(id.to_string())),
                "TIMESTAMPTZ" => self
                    .try_get::<chrono::DateTime<chrono::Utc>, _>(index)
                    .map(|time| Value::from(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
                "TIMESTAMP" => self
                    .try_get::<chrono::NaiveDateTime, _>(index)
                    .map(|time| Value::from(time.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
                "DATE" => self.try_get::<chrono::NaiveDate, _>(index).map(|date| Value::from(date.to_string())),
                "TIME" => self.try_get::<chrono::NaiveTime, _>(index).map(|time| Value::from(time.to_string())),
                "BYTEA" => self
                    .try_get::<Vec<u8>, _>(index)
                    .map(|bytes| Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))),
                other => {
                    return Err(format!(
                        "column `{name}` has type {other}, which sql.query cannot read; cast it, e.g. `{name}::text`"
                    ));
                }
            }
            .map_err(|error| decode_error(name, error))?;
            object.insert(name.to_owned(), value);
        }
        Ok(Value::Object(object))
    }
}

impl RowToJson for SqliteRow {
    fn to_json(&self) -> Result<Value, String> {
        let mut object = Map::new();
        for column in self.columns() {
            let index = column.ordinal();
            let name = column.name();
            let raw = self
                .try_get_raw(index)
                .map_err(|error| decode_error(name, error))?;
            if raw.is_null() {
                object.insert(name.to_owned(), Value::Null);
                continue;
            }
            // SQLite types values, not columns: decode by the stored value's class.
            let storage_class = raw.type_info().name().to_owned();
            let value = match storage_class.as_str() {
                "INTEGER" | "BOOLEAN" => self.try_get_unchecked::<i64, _>(index).map(Value::from),
                "REAL" | "NUMERIC" => self.try_get_unchecked::<f64, _>(index).map(Value::from),
                "BLOB" => self.try_get_unchecked::<Vec<u8>, _>(index).map(|bytes| {
                    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
                }),
                _ => self.try_get_unchecked::<String, _>(index).map(Value::from),
            }
            .map_err(|error| decode_error(name, error))?;
            object.insert(name.to_owned(), value);
        }
        Ok(Value::Object(object))
    }
}
