//! Granted and refused acquisitions are counted, without key labels.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tyboo_lease::{ConcurrencyLeases, InProcessLeases, LeaseConfig, ManualClock, metrics};

fn counter(rendered: &str, name: &str) -> Option<String> {
    rendered
        .lines()
        .find(|line| line.starts_with(name))
        .map(str::to_owned)
}

#[test]
fn acquisitions_are_counted_granted_or_full() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // The local recorder sees what this thread records; a current-thread
    // runtime runs every operation here.
    ::metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH);
            let leases = InProcessLeases::new(&LeaseConfig::default(), Arc::new(clock))
                .expect("valid config");
            let ttl = Duration::from_secs(1);
            leases.acquire("ws", "h1", 1, ttl).await.expect("acquire");
            leases.acquire("ws", "h2", 1, ttl).await.expect("acquire");
            leases
                .acquire_all(&[("ws", 1), ("user", 1)], "h1", ttl)
                .await
                .expect("acquire all");
            leases
                .acquire_all(&[("ws", 1), ("user", 1)], "h3", ttl)
                .await
                .expect("acquire all");
        });
    });
    let rendered = handle.render();
    assert_eq!(
        counter(&rendered, metrics::ACQUIRED_TOTAL).as_deref(),
        Some("tyboo_lease_acquired_total 2"),
        "{rendered}"
    );
    assert_eq!(
        counter(&rendered, metrics::FULL_TOTAL).as_deref(),
        Some("tyboo_lease_full_total 2"),
        "{rendered}"
    );
}
