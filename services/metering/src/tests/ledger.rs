//! Writing the ledger: every event once, bad batches refused whole, only
//! services record, and prices fixed when recorded.

use chrono::{TimeZone, Utc};
use tonic::Code;
use tyboo_proto::metering as pb;
use tyboo_proto::metering::metering_ingest_service_server::MeteringIngestService;
use tyboo_proto::metering::usage_service_server::UsageService;
use uuid::Uuid;

use super::conformance;
use super::harness::{Event, World, price, request, test_config};
use crate::MeteringConfig;

conformance!(
    a_batch_delivered_again_counts_once,
    concurrent_deliveries_of_one_batch_count_once,
    a_bad_record_refuses_the_whole_batch_and_names_itself,
    only_services_record_usage,
    a_price_change_never_rewrites_recorded_costs,
);

fn december(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, day, 10, 0, 0).unwrap()
}

pub async fn totals_of(world: &World, month: &str) -> pb::UsageTotals {
    world
        .usage()
        .get_workspace_usage(request(
            pb::GetWorkspaceUsageRequest {
                workspace_id: world.workspace_id.to_string(),
                month: month.to_owned(),
            },
            &world.viewer(),
        ))
        .await
        .unwrap()
        .into_inner()
        .totals
        .unwrap()
}

async fn a_batch_delivered_again_counts_once(world: World) {
    let event = Event::new(world.workspace_id, Uuid::now_v7(), december(1));
    let batch = vec![
        event.execution(),
        event.task("fetch"),
        event.task("summarize"),
        event.llm("summarize", "gpt-4o-mini", 1_000, 500),
    ];
    let first = world.deliver(batch.clone()).await.unwrap();
    assert_eq!((first.recorded, first.duplicates), (4, 0));

    // The answer was lost; the outbox delivers the batch again, with the
    // next event behind it and one event repeated inside the batch.
    let mut again = batch.clone();
    again.push(event.task("notify"));
    again.push(event.task("notify"));
    let second = world.deliver(again).await.unwrap();
    assert_eq!((second.recorded, second.duplicates), (1, 5));

    let totals = totals_of(&world, "2026-12").await;
    assert_eq!(totals.executions, 1);
    assert_eq!(totals.tasks, 3);
    assert_eq!(totals.llm_calls, 1);
    assert_eq!((totals.input_tokens, totals.output_tokens), (1_000, 500));
    // 1000 × 0.15 + 500 × 0.60 per million tokens.
    assert_eq!(totals.cost_micros, 450);

    // The same key in another workspace is another event.
    let other = Event {
        workspace_id: Uuid::now_v7(),
        ..Event::new(world.workspace_id, event.workflow_id, december(1))
    };
    let mut foreign = other.execution();
    foreign.idempotency_key = batch[0].idempotency_key.clone();
    assert_eq!(world.deliver(vec![foreign]).await.unwrap().recorded, 1);
    assert_eq!(totals_of(&world, "2026-12").await.executions, 1);
}

async fn concurrent_deliveries_of_one_batch_count_once(world: World) {
    let workflow_id = Uuid::now_v7();
    let batch: Vec<pb::UsageRecord> = (0..50)
        .map(|index| {
            let event = Event::new(world.workspace_id, workflow_id, december(2));
            if index % 2 == 0 {
                event.execution()
            } else {
                event.task("step")
            }
        })
        .collect();
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let world = world.clone();
        let batch = batch.clone();
        deliveries.spawn(async move { world.deliver(batch).await.unwrap() });
    }
    let mut recorded = 0;
    let mut duplicates = 0;
    while let Some(answer) = deliveries.join_next().await {
        let answer = answer.unwrap();
        recorded += answer.recorded;
        duplicates += answer.duplicates;
    }
    assert_eq!(recorded, 50);
    assert_eq!(duplicates, 250);
    let totals = totals_of(&world, "2026-12").await;
    assert_eq!((totals.executions, totals.tasks), (25, 25));
}

/// Turns a good record into a bad one.
type Spoil = Box<dyn Fn(&mut pb::UsageRecord) + Send + Sync>;

async fn a_bad_record_refuses_the_whole_batch_and_names_itself(world: World) {
    let event = Event::new(world.workspace_id, Uuid::now_v7(), december(3));
    let cases: Vec<(Spoil, &str)> = vec![
        (
            Box::new(|r| r.idempotency_key.clear()),
            "records[1].idempotency_key: must be 1 to 200 characters",
        ),
        (
            Box::new(|r| r.idempotency_key = "k".repeat(201)),
            "records[1].idempotency_key: must be 1 to 200 characters",
        ),
        (
            Box::new(|r| r.kind = 0),
            "records[1].kind: must be USAGE_KIND_EXECUTION",
        ),
        (
            Box::new(|r| r.kind = 99),
            "records[1].kind: must be USAGE_KIND_EXECUTION",
        ),
        (
            Box::new(|r| r.workspace_id = "nope".to_owned()),
            "records[1].workspace_id: must be a UUID",
        ),
        (
            Box::new(|r| r.workflow_id.clear()),
            "records[1].workflow_id: must be a UUID",
        ),
        (
            Box::new(|r| r.execution_id = "1".to_owned()),
            "records[1].execution_id: must be a UUID",
        ),
        (
            Box::new(|r| r.occurred_at = None),
            "records[1].occurred_at: must be set",
        ),
        (
            Box::new(|r| {
                r.occurred_at = Some(tyboo_proto::convert::timestamp(
                    Utc::now() + chrono::Duration::days(2),
                ))
            }),
            "records[1].occurred_at: is",
        ),
        (
            Box::new(|r| r.node_id.clear()),
            "records[1].node_id: must be set for a task or an LLM call",
        ),
        (
            Box::new(|r| r.node_id = "n".repeat(201)),
            "records[1].node_id: must be at most 200 characters",
        ),
        (
            Box::new(|r| {
                r.llm = Some(pb::LlmCall {
                    model: "gpt-4o".to_owned(),
                    ..Default::default()
                })
            }),
            "records[1].llm: is only for LLM calls",
        ),
        (
            Box::new(|r| r.kind = pb::UsageKind::LlmCall.into()),
            "records[1].llm: must be set for an LLM call",
        ),
        (
            Box::new(|r| {
                r.kind = pb::UsageKind::LlmCall.into();
                r.llm = Some(pb::LlmCall {
                    model: "gpt-4o".to_owned(),
                    input_tokens: -1,
                    ..Default::default()
                });
            }),
            "records[1].llm.input_tokens: must be between 0 and 1000000000",
        ),
        (
            Box::new(|r| {
                r.kind = pb::UsageKind::LlmCall.into();
                r.llm = Some(pb::LlmCall {
                    model: "gpt-4o".to_owned(),
                    output_tokens: 1_000_000_001,
                    ..Default::default()
                });
            }),
            "records[1].llm.output_tokens: must be between 0 and 1000000000",
        ),
        (
            Box::new(|r| {
                r.kind = pb::UsageKind::LlmCall.into();
                r.llm = Some(pb::LlmCall::default());
            }),
            "records[1].llm.model: must be 1 to 200 characters",
        ),
    ];
    for (spoil, expected) in cases {
        let mut bad = event.task("second");
        spoil(&mut bad);
        let status = world
            .deliver(vec![event.task("first"), bad, event.task("third")])
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}");
        assert!(
            status.message().starts_with(expected),
            "{expected}: {}",
            status.message()
        );
    }
    // Empty and oversized batches.
    let status = world.deliver(Vec::new()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("records: must hold 1 to 1000 records")
    );
    let many: Vec<_> = (0..1_001).map(|i| event.task(&format!("n{i}"))).collect();
    let status = world.deliver(many).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("got 1001"),
        "{}",
        status.message()
    );
    // Nothing of any refused batch was written; the next good one is.
    let totals = totals_of(&world, "2026-12").await;
    assert_eq!(totals.tasks, 0);
    assert_eq!(
        world
            .deliver(vec![event.task("first")])
            .await
            .unwrap()
            .recorded,
        1
    );
}

async fn only_services_record_usage(world: World) {
    let event = Event::new(world.workspace_id, Uuid::now_v7(), december(3));
    let batch = pb::RecordUsageRequest {
        records: vec![event.execution()],
    };
    for (token, code) in [
        (world.viewer(), Code::PermissionDenied),
        (
            world.user_token_in(world.workspace_id, tyboo_auth::Role::Owner),
            Code::PermissionDenied,
        ),
        (world.operator_token(), Code::PermissionDenied),
        ("not-a-token".to_owned(), Code::Unauthenticated),
    ] {
        let status = world
            .ingest()
            .record_usage(request(batch.clone(), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
    }
    let status = world
        .ingest()
        .record_usage(tonic::Request::new(batch.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(totals_of(&world, "2026-12").await.executions, 0);
}

async fn a_price_change_never_rewrites_recorded_costs(world: World) {
    let workflow_id = Uuid::now_v7();
    let before = Event::new(world.workspace_id, workflow_id, december(4));
    world
        .deliver(vec![before.llm(
            "ask",
            "gpt-4o-mini-2024-07-18",
            2_000_000,
            1_000_000,
        )])
        .await
        .unwrap();
    // The operator doubles the price and restarts metering.
    let raised = world
        .restart(MeteringConfig {
            price_version: "v2".to_owned(),
            prices: vec![price("gpt-4o-mini", 300_000, 1_200_000)],
            ..test_config()
        })
        .await;
    let after = Event::new(world.workspace_id, workflow_id, december(4));
    raised
        .deliver(vec![
            after.llm("ask", "gpt-4o-mini", 2_000_000, 1_000_000),
            // A call of a model with no price costs nothing and has no
            // price version.
            after.llm("local", "llama-3.1-8b", 10, 10),
            // Delivered again under the new prices: still the old cost.
            before.llm("ask", "gpt-4o-mini-2024-07-18", 2_000_000, 1_000_000),
        ])
        .await
        .unwrap();
    let page = raised
        .usage()
        .list_usage_events(request(
            pb::ListUsageEventsRequest {
                workspace_id: world.workspace_id.to_string(),
                month: "2026-12".to_owned(),
                page_size: 10,
                page_token: String::new(),
            },
            &world.viewer(),
        ))
        .await
        .unwrap()
        .into_inner();
    let priced: Vec<(i64, &str)> = page
        .events
        .iter()
        .map(|event| (event.cost_micros, event.price_version.as_str()))
        .collect();
    // 2M × 0.15 + 1M × 0.60 = 0.90 under v1; twice that under v2.
    assert_eq!(priced, vec![(900_000, "v1"), (1_800_000, "v2"), (0, "")]);
    let totals = totals_of(&raised, "2026-12").await;
    assert_eq!(totals.cost_micros, 2_700_000);
    assert_eq!(totals.llm_calls, 3);
    raised.metering.close().await.unwrap();
}
