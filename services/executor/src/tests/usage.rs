//! The usage outbox: written with the work it counts, each execution and
//! each successful non-trigger node once; delivered to a real metering
//! service, kept while metering is down, counted once when an answer is
//! lost, and a refused event set aside without holding back the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tyboo_auth::Principal;
use tyboo_proto::metering as pb;
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestService;
use tyboo_proto::metering::usage_service_server::UsageService;
use tyboo_runtime::shutdown::Shutdown;
use uuid::Uuid;

use super::conformance;
use super::harness::{World, create_in, start_in};
use crate::adapters::metering::record_of;
use crate::domain::usage::{DeliveryError, UsageSink};
use crate::storage::entities::usage_outbox;

conformance!(
    the_outbox_counts_each_execution_and_node_once_and_survives_metering_outages,
    a_refused_event_is_set_aside_and_the_rest_delivered,
);

/// Metering itself, in this process on a database of its own, reached
/// through its ingest handler with a service token, as over gRPC. `down`
/// fails every call before it arrives; `lose_answers` records the batch and
/// then fails, as a reply lost on the way back would; `refuse_node` makes
/// a batch holding that node's events invalid.
#[derive(Debug)]
struct LocalMetering {
    metering: tyboo_metering::Metering,
    token: String,
    down: AtomicBool,
    lose_answers: AtomicBool,
    refuse_node: Option<String>,
    _file: tempfile_path::TempPath,
}

mod tempfile_path {
    /// A file removed when dropped.
    #[derive(Debug)]
    pub struct TempPath(pub std::path::PathBuf);

    impl Drop for TempPath {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                std::fs::remove_file(path).ok();
            }
        }
    }
}

impl LocalMetering {
    async fn start(world: &World, refuse_node: Option<&str>) -> Arc<LocalMetering> {
        let path = std::env::temp_dir().join(format!("tyboo-metering-{}.db", Uuid::now_v7()));
        let metering = tyboo_metering::Metering::connect(
            &format!("sqlite://{}?mode=rwc", path.display()),
            tyboo_metering::MeteringConfig::default(),
            world.keys.clone(),
        )
        .await
        .unwrap();
        metering.migrate().await.unwrap();
        Arc::new(LocalMetering {
            metering,
            token: world.sign(&Principal::service("executor")),
            down: AtomicBool::new(false),
            lose_answers: AtomicBool::new(false),
            refuse_node: refuse_node.map(str::to_owned),
            _file: tempfile_path::TempPath(path),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    async fn totals(&self, workspace_id: Uuid) -> pb::UsageTotals {
        tyboo_metering::UsageGrpc::new(self.metering.domain().clone())
            .get_workspace_usage(self.request(pb::GetWorkspaceUsageRequest {
                workspace_id: workspace_id.to_string(),
                month: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
            .totals
            .unwrap()
    }
}

#[async_trait]
impl UsageSink for LocalMetering {
    async fn deliver(&self, rows: &[usage_outbox::Model]) -> Result<(), DeliveryError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(DeliveryError::Unavailable("connection refused".to_owned()));
        }
        let mut records: Vec<pb::UsageRecord> = rows.iter().map(record_of).collect();
        if let Some(node) = &self.refuse_node {
            for record in &mut records {
                if &record.node_id == node {
                    record.idempotency_key.clear();
                }
            }
        }
        let ingest = tyboo_metering::MeteringIngestGrpc::new(self.metering.domain().clone());
        ingest
            .record_usage(self.request(pb::RecordUsageRequest { records }))
            .await
            .map_err(|status| match status.code() {
                tonic::Code::InvalidArgument => DeliveryError::Refused(status.message().to_owned()),
                _ => DeliveryError::Unavailable(status.message().to_owned()),
            })?;
        if self.lose_answers.load(Ordering::SeqCst) {
            return Err(DeliveryError::Unavailable("reply lost".to_owned()));
        }
        Ok(())
    }
}

fn two_steps() -> serde_json::Value {
    json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual"},
            {"id": "a", "type": "set", "parameters": {"values": {"x": 1}}},
            {"id": "b", "type": "set", "parameters": {"values": {"y": 2}}}
        ],
        "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}]
    })
}

/// Runs `runs` executions of [`two_steps`] on `executor` to their end.
async fn run_batch(world: &World, executor: &crate::Executor, runs: usize) {
    let shutdown = Shutdown::new();
    let workers = crate::Workers::start(executor, &tyboo_engine::Pool::ALL, 4, shutdown.clone());
    let scope = world.scope();
    let workflow_id = create_in(executor, &scope, two_steps()).await;
    for _ in 0..runs {
        let id = start_in(executor, &scope, workflow_id).await;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let detail = executor.domain().get_execution(&scope, id).await.unwrap();
            if detail.execution.status.is_terminal() {
                assert_eq!(
                    detail.execution.status,
                    crate::states::ExecutionStatus::Succeeded,
                    "{detail:?}"
                );
                break;
            }
            assert!(tokio::time::Instant::now() < give_up, "{detail:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    shutdown.trigger();
    workers.join().await;
}

async fn the_outbox_counts_each_execution_and_node_once_and_survives_metering_outages(
    world: World,
) {
    run_batch(&world, &world.executor, 3).await;
    let domain = world.executor.domain();
    // Three executions, and two tasks each: the trigger is none.
    assert_eq!(domain.pending_usage().await.unwrap(), 9);

    let metering = LocalMetering::start(&world, None).await;
    let sink: Arc<dyn UsageSink> = metering.clone();
    // Metering down: nothing leaves the outbox.
    metering.down.store(true, Ordering::SeqCst);
    assert!(domain.deliver_usage(&sink).await.is_err());
    assert_eq!(domain.pending_usage().await.unwrap(), 9);
    // Up, but the answer is lost: metering holds the batch, the outbox too.
    metering.down.store(false, Ordering::SeqCst);
    metering.lose_answers.store(true, Ordering::SeqCst);
    assert!(domain.deliver_usage(&sink).await.is_err());
    assert_eq!(domain.pending_usage().await.unwrap(), 9);
    // Delivered again: acknowledged, and counted once.
    metering.lose_answers.store(false, Ordering::SeqCst);
    assert_eq!(domain.deliver_usage(&sink).await.unwrap(), 9);
    assert_eq!(domain.pending_usage().await.unwrap(), 0);
    assert_eq!(domain.deliver_usage(&sink).await.unwrap(), 0);
    let totals = metering.totals(world.workspace_id).await;
    assert_eq!((totals.executions, totals.tasks), (3, 6));

    // Metering off: nothing is written to the outbox at all.
    let unmetered = world
        .executor_with(crate::ExecutorConfig {
            usage: crate::config::UsageConfig {
                enabled: false,
                ..Default::default()
            },
            ..super::harness::test_config()
        })
        .await;
    run_batch(&world, &unmetered, 1).await;
    assert_eq!(unmetered.domain().pending_usage().await.unwrap(), 0);
}

async fn a_refused_event_is_set_aside_and_the_rest_delivered(world: World) {
    run_batch(&world, &world.executor, 2).await;
    let domain = world.executor.domain();
    assert_eq!(domain.pending_usage().await.unwrap(), 6);
    let metering = LocalMetering::start(&world, Some("b")).await;
    let sink: Arc<dyn UsageSink> = metering.clone();
    // The batch is refused; each row goes alone, and only b's are dropped.
    assert_eq!(domain.deliver_usage(&sink).await.unwrap(), 6);
    assert_eq!(domain.pending_usage().await.unwrap(), 0);
    let totals = metering.totals(world.workspace_id).await;
    assert_eq!((totals.executions, totals.tasks), (2, 2));
}
