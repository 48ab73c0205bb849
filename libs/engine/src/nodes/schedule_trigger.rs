//! `trigger.schedule`: an execution started on a cron schedule; the executor keeps the
//! schedule and fires it.

use serde::Deserialize;
use serde_json::{Value, json};

use super::kind::{NodeKind, object_schema};
use crate::catalog::{Category, NodeTypeInfo};
use crate::graph::Pool;

/// The type name of a schedule trigger.
pub const SCHEDULE_TRIGGER: &str = "trigger.schedule";

/// The parameters of a `trigger.schedule` node, with the schema's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ScheduleTriggerParameters {
    pub cron: String,
    pub timezone: String,
}

impl Default for ScheduleTriggerParameters {
    fn default() -> ScheduleTriggerParameters {
        ScheduleTriggerParameters {
            cron: String::new(),
            timezone: "UTC".to_owned(),
        }
    }
}

impl ScheduleTriggerParameters {
    /// Reads a schedule trigger's saved parameters; an error means the graph
    /// was never validated.
    pub fn parse(parameters: &Value) -> Result<ScheduleTriggerParameters, serde_json::Error> {
        ScheduleTriggerParameters::deserialize(parameters)
    }
}

#[derive(Debug)]
pub(crate) struct ScheduleTrigger;

impl NodeKind for ScheduleTrigger {
    fn info(&'static self) -> NodeTypeInfo {
        let defaults = ScheduleTriggerParameters::default();
        NodeTypeInfo {
            name: SCHEDULE_TRIGGER,
            title: "Schedule",
            description: "Starts an execution on a cron schedule in a time zone.",
            category: Category::Trigger,
            pool: Pool::Default,
            parameters_schema: object_schema(
                json!({
                    "cron": {"type": "string", "format": "cron", "maxLength": 200,
                             "description": "Five fields (minute hour day month weekday), or six with seconds first"},
                    "timezone": {"type": "string", "format": "timezone", "default": defaults.timezone}
                }),
                &["cron"],
            ),
            credential_type: None,
            kind: self,
        }
    }
}
