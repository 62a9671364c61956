//! The pure half of reconciling: what makes a resource pld's ([`ownership`]: tags, owners,
//! client tokens, hosted zone claims) and the record changes that publish names without taking
//! one pld does not own ([`records`]). No I/O: the agent observes and calls AWS around these,
//! and the controller can run them too (for `pld plan`), since it depends on core and never on
//! the agent.

pub mod ownership;
pub mod records;
