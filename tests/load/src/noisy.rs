//! `--scenario noisy-neighbour`: how much one tenant's flood delays
//! another's executions.
//!
//! On one embedded mesh, workspace B starts one execution every 100 ms,
//! first alone, then while workspace A floods with `--concurrency` clients
//! starting executions flat out. B's enqueue-to-start (the execution's start
//! minus its creation) is printed idle and under the flood, with the ratio
//! of the p99s: what the concurrency limits and fair dispatch protect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::Args;
use crate::report::{Percentiles, millis, time};
use crate::scenario::Target;

/// B's starts per phase, one every 100 ms.
const SAMPLES: usize = 100;
const EVERY: Duration = Duration::from_millis(100);

struct Tenant {
    key: String,
    workflow_id: String,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let target = Target::open(args).await?;
    let noop = json!({
        "nodes": [{"id": "start", "type": "trigger.manual"},
                  {"id": "done", "type": "set", "parameters": {"values": {"ok": true}}}],
        "edges": [{"from": "start", "to": "done"}]
    });
    let a = Tenant {
        key: target.api_key.clone(),
        workflow_id: create_workflow(&target, &target.api_key, &noop).await?,
    };
    let created = post(
        &target,
        &a.key,
        "/v1/workspaces",
        &json!({"name": "Neighbour"}),
    )
    .await?;
    let b_key = created["ownerApiKey"]["secret"]
        .as_str()
        .context("no key for the new workspace")?
        .to_owned();
    let b = Tenant {
        workflow_id: create_workflow(&target, &b_key, &noop).await?,
        key: b_key,
    };

    let idle = measure_b(&target, &b).await?;
    let flooding = Arc::new(AtomicBool::new(true));
    let started_by_a = Arc::new(AtomicUsize::new(0));
    let refused_a = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, edge, key, path) = (
            target.http.clone(),
            target.edge.clone(),
            a.key.clone(),
            format!("/v1/workflows/{}/executions", a.workflow_id),
        );
        let (flooding, started, refused) =
            (flooding.clone(), started_by_a.clone(), refused_a.clone());
        flood.push(tokio::spawn(async move {
            while flooding.load(Ordering::Relaxed) {
                let sent = http
                    .post(format!("{edge}{path}"))
                    .bearer_auth(&key)
                    .json(&json!({"input": {}}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Let the flood build a backlog before B starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flood_began = Instant::now();
    let before = started_by_a.load(Ordering::Relaxed);
    let loaded = measure_b(&target, &b).await?;
    let a_rate = (started_by_a.load(Ordering::Relaxed) - before) as f64
        / flood_began.elapsed().as_secs_f64();
    flooding.store(false, Ordering::Relaxed);
    for task in flood {
        task.await.ok();
    }
    let backend = match (&args.database_url, &args.queue_url) {
        (Some(_), Some(_)) => "PostgreSQL + Redis",
        (Some(_), None) => "PostgreSQL, in-process queue",
        (None, Some(_)) => "SQLite, Redis queue",
        (None, None) => "SQLite, in-process queue",
    };
    println!(
        "noisy-neighbour ({backend}; A: {} clients flat out, B: one start every {} ms, {SAMPLES} each)",
        args.concurrency,
        EVERY.as_millis()
    );
    println!(
        "  A under the flood: {a_rate:.0} executions started/s, {} refused",
        refused_a.load(Ordering::Relaxed)
    );
    println!(
        "  B enqueue-to-start idle:  p50 {:>8.2} ms  p99 {:>8.2} ms",
        idle.p50, idle.p99
    );
    println!(
        "  B enqueue-to-start flood: p50 {:>8.2} ms  p99 {:>8.2} ms",
        loaded.p50, loaded.p99
    );
    println!(
        "  ratio flood/idle: p50 x{:.2}  p99 x{:.2} (target: p99 <= x2)",
        loaded.p50 / idle.p50.max(0.001),
        loaded.p99 / idle.p99.max(0.001)
    );
    target.stop().await
}

/// B's executions, one every 100 ms; their enqueue-to-start in ms.
async fn measure_b(target: &Target, b: &Tenant) -> anyhow::Result<Percentiles> {
    let path = format!("/v1/workflows/{}/executions", b.workflow_id);
    let began = Instant::now();
    let mut ids = Vec::with_capacity(SAMPLES);
    for index in 0..SAMPLES {
        tokio::time::sleep_until((began + EVERY * index as u32).into()).await;
        let reply = post(target, &b.key, &path, &json!({"input": {}})).await?;
        ids.push(
            reply["execution"]["id"]
                .as_str()
                .context("no execution id")?
                .to_owned(),
        );
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    let give_up = Instant::now() + Duration::from_secs(600);
    for id in ids {
        loop {
            // With `--default-request-limits` B's reads spend its own
            // quota; a 429 only means "read again later".
            let Some(execution) = get(target, &b.key, &format!("/v1/executions/{id}")).await?
            else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let execution = &execution["execution"];
            if let (Some(created), Some(started)) = (
                time(&execution["createTime"]),
                time(&execution["startTime"]),
            ) {
                samples.push(millis(created, started));
                break;
            }
            anyhow::ensure!(Instant::now() < give_up, "execution {id} never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Percentiles::of(samples))
}

async fn create_workflow(target: &Target, key: &str, graph: &Value) -> anyhow::Result<String> {
    let created = post(
        target,
        key,
        "/v1/workflows",
        &json!({"name": "noisy neighbour", "graph": graph}),
    )
    .await?;
    Ok(created["workflow"]["id"]
        .as_str()
        .context("no workflow id")?
        .to_owned())
}

async fn post(target: &Target, key: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let response = target
        .http
        .post(format!("{}{path}", target.edge))
        .bearer_auth(key)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {text}");
    Ok(serde_json::from_str(&text)?)
}

/// `None` when the edge answered 429.
async fn get(target: &Target, key: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let response = target
        .http
        .get(format!("{}{path}", target.edge))
        .bearer_auth(key)
        .send()
        .await?;
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Ok(None);
    }
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "GET {path}: {status} {text}");
    Ok(Some(serde_json::from_str(&text)?))
}
