//! What the vault audits. Records go through a [`tyboo_audit::AuditSink`]
//! (tenancy's hash-chained log in the mesh); every action that must be
//! audited writes its record before it commits, and fails when the record
//! cannot be written.

pub use tyboo_audit::{AuditRecord, AuditSink, MemoryAuditSink, TenancyAuditSink};

/// The actions the vault audits, as written to the log.
pub mod actions {
    pub const CREDENTIAL_CREATED: &str = "vault.credential.created";
    pub const CREDENTIAL_REPLACED: &str = "vault.credential.replaced";
    pub const CREDENTIAL_DELETED: &str = "vault.credential.deleted";
    pub const CREDENTIAL_DECRYPTED: &str = "vault.credential.decrypted";
    pub const CREDENTIAL_REWRAPPED: &str = "vault.credential.rewrapped";
    /// The active or minimum master key version changed since the vault last
    /// recorded them.
    pub const MASTER_KEY_ROTATED: &str = "vault.master_key.rotated";
}
