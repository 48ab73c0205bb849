//! Workflows: each save validates the graph, stores it as a new immutable
//! version and rewrites the workflow's triggers (webhook routes, schedules)
//! in the same transaction.

use std::collections::HashMap;

use tyboo_engine::{ScheduleTriggerParameters, ValidationLimits, WorkflowGraph};
use uuid::Uuid;

use super::credentials;
use super::pagination::{decode_id_token, decode_version_token, next_token, page_size};
use super::{
    Domain, Schedule, WebhookRoute, Workflow, WorkflowVersion, WorkflowView, WorkspaceScope, now,
    tenant,
};
use crate::error::{ExecutorError, ExecutorResult};
use crate::storage::{Session, is_unique_violation, triggers, workflows};

pub use tyboo_engine::{SCHEDULE_TRIGGER, WEBHOOK_TRIGGER};

/// What a save writes.
pub struct Draft {
    pub name: String,
    pub description: String,
    pub graph: WorkflowGraph,
}

impl Domain {
    pub async fn create_workflow(
        &self,
        scope: &WorkspaceScope,
        draft: Draft,
    ) -> ExecutorResult<WorkflowView> {
        self.check_draft(scope.workspace_id, &draft).await?;
        let now = now();
        let workflow = Workflow {
            id: Uuid::now_v7(),
            workspace_id: scope.workspace_id,
            name: draft.name.trim().to_owned(),
            description: draft.description.clone(),
            latest_version: 1,
            create_time: now,
            update_time: now,
            delete_time: None,
        };
        let work = self.begin(tenant(scope)).await?;
        workflows::insert_workflow(work.tx(), &workflow).await?;
        let version = self
            .write_version(work.tx(), scope, &workflow, 1, &draft, None)
            .await?;
        self.commit(work).await?;
        Ok(WorkflowView {
            workflow,
            version,
            graph: draft.graph,
        })
    }

    pub async fn update_workflow(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        draft: Draft,
        expected_version: Option<i64>,
    ) -> ExecutorResult<WorkflowView> {
        self.check_draft(scope.workspace_id, &draft).await?;
        self.save_new_version(scope, workflow_id, draft, expected_version, None)
            .await
    }

    /// Saves a new version whose graph, name and description equal `version`'s.
    pub async fn restore_workflow_version(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        version: i64,
    ) -> ExecutorResult<WorkflowView> {
        let reader = self.read(tenant(scope));
        workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let old = workflows::find_version(&reader, workflow_id, version)
            .await?
            .ok_or(ExecutorError::NotFound("workflow version"))?;
        let graph = self.graph(tenant(scope), workflow_id, version).await?;
        let draft = Draft {
            name: old.name,
            description: old.description,
            graph: (*graph).clone(),
        };
        // The old graph passed validation when saved, but node types and
        // credentials may have changed since: check again.
        self.check_draft(scope.workspace_id, &draft).await?;
        self.save_new_version(scope, workflow_id, draft, None, Some(version))
            .await
    }

    pub async fn get_workflow(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        version: Option<i64>,
    ) -> ExecutorResult<WorkflowView> {
        let reader = self.read(tenant(scope));
        let workflow = workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let number = version.unwrap_or(workflow.latest_version);
        let version = workflows::find_version(&reader, workflow_id, number)
            .await?
            .ok_or(ExecutorError::NotFound("workflow version"))?;
        let graph = self.graph(tenant(scope), workflow_id, number).await?;
        Ok(WorkflowView {
            workflow,
            version,
            graph: (*graph).clone(),
        })
    }

    /// Workflows at their latest version, newest first, and the next page token.
    pub async fn list_workflows(
        &self,
        scope: &WorkspaceScope,
        requested_page_size: i32,
        page_token: &str,
    ) -> ExecutorResult<(Vec<WorkflowView>, String)> {
        let limit = self.page_size(requested_page_size)?;
        let before_id = decode_id_token(page_token)?;
        let reader = self.read(tenant(scope));
        let rows = workflows::list_live(&reader, before_id, limit).await?;
        let next = next_token(&rows, limit, |row| row.id.to_string());
        let mut views = Vec::with_capacity(rows.len());
        for workflow in rows {
            let version = workflows::find_version(&reader, workflow.id, workflow.latest_version)
                .await?
                .ok_or_else(|| {
                    ExecutorError::Internal(format!(
                        "workflow {} lost its latest version",
                        workflow.id
                    ))
                })?;
            let graph = self
                .graph(tenant(scope), workflow.id, workflow.latest_version)
                .await?;
            views.push(WorkflowView {
                workflow,
                version,
                graph: (*graph).clone(),
            });
        }
        Ok((views, next))
    }

    pub async fn list_workflow_versions(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        requested_page_size: i32,
        page_token: &str,
    ) -> ExecutorResult<(Vec<WorkflowVersion>, String)> {
        let reader = self.read(tenant(scope));
        workflows::find_live(&reader, workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        let limit = self.page_size(requested_page_size)?;
        let before = decode_version_token(page_token)?;
        let rows = workflows::list_versions(&reader, workflow_id, before, limit).await?;
        let next = next_token(&rows, limit, |row| row.version.to_string());
        Ok((rows, next))
    }

    /// Deletes a workflow and its triggers. Versions stay, so executions
    /// that pinned one finish and remain readable.
    pub async fn delete_workflow(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
    ) -> ExecutorResult<()> {
        let work = self.begin(tenant(scope)).await?;
        if !workflows::mark_deleted(work.tx(), workflow_id, now()).await? {
            return Err(ExecutorError::NotFound("workflow"));
        }
        triggers::delete_for_workflow(work.tx(), workflow_id).await?;
        self.commit(work).await?;
        Ok(())
    }

    pub(crate) fn page_size(&self, requested: i32) -> ExecutorResult<u64> {
        page_size(
            requested,
            self.config().page_size_default,
            self.config().page_size_max,
        )
    }

    async fn save_new_version(
        &self,
        scope: &WorkspaceScope,
        workflow_id: Uuid,
        draft: Draft,
        expected_version: Option<i64>,
        restored_from: Option<i64>,
    ) -> ExecutorResult<WorkflowView> {
        let work = self.begin(tenant(scope)).await?;
        let mut workflow = workflows::find_live(work.tx(), workflow_id)
            .await?
            .ok_or(ExecutorError::NotFound("workflow"))?;
        if let Some(expected) = expected_version
            && expected != workflow.latest_version
        {
            return Err(ExecutorError::Aborted(format!(
                "expected_version: the latest version is {}, not {expected}",
                workflow.latest_version
            )));
        }
        let previous = workflow.latest_version;
        let number = previous + 1;
        let now = now();
        let name = draft.name.trim().to_owned();
        let moved = workflows::bump_version(
            work.tx(),
            workflow_id,
            previous,
            number,
            &name,
            &draft.description,
            now,
        )
        .await?;
        if !moved {
            return Err(ExecutorError::Aborted(
                "the workflow was saved concurrently; reload it and save again".to_owned(),
            ));
        }
        workflow.latest_version = number;
        workflow.name = name;
        workflow.description = draft.description.clone();
        workflow.update_time = now;
        let version = self
            .write_version(work.tx(), scope, &workflow, number, &draft, restored_from)
            .await?;
        self.commit(work).await?;
        Ok(WorkflowView {
            workflow,
            version,
            graph: draft.graph,
        })
    }

    async fn write_version<S: Session>(
        &self,
        db: &S,
        scope: &WorkspaceScope,
        workflow: &Workflow,
        number: i64,
        draft: &Draft,
        restored_from: Option<i64>,
    ) -> ExecutorResult<WorkflowVersion> {
        let graph_text = serde_json::to_string(&draft.graph)
            .map_err(|error| ExecutorError::Internal(format!("encoding graph: {error}")))?;
        let version = WorkflowVersion {
            id: Uuid::now_v7(),
            workspace_id: scope.workspace_id,
            workflow_id: workflow.id,
            version: number,
            name: workflow.name.clone(),
            description: workflow.description.clone(),
            graph: graph_text,
            created_by: scope.actor(),
            create_time: workflow.update_time,
            restored_from_version: restored_from,
            node_count: i32::try_from(draft.graph.nodes.len()).unwrap_or(i32::MAX),
        };
        workflows::insert_version(db, &version).await?;
        self.write_triggers(db, workflow, &draft.graph).await?;
        Ok(version)
    }

    /// Replaces the workflow's webhook routes and schedules with the ones its
    /// new graph declares.
    async fn write_triggers<S: Session>(
        &self,
        db: &S,
        workflow: &Workflow,
        graph: &WorkflowGraph,
    ) -> ExecutorResult<()> {
        // A hook keeps its URL across saves: the token stays with the node.
        let mut tokens: std::collections::HashMap<String, String> =
            triggers::routes_for_workflow(db, workflow.id)
                .await?
                .into_iter()
                .map(|route| (route.node_id, route.token))
                .collect();
        triggers::delete_for_workflow(db, workflow.id).await?;
        let now = now();
        for node in &graph.nodes {
            match node.node_type.as_str() {
                WEBHOOK_TRIGGER => {
                    let field = format!("nodes[{}].parameters.path", node.id);
                    let parameters = super::webhooks::trigger_parameters(node)?;
                    let path = normalize_hook_path(&parameters.path).ok_or_else(|| {
                        ExecutorError::invalid(&field, "must be a non-empty path")
                    })?;
                    if let Some(existing) = triggers::find_route(db, &path).await?
                        && existing.workflow_id != workflow.id
                    {
                        return Err(ExecutorError::invalid(
                            field,
                            format!(
                                "`{path}` is already used by workflow {}",
                                existing.workflow_id
                            ),
                        ));
                    }
                    let route = WebhookRoute {
                        id: Uuid::now_v7(),
                        workspace_id: workflow.workspace_id,
                        path: path.clone(),
                        workflow_id: workflow.id,
                        node_id: node.id.clone(),
                        token: match tokens.remove(&node.id) {
                            Some(token) if !token.is_empty() => token,
                            _ => super::webhooks::new_hook_token()?,
                        },
                        create_time: now,
                    };
                    triggers::insert_route(db, &route).await.map_err(|error| {
                        if is_unique_violation(&error) {
                            ExecutorError::invalid(
                                format!("nodes[{}].parameters.path", node.id),
                                format!("`{path}` is already used by another workflow"),
                            )
                        } else {
                            error.into()
                        }
                    })?;
                }
                SCHEDULE_TRIGGER => {
                    let ScheduleTriggerParameters { cron, timezone } =
                        ScheduleTriggerParameters::parse(&node.parameters).map_err(|error| {
                            ExecutorError::invalid(
                                format!("nodes[{}].parameters", node.id),
                                error.to_string(),
                            )
                        })?;
                    let next_fire_at =
                        tyboo_engine::next_fire(&cron, &timezone, now).map_err(|message| {
                            ExecutorError::invalid(
                                format!("nodes[{}].parameters.cron", node.id),
                                message,
                            )
                        })?;
                    let schedule = Schedule {
                        id: Uuid::now_v7(),
                        workspace_id: workflow.workspace_id,
                        workflow_id: workflow.id,
                        node_id: node.id.clone(),
                        cron,
                        timezone,
                        next_fire_at: crate::storage::truncate(next_fire_at),
                    };
                    triggers::insert_schedule(db, &schedule).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks name, description and graph; the first fault names its path.
    async fn check_draft(&self, workspace_id: Uuid, draft: &Draft) -> ExecutorResult<()> {
        let config = self.config();
        let name = draft.name.trim();
        if name.is_empty() {
            return Err(ExecutorError::invalid("name", "must be set"));
        }
        if name.chars().count() > config.max_name_length {
            return Err(ExecutorError::invalid(
                "name",
                format!("must be at most {} characters", config.max_name_length),
            ));
        }
        if draft.description.chars().count() > config.max_description_length {
            return Err(ExecutorError::invalid(
                "description",
                format!(
                    "must be at most {} characters",
                    config.max_description_length
                ),
            ));
        }
        let limits = ValidationLimits {
            max_workflow_duration_ms: config.max_duration_cap_ms,
            ..ValidationLimits::default()
        };
        // Another workspace's credential is left out by the vault exactly
        // like a missing one, so both are refused alike. Without a vault no
        // reference can resolve; refusing them at save time beats failing
        // every execution later.
        let referenced = credentials::referenced_ids(&draft.graph);
        let existing = match (self.vault(), referenced.is_empty()) {
            (Some(vault), false) => vault.check(workspace_id, referenced).await?,
            _ => HashMap::new(),
        };
        let credential_exists = |credential_id: &str| existing.contains_key(credential_id);
        let catalog = self.engine().catalog();
        tyboo_engine::validate(&draft.graph, catalog, &limits, &credential_exists).map_err(
            |error| {
                let field = match &error.node_id {
                    Some(node_id) => format!("nodes[{node_id}].{}", error.field),
                    None => error.field.clone(),
                };
                ExecutorError::invalid(field, error.message)
            },
        )?;
        for node in &draft.graph.nodes {
            let (Some(credential_id), Some(info)) =
                (&node.credential_id, catalog.get(&node.node_type))
            else {
                continue;
            };
            let (Some(wanted), Some(actual)) = (info.credential_type, existing.get(credential_id))
            else {
                continue;
            };
            let accepted = credentials::accepted_types(wanted);
            if !accepted.contains(&actual.as_str()) {
                return Err(ExecutorError::invalid(
                    format!("nodes[{}].credential_id", node.id),
                    format!(
                        "credential `{credential_id}` is a {actual} credential; node type `{}` takes {}",
                        node.node_type,
                        accepted.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A hook path without surrounding slashes; `None` when nothing is left.
pub fn normalize_hook_path(path: &str) -> Option<String> {
    let trimmed = path.trim().trim_matches('/');
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_paths_lose_their_slashes() {
        assert_eq!(
            normalize_hook_path("/orders/new/").as_deref(),
            Some("orders/new")
        );
        assert_eq!(normalize_hook_path(" / "), None);
    }
}
