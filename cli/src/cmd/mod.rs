//! One module per subcommand.

pub mod agent;
pub mod agents;
pub mod bindings;
pub mod controller;
pub mod cost;
pub mod daemon;
pub mod dev;
pub mod members;
pub mod network;
pub mod plan;
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
    /// Mutual TLS files, when the cluster uses TLS.
    pub tls: Option<pld_client::tls::TlsFiles>,
}

impl Context {
    /// A client for `--controller` (over mutual TLS with `--tls-*`).
    pub fn client(&self) -> anyhow::Result<Client> {
        let tls = self.tls.as_ref().map(|t| t.load()).transpose()?;
        Ok(
            Client::connect(std::slice::from_ref(&self.controller), tls.as_ref())?
                .with_deadline(self.timeout),
        )
    }
}
