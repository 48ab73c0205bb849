//! Reading the ledger: totals and breakdowns of a month, pages and the
//! export, bad input, and other workspaces answered as missing ones.

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use tonic::Code;
use tyboo_auth::Role;
use tyboo_proto::metering as pb;
use tyboo_proto::metering::usage_service_server::UsageService;
use uuid::Uuid;

use super::conformance;
use super::harness::{Event, World, request, test_config};
use crate::MeteringConfig;

conformance!(
    a_month_adds_up_by_workflow_model_and_day,
    pages_and_the_export_read_the_whole_ledger_once,
    bad_months_and_page_tokens_are_refused,
    other_workspaces_read_as_missing_ones,
);

fn at(month: u32, day: u32, hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, hour, 0, 0).unwrap()
}

async fn usage(world: &World, token: &str, month: &str) -> pb::GetWorkspaceUsageResponse {
    world
        .usage()
        .get_workspace_usage(request(
            pb::GetWorkspaceUsageRequest {
                workspace_id: world.workspace_id.to_string(),
                month: month.to_owned(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Two workflows over two December days, and an execution on the last
/// second of November that December must not count.
async fn seed(world: &World) -> (Uuid, Uuid) {
    let (busy, quiet) = (Uuid::now_v7(), Uuid::now_v7());
    let mut records = Vec::new();
    for hour in 0..3 {
        let event = Event::new(world.workspace_id, busy, at(12, 1, hour));
        records.extend([event.execution(), event.task("a"), event.task("b")]);
        records.push(event.llm("b", "gpt-4o-mini", 1_000, 1_000));
    }
    let event = Event::new(world.workspace_id, quiet, at(12, 2, 23));
    records.extend([event.execution(), event.task("only")]);
    records.push(event.llm("only", "claude-3-haiku", 100, 50));
    let november = Event::new(
        world.workspace_id,
        quiet,
        Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap(),
    );
    records.push(november.execution());
    world.deliver(records).await.unwrap();
    (busy, quiet)
}

async fn a_month_adds_up_by_workflow_model_and_day(world: World) {
    let (busy, quiet) = seed(&world).await;
    let december = usage(&world, &world.viewer(), "2026-12").await;
    assert_eq!(december.month, "2026-12");
    let totals = december.totals.unwrap();
    assert_eq!(
        (totals.executions, totals.tasks, totals.llm_calls),
        (4, 7, 4)
    );
    assert_eq!((totals.input_tokens, totals.output_tokens), (3_100, 3_050));
    // 3 × (1000 × 0.15 + 1000 × 0.60); the unpriced model costs nothing.
    assert_eq!(totals.cost_micros, 2_250);

    let workflows: Vec<(String, i64)> = december
        .by_workflow
        .iter()
        .map(|row| (row.workflow_id.clone(), row.totals.unwrap().tasks))
        .collect();
    assert_eq!(
        workflows,
        vec![(busy.to_string(), 6), (quiet.to_string(), 1)]
    );
    let models: Vec<(&str, i64, i64)> = december
        .by_model
        .iter()
        .map(|row| {
            let totals = row.totals.unwrap();
            (row.model.as_str(), totals.llm_calls, totals.cost_micros)
        })
        .collect();
    assert_eq!(
        models,
        vec![("gpt-4o-mini", 3, 2_250), ("claude-3-haiku", 1, 0)]
    );
    assert!(
        december
            .by_model
            .iter()
            .all(|row| row.provider_host == "api.openai.com")
    );
    let days: Vec<(&str, i64)> = december
        .by_day
        .iter()
        .map(|row| (row.day.as_str(), row.totals.unwrap().executions))
        .collect();
    assert_eq!(days, vec![("2026-12-01", 3), ("2026-12-02", 1)]);
    assert!(!december.truncated);

    let november = usage(&world, &world.viewer(), "2026-11").await;
    assert_eq!(november.totals.unwrap().executions, 1);
    assert_eq!(november.by_workflow.len(), 1);
    // A month with nothing in it is zeros, not an error.
    let empty = usage(&world, &world.viewer(), "2025-01").await;
    assert_eq!(empty.totals.unwrap(), pb::UsageTotals::default());
    assert!(empty.by_day.is_empty());
    // No month is the current one.
    let current = usage(&world, &world.viewer(), "").await;
    assert_eq!(current.month, Utc::now().format("%Y-%m").to_string());

    // Breakdowns stop at their cap and say so; the totals still count all.
    let capped = world
        .restart(MeteringConfig {
            max_breakdown_rows: 1,
            ..test_config()
        })
        .await;
    let december = usage(&capped, &world.viewer(), "2026-12").await;
    assert!(december.truncated);
    assert_eq!(december.by_workflow.len(), 1);
    assert_eq!(december.by_workflow[0].workflow_id, busy.to_string());
    assert_eq!(december.by_model.len(), 1);
    assert_eq!(december.totals.unwrap().tasks, 7);
    capped.metering.close().await.unwrap();
}

async fn pages_and_the_export_read_the_whole_ledger_once(world: World) {
    seed(&world).await;
    // Page size 0 takes the default (3 in the suite), past the maximum the
    // maximum.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = world
            .usage()
            .list_usage_events(request(
                pb::ListUsageEventsRequest {
                    workspace_id: world.workspace_id.to_string(),
                    month: "2026-12".to_owned(),
                    page_size: 0,
                    page_token: token.clone(),
                },
                &world.viewer(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= 3);
        paged.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged.len(), 15);
    let mut ids: Vec<&str> = paged.iter().map(|event| event.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 15);

    // The export streams the same rows in the same order, in batches of 4.
    let exported: Vec<pb::UsageEvent> = world
        .usage()
        .export_usage(request(
            pb::ExportUsageRequest {
                workspace_id: world.workspace_id.to_string(),
                month: "2026-12".to_owned(),
            },
            &world.viewer(),
        ))
        .await
        .unwrap()
        .into_inner()
        .map(|item| item.unwrap().event.unwrap())
        .collect()
        .await;
    assert_eq!(exported, paged);
    let llm = exported
        .iter()
        .find(|event| event.kind == i32::from(pb::UsageKind::LlmCall))
        .unwrap();
    assert_eq!(llm.llm.as_ref().unwrap().input_tokens, 1_000);
    assert_eq!(llm.price_version, "v1");
    assert!(
        exported
            .iter()
            .filter(|event| event.kind != i32::from(pb::UsageKind::LlmCall))
            .all(|event| event.llm.is_none() && event.cost_micros == 0)
    );

    // An empty month exports nothing.
    let none = world
        .usage()
        .export_usage(request(
            pb::ExportUsageRequest {
                workspace_id: world.workspace_id.to_string(),
                month: "2020-02".to_owned(),
            },
            &world.viewer(),
        ))
        .await
        .unwrap()
        .into_inner()
        .count()
        .await;
    assert_eq!(none, 0);
}

async fn bad_months_and_page_tokens_are_refused(world: World) {
    seed(&world).await;
    for month in [
        "2026-13",
        "2026-00",
        "26-12",
        "2026-1",
        "december",
        "2026-12-01",
        "0000-01",
    ] {
        let status = world
            .usage()
            .get_workspace_usage(request(
                pb::GetWorkspaceUsageRequest {
                    workspace_id: world.workspace_id.to_string(),
                    month: month.to_owned(),
                },
                &world.viewer(),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{month}");
        assert!(
            status.message().starts_with("month: "),
            "{}",
            status.message()
        );
        let status = world
            .usage()
            .export_usage(request(
                pb::ExportUsageRequest {
                    workspace_id: world.workspace_id.to_string(),
                    month: month.to_owned(),
                },
                &world.viewer(),
            ))
            .await
            .err()
            .unwrap();
        assert_eq!(status.code(), Code::InvalidArgument, "{month}");
    }
    let list = |page_size: i32, page_token: String, month: &str| {
        let world = world.clone();
        let month = month.to_owned();
        async move {
            world
                .usage()
                .list_usage_events(request(
                    pb::ListUsageEventsRequest {
                        workspace_id: world.workspace_id.to_string(),
                        month,
                        page_size,
                        page_token,
                    },
                    &world.viewer(),
                ))
                .await
        }
    };
    let status = list(-1, String::new(), "2026-12").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "page_size: must not be negative");
    // Not a UUID, a UUID of no row, and a row of another month: all the
    // same refusal.
    let november_row = list(1, String::new(), "2026-11")
        .await
        .unwrap()
        .into_inner()
        .events[0]
        .id
        .clone();
    for token in ["x".to_owned(), Uuid::now_v7().to_string(), november_row] {
        let status = list(2, token.clone(), "2026-12").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{token}");
        assert_eq!(
            status.message(),
            "page_token: is not a token this service issued"
        );
    }
    // A workspace id that is not a UUID.
    let status = world
        .usage()
        .get_workspace_usage(request(
            pb::GetWorkspaceUsageRequest {
                workspace_id: "acme".to_owned(),
                month: String::new(),
            },
            &world.viewer(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "workspace_id: must be a UUID");
}

async fn other_workspaces_read_as_missing_ones(world: World) {
    seed(&world).await;
    // Another workspace with usage of its own.
    let neighbour = Uuid::now_v7();
    let event = Event::new(neighbour, Uuid::now_v7(), at(12, 1, 5));
    world.deliver(vec![event.execution()]).await.unwrap();
    let first_row_of = |workspace_id: Uuid| {
        let world = world.clone();
        async move {
            world
                .usage()
                .list_usage_events(request(
                    pb::ListUsageEventsRequest {
                        workspace_id: workspace_id.to_string(),
                        month: "2026-12".to_owned(),
                        page_size: 1,
                        page_token: String::new(),
                    },
                    &world.service_token("executor"),
                ))
                .await
                .unwrap()
                .into_inner()
                .events[0]
                .id
                .clone()
        }
    };
    let neighbour_row = first_row_of(neighbour).await;

    let viewer = world.viewer();
    let refusal = |workspace_id: String, token: String| {
        let world = world.clone();
        async move {
            let usage = world
                .usage()
                .get_workspace_usage(request(
                    pb::GetWorkspaceUsageRequest {
                        workspace_id: workspace_id.clone(),
                        month: "2026-12".to_owned(),
                    },
                    &token,
                ))
                .await
                .unwrap_err();
            let page = world
                .usage()
                .list_usage_events(request(
                    pb::ListUsageEventsRequest {
                        workspace_id: workspace_id.clone(),
                        month: "2026-12".to_owned(),
                        page_size: 1,
                        page_token: String::new(),
                    },
                    &token,
                ))
                .await
                .unwrap_err();
            let export = world
                .usage()
                .export_usage(request(
                    pb::ExportUsageRequest {
                        workspace_id,
                        month: "2026-12".to_owned(),
                    },
                    &token,
                ))
                .await
                .err()
                .unwrap();
            [usage, page, export].map(|status| (status.code(), status.message().to_owned()))
        }
    };
    let existing = refusal(neighbour.to_string(), viewer.clone()).await;
    let missing = refusal(Uuid::now_v7().to_string(), viewer.clone()).await;
    assert_eq!(existing, missing);
    assert!(
        existing
            .iter()
            .all(|(code, message)| *code == Code::NotFound && message == "workspace not found")
    );

    // The neighbour's row as a page token in one's own workspace is refused
    // as any unknown token is.
    let status = world
        .usage()
        .list_usage_events(request(
            pb::ListUsageEventsRequest {
                workspace_id: world.workspace_id.to_string(),
                month: "2026-12".to_owned(),
                page_size: 1,
                page_token: neighbour_row,
            },
            &viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status.message(),
        "page_token: is not a token this service issued"
    );

    // Every role of the workspace reads it; operators and services read any.
    for token in [
        world.user_token_in(world.workspace_id, Role::Viewer),
        world.user_token_in(world.workspace_id, Role::Owner),
        world.operator_token(),
        world.service_token("executor"),
    ] {
        let own = usage(&world, &token, "2026-12").await;
        assert_eq!(own.totals.unwrap().executions, 4);
    }
    let operator = world
        .usage()
        .get_workspace_usage(request(
            pb::GetWorkspaceUsageRequest {
                workspace_id: neighbour.to_string(),
                month: "2026-12".to_owned(),
            },
            &world.operator_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operator.totals.unwrap().executions, 1);
    // No token, a forged one.
    for token in [None, Some("forged")] {
        let mut call = tonic::Request::new(pb::GetWorkspaceUsageRequest {
            workspace_id: world.workspace_id.to_string(),
            month: String::new(),
        });
        if let Some(token) = token {
            call.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let status = world.usage().get_workspace_usage(call).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
}
