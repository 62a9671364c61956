//! AWS as pld sees it, with no I/O: the operations pld calls ([`Action`]), the IAM permission
//! each needs and the rate bucket each draws from ([`ApiClass`]), and the values those
//! operations take and return ([`types`]: endpoints, services, zones, records, tags). The cloud
//! backends, the simulated region, the client-side limiter, the IAM policy test and the
//! planners all name operations and resources through these, so each is spelled once.

mod action;
mod call;
pub mod types;

pub use action::{Action, ApiClass, AwsService};
pub use call::Call;
