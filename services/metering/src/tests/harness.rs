//! Databases, tokens and fixtures for the suite.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tonic::Request;
use tyboo_auth::testing::{FixedKeys, signing_keys};
use tyboo_auth::{Principal, Role, Subject, TokenSigner};
use tyboo_proto::convert::timestamp;
use tyboo_proto::metering as pb;
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestService;
use tyboo_store::testing::TestWorld;
pub use tyboo_store::testing::{on_postgres, on_sqlite};
use uuid::Uuid;

use crate::{Metering, MeteringConfig, MeteringIngestGrpc, ModelPrice, UsageGrpc};

pub fn price(model: &str, input: i64, output: i64) -> ModelPrice {
    ModelPrice {
        model: model.to_owned(),
        input_micros_per_million_tokens: input,
        output_micros_per_million_tokens: output,
    }
}

pub fn test_config() -> MeteringConfig {
    MeteringConfig {
        price_version: "v1".to_owned(),
        prices: vec![price("gpt-4o-mini", 150_000, 600_000)],
        // Small pages and batches make reads cross their boundaries.
        page_size_default: 3,
        export_batch_rows: 4,
        ..MeteringConfig::default()
    }
}

/// One test's world: a database, metering on it, signing keys, and a
/// workspace to act in.
#[derive(Clone)]
pub struct World {
    pub url: String,
    pub metering: Metering,
    pub signer: TokenSigner,
    pub keys: Arc<FixedKeys>,
    pub workspace_id: Uuid,
}

impl TestWorld for World {
    const SQLITE_PREFIX: &'static str = "tyboo-metering";
    const POSTGRES_PREFIX: &'static str = "tyboo_m";

    async fn open(url: &str) -> World {
        let (signer, keys) = signing_keys();
        let metering = Metering::connect(url, test_config(), keys.clone())
            .await
            .unwrap();
        metering.migrate().await.unwrap();
        World {
            url: url.to_owned(),
            metering,
            signer,
            keys,
            workspace_id: Uuid::now_v7(),
        }
    }

    async fn close(self) {
        self.metering.close().await.unwrap();
    }
}

impl World {
    /// The same database and tokens under another configuration, as a
    /// restarted service would be.
    pub async fn restart(&self, config: MeteringConfig) -> World {
        let metering = Metering::connect(&self.url, config, self.keys.clone())
            .await
            .unwrap();
        World {
            metering,
            ..self.clone()
        }
    }

    fn sign(&self, principal: &Principal) -> String {
        self.signer
            .sign(principal, Duration::from_secs(300))
            .unwrap()
            .0
    }

    pub fn user_token_in(&self, workspace_id: Uuid, role: Role) -> String {
        self.sign(&Principal {
            subject: Subject::User(Uuid::now_v7()),
            workspace_id: Some(workspace_id),
            organization_id: Some(Uuid::now_v7()),
            role: Some(role),
            api_key_id: None,
            api_key_version: None,
        })
    }

    pub fn viewer(&self) -> String {
        self.user_token_in(self.workspace_id, Role::Viewer)
    }

    pub fn service_token(&self, name: &str) -> String {
        self.sign(&Principal::service(name))
    }

    pub fn operator_token(&self) -> String {
        self.sign(&Principal::operator("ops"))
    }

    pub fn usage(&self) -> UsageGrpc {
        UsageGrpc::new(self.metering.domain().clone())
    }

    pub fn ingest(&self) -> MeteringIngestGrpc {
        MeteringIngestGrpc::new(self.metering.domain().clone())
    }

    /// Delivers `records` as the executor does.
    pub async fn deliver(
        &self,
        records: Vec<pb::UsageRecord>,
    ) -> Result<pb::RecordUsageResponse, tonic::Status> {
        self.ingest()
            .record_usage(request(
                pb::RecordUsageRequest { records },
                &self.service_token("executor"),
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

pub fn request<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// An event of an execution of `workflow_id` in `workspace_id`.
pub struct Event {
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub execution_id: Uuid,
    pub at: DateTime<Utc>,
}

impl Event {
    pub fn new(workspace_id: Uuid, workflow_id: Uuid, at: DateTime<Utc>) -> Event {
        Event {
            workspace_id,
            workflow_id,
            execution_id: Uuid::now_v7(),
            at,
        }
    }

    fn record(&self, kind: pb::UsageKind, key: String, node_id: &str) -> pb::UsageRecord {
        pb::UsageRecord {
            idempotency_key: key,
            kind: kind.into(),
            workspace_id: self.workspace_id.to_string(),
            workflow_id: self.workflow_id.to_string(),
            execution_id: self.execution_id.to_string(),
            node_id: node_id.to_owned(),
            occurred_at: Some(timestamp(self.at)),
            llm: None,
        }
    }

    pub fn execution(&self) -> pb::UsageRecord {
        self.record(
            pb::UsageKind::Execution,
            format!("execution:{}", self.execution_id),
            "",
        )
    }

    pub fn task(&self, node_id: &str) -> pb::UsageRecord {
        self.record(
            pb::UsageKind::Task,
            format!("task:{}:{node_id}", self.execution_id),
            node_id,
        )
    }

    pub fn llm(&self, node_id: &str, model: &str, input: i64, output: i64) -> pb::UsageRecord {
        pb::UsageRecord {
            llm: Some(pb::LlmCall {
                provider_host: "api.openai.com".to_owned(),
                model: model.to_owned(),
                input_tokens: input,
                output_tokens: output,
            }),
            ..self.record(
                pb::UsageKind::LlmCall,
                format!("llm:{}:{node_id}", self.execution_id),
                node_id,
            )
        }
    }
}
