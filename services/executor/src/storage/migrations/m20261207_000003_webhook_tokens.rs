//! Every webhook route gets an unguessable token, the part of its URL that
//! lets a caller fire it; and deliveries are deduplicated per trigger, not
//! per workspace, so one hook's delivery id never answers for another.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string;
use sea_orm_migration::sea_orm::ConnectionTrait;
use tyboo_store::create_index;
use uuid::Uuid;

use crate::domain::webhooks::new_hook_token;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000003_webhook_tokens"
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum WebhookRoutes {
    Table,
    Id,
    Token,
}

#[derive(Clone, Copy, DeriveIden)]
enum WebhookDeliveries {
    Table,
    WorkspaceId,
    WorkflowId,
    NodeId,
    DeliveryId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookRoutes::Table)
                    .add_column(string(WebhookRoutes::Token).default(""))
                    .to_owned(),
            )
            .await?;
        // Routes saved before tokens existed get one each; their old URLs
        // (workspace and path) stop working, which is the point.
        let db = manager.get_connection();
        let select = Query::select()
            .column(WebhookRoutes::Id)
            .from(WebhookRoutes::Table)
            .to_owned();
        for row in db.query_all(&select).await? {
            let id: Uuid = row.try_get("", "id")?;
            let token = new_hook_token().map_err(|error| DbErr::Custom(error.to_string()))?;
            let update = Query::update()
                .table(WebhookRoutes::Table)
                .value(WebhookRoutes::Token, token)
                .and_where(Expr::col(WebhookRoutes::Id).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
        create_index(
            manager,
            "ux_webhook_routes_token",
            WebhookRoutes::Table,
            &[WebhookRoutes::Token],
            true,
        )
        .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .add_column(string(WebhookDeliveries::NodeId).default(""))
                    .to_owned(),
            )
            .await?;
        // A delivery seen before this migration belongs to its workflow's
        // webhook trigger (the first one, when a workflow has several).
        db.execute_unprepared(
            "UPDATE webhook_deliveries SET node_id = COALESCE((SELECT r.node_id \
             FROM webhook_routes r WHERE r.workflow_id = webhook_deliveries.workflow_id \
             ORDER BY r.node_id LIMIT 1), '')",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_webhook_deliveries_workspace_delivery")
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_webhook_deliveries_trigger_delivery",
            WebhookDeliveries::Table,
            &[
                WebhookDeliveries::WorkspaceId,
                WebhookDeliveries::WorkflowId,
                WebhookDeliveries::NodeId,
                WebhookDeliveries::DeliveryId,
            ],
            true,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_webhook_deliveries_trigger_delivery")
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_webhook_deliveries_workspace_delivery",
            WebhookDeliveries::Table,
            &[
                WebhookDeliveries::WorkspaceId,
                WebhookDeliveries::DeliveryId,
            ],
            true,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .drop_column(WebhookDeliveries::NodeId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_webhook_routes_token")
                    .table(WebhookRoutes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookRoutes::Table)
                    .drop_column(WebhookRoutes::Token)
                    .to_owned(),
            )
            .await
    }
}
