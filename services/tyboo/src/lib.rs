//! The Tyboo Studio binary's library: its configuration and the mesh it
//! starts, embedded (every service in one process, each on its own loopback
//! port, speaking real gRPC) or one service at a time.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod mesh;
pub mod ports;
