//! sea-orm entities, one per table. Column names follow the contract
//! (`create_time`, `expire_time`, …) so rows and messages read alike.

pub mod access_change;
pub mod api_key;
pub mod audit_event;
pub mod audit_head;
pub mod first_start;
pub mod invitation;
pub mod membership;
pub mod organization;
pub mod signing_key;
pub mod user;
pub mod workspace;
pub mod workspace_limits;
