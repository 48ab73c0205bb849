//! End-to-end tests of the whole mesh: each test starts its own mesh on
//! ephemeral loopback ports, on SQLite or (with `TYBOO_TEST_BACKEND=postgres`)
//! on a PostgreSQL database of its own, and drives it as users do: HTTP/JSON
//! and native gRPC through the edge, and gRPC with reflection against the
//! services. With `TYBOO_TEST_TOPOLOGY=processes` as well, a sandbox's mesh
//! runs as separate `tyboo` processes on PostgreSQL and Redis.

mod sandbox;

mod access;
mod admin;
mod audit;
mod breakers;
mod credentials;
mod distributed;
mod edge_limits;
mod first_start;
mod grpc_api;
mod grpcurl;
mod hostile_http;
mod http_api;
mod limits;
mod metering;
mod process;
mod reflection;
mod topology;
mod upstreams;
mod workflows;
