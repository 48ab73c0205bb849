//! sea-orm entities, one per table.

pub mod credential;
pub mod key_state;
