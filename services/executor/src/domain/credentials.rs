//! Credentials from the vault: which ones a workflow may reference when it is
//! saved, and their plaintext for the one node run that uses one. The
//! plaintext lives only in the node's context for the length of its run; it
//! is never written to a node run, a dead letter or a log line, and it is
//! zeroized when the run ends (see [`PlaintextContext`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tyboo_engine::{NodeContext, NodeError, WorkflowGraph};
use uuid::Uuid;
use zeroize::Zeroize;

use crate::error::{ExecutorError, ExecutorResult};

/// The key of the credential's allowed hosts in the node context, next to
/// the fields the node reads.
pub const ALLOWED_HOSTS_KEY: &str = "allowed_hosts";

/// A credential that exists in a workspace, as the vault describes it
/// without decrypting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingCredential {
    pub credential_id: String,
    pub credential_type: String,
    /// Empty: any host.
    pub allowed_hosts: Vec<String>,
}

/// A credential's plaintext fields, for one node run.
pub struct DecryptedCredential {
    pub credential_type: String,
    pub fields: Vec<(String, String)>,
    pub allowed_hosts: Vec<String>,
}

/// Why the vault did not answer, by what the caller can do about it.
#[derive(Debug)]
pub enum VaultError {
    /// It cannot be reached now.
    Unreachable(String),
    /// It failed in a way another attempt may not.
    Transient(String),
    /// It refused (e.g. the credential no longer exists).
    Refused(String),
}

impl VaultError {
    fn message(&self) -> &str {
        match self {
            VaultError::Unreachable(message)
            | VaultError::Transient(message)
            | VaultError::Refused(message) => message,
        }
    }
}

/// What the executor needs of the vault: the one port through which it
/// reads credentials (`adapters::vault` speaks it over gRPC).
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The credentials among `credential_ids` that exist in the workspace;
    /// the others (missing, or another workspace's) are left out alike.
    async fn check(
        &self,
        workspace_id: Uuid,
        credential_ids: Vec<String>,
    ) -> Result<Vec<ExistingCredential>, VaultError>;

    /// One credential's plaintext, for the node `node_id` of `execution_id`
    /// (the vault audits the use).
    async fn decrypt(
        &self,
        workspace_id: Uuid,
        credential_id: &str,
        execution_id: Uuid,
        node_id: &str,
    ) -> Result<DecryptedCredential, VaultError>;
}

/// The vault as the domain uses it: its answers turned into the errors of a
/// save and of a node run.
#[derive(Clone)]
pub struct VaultAccess {
    source: Arc<dyn CredentialSource>,
}

impl std::fmt::Debug for VaultAccess {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VaultAccess")
            .finish_non_exhaustive()
    }
}

impl VaultAccess {
    pub fn new(source: Arc<dyn CredentialSource>) -> Self {
        Self { source }
    }

    /// The types of the credentials among `ids` that exist in the workspace;
    /// the others (missing, or another workspace's) are left out alike.
    pub async fn check(
        &self,
        workspace_id: Uuid,
        ids: Vec<String>,
    ) -> ExecutorResult<HashMap<String, String>> {
        let existing = self
            .source
            .check(workspace_id, ids)
            .await
            .map_err(check_error)?;
        Ok(existing
            .into_iter()
            .map(|existing| (existing.credential_id, existing.credential_type))
            .collect())
    }

    /// The allowed hosts of one credential (empty: any host), read without
    /// decrypting it; None when it does not exist in the workspace. An
    /// unreachable vault fails the node for another attempt.
    pub async fn allowed_hosts(
        &self,
        workspace_id: Uuid,
        credential_id: &str,
    ) -> Result<Option<Vec<String>>, NodeError> {
        let existing = self
            .source
            .check(workspace_id, vec![credential_id.to_owned()])
            .await
            .map_err(|error| {
                NodeError::transient(format!(
                    "credential `{credential_id}`: the vault cannot be asked now: {}",
                    error.message()
                ))
            })?;
        Ok(existing
            .into_iter()
            .find(|existing| existing.credential_id == credential_id)
            .map(|existing| existing.allowed_hosts))
    }

    /// The credential as the node consumes it. NotFound (deleted since the
    /// workflow was saved) and other refusals fail the node for good; an
    /// unreachable vault fails it for another attempt.
    pub async fn decrypt(
        &self,
        workspace_id: Uuid,
        credential_id: &str,
        execution_id: Uuid,
        node_id: &str,
    ) -> Result<Value, NodeError> {
        let credential = self
            .source
            .decrypt(workspace_id, credential_id, execution_id, node_id)
            .await
            .map_err(|error| {
                let message = format!(
                    "node `{node_id}`: credential `{credential_id}`: {}",
                    error.message()
                );
                match error {
                    VaultError::Unreachable(_) | VaultError::Transient(_) => {
                        NodeError::transient(message)
                    }
                    VaultError::Refused(_) => NodeError::permanent(message),
                }
            })?;
        Ok(node_credential(
            &credential.credential_type,
            credential.fields,
            credential.allowed_hosts,
        ))
    }
}

fn check_error(error: VaultError) -> ExecutorError {
    match error {
        VaultError::Unreachable(message) => {
            tracing::warn!(%message, "vault unreachable");
            ExecutorError::Unavailable("cannot check credentials right now".to_owned())
        }
        VaultError::Transient(message) | VaultError::Refused(message) => {
            tracing::error!(%message, "vault refused a credential check");
            ExecutorError::Internal(format!("vault: {message}"))
        }
    }
}

/// The vault types a node type's `credential_type` accepts: the node
/// catalog names the use ("http"), the vault names the shape.
pub fn accepted_types(credential_type: &str) -> &'static [&'static str] {
    match credential_type {
        "http" => &["http_header", "bearer_token", "basic_auth"],
        "llm" => &["openai_api_key"],
        "slack" => &["slack_webhook"],
        "database" => &["database"],
        "webhook" => &["webhook_signing_secret"],
        _ => &[],
    }
}

/// Reshapes vault fields into what the engine's nodes read: `headers`,
/// `bearer_token` and `basic` for http.request, `api_key` (and `base_url`)
/// for llm.chat, `webhook_url` for slack.message, `url` for sql.query.
/// Allowed hosts ride along so every node that connects can refuse others.
fn node_credential(
    credential_type: &str,
    fields: Vec<(String, String)>,
    allowed_hosts: Vec<String>,
) -> Value {
    let mut fields: Map<String, Value> = fields
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    let mut take = |name: &str| fields.remove(name).unwrap_or(Value::Null);
    let mut shaped = match credential_type {
        "http_header" => {
            let (name, value) = (take("name"), take("value"));
            let mut headers = Map::new();
            if let Value::String(name) = name {
                headers.insert(name, value);
            }
            Map::from_iter([("headers".to_owned(), Value::Object(headers))])
        }
        "bearer_token" => Map::from_iter([("bearer_token".to_owned(), take("token"))]),
        "basic_auth" => {
            let mut basic = Map::from_iter([
                ("username".to_owned(), take("username")),
                ("password".to_owned(), take("password")),
            ]);
            basic.retain(|_, value| !value.is_null());
            Map::from_iter([("basic".to_owned(), Value::Object(basic))])
        }
        "slack_webhook" => Map::from_iter([("webhook_url".to_owned(), take("url"))]),
        // openai_api_key (api_key, base_url), database (driver, url) and
        // key_value already use the names the nodes read.
        _ => fields,
    };
    shaped.retain(|_, value| !value.is_null());
    if !allowed_hosts.is_empty() {
        shaped.insert(
            ALLOWED_HOSTS_KEY.to_owned(),
            Value::Array(allowed_hosts.into_iter().map(Value::String).collect()),
        );
    }
    Value::Object(shaped)
}

/// A node context that may hold a decrypted credential. Dropping it zeroizes
/// every string of the credential, so the plaintext is wiped however the
/// run ends: success, failure, timeout, cancellation, shutdown or a panic
/// that unwinds through the worker.
pub struct PlaintextContext(NodeContext);

impl PlaintextContext {
    pub fn new(context: NodeContext) -> Self {
        Self(context)
    }

    pub fn context(&self) -> &NodeContext {
        &self.0
    }

    /// Zeroizes the credential's strings in place.
    fn wipe(&mut self) {
        if let Some(credential) = self.0.credential.as_mut() {
            zeroize_strings(credential);
        }
    }
}

impl Drop for PlaintextContext {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Overwrites every string in `value` with zeros before its memory is freed:
/// the values first, in place, then the object keys (an `http_header`
/// credential's header name is one). Numbers and booleans are left alone:
/// the vault's fields are all strings.
pub fn zeroize_strings(value: &mut Value) {
    zeroize_values(value);
    zeroize_keys(value);
}

/// Zeroizes the string values, leaving the shape (and the keys) as it was.
fn zeroize_values(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_values),
        Value::Object(fields) => fields.values_mut().for_each(zeroize_values),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Zeroizes the object keys. They cannot be changed in place, so every map
/// is taken apart and left empty.
fn zeroize_keys(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(zeroize_keys),
        Value::Object(fields) => {
            for (mut key, mut field) in std::mem::take(fields) {
                key.zeroize();
                zeroize_keys(&mut field);
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) | Value::Number(_) => {}
    }
}

/// The credential ids `graph` references, each once.
pub fn referenced_ids(graph: &WorkflowGraph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .filter_map(|node| node.credential_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn zeroizing_wipes_nested_strings_and_keys() {
        let credential = json!({
            "headers": {"X-Api-Key": "secret-value"},
            "basic": {"username": "ada", "password": "hunter2hunter2"},
            "allowed_hosts": ["api.example.com", ["nested"]],
            "port": 5432,
        });
        // The values, at every depth, are wiped where they lie.
        let mut values = credential.clone();
        zeroize_values(&mut values);
        assert_eq!(
            values,
            json!({
                "headers": {"X-Api-Key": ""},
                "basic": {"username": "", "password": ""},
                "allowed_hosts": ["", [""]],
                "port": 5432,
            })
        );
        // Then the keys, which takes every map apart.
        let mut everything = credential;
        zeroize_strings(&mut everything);
        assert_eq!(everything, json!({}));
        let mut list = json!(["t0k3n-abc", {"k": "v"}, ["deep"], 7]);
        zeroize_strings(&mut list);
        assert_eq!(list, json!(["", {}, [""], 7]));
    }

    #[test]
    fn dropping_the_context_wipes_the_credential_and_debug_hides_it() {
        let context = NodeContext {
            execution_id: Uuid::now_v7(),
            workflow_id: Uuid::now_v7(),
            workflow_version: 1,
            workspace_id: Uuid::now_v7(),
            node_id: "call".to_owned(),
            attempt: 1,
            idempotency_key: "key".to_owned(),
            trigger: Value::Null,
            nodes: Map::new(),
            inputs: vec![],
            credential: Some(json!({"bearer_token": "canary-in-debug"})),
        };
        let guarded = PlaintextContext::new(context);
        assert!(!format!("{:?}", guarded.context()).contains("canary-in-debug"));
        assert_eq!(
            guarded.context().credential,
            Some(json!({"bearer_token": "canary-in-debug"}))
        );
        let mut guarded = guarded;
        guarded.wipe();
        assert_eq!(guarded.context().credential, Some(json!({})));
    }

    #[test]
    fn vault_shapes_become_what_nodes_read() {
        assert_eq!(
            node_credential("bearer_token", pairs(&[("token", "t0k3n-abc")]), vec![]),
            json!({"bearer_token": "t0k3n-abc"})
        );
        assert_eq!(
            node_credential(
                "http_header",
                pairs(&[("name", "X-Api-Key"), ("value", "secret")]),
                vec!["api.example.com".to_owned()]
            ),
            json!({"headers": {"X-Api-Key": "secret"}, "allowed_hosts": ["api.example.com"]})
        );
        assert_eq!(
            node_credential("basic_auth", pairs(&[("username", "ada")]), vec![]),
            json!({"basic": {"username": "ada"}})
        );
        assert_eq!(
            node_credential("slack_webhook", pairs(&[("url", "https://hooks")]), vec![]),
            json!({"webhook_url": "https://hooks"})
        );
        assert_eq!(
            node_credential(
                "database",
                pairs(&[("driver", "sqlite"), ("url", "sqlite:x")]),
                vec![]
            ),
            json!({"driver": "sqlite", "url": "sqlite:x"})
        );
        assert!(accepted_types("http").contains(&"bearer_token"));
        assert!(accepted_types("llm").contains(&"openai_api_key"));
        assert!(accepted_types("none").is_empty());
    }

    /// Every use the node catalog names is one the vault can serve: a name
    /// here that the catalog does not use (it once said `sql` where the
    /// catalog says `database`) leaves that node with no credential at all.
    #[test]
    fn every_credential_use_of_the_catalog_accepts_a_vault_type() {
        for info in tyboo_engine::Catalog::standard_ref().all() {
            if let Some(wanted) = info.credential_type {
                assert!(
                    !accepted_types(wanted).is_empty(),
                    "{} takes `{wanted}` credentials, which no vault type serves",
                    info.name
                );
            }
        }
        assert_eq!(accepted_types("database"), ["database"]);
    }
}
