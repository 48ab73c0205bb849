//! Signing keys and service tokens.

use tonic::Code;
use tyboo_auth::Subject;

use super::conformance;
use super::harness::{SERVICE_SECRET, bootstrap, code_of, principal_for};
use crate::Tenancy;
use crate::domain::audit::GLOBAL_CHAIN;
use crate::domain::validation::ServiceName;

conformance!(
    service_tokens_need_the_shared_secret,
    rotation_keeps_earlier_tokens_valid,
);

async fn service_tokens_need_the_shared_secret(tenancy: Tenancy) {
    let domain = tenancy.domain();
    let executor = ServiceName::parse("service", "executor").unwrap();
    assert_eq!(
        code_of(domain.issue_service_token(&executor, "wrong").await),
        Code::Unauthenticated
    );
    let issued = domain
        .issue_service_token(&executor, SERVICE_SECRET)
        .await
        .unwrap();
    let principal = domain.verify_caller(Some(&issued.token)).await.unwrap();
    assert_eq!(principal.subject, Subject::Service("executor".to_owned()));
    assert_eq!(principal.workspace_id, None);
    // A service names no workspace, so workspace calls find none.
    assert_eq!(code_of(domain.own_scope(&principal).await), Code::NotFound);
}

async fn rotation_keeps_earlier_tokens_valid(tenancy: Tenancy) {
    let fixture = bootstrap(&tenancy).await;
    let domain = tenancy.domain();
    let keys = domain.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].active);
    let first_kid = keys[0].kid.clone();

    assert_eq!(
        code_of(domain.rotate_signing_key(&fixture.owner).await),
        Code::PermissionDenied
    );
    let old_token = domain
        .authenticate_api_key(&fixture.owner_key)
        .await
        .unwrap()
        .token;
    let service = domain
        .issue_service_token(
            &ServiceName::parse("service", "ops").unwrap(),
            SERVICE_SECRET,
        )
        .await
        .unwrap();
    let service_principal = domain.verify_caller(Some(&service.token)).await.unwrap();
    let rotated = domain.rotate_signing_key(&service_principal).await.unwrap();
    assert!(rotated.active);
    assert_ne!(rotated.kid, first_kid);

    let keys = domain.signing_keys().await.unwrap();
    let published: Vec<(&str, bool)> = keys
        .iter()
        .map(|key| (key.kid.as_str(), key.active))
        .collect();
    assert_eq!(
        published,
        vec![(rotated.kid.as_str(), true), (first_kid.as_str(), false)]
    );
    // Tokens signed before the rotation still verify; new ones use the new key.
    domain.verify_caller(Some(&old_token)).await.unwrap();
    let principal = principal_for(&tenancy, &fixture.owner_key).await;
    assert_eq!(principal.user_id(), Some(fixture.owner_id));
    let new_token = domain
        .authenticate_api_key(&fixture.owner_key)
        .await
        .unwrap()
        .token;
    let header = jsonwebtoken_kid(&new_token);
    assert_eq!(header, rotated.kid);

    let global = domain.verify_chain(GLOBAL_CHAIN).await.unwrap();
    assert!(global.intact(), "{global:?}");
    assert_eq!(global.events_checked, 1);
}

/// The `kid` of a compact JWT's header.
fn jsonwebtoken_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["kid"].as_str().unwrap().to_owned()
}
