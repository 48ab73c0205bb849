//! The circuit breakers every outside node call goes through, and their
//! operations: listing, reading, and the manual changes (reset, force open,
//! force closed) that only a platform operator may make. Each change is
//! written to the audit log before it is made, and refused when the record
//! cannot be written.

use std::collections::BTreeMap;
use std::sync::Arc;

use tyboo_auth::{Permission, Principal};
use tyboo_breaker::{
    BreakerConfig, BreakerError, BreakerKey, BreakerState, CircuitBreakers, CircuitState,
    InProcessBreakers, SystemClock,
};

use super::Domain;
use crate::error::{ExecutorError, ExecutorResult};

/// The actions the executor audits, as written to the log.
pub mod actions {
    pub const BREAKER_RESET: &str = "executor.breaker.reset";
    pub const BREAKER_FORCED_OPEN: &str = "executor.breaker.forced_open";
    pub const BREAKER_FORCED_CLOSED: &str = "executor.breaker.forced_closed";
}

/// Where the executor's audit records go: tenancy's log in the mesh
/// ([`tyboo_audit::TenancyAuditSink`]), memory in tests.
pub use tyboo_audit::{AuditRecord, AuditSink, MemoryAuditSink};

/// A manual change of one breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerChange {
    Reset,
    ForceOpen,
    ForceClosed,
}

impl BreakerChange {
    fn action(self) -> &'static str {
        match self {
            BreakerChange::Reset => actions::BREAKER_RESET,
            BreakerChange::ForceOpen => actions::BREAKER_FORCED_OPEN,
            BreakerChange::ForceClosed => actions::BREAKER_FORCED_CLOSED,
        }
    }
}

/// The in-process breakers of the embedded mode.
pub(crate) fn in_process(config: &BreakerConfig) -> Arc<dyn CircuitBreakers> {
    match InProcessBreakers::new(config, Arc::new(SystemClock)) {
        Ok(breakers) => Arc::new(breakers),
        Err(error) => {
            // `ExecutorConfig::validate` refuses such a config at start; a
            // domain built around it still guards its calls.
            tracing::error!(%error, "invalid breaker config; using the defaults");
            Arc::new(
                InProcessBreakers::new(&BreakerConfig::default(), Arc::new(SystemClock))
                    .expect("the default breaker config is valid"),
            )
        }
    }
}

fn breaker_error(error: BreakerError) -> ExecutorError {
    match error {
        BreakerError::Unavailable(detail) => {
            tracing::warn!(%detail, "circuit breaker store unavailable");
            ExecutorError::Unavailable("the circuit breaker store is unavailable".to_owned())
        }
        BreakerError::InvalidKey(message) => {
            let field = if message.starts_with("node type") {
                "key.node_type"
            } else {
                "key.host"
            };
            ExecutorError::invalid(field, message)
        }
        BreakerError::InvalidConfig(problems) => ExecutorError::Config(problems.join("; ")),
    }
}

/// The audit target of a breaker.
fn audit_target(key: &BreakerKey) -> String {
    format!("breaker:{}/{}", key.node_type, key.host)
}

impl Domain {
    /// The breakers node calls go through: those connected at start-up
    /// (Redis in distributed mode), else in-process ones; `None` when
    /// `breakers_enabled` is off.
    pub fn breakers(&self) -> Option<&Arc<dyn CircuitBreakers>> {
        if !self.config().breakers_enabled {
            return None;
        }
        Some(
            self.inner
                .breakers
                .get_or_init(|| in_process(&self.config().breakers)),
        )
    }

    /// Connects shared breakers (Redis). Called once, before serving.
    pub fn set_breakers(&self, breakers: Arc<dyn CircuitBreakers>) -> ExecutorResult<()> {
        self.inner.breakers.set(breakers).map_err(|_| {
            ExecutorError::Config("the circuit breakers are already connected".to_owned())
        })
    }

    /// Where manual breaker changes are audited. Called once, before serving.
    pub fn set_audit(&self, audit: Arc<dyn AuditSink>) -> ExecutorResult<()> {
        self.inner
            .audit
            .set(audit)
            .map_err(|_| ExecutorError::Config("the audit log is already connected".to_owned()))
    }

    /// The verified caller, when it may operate the platform's breakers.
    pub async fn authorize_operator(&self, bearer: Option<&str>) -> ExecutorResult<Principal> {
        let token = bearer.ok_or_else(|| {
            ExecutorError::Unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`".to_owned(),
            )
        })?;
        let principal = self.inner.verifier.verify(token).await?;
        principal.require(Permission::PlatformManage)?;
        Ok(principal)
    }

    fn enabled_breakers(&self) -> ExecutorResult<&Arc<dyn CircuitBreakers>> {
        self.breakers().ok_or_else(|| {
            ExecutorError::FailedPrecondition(
                "circuit breakers are switched off (executor.breakers_enabled)".to_owned(),
            )
        })
    }

    pub async fn list_breakers(&self, _operator: &Principal) -> ExecutorResult<Vec<BreakerState>> {
        self.enabled_breakers()?.list().await.map_err(breaker_error)
    }

    /// One breaker; `NotFound` when nothing is known of `key`.
    pub async fn get_breaker(
        &self,
        _operator: &Principal,
        key: &BreakerKey,
    ) -> ExecutorResult<BreakerState> {
        key.validate().map_err(breaker_error)?;
        let breakers = self.enabled_breakers()?;
        let state = breakers.get(key).await.map_err(breaker_error)?;
        let blank =
            state.state == CircuitState::Closed && state.calls_in_window == 0 && state.trips == 0;
        // A closed breaker with nothing in its window may still be one that
        // just closed; the listing knows which breakers exist.
        if blank
            && !breakers
                .list()
                .await
                .map_err(breaker_error)?
                .iter()
                .any(|listed| &listed.key == key)
        {
            return Err(ExecutorError::NotFound("circuit breaker"));
        }
        Ok(state)
    }

    /// Makes a manual change, audited first: when the record cannot be
    /// written the change is refused, and the refusal logged.
    pub async fn change_breaker(
        &self,
        operator: &Principal,
        key: &BreakerKey,
        change: BreakerChange,
    ) -> ExecutorResult<BreakerState> {
        key.validate().map_err(breaker_error)?;
        let breakers = self.enabled_breakers()?;
        let audit = self.inner.audit.get().ok_or_else(|| {
            ExecutorError::FailedPrecondition(
                "no audit log is connected, and breaker changes must be audited".to_owned(),
            )
        })?;
        let before = breakers.get(key).await.map_err(breaker_error)?;
        let actor = operator.actor();
        let action = change.action();
        let details = BTreeMap::from([
            ("node_type".to_owned(), key.node_type.clone()),
            ("host".to_owned(), key.host.clone()),
            ("state_before".to_owned(), before.state.name().to_owned()),
        ]);
        if let Err(error) = audit
            .record(None, &actor, action, &audit_target(key), details)
            .await
        {
            tracing::warn!(%error, %actor, action, node_type = %key.node_type, host = %key.host, "breaker change refused: its audit record could not be written");
            return Err(ExecutorError::Unavailable(
                "the audit log is unavailable; the breaker was not changed".to_owned(),
            ));
        }
        let changed = match change {
            BreakerChange::Reset => breakers.reset(key).await,
            BreakerChange::ForceOpen => breakers.force_open(key).await,
            BreakerChange::ForceClosed => breakers.force_closed(key).await,
        };
        changed.map_err(breaker_error)?;
        tracing::info!(%actor, action, node_type = %key.node_type, host = %key.host, "breaker changed by an operator");
        breakers.get(key).await.map_err(breaker_error)
    }
}
