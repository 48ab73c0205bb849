//! Envelope encryption. Each credential version is sealed under its own
//! random data key (AES-256-GCM); the data key is wrapped under a versioned
//! master key. Nothing here touches the database or knows about callers.

mod envelope;
mod keyring;

pub use envelope::{Binding, Sealed, open, rewrap, seal};
pub use keyring::{KeyRing, MasterKeyState};

/// `N` bytes from the operating system's generator, wiped when dropped.
fn random_bytes<const N: usize>() -> crate::error::VaultResult<zeroize::Zeroizing<[u8; N]>> {
    let mut bytes = zeroize::Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|error| {
        crate::error::VaultError::Internal(format!("random generator failed: {error}"))
    })?;
    Ok(bytes)
}
