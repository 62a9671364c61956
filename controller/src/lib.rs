//! pld's controller: the replicated catalog.
//!
//! - [`storage`]: durable raft state behind the `LogStore` trait (sled, memory).
//! - [`node`]: the raft-rs Ready loop on its own thread, and the handle the API uses.
//! - [`transport`]: raft messages between nodes over gRPC, with test fault injection.
//! - [`api`]: the gRPC services (catalog, watch, cluster, raft transport).
//! - [`metrics`]: Prometheus metrics; `/metrics`, `/healthz`, `/readyz` share the gRPC port.
//! - [`server`]: wires them together: [`server::Controller::start`].

pub mod api;
pub mod authz;
pub mod config;
pub mod crash_points;
pub mod dial;
pub mod metrics;
pub mod node;
mod raft_log;
pub mod server;
pub mod storage;
pub mod transport;

pub use config::ControllerConfig;
pub use server::{Controller, ControllerError};
pub use transport::Faults;
