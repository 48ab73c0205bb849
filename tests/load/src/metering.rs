//! `--scenario metering`: what metering costs the executions it counts, and
//! how fast the ledger writes on its own.
//!
//! For `noop` and `webhook3`, `--executions` run flat out on an embedded
//! mesh with metering on (the usage outbox written and delivered) and on
//! one with `executor.usage.enabled = false`, alternately, each round on a
//! fresh database; the throughputs are printed with their ratio. Then
//! metering alone records batches of 500 events, as the outbox delivers
//! them, and prints events per second.

use std::time::Instant;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};
use tyboo_metering::domain::{LlmInput, UsageInput};
use tyboo_metering::storage::entities::usage_event::UsageKind;
use uuid::Uuid;

use crate::scenario::{Scenario, Target};
use crate::{Args, WorkflowKind};

/// Rounds of each setting: on, off, on, off.
const ROUNDS: usize = 2;
const BATCH: usize = 500;

/// A database of its own for one round: a fresh PostgreSQL database on the
/// server of `--database-url`, dropped afterwards, or SQLite in a temporary
/// folder (`None`).
struct Fresh {
    admin_url: String,
    name: String,
    url: String,
}

async fn fresh(args: &Args) -> anyhow::Result<Option<Fresh>> {
    let Some(admin_url) = &args.database_url else {
        return Ok(None);
    };
    let name = format!("tyboo_load_{}", Uuid::now_v7().simple());
    let admin = Database::connect(admin_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    Ok(Some(Fresh {
        url: tyboo_store::testing::with_database(admin_url, &name),
        admin_url: admin_url.clone(),
        name,
    }))
}

impl Fresh {
    async fn drop(self) -> anyhow::Result<()> {
        let admin = Database::connect(self.admin_url.as_str()).await?;
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        admin.close().await?;
        Ok(())
    }
}

async fn throughput(args: &Args, workflow: WorkflowKind, metered: bool) -> anyhow::Result<f64> {
    let database = fresh(args).await?;
    let mut round = args.clone();
    round.workflow = workflow;
    round.no_metering = !metered;
    round.database_url = database.as_ref().map(|fresh| fresh.url.clone());
    let target = Target::open(&round).await?;
    let scenario = Scenario::prepare(&target, workflow).await?;
    let figures = crate::measure(&target, &scenario, &round, 0.0).await?;
    target.stop().await?;
    if let Some(database) = database {
        database.drop().await?;
    }
    Ok(figures.throughput)
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!(
        "metering on vs off: {} executions a round, flat out, {ROUNDS} rounds each, on {}",
        args.executions,
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    for workflow in [WorkflowKind::Noop, WorkflowKind::Webhook3] {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            on.push(throughput(args, workflow, true).await?);
            off.push(throughput(args, workflow, false).await?);
        }
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        let (on_mean, off_mean) = (mean(&on), mean(&off));
        println!(
            "{:<10} metering on {:>7.1}/s {:?}   off {:>7.1}/s {:?}   on ÷ off = {:.3}",
            format!("{workflow:?}"),
            on_mean,
            on.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>(),
            off_mean,
            off.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>(),
            on_mean / off_mean.max(1e-9)
        );
    }
    ledger(args).await
}

/// Metering alone: `--executions` × 4 events (an execution, two tasks and
/// an LLM call each) recorded in batches of 500.
async fn ledger(args: &Args) -> anyhow::Result<()> {
    let database = fresh(args).await?;
    let folder = std::env::temp_dir().join(format!("tyboo-load-ledger-{}", Uuid::now_v7()));
    let url = match &database {
        Some(fresh) => fresh.url.clone(),
        None => {
            std::fs::create_dir_all(&folder)?;
            format!("sqlite://{}?mode=rwc", folder.join("metering.db").display())
        }
    };
    let (_, keys) = tyboo_auth::testing::signing_keys();
    let config = tyboo_metering::MeteringConfig {
        prices: vec![tyboo_metering::ModelPrice {
            model: "tiny".to_owned(),
            input_micros_per_million_tokens: 1_000_000,
            output_micros_per_million_tokens: 2_000_000,
        }],
        ..tyboo_metering::MeteringConfig::default()
    };
    let metering = tyboo_metering::Metering::connect(&url, config, keys)
        .await
        .context("opening metering")?;
    metering.migrate().await?;
    let workspace_id = Uuid::now_v7();
    let workflow_id = Uuid::now_v7();
    let now = chrono::Utc::now();
    let mut events = Vec::with_capacity(args.executions * 4);
    for _ in 0..args.executions {
        let execution_id = Uuid::now_v7();
        let event = |kind, key: String, node: &str, llm| UsageInput {
            idempotency_key: key,
            kind,
            workspace_id,
            workflow_id,
            execution_id,
            node_id: node.to_owned(),
            occurred_at: now,
            llm,
        };
        events.push(event(
            UsageKind::Execution,
            format!("execution:{execution_id}"),
            "",
            None,
        ));
        for node in ["a", "b"] {
            events.push(event(
                UsageKind::Task,
                format!("task:{execution_id}:{node}"),
                node,
                None,
            ));
        }
        events.push(event(
            UsageKind::LlmCall,
            format!("llm:{execution_id}:b"),
            "b",
            Some(LlmInput {
                provider_host: "api.example.com".to_owned(),
                model: "tiny-1".to_owned(),
                input_tokens: 120,
                output_tokens: 40,
            }),
        ));
    }
    let total = events.len();
    let started = Instant::now();
    for batch in events.chunks(BATCH) {
        metering.domain().record(batch.to_vec()).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The same batches again, as a redelivery: each one answered as a repeat.
    let again = Instant::now();
    for batch in events.chunks(BATCH) {
        metering.domain().record(batch.to_vec()).await?;
    }
    let repeat = again.elapsed().as_secs_f64();
    println!(
        "ledger alone       {total} events in batches of {BATCH}: {:.0} events/s new, {:.0} events/s redelivered",
        total as f64 / elapsed.max(1e-9),
        total as f64 / repeat.max(1e-9)
    );
    metering.close().await?;
    if let Some(database) = database {
        database.drop().await?;
    }
    std::fs::remove_dir_all(folder).ok();
    Ok(())
}
