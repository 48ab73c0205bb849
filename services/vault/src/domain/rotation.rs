//! Master key rotation: recording (and auditing) a change of the configured
//! versions, moving rows to the active version, and reporting progress.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use uuid::Uuid;

use super::credentials::{binding_of, key_version_of, sealed_of};
use super::scope::{KEY_ROTATION, KEY_STATE};
use super::{
    Domain, MasterKeyView, MasterKeysView, RewrapOutcome, RotationStatus, ServiceCaller,
    credential_target, details,
};
use crate::audit::actions;
use crate::crypto;
use crate::error::{VaultError, VaultResult};
use crate::storage::{self, credentials as rows, key_state};

/// The actor of events the vault causes by itself, such as noticing that an
/// operator changed the master key configuration.
const VAULT_ACTOR: &str = "service:vault";

impl Domain {
    /// Records the active and minimum master key versions this process runs
    /// with. When they differ from the last recorded ones, that is a rotation
    /// (or a retirement): it is audited first, and nothing proceeds if the
    /// audit fails. Runs once per process; later calls return at once.
    pub async fn record_key_state(&self) -> VaultResult<()> {
        if self.inner.key_state_recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        let active = self.keys().active_version();
        let min = self.keys().min_decrypt_version();
        let transaction = self.store().write(KEY_STATE).await?;
        let recorded = key_state::get(&transaction).await?;
        let unchanged = recorded.as_ref().is_some_and(|state| {
            state.active_version == i64::from(active) && state.min_decrypt_version == i64::from(min)
        });
        if !unchanged {
            if let Some(previous) = &recorded {
                self.audit(
                    None,
                    VAULT_ACTOR,
                    actions::MASTER_KEY_ROTATED,
                    format!("master_key:{active}"),
                    details([
                        (
                            "previous_active_version",
                            previous.active_version.to_string(),
                        ),
                        ("active_version", active.to_string()),
                        (
                            "previous_min_decrypt_version",
                            previous.min_decrypt_version.to_string(),
                        ),
                        ("min_decrypt_version", min.to_string()),
                    ]),
                )
                .await?;
                tracing::info!(
                    previous_active = previous.active_version,
                    active,
                    previous_min = previous.min_decrypt_version,
                    min,
                    "master key configuration changed"
                );
            }
            key_state::put(&transaction, active, min, storage::now()).await?;
        }
        transaction.commit().await?;
        self.inner.key_state_recorded.store(true, Ordering::Release);
        Ok(())
    }

    pub async fn list_master_keys(&self, _caller: &ServiceCaller) -> VaultResult<MasterKeysView> {
        self.record_key_state().await?;
        let state = self.keys().state();
        let counts = rows::count_by_key_version(&self.store().read(KEY_ROTATION)).await?;
        let mut versions: BTreeSet<u32> = state.configured_versions.iter().copied().collect();
        let mut counted = Vec::with_capacity(counts.len());
        for (version, count) in counts {
            let version = u32::try_from(version).map_err(|_| {
                VaultError::Internal(format!("a credential has key version {version}"))
            })?;
            versions.insert(version);
            counted.push((version, count));
        }
        let keys = versions
            .into_iter()
            .map(|version| MasterKeyView {
                version,
                active: version == state.active_version,
                decryptable: self.keys().can_decrypt(version),
                configured: state.configured_versions.contains(&version),
                credential_count: counted
                    .iter()
                    .find(|(counted_version, _)| *counted_version == version)
                    .map_or(0, |(_, count)| *count),
            })
            .collect();
        Ok(MasterKeysView {
            keys,
            active_version: state.active_version,
            min_decrypt_version: state.min_decrypt_version,
        })
    }

    /// Moves up to `batch_size` rows to the active master key, one audited
    /// transaction per row. A row that fails to open is counted, logged and
    /// skipped, so it cannot stall the rows behind it.
    pub async fn rewrap_credentials(
        &self,
        caller: &ServiceCaller,
        batch_size: i32,
    ) -> VaultResult<RewrapOutcome> {
        self.record_key_state().await?;
        let config = self.config();
        let limit = super::pagination::page_size(
            batch_size,
            config.rewrap_batch_default,
            config.rewrap_batch_max,
        )
        .map_err(|_| VaultError::invalid("batch_size", "must not be negative"))?;
        let active = self.keys().active_version();
        let min = self.keys().min_decrypt_version();
        let mut rewrapped = 0i64;
        let mut failed = 0i64;
        let mut after: Option<Uuid> = None;
        while (rewrapped as u64) < limit {
            let candidates =
                rows::to_rewrap(&self.store().read(KEY_ROTATION), min, active, after, limit)
                    .await?;
            let Some(last) = candidates.last() else {
                break;
            };
            after = Some(last.id);
            for row in candidates {
                if (rewrapped as u64) >= limit {
                    break;
                }
                match self.rewrap_row(caller, &row).await {
                    Ok(true) => rewrapped += 1,
                    // Replaced or rewrapped meanwhile: already on a new key.
                    Ok(false) => {}
                    Err(VaultError::Sealed(detail) | VaultError::FailedPrecondition(detail)) => {
                        tracing::warn!(credential_id = %row.id, %detail, "credential cannot be rewrapped");
                        failed += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        let status = self.rotation_status_now().await?;
        Ok(RewrapOutcome {
            rewrapped,
            remaining: status.pending_rewrap,
            failed,
            active_version: active,
        })
    }

    async fn rewrap_row(
        &self,
        caller: &ServiceCaller,
        row: &storage::entities::credential::Model,
    ) -> VaultResult<bool> {
        let from_version = key_version_of(row)?;
        let moved = crypto::rewrap(self.keys(), binding_of(row), &sealed_of(row)?)?;
        let transaction = self.store().write(KEY_ROTATION).await?;
        if !rows::rewrap(&transaction, row, &moved).await? {
            return Ok(false);
        }
        self.audit(
            Some(row.workspace_id),
            &caller.actor(),
            actions::CREDENTIAL_REWRAPPED,
            credential_target(row.id),
            details([
                ("from_key_version", from_version.to_string()),
                ("to_key_version", moved.key_version.to_string()),
                ("version", row.version.to_string()),
            ]),
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn rotation_status(&self, _caller: &ServiceCaller) -> VaultResult<RotationStatus> {
        self.record_key_state().await?;
        self.rotation_status_now().await
    }

    async fn rotation_status_now(&self) -> VaultResult<RotationStatus> {
        let keys = self.keys();
        let active = keys.active_version();
        let mut status = RotationStatus {
            active_version: active,
            min_decrypt_version: keys.min_decrypt_version(),
            total_credentials: 0,
            on_active_version: 0,
            pending_rewrap: 0,
            undecryptable: 0,
        };
        for (version, count) in rows::count_by_key_version(&self.store().read(KEY_ROTATION)).await?
        {
            status.total_credentials += count;
            let decryptable = u32::try_from(version).is_ok_and(|v| keys.can_decrypt(v));
            if version == i64::from(active) {
                status.on_active_version += count;
            } else if !decryptable {
                status.undecryptable += count;
            } else if version < i64::from(active) {
                status.pending_rewrap += count;
            }
        }
        Ok(status)
    }
}
