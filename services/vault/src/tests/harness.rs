//! Databases, tokens and fixtures for the suite.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost_types::value::Kind;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tonic::Request;
use tyboo_auth::testing::{FixedKeys, signing_keys};
use tyboo_auth::{Principal, Role, Subject, TokenSigner};
use tyboo_proto::vault as pb;
use tyboo_proto::vault::credential_service_server::CredentialService;
use tyboo_store::testing::{TEST, TestWorld};
pub use tyboo_store::testing::{on_postgres, on_sqlite};
use uuid::Uuid;

use crate::storage::entities::credential;
use crate::{
    CredentialAccessGrpc, CredentialGrpc, KeyManagementGrpc, MasterKeyConfig, MasterKeyText,
    MemoryAuditSink, Vault, VaultConfig,
};

/// A value planted in secrets so tests can look for it everywhere else.
pub const CANARY: &str = "canary-5e8d1b7c-secret";

pub fn master_key(version: u32) -> MasterKeyConfig {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    MasterKeyConfig {
        version,
        key: MasterKeyText::new(STANDARD.encode(key)),
    }
}

pub fn test_config() -> VaultConfig {
    VaultConfig {
        master_keys: vec![master_key(1)],
        // Small pages make listing cross page boundaries in tests.
        page_size_default: 2,
        ..VaultConfig::default()
    }
}

/// One test's world: a database, a vault on it, signing keys, an audit
/// sink, and a workspace to act in.
#[derive(Clone)]
pub struct World {
    pub url: String,
    pub vault: Vault,
    pub signer: TokenSigner,
    pub keys: Arc<FixedKeys>,
    pub audit: Arc<MemoryAuditSink>,
    pub workspace_id: Uuid,
    pub config: VaultConfig,
}

impl TestWorld for World {
    const SQLITE_PREFIX: &'static str = "tyboo-vault";
    const POSTGRES_PREFIX: &'static str = "tyboo_v";

    async fn open(url: &str) -> World {
        World::open(url.to_owned(), test_config()).await
    }

    async fn close(self) {
        self.vault.close().await.unwrap();
    }
}

impl World {
    async fn open(url: String, config: VaultConfig) -> World {
        let (signer, keys) = signing_keys();
        let audit = Arc::new(MemoryAuditSink::new());
        let vault = Vault::connect(&url, config.clone(), keys.clone(), audit.clone())
            .await
            .unwrap();
        vault.migrate().await.unwrap();
        World {
            url,
            vault,
            signer,
            keys,
            audit,
            workspace_id: Uuid::now_v7(),
            config,
        }
    }

    /// The same database and tokens under another configuration, as a
    /// restarted vault with new master key settings would be.
    pub async fn restart(&self, config: VaultConfig) -> World {
        let vault = Vault::connect(
            &self.url,
            config.clone(),
            self.keys.clone(),
            self.audit.clone(),
        )
        .await
        .unwrap();
        World {
            vault,
            config,
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

    /// An editor of the world's workspace.
    pub fn editor(&self) -> String {
        self.user_token_in(self.workspace_id, Role::Editor)
    }

    pub fn service_token(&self, name: &str) -> String {
        self.sign(&Principal::service(name))
    }

    pub fn credentials(&self) -> CredentialGrpc {
        CredentialGrpc::new(self.vault.domain().clone())
    }

    pub fn access(&self) -> CredentialAccessGrpc {
        CredentialAccessGrpc::new(self.vault.domain().clone())
    }

    pub fn key_management(&self) -> KeyManagementGrpc {
        KeyManagementGrpc::new(self.vault.domain().clone())
    }

    /// Creates a credential through the public API and returns it.
    pub async fn create(
        &self,
        token: &str,
        name: &str,
        credential_type: &str,
        fields: &[(&str, &str)],
    ) -> pb::Credential {
        self.credentials()
            .create_credential(request(
                pb::CreateCredentialRequest {
                    name: name.to_owned(),
                    r#type: credential_type.to_owned(),
                    fields: Some(fields_struct(fields)),
                    allowed_hosts: vec!["api.example.com".to_owned()],
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap()
    }

    /// A bearer-token credential holding `token`, created by an editor.
    pub async fn create_bearer(&self, name: &str, token: &str) -> Uuid {
        let created = self
            .create(&self.editor(), name, "bearer_token", &[("token", token)])
            .await;
        created.id.parse().unwrap()
    }

    /// Decrypts as the executor would for a node.
    pub async fn decrypt(
        &self,
        workspace_id: Uuid,
        credential_id: Uuid,
    ) -> Result<pb::DecryptCredentialResponse, tonic::Status> {
        use tyboo_proto::vault::credential_access_service_server::CredentialAccessService;
        self.access()
            .decrypt_credential(request(
                pb::DecryptCredentialRequest {
                    workspace_id: workspace_id.to_string(),
                    credential_id: credential_id.to_string(),
                    execution_id: Uuid::now_v7().to_string(),
                    node_id: "call_api".to_owned(),
                },
                &self.service_token("executor"),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The bearer token a decrypted credential holds.
    pub async fn decrypted_token(&self, credential_id: Uuid) -> Result<String, tonic::Status> {
        let response = self.decrypt(self.workspace_id, credential_id).await?;
        Ok(string_field(&response.fields.unwrap(), "token"))
    }

    pub async fn row(&self, credential_id: Uuid) -> credential::Model {
        credential::Entity::find_by_id(credential_id)
            .one(&self.vault.domain().store().read(TEST))
            .await
            .unwrap()
            .expect("the row exists")
    }

    /// Overwrites one column of a row, as an attacker with database access
    /// (or a botched restore) might.
    pub async fn set_column<V>(&self, credential_id: Uuid, column: credential::Column, value: V)
    where
        V: Into<sea_orm::Value>,
    {
        credential::Entity::update_many()
            .col_expr(column, Expr::value(value))
            .filter(credential::Column::Id.eq(credential_id))
            .exec(&self.vault.domain().store().read(TEST))
            .await
            .unwrap();
    }
}

pub fn request<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn fields_struct(fields: &[(&str, &str)]) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(name, value)| {
                (
                    (*name).to_owned(),
                    prost_types::Value {
                        kind: Some(Kind::StringValue((*value).to_owned())),
                    },
                )
            })
            .collect(),
    }
}

pub fn string_field(fields: &prost_types::Struct, name: &str) -> String {
    match fields.fields.get(name).and_then(|value| value.kind.clone()) {
        Some(Kind::StringValue(text)) => text,
        other => panic!("field {name} is {other:?}"),
    }
}

/// Code and message of a failed call, for comparing two failures exactly.
pub fn failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (tonic::Code, String) {
    let status = result.expect_err("the call should fail");
    (status.code(), status.message().to_owned())
}
