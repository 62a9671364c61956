//! AWS as pld sees it, with no I/O: the operations pld calls ([`Action`]), the IAM permission
//! each needs and the rate bucket each draws from ([`ApiClass`]). The cloud backends, the
//! simulated region, the client-side limiter and the IAM policy test all name operations
//! through these, so each operation is spelled once.

mod action;

pub use action::{Action, ApiClass, AwsService};
