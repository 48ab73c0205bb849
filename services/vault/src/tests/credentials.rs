//! The public credential API: lifecycle, validation by name, and secrets
//! that never come back out.

use tonic::Code;
use tyboo_auth::Role;
use tyboo_proto::vault as pb;
use tyboo_proto::vault::credential_service_server::CredentialService;

use super::conformance;
use super::harness::{CANARY, World, failure, fields_struct, request};

conformance!(
    credentials_live_through_create_replace_list_and_delete,
    fields_are_rejected_by_name_for_every_type,
    secrets_never_appear_in_public_answers_or_debug_output,
    viewers_read_metadata_but_cannot_write,
);

async fn credentials_live_through_create_replace_list_and_delete(world: World) {
    let api = world.credentials();
    let editor = world.editor();
    let created = world
        .create(
            &editor,
            "Slack alerts",
            "slack_webhook",
            &[("url", "https://hooks.slack.com/services/T0/B0/x")],
        )
        .await;
    assert_eq!(created.version, 1);
    assert_eq!(created.key_version, 1);
    assert_eq!(created.r#type, "slack_webhook");
    assert_eq!(created.allowed_hosts, ["api.example.com"]);
    assert!(created.created_by.starts_with("user:"));

    let duplicate = api
        .create_credential(request(
            pb::CreateCredentialRequest {
                name: " Slack alerts ".to_owned(),
                r#type: "bearer_token".to_owned(),
                fields: Some(fields_struct(&[("token", "token-one")])),
                allowed_hosts: Vec::new(),
            },
            &editor,
        ))
        .await;
    assert_eq!(failure(duplicate).0, Code::AlreadyExists);

    let replaced = api
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: created.id.clone(),
                fields: Some(fields_struct(&[(
                    "url",
                    "https://hooks.slack.com/services/T0/B0/y",
                )])),
                allowed_hosts: Some(pb::AllowedHosts {
                    hosts: vec!["hooks.slack.com".to_owned()],
                }),
                expected_version: Some(1),
            },
            &editor,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.allowed_hosts, ["hooks.slack.com"]);
    let decrypted = world
        .decrypt(world.workspace_id, created.id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(decrypted.version, 2);
    assert_eq!(
        super::harness::string_field(&decrypted.fields.unwrap(), "url"),
        "https://hooks.slack.com/services/T0/B0/y"
    );

    let stale = api
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: created.id.clone(),
                fields: Some(fields_struct(&[("url", "https://hooks.slack.com/z")])),
                allowed_hosts: None,
                expected_version: Some(1),
            },
            &editor,
        ))
        .await;
    assert_eq!(failure(stale).0, Code::Aborted);

    for index in 0..4 {
        world
            .create_bearer(&format!("token {index}"), "secret-token")
            .await;
    }
    let mut names = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = api
            .list_credentials(request(
                pb::ListCredentialsRequest {
                    page_size: 0,
                    page_token: page_token.clone(),
                    r#type: String::new(),
                },
                &editor,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.credentials.len() <= 2, "the configured default page");
        names.extend(page.credentials.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        names,
        ["Slack alerts", "token 0", "token 1", "token 2", "token 3"]
    );
    let only_webhooks = api
        .list_credentials(request(
            pb::ListCredentialsRequest {
                page_size: 10,
                page_token: String::new(),
                r#type: "slack_webhook".to_owned(),
            },
            &editor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only_webhooks.credentials.len(), 1);

    api.delete_credential(request(
        pb::DeleteCredentialRequest {
            credential_id: created.id.clone(),
        },
        &editor,
    ))
    .await
    .unwrap();
    let gone = api
        .get_credential(request(
            pb::GetCredentialRequest {
                credential_id: created.id.clone(),
            },
            &editor,
        ))
        .await;
    assert_eq!(
        failure(gone),
        (Code::NotFound, "credential not found".to_owned())
    );
    let gone = world
        .decrypt(world.workspace_id, created.id.parse().unwrap())
        .await;
    assert_eq!(failure(gone).0, Code::NotFound);
}

/// A credential type, fields for it, and the exact rejection they earn.
type RejectionCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

async fn fields_are_rejected_by_name_for_every_type(world: World) {
    let editor = world.editor();
    let cases: &[RejectionCase] = &[
        ("bearer_token", &[], "fields.token: must be set"),
        (
            "bearer_token",
            &[("token", "")],
            "fields.token: must be set",
        ),
        (
            "bearer_token",
            &[("token", "a\r\nX-Injected: 1")],
            "fields.token: must not contain line breaks",
        ),
        (
            "bearer_token",
            &[("token", "7-chars")],
            "fields.token: is 7 characters; a secret must have at least 8 \
             (vault.min_secret_chars), so that redacting it hides nothing else",
        ),
        (
            "key_value",
            &[("api.secret", "short")],
            "fields.api.secret: is 5 characters; a secret must have at least 8 \
             (vault.min_secret_chars), so that redacting it hides nothing else",
        ),
        (
            "bearer_token",
            &[("token", "token-one"), ("extra", "x")],
            "fields.extra: is not a field of bearer_token",
        ),
        (
            "http_header",
            &[("value", "header-value")],
            "fields.name: must be set",
        ),
        (
            "http_header",
            &[("name", "X Bad"), ("value", "header-value")],
            "fields.name: is not a valid HTTP header name",
        ),
        (
            "http_header",
            &[("name", "X-Key")],
            "fields.value: must be set",
        ),
        (
            "basic_auth",
            &[("password", "password-1")],
            "fields.username: must be set",
        ),
        (
            "basic_auth",
            &[("username", "u")],
            "fields.password: must be set",
        ),
        (
            "basic_auth",
            &[("username", "a:b"), ("password", "password-1")],
            "fields.username: must not contain ':'",
        ),
        ("openai_api_key", &[], "fields.api_key: must be set"),
        (
            "openai_api_key",
            &[("api_key", "sk-api-key"), ("base_url", "not a url")],
            "fields.base_url: is not an absolute URL",
        ),
        (
            "openai_api_key",
            &[
                ("api_key", "sk-api-key"),
                ("base_url", "ftp://models.local/v1"),
            ],
            "fields.base_url: must be an http or https URL",
        ),
        ("slack_webhook", &[], "fields.url: must be set"),
        (
            "slack_webhook",
            &[("url", "http://hooks.slack.com/x")],
            "fields.url: must be an https URL",
        ),
        (
            "database",
            &[("driver", "mysql"), ("url", "mysql://h/db")],
            "fields.driver: must be one of postgres, sqlite",
        ),
        (
            "database",
            &[("driver", "postgres")],
            "fields.url: must be set",
        ),
        (
            "database",
            &[("driver", "postgres"), ("url", "sqlite:x.db")],
            "fields.url: must start with postgres:// or postgresql:// for driver postgres",
        ),
        ("key_value", &[], "fields: must have at least one entry"),
    ];
    for (credential_type, fields, expected) in cases {
        let result = world
            .credentials()
            .create_credential(request(
                pb::CreateCredentialRequest {
                    name: format!("bad {credential_type}"),
                    r#type: (*credential_type).to_owned(),
                    fields: Some(fields_struct(fields)),
                    allowed_hosts: Vec::new(),
                },
                &editor,
            ))
            .await;
        assert_eq!(
            failure(result),
            (Code::InvalidArgument, (*expected).to_owned()),
            "{credential_type} {fields:?}"
        );
    }

    let not_a_string = prost_types::Struct {
        fields: [(
            "token".to_owned(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::NumberValue(7.0)),
            },
        )]
        .into(),
    };
    let result = world
        .credentials()
        .create_credential(request(
            pb::CreateCredentialRequest {
                name: "numeric".to_owned(),
                r#type: "bearer_token".to_owned(),
                fields: Some(not_a_string),
                allowed_hosts: Vec::new(),
            },
            &editor,
        ))
        .await;
    assert_eq!(
        failure(result),
        (
            Code::InvalidArgument,
            "fields.token: must be a string".to_owned()
        )
    );
    for (request_type, expected) in [
        ("", "type: must be set"),
        ("smtp", "type: unknown credential type"),
    ] {
        let result = world
            .credentials()
            .create_credential(request(
                pb::CreateCredentialRequest {
                    name: "typed".to_owned(),
                    r#type: request_type.to_owned(),
                    fields: Some(fields_struct(&[("token", "token-one")])),
                    allowed_hosts: Vec::new(),
                },
                &editor,
            ))
            .await;
        let (code, message) = failure(result);
        assert_eq!(code, Code::InvalidArgument);
        assert!(message.starts_with(expected), "{message}");
    }

    // Every type accepts well-formed fields.
    let good: &[(&str, &[(&str, &str)])] = &[
        (
            "http_header",
            &[("name", "X-API-Key"), ("value", "header-value")],
        ),
        ("bearer_token", &[("token", "token-one")]),
        ("basic_auth", &[("username", "u"), ("password", "")]),
        (
            "openai_api_key",
            &[
                ("api_key", "sk-api-key"),
                ("base_url", "http://localhost:11434/v1"),
            ],
        ),
        (
            "slack_webhook",
            &[("url", "https://hooks.slack.com/services/x")],
        ),
        (
            "database",
            &[("driver", "sqlite"), ("url", "sqlite:data.db")],
        ),
        (
            "webhook_signing_secret",
            &[("secret", "whsec_signing-secret")],
        ),
        (
            "key_value",
            &[("region", "eu-west-1"), ("api.secret", "s-secret-value")],
        ),
    ];
    for (credential_type, fields) in good {
        world
            .create(
                &editor,
                &format!("good {credential_type}"),
                credential_type,
                fields,
            )
            .await;
    }
    let types = world
        .credentials()
        .list_credential_types(request(pb::ListCredentialTypesRequest {}, &editor))
        .await
        .unwrap()
        .into_inner()
        .credential_types;
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http_header",
            "bearer_token",
            "basic_auth",
            "openai_api_key",
            "slack_webhook",
            "database",
            "webhook_signing_secret",
            "key_value"
        ]
    );
    assert!(types.iter().all(|t| t.fields_schema.is_some()));
}

async fn secrets_never_appear_in_public_answers_or_debug_output(world: World) {
    let api = world.credentials();
    let editor = world.editor();
    let created = world
        .create(&editor, "canary", "bearer_token", &[("token", CANARY)])
        .await;
    let id = created.id.clone();
    let mut shown = vec![format!("{created:?}")];
    let replaced = api
        .replace_credential(request(
            pb::ReplaceCredentialRequest {
                credential_id: id.clone(),
                fields: Some(fields_struct(&[("token", CANARY)])),
                allowed_hosts: None,
                expected_version: None,
            },
            &editor,
        ))
        .await
        .unwrap();
    shown.push(format!("{replaced:?}"));
    let got = api
        .get_credential(request(
            pb::GetCredentialRequest {
                credential_id: id.clone(),
            },
            &editor,
        ))
        .await
        .unwrap();
    shown.push(format!("{got:?}"));
    let listed = api
        .list_credentials(request(
            pb::ListCredentialsRequest {
                page_size: 10,
                page_token: String::new(),
                r#type: String::new(),
            },
            &editor,
        ))
        .await
        .unwrap();
    shown.push(format!("{listed:?}"));

    // Domain values, the stored row and the audit trail.
    let scope = world
        .vault
        .domain()
        .authorize(Some(&editor), tyboo_auth::Permission::CredentialsRead)
        .await
        .unwrap();
    let view = world
        .vault
        .domain()
        .get_credential(&scope, id.parse().unwrap())
        .await
        .unwrap();
    shown.push(format!("{view:?}"));
    let row = world.row(id.parse().unwrap()).await;
    shown.push(format!("{row:?}"));
    let decrypted = world
        .vault
        .domain()
        .decrypt_credential(
            &crate::domain::ServiceCaller::for_principal(&tyboo_auth::Principal::service(
                "executor",
            ))
            .unwrap(),
            crate::domain::DecryptRequest {
                workspace_id: world.workspace_id,
                credential_id: id.parse().unwrap(),
                execution_id: "e1".to_owned(),
                node_id: "n1".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(decrypted.fields.get("token"), Some(CANARY));
    shown.push(format!("{decrypted:?}"));
    shown.push(format!("{:?}", world.vault));
    shown.push(format!("{:?}", world.audit.records()));

    for text in &shown {
        assert!(!text.contains(CANARY), "secret leaked into: {text}");
    }
    // The stored row holds no plaintext either.
    let stored = [row.ciphertext, row.wrapped_key].concat();
    assert!(
        !stored
            .windows(CANARY.len())
            .any(|window| window == CANARY.as_bytes())
    );
}

async fn viewers_read_metadata_but_cannot_write(world: World) {
    let id = world.create_bearer("shared", "secret-token").await;
    let viewer = world.user_token_in(world.workspace_id, Role::Viewer);
    let api = world.credentials();
    api.get_credential(request(
        pb::GetCredentialRequest {
            credential_id: id.to_string(),
        },
        &viewer,
    ))
    .await
    .unwrap();
    let refused = api
        .delete_credential(request(
            pb::DeleteCredentialRequest {
                credential_id: id.to_string(),
            },
            &viewer,
        ))
        .await;
    assert_eq!(failure(refused).0, Code::PermissionDenied);
    let unauthenticated = api
        .get_credential(tonic::Request::new(pb::GetCredentialRequest {
            credential_id: id.to_string(),
        }))
        .await;
    assert_eq!(failure(unauthenticated).0, Code::Unauthenticated);
}
