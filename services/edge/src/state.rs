//! What every request handler shares, built once by [`crate::Edge::new`].
//!
//! It sits below the handlers (`dispatch`, `passthrough`, `webhooks`) and the
//! request helpers, and depends on none of them, so they can all read it
//! without reaching back into the module that builds the router.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost_reflect::SerializeOptions;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::auth::Authenticator;
use crate::config::EdgeConfig;
use crate::own_grpc::OwnGrpc;
use crate::rate_limits::RateLimits;
use crate::routes::RouteTable;

/// Where a native gRPC call of a public method goes.
#[derive(Clone, Debug)]
pub(crate) struct GrpcTarget {
    pub(crate) channel: Channel,
    /// `/service/Method`: bounded by the descriptors, so a fine metric label.
    pub(crate) label: Arc<str>,
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) config: EdgeConfig,
    pub(crate) routes: RouteTable,
    pub(crate) channels: HashMap<String, Channel>,
    /// Keyed by `/service/Method` for every method of a public service.
    pub(crate) grpc_targets: HashMap<String, GrpcTarget>,
    pub(crate) authenticator: Authenticator,
    /// The executor's internal `WebhookService`, when webhooks are served.
    pub(crate) webhooks: OnceLock<Channel>,
    pub(crate) serialize_options: SerializeOptions,
    /// Health and, when switched on, reflection: answered by the edge.
    pub(crate) own_grpc: OwnGrpc,
    pub(crate) openapi: Bytes,
    /// True while serving, false once draining: `/healthz` and gRPC health.
    pub(crate) serving: watch::Sender<bool>,
    /// Set by [`crate::Edge::with_rate_limits`]; in-process with every
    /// workspace at the default limits otherwise.
    pub(crate) rate_limits: OnceLock<RateLimits>,
}

impl Shared {
    pub(crate) fn rate_limits(&self) -> &RateLimits {
        self.rate_limits.get_or_init(|| {
            RateLimits::local(
                self.config.rate_limits_enabled,
                self.config.rate_limits.clone(),
            )
        })
    }
}
