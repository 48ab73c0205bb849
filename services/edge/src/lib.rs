//! The public entry point of the mesh.
//!
//! The edge owns nothing durable. It turns public HTTP/JSON into gRPC calls on
//! the public services, routed only by the `google.api.http` annotations in the
//! descriptor set (so an annotated RPC added later needs no edge code), passes
//! native gRPC through to the same services, and in both cases exchanges the
//! caller's API key for a short-lived principal token that the services verify
//! themselves. It also serves `/openapi.json` generated from the same
//! descriptors, `/healthz` (and `grpc.health.v1` on its gRPC face), reflection
//! of the public services when switched on, and the public webhook URLs under
//! `/hooks`; its metrics are served on the process's admin listener, not here.
//!
//! How a request flows: `layers` (metrics, request id, in-flight cap, CORS,
//! deadline, body limit) → `dispatch` (gRPC passthrough or JSON) → `routes`
//! / `path_template` (which RPC) → `auth` (API key → principal token) under
//! `rate_limits` (per key, workspace and client address) → `transcode`
//! (JSON ↔ message) → `upstream` (the gRPC call) → `errors` (JSON error
//! bodies).
//!
//! How the modules depend on each other, top to bottom, with no way back up:
//! `edge` builds the router from the handlers (`dispatch`, which hands gRPC
//! to `passthrough`, and `webhooks`) and the `layers`. The handlers share
//! `request` (call context, key exchange, body), which reads the `state`
//! every handler shares and the context the layers leave on the request.
//! The layers and `dispatch` tell gRPC from JSON with `protocol`, a leaf, so
//! no layer reaches into a handler. Below the handlers, `transcode` and
//! `openapi` read the `routes`, and all three read `json_text`, a leaf.
#![forbid(unsafe_code)]

mod access_watch;
mod auth;
mod config;
mod dispatch;
mod edge;
mod errors;
mod grpc_health;
mod json_text;
mod layers;
pub mod metrics;
mod openapi;
mod own_grpc;
mod passthrough;
mod path_template;
mod protocol;
mod rate_limits;
mod request;
mod routes;
pub mod server;
mod state;
mod transcode;
mod upstream;
mod webhooks;

pub use config::EdgeConfig;
pub use edge::{Edge, Upstream};
pub use errors::{EdgeError, EdgeResult};
pub use rate_limits::RateLimits;
