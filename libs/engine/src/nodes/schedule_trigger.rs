//! `trigger.schedule`: an execution started on a cron schedule; the executor keeps the
//! schedule and fires it.

use serde_json::json;

use super::kind::{NodeKind, object_schema};
use crate::catalog::{Category, NodeTypeInfo};
use crate::graph::Pool;

#[derive(Debug)]
pub(crate) struct ScheduleTrigger;

impl NodeKind for ScheduleTrigger {
    fn info(&'static self) -> NodeTypeInfo {
        NodeTypeInfo {
            name: "trigger.schedule",
            title: "Schedule",
            description: "Starts an execution on a cron schedule in a time zone.",
            category: Category::Trigger,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "cron": {"type": "string", "format": "cron", "maxLength": 200,
                             "description": "Five fields (minute hour day month weekday), or six with seconds first"},
                    "timezone": {"type": "string", "format": "timezone", "default": "UTC"}
                }),
                &["cron"],
            ),
            credential_type: None,
            kind: self,
        }
    }
}
