//! The relational store every service builds on.
//!
//! Each service owns its own schema and migrations; what they share is how a
//! pool is opened (PostgreSQL schema, SQLite WAL), the scope every read and
//! transaction opens with ([`Scope`]), how a writing transaction starts, how writers without a row to lock are serialized, how times are
//! kept, and how a few database errors are recognized. The [`testing`]
//! module gives each test a database of its own.
//!
//! Nothing here knows about requests, callers or gRPC.
#![forbid(unsafe_code)]

mod database;
mod errors;
mod migration;
pub mod testing;
mod time;
mod unit;

pub use crate::database::{Database, lock_globally};
pub use crate::errors::{is_unavailable, is_unique_violation};
pub use crate::migration::create_index;
pub use crate::time::{now, truncate};
pub use crate::unit::{Reader, Scope, Session, Store, Tx};
