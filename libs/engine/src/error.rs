//! Errors of the engine: building it, and the outcome of one node run.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Errors raised while building an [`crate::Engine`] from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid egress allow range `{range}`: {reason}")]
    InvalidAllowRange { range: String, reason: String },
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot build the http client: {0}")]
    HttpClient(String),
}

pub type EngineResult<T> = Result<T, EngineError>;

/// How the executor must treat a failed node run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Worth retrying under the node's retry policy (network, 429, 5xx, open circuit).
    Transient,
    /// Retrying cannot help (4xx, invalid parameters, refused egress, caps exceeded).
    Permanent,
    /// The node ran past its timeout and was stopped; retried like a transient error.
    Timeout,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Timeout => "timeout",
        }
    }

    pub fn parse(value: &str) -> Option<ErrorClass> {
        match value {
            "transient" => Some(ErrorClass::Transient),
            "permanent" => Some(ErrorClass::Permanent),
            "timeout" => Some(ErrorClass::Timeout),
            _ => None,
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::Timeout)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A failed node run: its class decides between retry and failure.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeError {
    pub class: ErrorClass,
    pub message: String,
    /// What the upstream asked for (`Retry-After`); the executor's backoff honours it.
    pub retry_after: Option<Duration>,
    /// The parameter at fault, as a path such as `url` or `messages[0].content`.
    pub parameter: Option<String>,
    /// Set when the call was not made because the target's circuit breaker
    /// is open: the step waits until then (the breaker's probe time) and
    /// tries again without spending an attempt of its retry policy.
    pub park_until: Option<DateTime<Utc>>,
}

impl NodeError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> NodeError {
        NodeError {
            class,
            message: message.into(),
            retry_after: None,
            parameter: None,
            park_until: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> NodeError {
        NodeError::new(ErrorClass::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> NodeError {
        NodeError::new(ErrorClass::Transient, message)
    }

    pub fn timeout(message: impl Into<String>) -> NodeError {
        NodeError::new(ErrorClass::Timeout, message)
    }

    pub fn with_parameter(mut self, parameter: impl Into<String>) -> NodeError {
        self.parameter = Some(parameter.into());
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> NodeError {
        self.retry_after = retry_after;
        self
    }

    /// Marks the error as a call held back by an open circuit breaker until
    /// `until`, which the executor parks instead of counting as an attempt.
    pub fn parked_until(mut self, until: DateTime<Utc>) -> NodeError {
        self.park_until = Some(until);
        self
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.parameter {
            Some(parameter) => write!(
                formatter,
                "{} error in parameter `{parameter}`: {}",
                self.class, self.message
            ),
            None => write!(formatter, "{} error: {}", self.class, self.message),
        }
    }
}

impl std::error::Error for NodeError {}

/// A workflow graph that cannot be saved, naming the node and field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    pub node_id: Option<String>,
    /// Field path: `parameters.url` within a node, or `edges[3].to` for the graph.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn node(
        node_id: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ValidationError {
        ValidationError {
            node_id: Some(node_id.to_owned()),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn graph(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            node_id: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node_id {
            Some(node_id) => write!(
                formatter,
                "nodes[{node_id}].{}: {}",
                self.field, self.message
            ),
            None => write!(formatter, "{}: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for ValidationError {}
