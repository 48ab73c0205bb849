//! A workspace's limits: the defaults with an operator's overrides, read by
//! members and the mesh, changed by operators only, audited, and in force
//! through the services' cache within its ttl.

use std::sync::Arc;
use std::time::Duration;

use tonic::Code;
use tyboo_auth::{Principal, Role};
use tyboo_limits::{CachedLimits, LimitOverrides, Limits, LimitsConfig, LimitsSource};

use super::conformance;
use super::harness::{bootstrap, code_of, join, scope};
use crate::Tenancy;
use crate::domain::AuditQuery;
use crate::domain::admin::Operator;
use crate::domain::validation::Name;

conformance!(
    operators_override_limits_and_members_read_them,
    nobody_but_an_operator_changes_limits_and_bad_values_change_nothing,
    a_change_is_in_force_through_the_cache_within_its_ttl,
);

async fn operator(tenancy: &Tenancy) -> Principal {
    let domain = tenancy.domain();
    let issued = domain
        .admin_issue_operator_token(&Operator::new("cli").unwrap(), 900, None)
        .await
        .unwrap();
    domain.verify_caller(Some(&issued.token)).await.unwrap()
}

fn two_running() -> LimitOverrides {
    LimitOverrides {
        running_executions_per_workspace: Some(2),
        api_key_burst: Some(7),
        ..LimitOverrides::default()
    }
}

async fn operators_override_limits_and_members_read_them(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    let (other, _) = domain
        .create_workspace(&owner_scope, &Name::parse("name", "Other", 200).unwrap())
        .await
        .unwrap();

    let before = domain.workspace_limits(&owner_scope).await.unwrap();
    assert_eq!(before.limits, Limits::default());
    assert!(before.overrides.is_empty());
    assert_eq!(before.updated_at, None);

    let operator = operator(&tenancy).await;
    let operator_scope = domain
        .limits_scope(&operator, &fixture.workspace())
        .await
        .unwrap();
    let set = domain
        .set_workspace_limits(&operator_scope, two_running())
        .await
        .unwrap();
    assert_eq!(set.limits.running_executions_per_workspace, 2);
    assert_eq!(set.limits.api_key_burst, 7);
    assert_eq!(
        set.limits.workspace_burst,
        Limits::default().workspace_burst,
        "an unset override takes the default"
    );

    // The owner reads what the operator set; the other workspace keeps the defaults.
    let read = domain.workspace_limits(&owner_scope).await.unwrap();
    assert_eq!(read.limits, set.limits);
    assert_eq!(read.overrides, two_running());
    assert!(read.updated_at.is_some());
    let viewer = join(&tenancy, &fixture, "viewer@acme.test", Role::Viewer).await;
    let viewer_scope = scope(&tenancy, &viewer.principal, fixture.workspace_id).await;
    assert_eq!(
        domain.workspace_limits(&viewer_scope).await.unwrap().limits,
        set.limits
    );
    assert_eq!(
        domain.limits(other.id).await.unwrap(),
        Limits::default(),
        "another workspace is untouched"
    );

    // A service of the mesh names any workspace; a member only their own.
    let executor = Principal::service("executor");
    let service_scope = domain
        .limits_scope(&executor, &fixture.workspace())
        .await
        .unwrap();
    assert_eq!(
        domain
            .workspace_limits(&service_scope)
            .await
            .unwrap()
            .limits,
        set.limits
    );
    assert_eq!(
        code_of(
            domain
                .limits_scope(&viewer.principal, &other.id.to_string())
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code_of(domain.limits_scope(&executor, "not-a-uuid").await),
        Code::NotFound
    );
    assert_eq!(
        code_of(
            domain
                .limits_scope(&executor, &uuid::Uuid::now_v7().to_string())
                .await
        ),
        Code::NotFound,
        "a workspace that does not exist"
    );

    // The change is in the workspace's audit chain, by the operator.
    let events = domain
        .list_audit_events(
            &owner_scope,
            &AuditQuery {
                page_size: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap()
        .events;
    let event = events
        .iter()
        .find(|event| event.action == "tenancy.limits.updated")
        .expect("audited");
    assert_eq!(event.actor, "operator:cli");
    assert_eq!(event.details["running_executions_per_workspace"], "2");
    assert_eq!(event.details["workspace_burst"], "default");
    assert!(
        domain
            .verify_audit_log(&owner_scope)
            .await
            .unwrap()
            .intact()
    );

    // Empty overrides clear them all.
    let cleared = domain
        .set_workspace_limits(&operator_scope, LimitOverrides::default())
        .await
        .unwrap();
    assert_eq!(cleared.limits, Limits::default());
    let read = domain.workspace_limits(&owner_scope).await.unwrap();
    assert!(read.overrides.is_empty());
    assert_eq!(read.updated_at, None);
}

async fn nobody_but_an_operator_changes_limits_and_bad_values_change_nothing(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let owner_scope = scope(&tenancy, &fixture.owner, fixture.workspace_id).await;
    assert_eq!(
        code_of(
            domain
                .set_workspace_limits(&owner_scope, two_running())
                .await
        ),
        Code::PermissionDenied,
        "not even the owner raises their own limits"
    );

    let operator = operator(&tenancy).await;
    let operator_scope = domain
        .limits_scope(&operator, &fixture.workspace())
        .await
        .unwrap();
    domain
        .set_workspace_limits(&operator_scope, two_running())
        .await
        .unwrap();
    for bad in [
        LimitOverrides {
            running_executions_per_user: Some(0),
            ..LimitOverrides::default()
        },
        LimitOverrides {
            queue_wait_limit_seconds: Some(2_592_001),
            ..LimitOverrides::default()
        },
    ] {
        let error = domain
            .set_workspace_limits(&operator_scope, bad)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert!(tonic::Status::from(error).message().contains("overrides"));
    }
    // At the edges of the bounds, accepted.
    let edges = LimitOverrides {
        running_executions_per_user: Some(1),
        queue_wait_limit_seconds: Some(2_592_000),
        ..LimitOverrides::default()
    };
    domain
        .set_workspace_limits(&operator_scope, edges.clone())
        .await
        .unwrap();
    assert_eq!(
        domain
            .workspace_limits(&owner_scope)
            .await
            .unwrap()
            .overrides,
        edges,
        "a refused change left the stored one"
    );
}

async fn a_change_is_in_force_through_the_cache_within_its_ttl(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let config = LimitsConfig {
        cache_ttl_ms: 200,
        ..LimitsConfig::default()
    };
    let cache = CachedLimits::new(Arc::new(domain.clone()), &config);
    assert_eq!(cache.get(fixture.workspace_id).await, Limits::default());

    let operator = operator(&tenancy).await;
    let operator_scope = domain
        .limits_scope(&operator, &fixture.workspace())
        .await
        .unwrap();
    domain
        .set_workspace_limits(&operator_scope, two_running())
        .await
        .unwrap();
    let changed_at = std::time::Instant::now();
    loop {
        if cache
            .get(fixture.workspace_id)
            .await
            .running_executions_per_workspace
            == 2
        {
            break;
        }
        assert!(
            changed_at.elapsed() < Duration::from_secs(2),
            "the change never reached the cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
