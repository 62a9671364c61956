//! Authorization on a mutual-TLS controller (a real `pld controller` process): each certificate's
//! URI SAN names who holds it, and every refusal in the rules (deploy/INSTALL.md, TLS) is
//! exercised here with the identity that must be refused, next to one that must pass.
//!
//! Two agents: A (account 111111111111, vpc-aaaaaaaa) provides `alpha` (allows account
//! 222222222222) and `private` (allows nobody else); B (account 222222222222, vpc-bbbbbbbb)
//! consumes.
//!
//! One module per concern: who may write what ([`writes`]), who may read what ([`reads`]),
//! the cluster's own operations and raft ([`cluster_ops`]), and what a certificate must be
//! ([`certificates`]); [`fixture`] starts the controller and issues the certificates.

mod certificates;
mod cluster_ops;
mod fixture;
mod reads;
mod writes;
