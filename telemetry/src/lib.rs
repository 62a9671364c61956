//! What every pld daemon shares so that it can be operated:
//!
//! - [`logging`]: tracing set up from `PLD_LOG` / `PLD_LOG_FORMAT`, with a level that can be
//!   changed while running (SIGHUP reloads).
//! - [`metrics`]: a Prometheus registry per daemon (not a process-global one, so that `pld dev`
//!   and in-process test clusters keep each node's figures apart).
//! - [`http`]: `/metrics`, `/healthz` and `/readyz`, served next to gRPC on the daemon's port.
//! - [`grpc`]: server reflection listing just the services a daemon serves.
//! - [`systemd`]: `READY=1`, reload and stop notifications and watchdog pings.

pub mod grpc;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod systemd;

pub use http::{routes, Probe};
pub use metrics::Metrics;
