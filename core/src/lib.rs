//! pld's core: validated catalog objects and the catalog state machine, with no I/O.
//!
//! The controller feeds committed raft entries ([`command::Envelope`]) to [`Catalog::apply`];
//! everything here is deterministic so every replica reaches the same state.

pub mod access;
pub mod aws;
pub mod catalog;
pub mod command;
pub mod cost;
pub mod facts;
pub mod network;
pub mod phase;
pub mod plan;
pub mod regions;
pub mod validate;

pub use catalog::{Catalog, CatalogError, Outcome};
pub use command::{Command, Envelope, Op};
pub use phase::Phase;
