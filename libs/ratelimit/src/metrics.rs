//! Limiter metrics. No labels: the keys limited are unbounded (addresses,
//! API keys), and an outage concerns the whole process anyway.

pub const FALLBACK_TOTAL: &str = "tyboo_ratelimit_fallback_total";

/// Registers descriptions for the metrics of this crate.
pub fn describe() {
    metrics::describe_counter!(
        FALLBACK_TOTAL,
        "checks answered by the local limiter because the shared one was unavailable"
    );
}

pub(crate) fn record_fallback() {
    metrics::counter!(FALLBACK_TOTAL).increment(1);
}
