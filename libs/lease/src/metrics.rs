//! Lease metrics. No key labels: keys name workspaces and users, which are
//! unbounded; per-key counts are read with `held`.

pub const ACQUIRED_TOTAL: &str = "tyboo_lease_acquired_total";
pub const FULL_TOTAL: &str = "tyboo_lease_full_total";

/// Registers descriptions for the metrics of this crate.
pub fn describe() {
    metrics::describe_counter!(
        ACQUIRED_TOTAL,
        "acquire and acquire_all requests granted (new leases and renewals)"
    );
    metrics::describe_counter!(
        FULL_TOTAL,
        "acquire and acquire_all requests refused because a key had no free slot"
    );
}

pub(crate) fn record_acquire(granted: bool) {
    let name = if granted { ACQUIRED_TOTAL } else { FULL_TOTAL };
    metrics::counter!(name).increment(1);
}
