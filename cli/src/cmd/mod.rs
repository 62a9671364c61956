//! One module per subcommand.

pub mod agent;
pub mod agents;
pub mod bindings;
pub mod controller;
pub mod daemon;
pub mod dev;
pub mod members;
pub mod services;
pub mod snapshot;
pub mod status;
pub mod watch;

use pld_client::Client;

use crate::output::Format;

/// What every client subcommand needs.
pub struct Context {
    pub controller: String,
    pub format: Format,
    pub timeout: std::time::Duration,
}

impl Context {
    /// A client for `--controller`.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(std::slice::from_ref(&self.controller))?.with_deadline(self.timeout))
    }
}
