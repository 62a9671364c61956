//! A client for pld controllers, for the CLI and other Rust programs.
//!
//! - Give it every controller address. Any node answers every call (followers forward writes to
//!   the leader inside raft), so the client only moves on when a node is unreachable or has no
//!   leader, trying the next address with backoff until the deadline.
//! - [`Client::watch`] returns a stream of events that survives node failures: it resumes on
//!   another node from the revision after the last one delivered, so no event is lost or repeated.
//!
//! - [`Client::get`] (or [`Client::get_local`]), [`Client::list`], [`Client::put`] and
//!   [`Client::delete`] cover the catalog;
//!   [`Client::call`] reaches every RPC (cluster, watch) with the same failover.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pld_client::ClientError> {
//! use pld_proto::v1::{Kind, ListRequest};
//! let client = pld_client::Client::new(&["10.0.1.10:7400,10.0.2.10:7400".to_string()])?;
//! let services = client
//!     .list(ListRequest { kind: Kind::Service as i32, ..Default::default() })
//!     .await?;
//! let billing = client.get(Kind::Service, "billing").await?;
//! # Ok(()) }
//! ```
//!
//! `examples/inventory.rs` in the workspace is a whole program on this crate.

pub mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use pld_proto::v1::catalog_client::CatalogClient;
use pld_proto::v1::cluster_client::ClusterClient;
use pld_proto::v1::planner_client::PlannerClient;
use pld_proto::v1::watch_client::WatchClient;
use pld_proto::v1::{
    DeleteRequest, DeleteResponse, Event, GetRequest, Kind, ListMembersRequest, ListRequest,
    ListResponse, Object, PutRequest, PutResponse, WatchRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::debug;

/// Default controller address.
pub const DEFAULT_CONTROLLER: &str = "http://127.0.0.1:7400";
/// Default time a call keeps retrying across nodes.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15);

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A controller address does not parse.
    #[error("invalid controller address {address:?}: {reason}")]
    Address { address: String, reason: String },
    /// No controller address was given.
    #[error("no controller address given")]
    NoEndpoints,
    /// The controller answered with an error, or none answered in time.
    #[error("{}", .0.message())]
    Status(Status),
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        ClientError::Status(s)
    }
}

impl ClientError {
    /// The gRPC code; `InvalidArgument` for problems found before calling (a bad address).
    pub fn code(&self) -> Code {
        match self {
            ClientError::Status(s) => s.code(),
            _ => Code::InvalidArgument,
        }
    }

    /// The underlying status, when the controller answered.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ClientError::Status(s) => Some(s),
            _ => None,
        }
    }
}

/// Stubs for one controller node, over one HTTP/2 connection.
#[derive(Clone)]
pub struct Stubs {
    channel: Channel,
    /// The address these stubs talk to.
    pub address: String,
}

impl Stubs {
    /// The catalog service.
    pub fn catalog(&mut self) -> CatalogClient<Channel> {
        CatalogClient::new(self.channel.clone())
    }

    /// The watch service.
    pub fn watch(&mut self) -> WatchClient<Channel> {
        WatchClient::new(self.channel.clone())
    }

    /// The cluster service.
    pub fn cluster(&mut self) -> ClusterClient<Channel> {
        ClusterClient::new(self.channel.clone())
    }

    /// The planner (`pld plan`).
    pub fn planner(&mut self) -> PlannerClient<Channel> {
        PlannerClient::new(self.channel.clone())
    }
}

/// A client over several controller nodes.
#[derive(Clone)]
pub struct Client {
    nodes: Arc<Vec<Stubs>>,
    current: Arc<AtomicUsize>,
    deadline: Duration,
}

fn strip_scheme(address: &str) -> &str {
    address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .unwrap_or(address)
}

fn normalize(address: &str) -> String {
    if address.starts_with("http://") || address.starts_with("https://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// Whether another node might succeed where this one failed.
fn worth_retrying(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown)
        || (status.code() == Code::Cancelled && status.message().contains("transport"))
}

/// Whether a failed request certainly changed nothing: it never left this process (the
/// connection could not be made) or the controller refused it before proposing it. Any other
/// failure of a write — a timeout, a connection lost after sending — may hide a write that was
/// committed, so repeating a compare-and-set or a delete could report a failure for a change
/// that happened.
pub fn not_executed(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && (status
            .metadata()
            .contains_key(pld_proto::metadata::NOT_PROPOSED)
            || status.message() == "tcp connect error")
}

impl Client {
    /// A client for these addresses (`host:port` or `http://host:port`; comma-separated lists
    /// are split). Connections are made lazily.
    ///
    /// # Errors
    /// When an address does not parse or none is given.
    pub fn new(addresses: &[String]) -> Result<Self, ClientError> {
        Self::connect(addresses, None)
    }

    /// Like [`Client::new`]; with `tls`, over mutual TLS (`https://`, whatever scheme the
    /// addresses name).
    ///
    /// # Errors
    /// When an address does not parse or none is given.
    pub fn connect(addresses: &[String], tls: Option<&tls::Tls>) -> Result<Self, ClientError> {
        let mut nodes = Vec::new();
        for address in addresses
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let url = match tls {
                Some(_) => format!("https://{}", strip_scheme(address)),
                None => normalize(address),
            };
            let bad = |reason: String| ClientError::Address {
                address: address.to_string(),
                reason,
            };
            let mut endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| bad(e.to_string()))?
                .connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true);
            if let Some(tls) = tls {
                endpoint = endpoint
                    .tls_config(tls.client_config())
                    .map_err(|e| bad(e.to_string()))?;
            }
            nodes.push(Stubs {
                channel: endpoint.connect_lazy(),
                address: url,
            });
        }
        if nodes.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        Ok(Client {
            nodes: Arc::new(nodes),
            current: Arc::new(AtomicUsize::new(0)),
            deadline: DEFAULT_DEADLINE,
        })
    }

    /// Sets how long a call keeps retrying across nodes.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The stubs of the node calls currently go to.
    pub fn stubs(&self) -> Stubs {
        let i = self.current.load(Ordering::Relaxed) % self.nodes.len();
        self.nodes[i].clone()
    }

    /// Stubs for every node, in the order given.
    pub fn all_stubs(&self) -> Vec<Stubs> {
        self.nodes.as_ref().clone()
    }

    fn rotate(&self, from: usize) {
        let _ = self.current.compare_exchange(
            from,
            (from + 1) % self.nodes.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Runs `f` against the current node, moving to the next node while the error says another
    /// node might answer, until the deadline. For requests that may be repeated: reads, and
    /// writes whose repetition leaves the same result (an unconditional put, a keep-alive, a
    /// status report). Compare-and-sets, deletes and membership changes go through
    /// [`Client::call_mutation`].
    ///
    /// # Errors
    /// The last status when every try failed.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, ClientError>
    where
        F: Fn(Stubs) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_retrying(f, worth_retrying).await
    }

    /// Like [`Client::call`], for a request that must not happen twice: it is only tried again
    /// when the failure shows it did not happen ([`not_executed`]). Any other failure is
    /// returned, and the caller learns that the outcome is unknown instead of seeing a repeat
    /// fail for a change that was made.
    ///
    /// # Errors
    /// The last status when every try failed.
    pub async fn call_mutation<T, F, Fut>(&self, f: F) -> Result<T, ClientError>
    where
        F: Fn(Stubs) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_retrying(f, not_executed).await
    }

    async fn call_retrying<T, F, Fut>(
        &self,
        f: F,
        retry: fn(&Status) -> bool,
    ) -> Result<T, ClientError>
    where
        F: Fn(Stubs) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let mut backoff = Duration::from_millis(50);
        loop {
            let i = self.current.load(Ordering::Relaxed) % self.nodes.len();
            match f(self.nodes[i].clone()).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if retry(&s) && tokio::time::Instant::now() < deadline => {
                    debug!(node = %self.nodes[i].address, error = %s.message(), "trying another controller");
                    self.rotate(i);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(s) => return Err(s.into()),
            }
        }
    }

    /// The installation's cluster id as the answering node knows it; `None` before the first
    /// leader has set it.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn cluster_id(&self) -> Result<Option<String>, ClientError> {
        let members = self
            .call(|mut s| async move { s.cluster().list_members(ListMembersRequest {}).await })
            .await?;
        Ok(Some(members.cluster_id).filter(|id| !id.is_empty()))
    }

    /// Reads one object, linearizably; `None` when it does not exist.
    ///
    /// # Errors
    /// As [`Client::call`]; NOT_FOUND is `Ok(None)`.
    pub async fn get(&self, kind: Kind, key: &str) -> Result<Option<Object>, ClientError> {
        self.get_with(kind, key, false).await
    }

    /// Reads one object from whichever node answers, without confirming with the leader: cheap,
    /// but it may miss the latest writes. `None` when that node has no such object.
    ///
    /// # Errors
    /// As [`Client::call`]; NOT_FOUND is `Ok(None)`.
    pub async fn get_local(&self, kind: Kind, key: &str) -> Result<Option<Object>, ClientError> {
        self.get_with(kind, key, true).await
    }

    async fn get_with(
        &self,
        kind: Kind,
        key: &str,
        stale: bool,
    ) -> Result<Option<Object>, ClientError> {
        let r = self
            .call(|mut node| {
                let req = GetRequest {
                    kind: kind as i32,
                    key: key.to_string(),
                    stale,
                };
                async move { node.catalog().get(req).await }
            })
            .await;
        match r {
            Ok(r) => Ok(r.object),
            Err(e) if e.code() == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the objects `request` selects.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn list(&self, request: ListRequest) -> Result<ListResponse, ClientError> {
        self.call(|mut node| {
            let req = request.clone();
            async move { node.catalog().list(req).await }
        })
        .await
    }

    /// Creates or replaces an object; with `expected_mod_revision`, only if the object's mod
    /// revision is still that (0: only if it does not exist).
    ///
    /// # Errors
    /// As [`Client::call`]; a compare-and-set mismatch is FAILED_PRECONDITION. A
    /// compare-and-set is not repeated after a failure that may hide its success
    /// ([`Client::call_mutation`]).
    pub async fn put(
        &self,
        object: Object,
        expected_mod_revision: Option<u64>,
    ) -> Result<PutResponse, ClientError> {
        let put = |mut node: Stubs| {
            let req = PutRequest {
                object: Some(object.clone()),
                expected_mod_revision,
            };
            async move { node.catalog().put(req).await }
        };
        if expected_mod_revision.is_some() {
            self.call_mutation(put).await
        } else {
            self.call(put).await
        }
    }

    /// Deletes an object; with `expected_mod_revision`, only if it is still at that revision.
    ///
    /// # Errors
    /// As [`Client::call_mutation`] (a repeat after an unseen success would say NOT_FOUND);
    /// NOT_FOUND when it does not exist.
    pub async fn delete(
        &self,
        kind: Kind,
        key: &str,
        expected_mod_revision: Option<u64>,
    ) -> Result<DeleteResponse, ClientError> {
        self.call_mutation(|mut node| {
            let req = DeleteRequest {
                kind: kind as i32,
                key: key.to_string(),
                expected_mod_revision,
            };
            async move { node.catalog().delete(req).await }
        })
        .await
    }

    /// Watches the catalog from `request.start_revision`, resuming on other nodes when one
    /// fails. The stream ends with an error only when resuming is impossible (the revision was
    /// compacted, the request is invalid) or no node answered for the client's deadline.
    pub fn watch(
        &self,
        request: WatchRequest,
    ) -> impl Stream<Item = Result<Event, ClientError>> + Send + 'static {
        let (tx, rx) = mpsc::channel(256);
        let client = self.clone();
        tokio::spawn(async move { client.watch_loop(request, tx).await });
        ReceiverStream::new(rx)
    }

    async fn watch_loop(
        &self,
        mut request: WatchRequest,
        tx: mpsc::Sender<Result<Event, ClientError>>,
    ) {
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            let i = self.current.load(Ordering::Relaxed) % self.nodes.len();
            let mut stubs = self.nodes[i].clone();
            let error = match stubs.watch().watch(request.clone()).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    loop {
                        // The caller dropping the stream ends the server's stream too, now
                        // rather than at the next event.
                        let next = tokio::select! {
                            next = stream.next() => next,
                            _ = tx.closed() => return,
                        };
                        match next {
                            Some(Ok(msg)) => {
                                failing_since = None;
                                backoff = Duration::from_millis(50);
                                if request.start_revision == 0 {
                                    // Established "from now": pin the position.
                                    request.start_revision = msg.revision + 1;
                                }
                                for event in msg.events {
                                    request.start_revision = event.revision + 1;
                                    if tx.send(Ok(event)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            Some(Err(s)) => break s,
                            None => break Status::unavailable("watch stream closed by the server"),
                        }
                    }
                }
                Err(s) => s,
            };
            let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
            if !worth_retrying(&error) || since.elapsed() > self.deadline {
                let _ = tx.send(Err(error.into())).await;
                return;
            }
            debug!(node = %self.nodes[i].address, error = %error.message(), next = request.start_revision, "resuming the watch on another controller");
            self.rotate(i);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = tx.closed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}
