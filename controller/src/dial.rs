//! Dialing another controller: plain HTTP/2, or mutual TLS when the cluster has certificates.
//! One place, so the raft transport, joining and member status agree.

use tonic::transport::Endpoint;

use pld_client::tls::Tls;

/// An endpoint for `address` (`host:port`, with or without a scheme).
///
/// # Errors
/// When the address does not parse or the TLS settings are refused, in words.
pub fn endpoint(address: &str, tls: Option<&Tls>) -> Result<Endpoint, String> {
    let bare = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .unwrap_or(address);
    match tls {
        None => Endpoint::from_shared(format!("http://{bare}")).map_err(|e| e.to_string()),
        Some(tls) => Endpoint::from_shared(format!("https://{bare}"))
            .map_err(|e| e.to_string())?
            .tls_config(tls.client_config())
            .map_err(|e| e.to_string()),
    }
}
